"""One summary line instead of a warning per frozen parameter when an optimizer is built, and the
per-parameter ``paramwise_options`` lines at DEBUG level.

mmengine's ``DefaultOptimWrapperConstructor`` warns once per parameter with
``requires_grad=False`` ("... is skipped since its requires_grad=False"): with ADDP's frozen VQGAN
and token predictor that is hundreds of lines (234 of the 584 of a toy run). After
:func:`summarize_frozen_parameter_logs` the constructor logs how many frozen parameters it left
out, and under which modules, in one INFO line; and its line per parameter that a
``paramwise_cfg`` changes ("paramwise_options -- backbone.pos_embed:weight_decay=0.0", 60 of the
383 lines of a tiny ADDP run) goes to DEBUG (``log_level='DEBUG'`` shows them). Nothing else in
the log changes.
"""
import logging
from typing import List

from mmengine.logging import print_log
from mmengine.optim.optimizer import default_constructor as dc

_SKIPPED_SUFFIX = ' is skipped since its requires_grad=False'
_PARAMWISE_PREFIX = 'paramwise_options -- '
_skipped: List[str] = []


def _frozen_summary(names: List[str]) -> str:
    groups = {}
    for name in names:
        parts = [p for p in name.split('.') if p and p != 'base'][:-1]
        key = '.'.join(parts[:2]) or '(model)'
        groups[key] = groups.get(key, 0) + 1
    where = ', '.join(f'{k} ({n})' for k, n in sorted(groups.items()))
    return (f'optimizer: {len(names)} frozen parameters (requires_grad=False) are not optimized: '
            f'{where}')


def optimizer_log_level(msg, level: int) -> int:
    """The level a message of the optimizer constructor is logged at: DEBUG for the line per
    parameter of ``paramwise_cfg``, else ``level``."""
    if isinstance(msg, str) and msg.startswith(_PARAMWISE_PREFIX):
        return logging.DEBUG
    return level


def summarize_frozen_parameter_logs() -> None:
    """Replace mmengine's per-parameter "requires_grad=False" warnings by one summary line
    (idempotent)."""
    if getattr(dc, '_addp_mm_frozen_summary', False):
        return
    original_print_log = dc.print_log

    def print_log_without_frozen(msg, logger=None, level=logging.INFO):
        if isinstance(msg, str) and msg.endswith(_SKIPPED_SUFFIX):
            _skipped.append(msg[:-len(_SKIPPED_SUFFIX)])
            return None
        return original_print_log(msg, logger=logger, level=optimizer_log_level(msg, level))

    original_call = dc.DefaultOptimWrapperConstructor.__call__

    def call(self, model):
        start = len(_skipped)
        try:
            return original_call(self, model)
        finally:
            names = _skipped[start:]
            del _skipped[start:]
            if names:
                print_log(_frozen_summary(names), logger='current')

    dc.print_log = print_log_without_frozen
    dc.DefaultOptimWrapperConstructor.__call__ = call
    dc._addp_mm_frozen_summary = True
