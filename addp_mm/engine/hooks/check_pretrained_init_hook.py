"""Stop a run whose ``init_cfg=dict(type='Pretrained', ...)`` would not fill its module."""
from typing import Dict, Iterable, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...utils.errors import RefusedError
from ..weight_checks import check_pretrained_keys, pretrained_sources


@HOOKS.register_module()
class CheckPretrainedInitHook(Hook):
    """Before the first iteration, check that every ``Pretrained`` init_cfg covers all weights of
    its module (:func:`~addp_mm.engine.weight_checks.check_pretrained_keys`).

    Args:
        allowed_missing (Iterable[str]): Regexes of full parameter names that are new in the
            downstream model (e.g. the fc_norm ``backbone.ln2`` of ``out_type='avg_featmap'``).
        allow_unexpected (bool): Tolerate checkpoint keys the module lacks. Defaults to True.
        require_pretrained (bool): Also fail when no module has a ``Pretrained`` init_cfg.
            Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 allowed_missing: Iterable[str] = (),
                 allow_unexpected: bool = True,
                 require_pretrained: bool = True) -> None:
        self.allowed_missing = tuple(allowed_missing)
        self.allow_unexpected = allow_unexpected
        self.require_pretrained = require_pretrained
        self.reports: Optional[Dict[str, dict]] = None

    def before_train(self, runner) -> None:
        """Runs after the Runner initialised the weights and before the first iteration."""
        if self.require_pretrained and not pretrained_sources(runner.model):
            raise RefusedError(
                'no module of the model has init_cfg=dict(type=\'Pretrained\', checkpoint=...); '
                "set the backbone's init_cfg, or remove CheckPretrainedKeysHook / "
                'CheckPretrainedInitHook (or set require_pretrained=False) to train from scratch.')
        self.reports = check_pretrained_keys(runner.model, self.allowed_missing,
                                             self.allow_unexpected)
