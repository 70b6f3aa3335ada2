"""The start-of-run checks, under the name configs and tools use: ``CheckPretrainedKeysHook``.

mmengine's ``PretrainedInit`` and ``load_from`` load with ``strict=False`` and only log missing
keys, so a wrong checkpoint, prefix or an unconverted official file silently trains from random
weights; and auto-resume continues whatever run is in the work directory, even one made with
other data. Each check is a hook of its own, with one job:

* :class:`~addp_mm.engine.hooks.CheckPretrainedInitHook`: ``Pretrained`` init_cfgs cover their
  modules;
* :class:`~addp_mm.engine.hooks.CheckLoadFromHook`: a ``load_from`` file holds every trainable
  backbone weight;
* :class:`~addp_mm.engine.hooks.CheckResumeHook`: a resume continues the same run.

:class:`CheckPretrainedKeysHook` runs the three (configs name it; ``tools/train.py`` and
``tools/test.py`` add it, ``require_pretrained=False``, to every config that lacks it). It does
nothing itself but pass each Runner call to them.
"""
from typing import Iterable, List

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .check_load_from_hook import CheckLoadFromHook
from .check_pretrained_init_hook import CheckPretrainedInitHook
from .check_resume_hook import CheckResumeHook


@HOOKS.register_module()
class CheckPretrainedKeysHook(Hook):
    """Stop a run, before its first iteration, that would not start from the weights it names.

    Runs :class:`CheckPretrainedInitHook`, :class:`CheckLoadFromHook` and
    :class:`CheckResumeHook` (see the module docstring). Registered in mmengine's root ``HOOKS``
    registry, so it resolves under any default scope.

    Example::

        custom_hooks = [dict(type='CheckPretrainedKeysHook',
                             allowed_missing=[r'backbone\\.ln2\\..*'])]

    Args:
        allowed_missing, allow_unexpected, require_pretrained: As
            :class:`CheckPretrainedInitHook` (``allowed_missing`` also goes to the others).
        check_load_from (bool): Check ``load_from`` checkpoints. Defaults to True.
        check_resume (bool): Check resumes. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 allowed_missing: Iterable[str] = (),
                 allow_unexpected: bool = True,
                 require_pretrained: bool = True,
                 check_load_from: bool = True,
                 check_resume: bool = True) -> None:
        allowed_missing = tuple(allowed_missing)
        self.pretrained = CheckPretrainedInitHook(allowed_missing, allow_unexpected,
                                                  require_pretrained)
        self.checks: List[Hook] = [self.pretrained]
        if check_load_from:
            self.checks.append(CheckLoadFromHook(allowed_missing))
        if check_resume:
            self.checks.append(CheckResumeHook(allowed_missing))

    @property
    def reports(self):
        """What the ``Pretrained`` check found (None before ``before_train``)."""
        return self.pretrained.reports

    def before_run(self, runner) -> None:
        for check in self.checks:
            check.before_run(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        for check in self.checks:
            check.after_load_checkpoint(runner, checkpoint)

    def before_train(self, runner) -> None:
        for check in self.checks:
            check.before_train(runner)
