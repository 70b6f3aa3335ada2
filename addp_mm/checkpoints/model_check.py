"""``convert_addp.py --check CONFIG``: would the config's model really take its weights from a file?

mmengine's ``Pretrained`` init, ``load_from``, mmseg's ``MAE``/``BEiT`` and mmdet's ViTDet ``ViT``
all load with ``strict=False`` and at most log what they skipped, so a forgotten ``prefix=``, an
unconverted file, position tables for another input size or the wrong converter target train from
random weights. :func:`check_config` builds the config's model twice, each time with weights given
to it exactly as the config says (its backbone's ``init_cfg`` ``Pretrained``, ``model.pretrained``
/ ``backbone.pretrained``, ``model.init_cfg`` ``Pretrained``, or else ``load_from``): once from the
file and once from a copy of the file in which every tensor is shifted by one. Both builds start
from the same random seed, so a tensor that ends up different between the two came from the file,
and one that ends up equal did not, whatever the framework does on the way (prefix handling,
renaming, resizing ``pos_embed``, ...).

It reports every tensor the model would take from the file:

* the backbone (``model.backbone``, or the whole model if it has none; all of its tensors when
  none is trainable, e.g. an mmagic generator): trainable tensors loaded bit-equal from a
  same-named file tensor, loaded transformed (e.g. a resized ``pos_embed``), and left at init
  (missing), plus file tensors no tensor took (unexpected);
* when the file is for the whole model (``load_from``, ``model.init_cfg``), every other part too:
  neck, head and frozen modules (``target_generator.vqgan``, ``target_generator.predictor``, ...).

The check fails when a trainable backbone tensor is left at init, when the file holds a tensor of
the model with another shape (``size_mismatch``: position tables for another input size, another
head count, other sizes), when a part the file provides is only partly loaded (``not_loaded``), or
when a frozen module gets its weights neither from the file nor from its own ``checkpoint`` field
(``frozen_random``). Each failure comes with a hint that names the fix.
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

from ..utils.grid import grid_side
from .loading import LegacyObject, load_checkpoint_file
from .weights import extract_state_dict


@dataclass
class CheckReport:
    """What :func:`check_config` found. Backbone lists hold backbone-relative names, the others
    full parameter names."""
    mechanism: str
    loaded: List[str] = field(default_factory=list)  # bit-equal to the same-named file tensor
    transformed: List[str] = field(default_factory=list)  # from the file, changed (resized, ...)
    missing: List[str] = field(default_factory=list)  # trainable, left at init
    frozen_not_loaded: List[str] = field(default_factory=list)  # requires_grad=False, not loaded
    unexpected: List[str] = field(default_factory=list)  # file tensors no tensor took
    new_layers: List[str] = field(default_factory=list)  # left at init, allowed (not pre-trained)
    error: Optional[str] = None  # the config's own loading failed with this message
    hints: List[str] = field(default_factory=list)
    #: outside the backbone, per part (``neck``, ``target_generator.vqgan``, ...): how many of
    #: its tensors came from the file, from the part's own checkpoint field, and in all
    parts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    #: ``'name: file (shape) vs model (shape)'``: named in the file, not loaded for its shape
    size_mismatch: List[str] = field(default_factory=list)
    #: outside the backbone: tensors of a part the file provides, left at init
    not_loaded: List[str] = field(default_factory=list)
    #: tensors of frozen modules loaded from nowhere (random weights), with the field to set
    frozen_random: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.size_mismatch or self.not_loaded or self.frozen_random
                    or self.error is not None)


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
                index = f'[{i}]' if isinstance(init_cfg, (list, tuple)) else ''
                where = f'{name}.init_cfg{index}'
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
    """The file key that names the tensor ``name``: the same name, or the same name under a prefix
    (``backbone.``, ``module.backbone.``, ...)."""
    if name in file_sd:
        return name
    hits = [k for k in file_sd if k.endswith('.' + name)]
    return min(hits, key=len) if hits else None


def _frozen_parts(model: nn.Module) -> Dict[str, nn.Module]:
    """Sub-modules that load their own weights from a ``checkpoint`` field (the frozen VQGAN
    tokenizer and token predictor of addp_mm), by name."""
    return {name: m for name, m in model.named_modules() if name and hasattr(m, 'checkpoint_field')}


def _part(name: str, frozen: Dict[str, nn.Module]) -> str:
    owners = [f for f in frozen if name.startswith(f + '.')]
    return max(owners, key=len) if owners else name.split('.')[0]


def _shape(t: torch.Tensor) -> Tuple[int, ...]:
    return tuple(t.shape)


def _whole_model_scope(mechanism: str) -> bool:
    """Whether the file is meant for the whole model, not just the backbone."""
    return mechanism == 'load_from' or mechanism.startswith('model.init_cfg')


def _check_backbone(report: CheckReport, bb_a: nn.Module, bb_b: nn.Module,
                    file_sd: Dict[str, torch.Tensor], allow_init: Sequence[str]) -> set:
    """Fill the backbone lists of ``report``; returns the file keys the backbone took."""
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
            continue
        if key is not None and file_sd[key].shape != p.shape:
            report.size_mismatch.append(f'{key}: file {_shape(file_sd[key])} vs model '
                                        f'{_shape(p)}')
        if any(r.fullmatch(name) for r in new_layer_res):
            report.new_layers.append(name)
        elif p.requires_grad:
            report.missing.append(name)
        else:
            report.frozen_not_loaded.append(name)
    if not any(p.requires_grad for p in bb_a.parameters()):
        # an inference-only model (e.g. an mmagic generator, all frozen): every tensor counts
        report.missing, report.frozen_not_loaded = report.frozen_not_loaded, []
    return used


def _check_other_parts(report: CheckReport, model_a: nn.Module, model_b: nn.Module,
                       bb_name: str, file_sd: Dict[str, torch.Tensor]) -> set:
    """Fill ``parts``, ``size_mismatch``, ``not_loaded`` and ``frozen_random`` for the tensors
    outside the backbone; returns the file keys they took."""
    frozen = _frozen_parts(model_a)
    tensors_b = model_b.state_dict()
    used, left = set(), {}
    for name, t in model_a.state_dict().items():
        if name.startswith(bb_name + '.') or not t.is_floating_point():
            continue  # the backbone is checked above; integer buffers are not shifted
        part = _part(name, frozen)
        counts = report.parts.setdefault(part, dict(from_file=0, own_checkpoint=0, total=0))
        counts['total'] += 1
        key = _file_tensor(file_sd, name)
        if t.shape != tensors_b[name].shape or not torch.equal(t, tensors_b[name]):
            counts['from_file'] += 1
            if key is not None:
                used.add(key)
        elif key is not None and file_sd[key].shape != t.shape:
            report.size_mismatch.append(f'{key}: file {_shape(file_sd[key])} vs model '
                                        f'{_shape(t)}')
        elif part in frozen and frozen[part].checkpoint is not None:
            counts['own_checkpoint'] += 1
        elif part in frozen:
            report.frozen_random.append(name)
        else:
            left.setdefault(part, []).append(name if key is None else f'{name} (in the file)')
    for part, names in left.items():
        # a part the file provides (some of its tensors loaded) must come whole
        if report.parts[part]['from_file'] or any(n.endswith('(in the file)') for n in names):
            report.not_loaded.extend(names)
    return used


# position tables: a class entry and the token grid (encoder, decoder, token predictor)
_POSITION_TABLE = re.compile(r'(pos_embed|pos_\w*embed\w*|position_embeddings\.weight)$')
_RELATIVE_TABLE = 'relative_position_bias_table'


def _model_name(own: Dict[str, torch.Tensor], key: str) -> Optional[str]:
    """The model tensor a file key names: the same name, or the same name under a prefix on
    either side (``backbone.`` of the model, ``module.`` of the file)."""
    hits = [n for n in own if key == n or key.endswith('.' + n) or n.endswith('.' + key)]
    return max(hits, key=len) if hits else None


def _table_mismatches(model: Optional[nn.Module], file_sd: Dict[str, torch.Tensor]
                      ) -> List[Tuple[str, torch.Size, torch.Size]]:
    """``(file key, file shape, model shape)`` of the position and relative position tables whose
    shapes differ between the file and the model (built with or without the file's weights)."""
    if model is None:
        return []
    own = model.state_dict()
    out = []
    for key, t in file_sd.items():
        if not (_POSITION_TABLE.search(key) or key.endswith(_RELATIVE_TABLE)):
            continue
        name = _model_name(own, key)
        if name is not None and t.shape != own[name].shape:
            out.append((key, t.shape, own[name].shape))
    return out


def _img_size_hint(tables, file_sd: Dict[str, torch.Tensor]) -> str:
    patch = next((t.shape[-1] for k, t in file_sd.items()
                  if k.endswith(('patch_embed.projection.weight', 'patch_embed.proj.weight'))),
                 None)
    try:
        sides = [(grid_side(f[-2] - 1), grid_side(m[-2] - 1)) for _, f, m in tables]
    except ValueError:  # not a square grid: say what to do without numbers
        sides = []
    if patch and sides and len(set(sides)) == 1:
        (f_side, m_side), = set(sides)
        flag, why = (f'--img-size {m_side * patch}', f' (the file is for {f_side * patch} px '
                     f'inputs, the config for {m_side * patch} px)')
    else:
        flag, why = "--img-size (the config's input size)", ''
    return (f'position tables of another token grid{why}: convert the file again with '
            f'tools/model_converters/convert_addp.py SRC DST {flag}, which resizes every position '
            "table (with --to addp_mm: encoder, decoder and token predictor), or set the config's "
            "input size to the file's")


def _table_hints(report: CheckReport, model: Optional[nn.Module], cfg,
                 file_sd: Dict[str, torch.Tensor]) -> List[str]:
    """Hints for tables of the wrong size (another input size or head count) and other sizes."""
    hints = []
    tables = _table_mismatches(model, file_sd)
    if report.error is None:  # the model was built with the file: only what did not load
        not_loaded = {m.split(':')[0] for m in report.size_mismatch}
        tables = [t for t in tables if t[0] in not_loaded]
    relative = [t for t in tables if t[0].endswith(_RELATIVE_TABLE)]
    if relative or (report.error and 'interp2d' in report.error):
        geo = backbone_input(cfg) or {}
        flags = ''
        if geo.get('img_size') and geo['img_size'][0] == geo['img_size'][1]:
            flags += f' --img-size {geo["img_size"][0]}'
        if geo.get('num_heads'):
            flags += f' --num-heads {geo["num_heads"]}'
        hints.append("the file's relative position bias tables are for another input size or "
                     'head count than the config (mmseg would resize them with scipy interp2d, '
                     'gone since SciPy 1.14): convert again with `--to mmseg-mae --check CONFIG`, '
                     'which reads model.backbone.img_size and num_heads from the config, or pass'
                     + (flags or ' --img-size and --num-heads'))
    grid = [t for t in tables if not t[0].endswith(_RELATIVE_TABLE)]
    if grid and not (report.error and hints):  # mmseg resizes pos_embed itself
        hints.append(_img_size_hint(grid, file_sd))
    table_keys = {t[0] for t in tables}
    others = [m for m in report.size_mismatch if m.split(':')[0] not in table_keys]
    if others:
        hints.append(f'{len(others)} tensors have other sizes than in the file (first: '
                     f'{others[0]}): set the sizes of the config (embed_dims, depth, num_heads, '
                     'num_tokens, ...) to those of the file')
    return hints


def _part_hints(report: CheckReport, model: Optional[nn.Module]) -> List[str]:
    hints = []
    if report.frozen_random and model is not None:
        frozen = _frozen_parts(model)
        for part in sorted({_part(n, frozen) for n in report.frozen_random}):
            m = frozen[part]
            hints.append(f'the frozen {m.frozen_name} ({part}) gets its weights neither from '
                         f'this file nor from a checkpoint of its own, so it would run with '
                         f'random weights: set {m.checkpoint_field}, or give a file that holds '
                         'it')
    if report.not_loaded:
        parts = sorted({n.split('.')[0] for n in report.not_loaded})
        hints.append(f'the file holds {", ".join(parts)} only in part: '
                     f'{report.not_loaded[:4]} stay at their initial values; is it the '
                     'checkpoint of another version or size of this model?')
    return hints


def _hints(report: CheckReport, file_keys: Sequence[str], own: Sequence[str]) -> List[str]:
    hints = []
    mech = report.mechanism
    prefixes = sorted({k.split('.')[0] + '.' for k in file_keys if '.' in k})
    if 'backbone.' in prefixes and 'init_cfg' in mech and "prefix='backbone.'" not in mech:
        hints.append("the file's keys start with 'backbone.' but the init_cfg has no "
                     "prefix='backbone.': add it (mmpretrain/mmdet/mmseg with "
                     'mmpretrain.VisionTransformer), or convert with --to mmseg-mae for '
                     "mmseg's MAE")
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
    return hints


_GENERIC_HINT = ('compare the config arch (embed_dims, num_layers) with the file, and see '
                 'tools/model_converters/convert_addp.py --help for the target of each consumer')


def _build_without_weights(cfg) -> Optional[nn.Module]:
    """The model as the config builds it with no pre-trained weights (for the report when the
    config's own loader refused the file), or None when even that fails."""
    cfg = copy.deepcopy(cfg)
    cfg.load_from = None
    for owner in (cfg.model, cfg.model.get('backbone', None)):
        if owner is not None:
            if _is_pretrained(owner.get('init_cfg')):
                owner.pop('init_cfg')
            owner.pop('pretrained', None)
    try:
        return build_with_weights(cfg)
    except Exception:  # noqa: BLE001 - the report still says what went wrong
        return None


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
        model = _build_without_weights(cfg)
        own = [] if model is None else [n for n, _ in _backbone(model)[0].named_parameters()]
        report.missing = own
        report.hints = (_table_hints(report, model, cfg, file_sd)
                        + _hints(report, list(file_sd), own)) or [_GENERIC_HINT]
        if verbose:
            print(format_report(report, 'backbone', checkpoint), flush=True)
        return report
    bb_a, bb_name = _backbone(model_a)
    used = _check_backbone(report, bb_a, _backbone(model_b)[0], file_sd, allow_init)
    whole = _whole_model_scope(mechanism)
    if whole and bb_a is not model_a:
        used |= _check_other_parts(report, model_a, model_b, bb_name, file_sd)
    own = [n for n, _ in bb_a.named_parameters()]
    # file tensors that name no tensor of the model (buffers such as relative_position_index
    # count as taken when their name matches); a file for the whole model may fill any tensor
    pool = model_a if whole else bb_a
    names = set(pool.state_dict()) | {n for n, _ in pool.named_parameters()}
    for key in file_sd:
        if key in used or any(key == n or key.endswith('.' + n) for n in names):
            continue  # taken, or the same name not loaded (reported above)
        report.unexpected.append(key)
    report.hints = (_table_hints(report, model_a, cfg, file_sd) + _part_hints(report, model_a)
                    + (_hints(report, list(file_sd), own) if report.missing else []))
    if not report.hints and report.missing:
        report.hints = [_GENERIC_HINT]
    if verbose:
        print(format_report(report, bb_name, checkpoint), flush=True)
    return report


def format_report(report: CheckReport, bb_name: str, checkpoint: str) -> str:
    n_train = (len(report.loaded) + len(report.transformed) + len(report.missing)
               + len(report.new_layers))
    lines = [f'weights from {checkpoint} via {report.mechanism}:']
    if report.error:
        lines.append(f'  the config could not load the file: {report.error.splitlines()[0]}')
    lines += [
        f'  {bb_name}: {len(report.loaded) + len(report.transformed)} of {n_train} trainable '
        f'tensors loaded ({len(report.loaded)} bit-equal to the file'
        + (f', {len(report.transformed)} transformed at load: {report.transformed}'
           if report.transformed else '') + ')']
    for part, c in report.parts.items():
        own = f', {c["own_checkpoint"]} from its own checkpoint field' if c['own_checkpoint'] \
            else ''
        lines.append(f'  {part}: {c["from_file"]} of {c["total"]} tensors from the file{own}')
    for title, names, shown in (
            ('MISSING (left at their initial values)', report.missing, 12),
            ('SIZE MISMATCH (in the file with another shape, not loaded)', report.size_mismatch, 6),
            ('NOT LOADED (parts the file provides, left at init)', report.not_loaded, 8),
            ('FROZEN AT RANDOM (from neither the file nor a checkpoint field)',
             report.frozen_random, 6)):
        if names:
            lines.append(f'  {title}: {len(names)}: {names[:shown]}'
                         + (' ...' if len(names) > shown else ''))
    if report.new_layers:
        lines.append(f'  new layers, not in any pre-trained ViT (initialised by the config): '
                     f'{report.new_layers}')
    if report.frozen_not_loaded:
        lines.append(f'  frozen tensors not loaded: {len(report.frozen_not_loaded)}')
    if report.unexpected:
        owner = 'model' if report.parts else bb_name
        lines.append(f'  unexpected (in the file, taken by no {owner} tensor): '
                     f'{len(report.unexpected)}: {report.unexpected[:8]}'
                     + (' ...' if len(report.unexpected) > 8 else ''))
    for h in report.hints:
        lines.append(f'  hint: {h}')
    lines.append('  check ' + ('passed' if report.ok else
                               'FAILED: the config cannot load this file' if report.error else
                               'FAILED: the run would start these tensors from their initial '
                               'values' if report.missing or report.not_loaded else
                               'FAILED: the run would not start from the weights of this file'))
    return '\n'.join(lines)


def backbone_input(cfg) -> Optional[Dict[str, Any]]:
    """What the config's backbone is built for, as mmseg's MAE/BEiT read it.

    Returns:
        dict | None: ``type``, ``img_size`` as ``(height, width)``, ``num_heads`` (None when the
        config does not say) and ``crop_size`` (the config's top-level ``crop_size``, mmseg's
        convention, as ``(height, width)``, or None); None when ``model.backbone.img_size`` is
        not set.
    """
    model = cfg.get('model', None)
    bb = model.get('backbone', None) if model is not None else None
    if not bb or bb.get('img_size', None) is None:
        return None

    def pair(v):
        return None if v is None else (int(v), int(v)) if isinstance(v, int) else tuple(
            int(x) for x in v)

    heads = bb.get('num_heads', None)
    if heads is None and isinstance(bb.get('arch', None), dict):
        heads = bb['arch'].get('num_heads', None)
    return dict(type=bb.get('type', None), img_size=pair(bb['img_size']), num_heads=heads,
                crop_size=pair(cfg.get('crop_size', None)))


def load_config(config: Union[str, os.PathLike], cfg_options: Optional[Sequence[str]] = None):
    """A config path (``pkg::path`` names a config inside an installed package) with
    ``key=value`` overrides, as tools/train.py reads them."""
    return _merge_options(Config.fromfile(resolve_config_path(os.fspath(config))), cfg_options)


def _merge_options(config, cfg_options: Optional[Sequence[str]]):
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        config.merge_from_dict(parser.parse_args(['--o', *cfg_options]).o)
    return config


def check_config(config: Union[str, Any], checkpoint: Union[str, os.PathLike],
                 cfg_options: Optional[Sequence[str]] = None, verbose: bool = True,
                 allow_init: Sequence[str] = ()) -> CheckReport:
    """Build ``config`` with ``checkpoint`` as its pre-trained weights and report every tensor the
    model would take from it (see the module docstring).

    Args:
        config (str | Config): A config path (mmpretrain, mmdet, mmseg, mmagic; ``pkg::path``
            names a config inside an installed package) or a loaded ``Config``.
        checkpoint (str | PathLike): The weights file.
        cfg_options (Sequence[str], optional): ``key=value`` overrides, as in tools/train.py.
        verbose (bool): Print the report.
        allow_init (Sequence[str]): Regular expressions (``re.fullmatch``) of backbone tensors
            that may stay at their initial values, beyond :func:`default_new_layers`.

    Returns:
        CheckReport: ``.ok`` is False if a trainable backbone tensor stays at its initial value,
        a tensor of the file does not fit the model, a part the file provides is loaded only in
        part, or a frozen module would run with random weights.
    """
    config = (load_config(config, cfg_options) if isinstance(config, (str, os.PathLike)) else
              _merge_options(config, cfg_options))
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
