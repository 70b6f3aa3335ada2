"""Fail fast when ``init_cfg=dict(type='Pretrained', ...)`` did not load every weight.

mmengine's ``PretrainedInit`` loads with ``strict=False`` and only logs missing keys
(openmmlab-notes 1.5, Appendix C.2), so a wrong checkpoint, prefix or conversion silently trains
from random weights. :func:`check_pretrained_keys` re-reads each ``Pretrained`` source the way
``PretrainedInit`` does and compares its keys with the module's; :class:`CheckPretrainedKeysHook`
runs it before training.
"""
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModule, is_model_wrapper
from mmengine.registry import HOOKS

from ...utils.checkpoint import load_checkpoint_file
from ...utils.weights import extract_state_dict

CONVERT_HINT = ('For ADDP weights make the file with tools/model_converters/convert_addp.py SRC '
                'DST --backbone-only (add --keep-norms for a backbone with pre_norm/final_norm, '
                'e.g. the linear probe), and check that the config arch (embed_dims, num_layers) '
                'matches it.')


def _pretrained_cfgs(module: nn.Module) -> List[dict]:
    init_cfg = getattr(module, 'init_cfg', None)
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']


def pretrained_sources(model: nn.Module) -> Dict[str, dict]:
    """Submodules of ``model`` whose ``init_cfg`` loads a ``Pretrained`` checkpoint.

    Args:
        model (nn.Module): Any model (wrappers are unwrapped).

    Returns:
        dict[str, dict]: ``{module name ('' for the model itself): Pretrained init_cfg}``.
    """
    if is_model_wrapper(model):
        model = model.module
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, BaseModule):
            for cfg in _pretrained_cfgs(module):
                found[name] = cfg
    return found


def check_pretrained_keys(model: nn.Module,
                          allowed_missing: Sequence[str] = (),
                          allow_unexpected: bool = True) -> Dict[str, dict]:
    """Check that every ``Pretrained`` init_cfg of ``model`` covers all of its module's weights.

    Keys are read as ``PretrainedInit`` reads them: the ``state_dict`` (or ``model``) of the file,
    restricted to ``prefix`` and stripped of it when a prefix is set, else stripped of a leading
    ``module.``. Shapes are not compared, because backbones legitimately resize ``pos_embed`` or
    relative-position tables at load time.

    Args:
        model (nn.Module): The model, after or before ``init_weights``.
        allowed_missing (Sequence[str]): Regular expressions (``re.fullmatch``) of full parameter
            names (e.g. ``r'backbone\\.ln2\\..*'``) that may be absent from the checkpoint because
            they are new layers of the downstream model.
        allow_unexpected (bool): Only log (True) or also fail on (False) checkpoint keys the module
            does not have.

    Returns:
        dict[str, dict]: Per module name: ``checkpoint``, ``missing`` and ``unexpected`` key lists
        (full names) and ``allowed_missing`` (missing keys matched by ``allowed_missing``).

    Raises:
        FileNotFoundError: If a Pretrained checkpoint path does not exist.
        RuntimeError: If a module misses weights that ``allowed_missing`` does not cover (or has
            unexpected keys with ``allow_unexpected=False``).
    """
    if is_model_wrapper(model):
        model = model.module
    patterns = [re.compile(p) for p in allowed_missing]
    modules = dict(model.named_modules())
    reports: Dict[str, dict] = {}
    problems: List[str] = []
    for name, cfg in pretrained_sources(model).items():
        path = cfg.get('checkpoint')
        if not path or not osp.isfile(path):
            raise FileNotFoundError(
                f'the Pretrained checkpoint {path!r} of {name or "the model"} does not exist. Set '
                f'model.{name + "." if name else ""}init_cfg.checkpoint to a local file. '
                + CONVERT_HINT)
        sd = extract_state_dict(load_checkpoint_file(path), path)
        prefix = cfg.get('prefix')
        if prefix:
            prefix = prefix if prefix.endswith('.') else prefix + '.'
            keys = {k[len(prefix):] for k in sd if k.startswith(prefix)}
        else:
            keys = {re.sub(r'^module\.', '', k) for k in sd}
        own = set(modules[name].state_dict())
        full = (lambda k: f'{name}.{k}') if name else (lambda k: k)
        missing = sorted(full(k) for k in own - keys)
        allowed = [k for k in missing if any(p.fullmatch(k) for p in patterns)]
        missing = [k for k in missing if k not in allowed]
        unexpected = sorted(full(k) for k in keys - own)
        reports[name] = dict(checkpoint=path, missing=missing, unexpected=unexpected,
                             allowed_missing=allowed)
        where = f'{name or "model"} <- {path}' + (f" (prefix '{prefix}')" if prefix else '')
        if missing:
            problems.append(f'{where}: {len(missing)} of {len(own)} weights are not in the '
                            f'checkpoint (first: {missing[:6]})')
        if unexpected and not allow_unexpected:
            problems.append(f'{where}: {len(unexpected)} checkpoint keys are not in the model '
                            f'(first: {unexpected[:6]})')
    logger = MMLogger.get_current_instance()
    for name, r in reports.items():
        logger.info(f'pretrained weights of {name or "model"} from {r["checkpoint"]}: '
                    f'{len(r["missing"])} missing, {len(r["allowed_missing"])} new layers '
                    f'{r["allowed_missing"]}, {len(r["unexpected"])} unused checkpoint keys'
                    + (f' {r["unexpected"][:6]}' if r['unexpected'] else ''))
    if problems:
        raise RuntimeError('pretrained weights do not match the model, so training would start '
                           'from random weights for them:\n  ' + '\n  '.join(problems) + '\n'
                           + CONVERT_HINT)
    return reports


@HOOKS.register_module()
class CheckPretrainedKeysHook(Hook):
    """Before training, raise if a ``Pretrained`` init_cfg left weights of its module unloaded.

    Registered in mmengine's root ``HOOKS`` registry, so it resolves under any default scope.

    Example::

        custom_hooks = [dict(type='CheckPretrainedKeysHook',
                             allowed_missing=[r'backbone\\.ln2\\..*'])]

    Args:
        allowed_missing (Sequence[str]): Regexes of full parameter names that are new in the
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
            raise RuntimeError(
                'CheckPretrainedKeysHook: no module of the model has '
                "init_cfg=dict(type='Pretrained', checkpoint=...); set the backbone's init_cfg, or "
                'remove this hook (or set require_pretrained=False) to train from scratch.')
        self.reports = check_pretrained_keys(runner.model, self.allowed_missing,
                                             self.allow_unexpected)
