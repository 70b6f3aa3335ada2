"""Stop a resume that would continue another run; start an auto-resume with nothing to resume
fresh, said once."""
from typing import Iterable

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..resume_checks import (check_resume_settings, find_resumable_checkpoint,
                             nothing_to_resume)


@HOOKS.register_module()
class CheckResumeHook(Hook):
    """The resume checks of :mod:`addp_mm.engine.resume_checks` in a Runner.

    * an auto-resume with no checkpoint in the work directory starts fresh without mmengine's
      "Auto resumed from the latest checkpoint None" (``before_run``);
    * a resumed checkpoint must come from a run with the same data and model settings
      (:func:`~addp_mm.engine.resume_checks.check_resume_settings`); ``train_cfg`` (e.g. a larger
      ``max_iters`` to extend the run), the optimizer and hooks may change.

    Args:
        allowed_missing (Iterable[str]): Regexes of weights a ``load_from`` of the refused
            checkpoint may leave out (decides whether the refusal suggests ``load_from``).
    """

    priority = 'VERY_HIGH'

    def __init__(self, allowed_missing: Iterable[str] = ()) -> None:
        self.allowed_missing = tuple(allowed_missing)

    def before_run(self, runner) -> None:
        if nothing_to_resume(getattr(runner, '_resume', False), runner._load_from,
                             runner.work_dir):
            runner._resume = False
            runner.logger.info(f'no checkpoint to resume from in {runner.work_dir}: training '
                               'starts from scratch.')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Runs for ``load_from`` and resume, before the weights are put into the model."""
        if not getattr(runner, '_resume', False):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        # an auto-resume loads the checkpoint last_checkpoint names
        path = runner._load_from or find_resumable_checkpoint(runner.work_dir)[0]
        check_resume_settings(runner.cfg, checkpoint, path, runner.work_dir, model,
                              self.allowed_missing)
