"""``convert_addp.py --check CONFIG``: do the pre-trained weights really reach the backbone?

mmengine's ``Pretrained`` init, mmseg's ``MAE``/``BEiT`` and mmdet's ViTDet ``ViT`` all load with
``strict=False`` and at most log what they skipped, so a forgotten ``prefix=``, an unconverted file or
the wrong converter target trains from random weights. :func:`check_config` builds the config's
model twice, each time with weights given to it exactly as the config says (its backbone's
``init_cfg`` ``Pretrained``, ``model.pretrained`` / ``backbone.pretrained``, or else ``load_from``):
once from the file and once from a copy of the file in which every tensor is shifted by one. Both
builds start from the same random seed, so a parameter that ends up different between the two came
from the file, and one that ends up equal was left at its initial value, whatever the framework
does on the way (prefix handling, renaming, resizing ``pos_embed``, ...).

It reports, for the backbone (``model.backbone``, or the whole model if it has none; all of its
tensors when none is trainable, e.g. an mmagic generator): trainable tensors loaded bit-equal from a same-named file tensor, loaded transformed (e.g. a resized
``pos_embed``), and left at init (missing), plus file tensors no backbone tensor took
(unexpected). The check fails if any trainable backbone tensor is left at init.
"""
import argparse
import copy
import importlib
import os
import os.path as osp
import random
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner.checkpoint import load_checkpoint
from safetensors.torch import save_file

from .loading import LegacyObject, load_checkpoint_file
from .weights import extract_state_dict


@dataclass
class CheckReport:
    """What :func:`check_config` found (backbone-relative parameter names)."""
    mechanism: str
    loaded: List[str] = field(default_factory=list)  # bit-equal to the same-named file tensor
    transformed: List[str] = field(default_factory=list)  # from the file, changed (resized, ...)
    missing: List[str] = field(default_factory=list)  # trainable, left at init
    frozen_not_loaded: List[str] = field(default_factory=list)  # requires_grad=False, not loaded
    unexpected: List[str] = field(default_factory=list)  # file tensors no backbone tensor took
    new_layers: List[str] = field(default_factory=list)  # left at init, allowed (not pre-trained)
    error: Optional[str] = None  # the config's own loading failed with this message
    hints: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and self.error is None


def default_new_layers(backbone: nn.Module) -> List[str]:
    """Patterns of backbone tensors that no pre-trained ViT holds, so they are allowed to stay at
    their initial values: mmpretrain ``VisionTransformer``'s ``ln2`` with ``out_type='avg_featmap'``
    (MAE's fine-tuning ``fc_norm``) and the zero-initialised decomposed relative positions of
    mmdet's ViTDet ``ViT`` (``blocks.N.attn.rel_pos_h/w``; MAE weights have none either)."""
    patterns = []
    if getattr(backbone, 'out_type', None) == 'avg_featmap':
        patterns.append(r'ln2\.(weight|bias)')
    if type(backbone).__name__ == 'ViT':
        patterns.append(r'blocks\.\d+\.attn\.rel_pos_[hw]')
    return patterns


def _is_pretrained(init_cfg) -> bool:
    return isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'


def point_config_at(cfg, checkpoint: str) -> str:
    """Make ``cfg`` take its pre-trained weights from ``checkpoint`` where it already takes them.

    Replaced, in this order of discovery: ``Pretrained`` entries of ``model.backbone.init_cfg`` and
    ``model.init_cfg``, ``model.pretrained`` and ``model.backbone.pretrained`` when set. Without any
    of them, ``load_from`` (the Runner loads the whole model from it).

    Returns:
        str: Which fields now name ``checkpoint`` (for the report); ``'load_from'`` for the last
        case.
    """
    model = cfg.model
    backbone = model.get('backbone', None)
    fields = []
    for owner, name in ((backbone, 'model.backbone'), (model, 'model')):
        if owner is None:
            continue
        init_cfg = owner.get('init_cfg', None)
        cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        for i, c in enumerate(cfgs):
            if _is_pretrained(c):
                c['checkpoint'] = checkpoint
                where = f'{name}.init_cfg' + (f'[{i}]' if isinstance(init_cfg, (list, tuple)) else '')
                prefix = c.get('prefix')
                fields.append(where + (f" (prefix='{prefix}')" if prefix else ' (no prefix)'))
        if owner.get('pretrained', None):
            owner['pretrained'] = checkpoint
            fields.append(f'{name}.pretrained')
    if fields:
        if cfg.get('load_from', None):
            cfg.load_from = None
        return ', '.join(fields)
    cfg.load_from = checkpoint
    return 'load_from'


