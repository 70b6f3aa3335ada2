"""Stop a run whose ``load_from`` file lacks trainable backbone weights."""
from typing import Iterable

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..weight_checks import check_load_from_keys


@HOOKS.register_module()
class CheckLoadFromHook(Hook):
    """When the Runner loads ``load_from`` (not a resume), check that the file holds every
    trainable backbone weight (:func:`~addp_mm.engine.weight_checks.check_load_from_keys`), before
    the weights are put into the model.

    Models with ``checks_loaded_keys = True`` (e.g. the ADDP generator, whose ``load_state_dict``
    converts and checks every file itself, strictly) are trusted.

    Args:
        allowed_missing (Iterable[str]): Regexes of full parameter names the file may lack.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allowed_missing: Iterable[str] = ()) -> None:
        self.allowed_missing = tuple(allowed_missing)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Runs for ``load_from`` and resume, before the weights are put into the model."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(runner, '_resume', False) or getattr(model, 'checks_loaded_keys', False):
            return
        check_load_from_keys(model, checkpoint, runner._load_from, self.allowed_missing)
