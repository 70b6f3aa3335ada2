"""One summary line instead of a warning per frozen parameter when an optimizer is built, and the
per-parameter ``paramwise_options`` lines at DEBUG level.

mmengine's ``DefaultOptimWrapperConstructor`` warns once per parameter with
``requires_grad=False`` ("... is skipped since its requires_grad=False"): with ADDP's frozen VQGAN
and token predictor that is hundreds of lines (234 of the 584 of a toy run). After
``summarize_frozen_parameter_logs`` the constructor logs how many frozen parameters it left
out, and under which modules, in one INFO line; and its line per parameter that a
``paramwise_cfg`` changes ("paramwise_options -- backbone.pos_embed:weight_decay=0.0", 60 of the
383 lines of a tiny ADDP run) goes to DEBUG (``log_level='DEBUG'`` shows them). Nothing else in
the log changes.

:func:`addp_mm.compat.summarize_frozen_parameter_logs` installs the two replacements below.
"""
import logging
from typing import Callable, List

from mmengine.logging import print_log

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


def without_frozen_warnings(print_log_fn: Callable) -> Callable:
    """mmengine's optimizer-constructor ``print_log`` that records the "requires_grad=False"
    warnings instead of printing them and logs the ``paramwise_cfg`` lines at DEBUG (everything
    else is printed as before).

    Args:
        print_log_fn (callable): ``mmengine.optim.optimizer.default_constructor.print_log``.

    Returns:
        callable: The replacement.
    """

    def print_log_without_frozen(msg, logger=None, level=logging.INFO):
        if isinstance(msg, str) and msg.endswith(_SKIPPED_SUFFIX):
            _skipped.append(msg[:-len(_SKIPPED_SUFFIX)])
            return None
        return print_log_fn(msg, logger=logger, level=optimizer_log_level(msg, level))

    return print_log_without_frozen


def with_frozen_summary(call: Callable) -> Callable:
    """``DefaultOptimWrapperConstructor.__call__`` that logs one summary line of the frozen
    parameters recorded while it ran.

    Args:
        call (callable): ``DefaultOptimWrapperConstructor.__call__``.

    Returns:
        callable: The replacement.
    """

    def summarized_call(self, model):
        start = len(_skipped)
        try:
            return call(self, model)
        finally:
            names = _skipped[start:]
            del _skipped[start:]
            if names:
                print_log(_frozen_summary(names), logger='current')

    return summarized_call