def _shifted(obj: Any) -> Any:
    """A copy of a loaded checkpoint with every floating tensor shifted by one (and no
    placeholders, so that it saves and loads as plain data)."""
    if isinstance(obj, torch.Tensor):
        return obj + 1 if obj.is_floating_point() else obj.clone()
    if isinstance(obj, dict):
        return type(obj)((k, _shifted(v)) for k, v in obj.items()) if type(obj) is not dict \
            else {k: _shifted(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_shifted(v) for v in obj)
    if isinstance(obj, LegacyObject):
        return None
    return obj


def _write_shifted(checkpoint: str, tmpdir: str) -> str:
    path = osp.join(tmpdir, 'shifted_' + osp.basename(checkpoint))
    ckpt = load_checkpoint_file(checkpoint)
    if checkpoint.endswith('.safetensors'):
        save_file({k: v.contiguous() for k, v in _shifted(ckpt).items()}, path)
    else:
        torch.save(_shifted(ckpt), path)
    return path


def _seed_all(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_with_weights(cfg) -> nn.Module:
    """Build ``cfg.model`` in the config's scope, run ``init_weights`` and, for ``load_from``, load
    that file as the Runner does (``strict=False``, leading ``module.`` stripped)."""
    _seed_all(0)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', None)):
        model_cfg = copy.deepcopy(cfg.model)
        if cfg.get('data_preprocessor', None) is not None:  # as the Runner does
            model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
        model = MODELS.build(model_cfg)
        if hasattr(model, 'init_weights'):
            model.init_weights()
        if cfg.get('load_from', None):
            load_checkpoint(model, cfg.load_from, map_location='cpu', strict=False,
                            revise_keys=[(r'^module\.', '')])
    return model


def _backbone(model: nn.Module) -> Tuple[nn.Module, str]:
    if isinstance(getattr(model, 'backbone', None), nn.Module):
        return model.backbone, 'backbone'
    return model, 'model'


def _file_tensor(file_sd: Dict[str, torch.Tensor], name: str) -> Optional[str]:
    """The file key that names the backbone tensor ``name``: the same name, or the same name under
    a prefix (``backbone.``, ``module.backbone.``, ...)."""
    if name in file_sd:
        return name
    hits = [k for k in file_sd if k.endswith('.' + name)]
    return min(hits, key=len) if hits else None


def _hints(report: CheckReport, file_keys: Sequence[str], own: Sequence[str]) -> List[str]:
    hints = []
    mech = report.mechanism
    prefixes = sorted({k.split('.')[0] + '.' for k in file_keys if '.' in k})
    if 'backbone.' in prefixes and 'init_cfg' in mech and "prefix='backbone.'" not in mech:
        hints.append("the file's keys start with 'backbone.' but the init_cfg has no "
                     "prefix='backbone.': add it (mmpretrain/mmdet/mmseg with "
                     "mmpretrain.VisionTransformer), or convert with --to mmseg-mae for mmseg's MAE")
    if 'backbone.' in prefixes and 'pretrained' in mech and 'init_cfg' not in mech:
        hints.append("model.pretrained is read without a prefix (mmseg's MAE/BEiT ignore one): "
                     'convert with --to mmseg-mae')
    own_timm = any(k.startswith('blocks.') for k in own)
    file_timm = any(re.match(r'^(\w+\.)?blocks\.\d', k) for k in file_keys)
    if own_timm and not file_timm:
        hints.append('the backbone uses timm names (blocks.N.norm1, ...): convert with --to '
                     'vitdet (mmdet ViTDet) or --to timm')
    if not own_timm and file_timm and any(k.startswith('layers.') for k in own):
        hints.append('the file uses timm names but the backbone mmpretrain names: convert with '
                     '--to mmpretrain (or --to mmseg-mae for mmseg MAE)')
    if not hints and report.missing:
        hints.append('compare the config arch (embed_dims, num_layers) with the file, and see '
                     'tools/model_converters/convert_addp.py --help for the target of each '
                     'consumer')
    return hints


def check_weights(cfg, checkpoint: str, verbose: bool = True,
                  allow_init: Sequence[str] = ()) -> CheckReport:
    """:func:`check_config` on a loaded :class:`mmengine.Config`, which is not modified."""
    cfg = copy.deepcopy(cfg)
    checkpoint = osp.abspath(checkpoint)
    mechanism = point_config_at(cfg, checkpoint)
    file_sd = extract_state_dict(load_checkpoint_file(checkpoint), checkpoint)
    report = CheckReport(mechanism=mechanism)
    try:
        model_a = build_with_weights(cfg)
        with tempfile.TemporaryDirectory(prefix='addp_check_') as tmp:
            cfg_b = copy.deepcopy(cfg)
            point_config_at(cfg_b, _write_shifted(checkpoint, tmp))
            model_b = build_with_weights(cfg_b)
    except Exception as e:  # the config's own loader refused the file (e.g. a prefix not found)
        report.error = f'{type(e).__name__}: {e}'
        cfg.load_from = None
        for owner in (cfg.model, cfg.model.get('backbone', None)):
            if owner is not None:
                owner.pop('init_cfg', None) if _is_pretrained(owner.get('init_cfg')) else None
                owner.pop('pretrained', None)
        model_a = model_b = None
        try:
            model_a = build_with_weights(cfg)
        except Exception:  # noqa: BLE001 - the report below still says what went wrong
            pass
    if model_b is None:
        bb_name = 'backbone'
        own = [] if model_a is None else [n for n, _ in _backbone(model_a)[0].named_parameters()]
        report.missing = own
        report.hints = _hints(report, list(file_sd), own)
        if verbose:
            print(format_report(report, bb_name, checkpoint), flush=True)
        return report
    bb_a, bb_name = _backbone(model_a)
    bb_b, _ = _backbone(model_b)
    params_b = dict(bb_b.named_parameters())
    new_layer_res = [re.compile(p) for p in (*default_new_layers(bb_a), *allow_init)]
    used = set()
    for name, p in bb_a.named_parameters():
        q = params_b[name]
        from_file = p.shape != q.shape or not torch.equal(p, q)
        key = _file_tensor(file_sd, name)
        if from_file:
            if key is not None:
                used.add(key)
            if key is not None and file_sd[key].shape == p.shape and torch.equal(
                    file_sd[key].to(p.dtype), p.detach()):
                report.loaded.append(name)
            else:
                report.transformed.append(name)
        elif any(r.fullmatch(name) for r in new_layer_res):
            report.new_layers.append(name)
        elif p.requires_grad:
            report.missing.append(name)
        else:
            report.frozen_not_loaded.append(name)
    if not any(p.requires_grad for p in bb_a.parameters()):
        # an inference-only model (e.g. an mmagic generator, all frozen): every tensor counts
        report.missing, report.frozen_not_loaded = report.frozen_not_loaded, []
    own = [n for n, _ in bb_a.named_parameters()]
    # file tensors that name no backbone parameter (buffers such as relative_position_index
    # count as taken when their name matches); load_from fills the whole model, so there any
    # tensor of the model takes one
    pool = model_a if mechanism == 'load_from' else bb_a
    buffers = {n for n, _ in pool.named_buffers()} | (
        {n for n, _ in pool.named_parameters()} if pool is model_a else set())
    for key in file_sd:
        if key in used:
            continue
        if any(key == n or key.endswith('.' + n) for n in buffers):
            continue
        if any(key == n or key.endswith('.' + n) for n in own):
            continue  # same name, but not loaded (e.g. a wrong prefix): reported as missing
        report.unexpected.append(key)
    report.hints = _hints(report, list(file_sd), own) if report.missing else []
    if verbose:
        print(format_report(report, bb_name, checkpoint), flush=True)
    return report


def format_report(report: CheckReport, bb_name: str, checkpoint: str) -> str:
    n_train = (len(report.loaded) + len(report.transformed) + len(report.missing)
               + len(report.new_layers))
    lines = [f'weights from {checkpoint} via {report.mechanism}:']
    if report.error:
        lines.append(f'  the config could not load the file: {report.error}')
    lines += [
             f'  {bb_name}: {len(report.loaded) + len(report.transformed)} of {n_train} trainable '
             f'tensors loaded ({len(report.loaded)} bit-equal to the file'
             + (f', {len(report.transformed)} transformed at load: {report.transformed}'
                if report.transformed else '') + ')']
    if report.missing:
        lines.append(f'  MISSING (left at their initial values): {len(report.missing)}: '
                     f'{report.missing[:12]}' + (' ...' if len(report.missing) > 12 else ''))
    if report.new_layers:
        lines.append(f'  new layers, not in any pre-trained ViT (initialised by the config): '
                     f'{report.new_layers}')
    if report.frozen_not_loaded:
        lines.append(f'  frozen tensors not loaded: {len(report.frozen_not_loaded)}')
    if report.unexpected:
        lines.append(f'  unexpected (in the file, taken by no {bb_name} tensor): '
                     f'{len(report.unexpected)}: {report.unexpected[:8]}'
                     + (' ...' if len(report.unexpected) > 8 else ''))
    for h in report.hints:
        lines.append(f'  hint: {h}')
    lines.append('  check ' + ('passed' if report.ok else
                               'FAILED: the config cannot load this file' if report.error else
                               'FAILED: the run would train these tensors from their initial '
                               'values'))
    return '\n'.join(lines)


def check_config(config: Union[str, Any], checkpoint: Union[str, os.PathLike],
                 cfg_options: Optional[Sequence[str]] = None, verbose: bool = True,
                 allow_init: Sequence[str] = ()) -> CheckReport:
    """Build ``config`` with ``checkpoint`` as its pre-trained weights and report the backbone.

    Args:
        config (str | Config): A config path (mmpretrain, mmdet, mmseg, mmagic; ``pkg::path``
            names a config inside an installed package) or a loaded ``Config``.
        checkpoint (str | PathLike): The weights file.
        cfg_options (Sequence[str], optional): ``key=value`` overrides, as in tools/train.py.
        verbose (bool): Print the report.
        allow_init (Sequence[str]): Regular expressions (``re.fullmatch``) of backbone tensors
            that may stay at their initial values, beyond :func:`default_new_layers`.

    Returns:
        CheckReport: ``.ok`` is False if a trainable backbone tensor stays at its initial value.
    """
    if isinstance(config, (str, os.PathLike)):
        config = Config.fromfile(resolve_config_path(os.fspath(config)))
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        config.merge_from_dict(parser.parse_args(['--o', *cfg_options]).o)
    return check_weights(config, os.fspath(checkpoint), verbose=verbose, allow_init=allow_init)


def resolve_config_path(config: str) -> str:
    """``'mmseg::mae/x.py'`` -> the file inside the installed package (``<pkg>/.mim/configs``);
    other paths unchanged."""
    if '::' not in config or osp.isfile(config):
        return config
    pkg, rel = config.split('::', 1)
    root = osp.join(osp.dirname(importlib.import_module(pkg).__file__), '.mim', 'configs')
    path = osp.join(root, rel)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{config!r}: no {rel} in {root}')
    return path
