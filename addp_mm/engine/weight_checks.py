"""The checks that a run starts from the weights it names: ``Pretrained`` init and ``load_from``.

mmengine's ``PretrainedInit`` and ``load_from`` load with ``strict=False`` and only log missing
keys (mmengine's ``load_state_dict`` warns and goes on), so a wrong checkpoint, prefix or an
unconverted official file silently trains from random weights. These functions read a file the
way mmengine will and compare its keys with the model's, naming the layout the file looks like
(:func:`~addp_mm.checkpoints.guess_layout`) and the fix:

* :func:`check_pretrained_keys`: each ``Pretrained`` source covers its module's weights;
* :func:`check_load_from_keys`: a ``load_from`` file holds every trainable backbone weight (every
  trainable weight for a model without a backbone).

The hooks :class:`~addp_mm.engine.hooks.CheckPretrainedInitHook` and
:class:`~addp_mm.engine.hooks.CheckLoadFromHook` run them in a Runner.
"""
import os.path as osp
import re
from typing import Any, Dict, List, Sequence

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModule, is_model_wrapper

from ..checkpoints import describe_layout, load_checkpoint_file
from ..checkpoints.layouts import CONVERT_HINT, mmengine_state_dict
from ..utils.errors import MissingPathError, RefusedError


def trainable_backbone_keys(model: nn.Module) -> List[str]:
    """Names of the trainable parameters ``load_from`` must fill: those of ``model.backbone``
    when there is one, else every trainable parameter."""
    if is_model_wrapper(model):
        model = model.module
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if isinstance(getattr(model, 'backbone', None), nn.Module):
        names = [n for n in names if n.startswith('backbone.')]
    return names


def missing_load_from_weights(model: nn.Module, checkpoint: Any,
                              allowed_missing: Sequence[str] = ()) -> List[str]:
    """The trainable backbone weights (:func:`trainable_backbone_keys`) that ``checkpoint``, as
    ``load_from``, would leave unloaded: absent from the file, or there with another shape
    (mmengine's non-strict load skips those with a warning).

    Keys are read as mmengine's ``Runner.load_checkpoint`` reads them (``state_dict`` or the whole
    object, a leading ``module.`` removed).

    Args:
        model (nn.Module): The model (wrappers are unwrapped).
        checkpoint: The loaded checkpoint object.
        allowed_missing (Sequence[str]): Regexes (``re.fullmatch``) of names that may be absent.

    Returns:
        list[str]: Parameter names in model order; one the file holds with another shape reads
        ``'name (file (a, b) vs model (c, d))'``.
    """
    if is_model_wrapper(model):
        model = model.module
    sd = {re.sub(r'^module\.', '', k): v for k, v in mmengine_state_dict(checkpoint).items()}
    params = dict(model.named_parameters())
    patterns = [re.compile(p) for p in allowed_missing]
    missing = []
    for k in trainable_backbone_keys(model):
        if any(p.fullmatch(k) for p in patterns):
            continue
        if k not in sd:
            missing.append(k)
        elif getattr(sd[k], 'shape', None) != params[k].shape:
            missing.append(f'{k} (file {tuple(getattr(sd[k], "shape", ()))} vs model '
                           f'{tuple(params[k].shape)})')
    return missing


def check_load_from_keys(model: nn.Module, checkpoint, filename: str,
                         allowed_missing: Sequence[str] = ()) -> List[str]:
    """Raise if loading ``checkpoint`` as ``load_from`` leaves trainable backbone weights unloaded
    (:func:`missing_load_from_weights`).

    Args:
        model (nn.Module): The model (wrappers are unwrapped).
        checkpoint: The loaded checkpoint object.
        filename (str): Its path, for the message.
        allowed_missing (Sequence[str]): Regexes (``re.fullmatch``) of names that may be absent.

    Returns:
        list[str]: The checked parameter names.

    Raises:
        RefusedError: Naming the file, how many weights it lacks or holds with other shapes, the
            layout it looks like and the command that converts it.
    """
    wanted = trainable_backbone_keys(model)
    missing = missing_load_from_weights(model, checkpoint, allowed_missing)
    if missing:
        layout, fix = describe_layout(checkpoint)
        shapes = sum(m.endswith(')') for m in missing)
        raise RefusedError(
            f'load_from={filename!r} does not hold {len(missing)} of the {len(wanted)} trainable '
            f'backbone weights of this model' + (f' ({shapes} of them with another shape)'
                                                 if shapes else '')
            + f' (first: {missing[:5]}), so they would train from random initialisation. The '
            f'file looks like {layout}: {fix}')
    MMLogger.get_current_instance().info(
        f'load_from {filename}: all {len(wanted)} trainable backbone weights are in the file')
    return wanted


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
        MissingPathError: If a Pretrained checkpoint path does not exist.
        RefusedError: If a module misses weights that ``allowed_missing`` does not cover (or has
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
            raise MissingPathError(
                f'the Pretrained checkpoint {path!r} of {name or "the model"} does not exist. Set '
                f'model.{name + "." if name else ""}init_cfg.checkpoint to a local file. '
                + CONVERT_HINT)
        loaded = load_checkpoint_file(path)
        sd = mmengine_state_dict(loaded)
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
            layout, fix = describe_layout(loaded)
            problems.append(f'{where}: {len(missing)} of {len(own)} weights are not in the '
                            f'checkpoint (first: {missing[:6]}). The file looks like {layout}: '
                            f'{fix}')
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
        raise RefusedError('pretrained weights do not match the model, so training would start '
                           'from random weights for them:\n  ' + '\n  '.join(problems) + '\n'
                           + CONVERT_HINT)
    return reports
