#!/usr/bin/env python
"""Convert an official ADDP release file (or an addp_mm checkpoint) for addp_mm and downstream code.

Targets (``--to``):

* ``addp_mm`` (default): the whole pre-training model, for addp_mm's ``ADDP``;
* ``mmpretrain`` (= ``--backbone-only``): ``backbone.*`` keys for mmpretrain's
  ``VisionTransformer``, loaded with ``init_cfg=dict(type='Pretrained', checkpoint=DST,
  prefix='backbone.')`` (mmpretrain, and mmdet/mmseg configs that use
  ``mmpretrain.VisionTransformer``);
* ``mmseg-mae``: keys of mmseg's own ``MAE``/``BEiT`` backbone without a prefix, for the stock
  ``mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py`` with ``model.pretrained=DST``;
* ``timm``: ``{'model': ...}`` with timm ``VisionTransformer`` names;
* ``vitdet``: the timm names without ``cls_token``, for mmdet's ``projects/ViTDet`` ``ViT``.

The input may be a raw state dict, ``{'state_dict': ...}``, ``{'model': ...}`` (with MAE-style
``'args'``, ``'optimizer'``, ... beside it), a Lightning checkpoint or a ``.safetensors`` file. It
is loaded without running code; objects other than tensors and containers are ignored and listed.

Examples::

    # whole pre-training model (encoder, decoder, head, frozen VQGAN + token predictor)
    python tools/model_converters/convert_addp.py addp-vit-base-16.pth \\
        checkpoints/addp_vit-base-p16_official-1600e_in1k.pth

    # backbone for mmpretrain's VisionTransformer, checked against the config that will use it
    python tools/model_converters/convert_addp.py addp-vit-base-16.pth \\
        checkpoints/addp_vit-base-p16_backbone.pth --to mmpretrain \\
        --check configs/addp/benchmarks/classification/\\
cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py

    # check an existing file against a config (no conversion)
    python tools/model_converters/convert_addp.py checkpoints/x.pth --check CONFIG

The input is never modified; an existing output is only replaced with --overwrite.
"""
import time

_T_START = time.time()  # "done in" counts the imports too: they are most of a small run

import argparse  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402
from contextlib import suppress  # noqa: E402

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from addp_mm.checkpoints import (extract_state_dict, guess_layout,  # noqa: E402
                                 legacy_objects, load_checkpoint_file)
from addp_mm.checkpoints.convert import (TARGETS, convert_for_target,  # noqa: E402
                                         convert_official_addp)
from addp_mm.checkpoints.model_check import (backbone_input, check_config,  # noqa: E402
                                             load_config)
from addp_mm.utils.errors import add_debug_argument, run_main  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official addp-vit-*-16.pth or an addp_mm checkpoint (with '
                        '--check and no DST: the file to check)')
    parser.add_argument('dst', nargs='?', help='output path (.pth; .safetensors for --to timm)')
    parser.add_argument('--to', choices=sorted(TARGETS), default=None,
                        help='what to write: ' + '; '.join(f'{k}: {v}' for k, v in TARGETS.items())
                        + ' (default: addp_mm)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='alias of --to mmpretrain')
    parser.add_argument('--keep-norms', action='store_true',
                        help='keep pre_norm/ln1 (dropped by the official fine-tuning) where the '
                        'target can hold them')
    parser.add_argument('--img-size', type=int, default=None,
                        help='resize the position tables for this input size: for --to addp_mm '
                        'all of them (encoder, decoder, token predictor), else pos_embed '
                        '(default: keep the pre-training grid, 256 px for the releases)')
    parser.add_argument('--num-heads', type=int, default=None,
                        help='encoder heads, for --to mmseg-mae (default: with --check the '
                        "config's model.backbone.num_heads, else embed_dims // 64, right for "
                        'ViT-B/L)')
    parser.add_argument('--check', metavar='CONFIG', default=None,
                        help='build CONFIG with the output as its pre-trained weights (through '
                        "the config's own init_cfg / pretrained / load_from) and report every "
                        'tensor it would take from the file (backbone, and for a whole-model '
                        'file neck, head and frozen modules); exit 1 if one stays at its init '
                        'or does not fit. With --to mmseg-mae the relative position tables are '
                        "made for the config's model.backbone.img_size and num_heads")
    parser.add_argument('--allow-init', nargs='+', default=(), metavar='REGEX',
                        help='with --check: backbone tensors (regular expressions on their names) '
                        'that may stay at their initial values, e.g. layers new in the consumer')
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override settings of the --check config, as in tools/train.py')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.backbone_only:
        if args.to not in (None, 'mmpretrain'):
            parser.error(f'--backbone-only is --to mmpretrain; it contradicts --to {args.to}')
        args.to = 'mmpretrain'
    if args.dst is None and args.check is None:
        parser.error('give an output path DST (or --check CONFIG to check SRC as it is)')
    if args.dst is None and (args.to or args.img_size or args.keep_norms):
        parser.error('--to/--img-size/--keep-norms need an output path DST')
    args.to = args.to or 'addp_mm'
    return args


def _load_addp_state_dict(src: str, shown: str):
    """The input as an addp_mm state dict (``backbone.*``, maybe ``neck.*`` ...)."""
    print(f'[1/3] loading {shown} ...', flush=True)
    ckpt = load_checkpoint_file(src)
    ignored = legacy_objects(ckpt)
    sd = extract_state_dict(ckpt, shown)
    if isinstance(ckpt, dict):
        extra = sorted(str(k) for k, v in ckpt.items()
                       if v is not sd and not isinstance(v, torch.Tensor))
        if extra:
            print(f'      entries beside the weights, not used: {", ".join(extra)}', flush=True)
    for where, cls in ignored:
        print(f'      ignored {cls} object at {where} (not rebuilt: loading it would run code)',
              flush=True)
    print(f'      {len(sd)} tensors, {sum(v.numel() for v in sd.values()) / 1e6:.1f} M values',
          flush=True)
    print('[2/3] converting ...', flush=True)
    layout = guess_layout(sd)
    if layout.kind == 'addp-official':
        out, dropped, unknown = convert_official_addp(sd)
        if unknown:
            sys.exit(f'error: {len(unknown)} keys are not part of the ADDP release layout '
                     f'(first: {unknown[:5]}); is this an ADDP checkpoint?')
        print(f'      official ADDP release: {len(out)} tensors kept, {len(dropped)} unused '
              f'tensors dropped ({", ".join(sorted({k.split(".")[0] for k in dropped}))})',
              flush=True)
        return out
    if layout.kind == 'addp_mm' and any(k.startswith('neck.') for k in sd):
        print('      addp_mm pre-training checkpoint', flush=True)
        return sd
    if 'backbone.pos_embed' in sd and 'backbone.patch_embed.projection.weight' in sd:
        print('      addp_mm backbone file (mmpretrain names)', flush=True)
        return {k: v for k, v in sd.items() if k.startswith('backbone.')}
    sys.exit(f'error: {shown!r} is {layout.name}: neither an official ADDP release (expects '
             "'tokenizer_norm.*' and 'decoder_pos_mask_embed') nor an addp_mm ADDP checkpoint "
             f"('backbone.*', 'neck.*'), the files this converter reads; {layout.advice}")


def _mmseg_mae_shape(args):
    """``(table input size, heads)`` for ``--to mmseg-mae``, read from the ``--check`` config
    (``model.backbone.img_size`` and ``num_heads``, what mmseg's MAE builds its relative position
    tables for); ``--img-size`` / ``--num-heads`` that disagree with it are refused."""
    geo = backbone_input(load_config(args.check, args.cfg_options))
    if geo is None:
        print(f'reading {args.check}: it sets no model.backbone.img_size, so the relative '
              'position tables follow --img-size / --num-heads', flush=True)
        return (args.img_size, ) * 2 if args.img_size else None, args.num_heads
    size, heads, crop = geo['img_size'], geo['num_heads'], geo['crop_size']
    if crop is not None and crop != size:
        sys.exit(f'error: {args.check} crops {crop} px but builds its backbone for '
                 f'model.backbone.img_size {size}: mmseg\'s MAE makes its relative position '
                 f'tables for img_size, so set model.backbone.img_size={crop} in the config.')
    if args.img_size is not None and (args.img_size, args.img_size) != size:
        sys.exit(f'error: --img-size {args.img_size} disagrees with {args.check} '
                 f'(model.backbone.img_size {size}); drop --img-size: with --check the tables '
                 'are made for the config.')
    if args.num_heads is not None and heads is not None and args.num_heads != heads:
        sys.exit(f'error: --num-heads {args.num_heads} disagrees with {args.check} '
                 f'(model.backbone.num_heads {heads}); drop --num-heads: with --check the tables '
                 'are made for the config.')
    heads = heads if heads is not None else args.num_heads
    print(f'reading {args.check}: relative position tables for {size[0]}x{size[1]} px inputs '
          '(model.backbone.img_size)'
          + (f' and {heads} heads (model.backbone.num_heads)' if heads else ''), flush=True)
    return size, heads


def _save(obj: dict, dst: str) -> None:
    """Write ``obj`` to ``dst`` through a temporary file beside it (removed on any failure)."""
    os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
    tmp = f'{dst}.tmp-{os.getpid()}'
    try:
        if dst.endswith('.safetensors'):
            (sd, ) = obj.values()
            save_file({k: v.contiguous() for k, v in sd.items()}, tmp)
        else:
            torch.save(obj, tmp)
        os.replace(tmp, dst)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise


def main(argv=None, t_start=None) -> int:
    t0 = time.time() if t_start is None else t_start
    args = parse_args(argv)
    if args.check and os.getcwd() not in sys.path:
        # configs' custom_imports name modules relative to where the command runs (mmdet's
        # `projects.ViTDet.vitdet` from the mmdetection root), as for tools/train.py there
        sys.path.append(os.getcwd())
    src = osp.abspath(args.src)
    if not osp.isfile(src):
        sys.exit(f'error: input {args.src!r} does not exist' +
                 (' (it is a directory).' if osp.isdir(src) else '.'))
    if args.dst is None:  # --check only
        print(f'checking {args.src} against {args.check}', flush=True)
        return 0 if check_config(args.check, src, cfg_options=args.cfg_options,
                                 allow_init=args.allow_init).ok else 1

    dst = osp.abspath(args.dst)
    if osp.isdir(dst):
        example = osp.join(args.dst, f'{osp.splitext(osp.basename(src))[0]}_{args.to}.pth')
        sys.exit(f'error: the output {args.dst!r} is a directory; give a file path, e.g. '
                 f'{example}')
    if osp.exists(dst) and osp.samefile(src, dst):
        sys.exit('error: the output path is the input file; choose another output path.')
    if osp.exists(dst) and not args.overwrite:
        sys.exit(f'error: {args.dst!r} exists; pass --overwrite to replace it.')
    if dst.endswith('.safetensors') and args.to not in ('timm', 'vitdet'):
        sys.exit('error: .safetensors output is for --to timm / vitdet (a flat state dict); '
                 'OpenMMLab targets are written as .pth.')

    table_size, num_heads = args.img_size, args.num_heads
    if args.to == 'mmseg-mae' and args.check:
        table_size, num_heads = _mmseg_mae_shape(args)
    full = _load_addp_state_dict(src, args.src)
    try:
        out, notes = convert_for_target(full, args.to, keep_norms=args.keep_norms,
                                        img_size=args.img_size, num_heads=num_heads,
                                        table_size=table_size)
    except (ValueError, KeyError) as e:
        sys.exit(f'error: {e}')
    (sd, ) = out.values()
    print(f'      target {args.to}: {len(sd)} tensors ({TARGETS[args.to]})', flush=True)
    for note in notes:
        print(f'      {note}', flush=True)

    print(f'[3/3] saving {args.dst} ...', flush=True)
    if not args.dst.endswith('.safetensors') and args.to in ('addp_mm', 'mmpretrain', 'mmseg-mae'):
        out['meta'] = dict(converted_from=osp.basename(src), target=args.to,
                           backbone_only=args.to != 'addp_mm', img_size=args.img_size)
    _save(out, dst)
    code = 0
    if args.check:
        print(f'checking {args.dst} against {args.check}', flush=True)
        code = 0 if check_config(args.check, dst, cfg_options=args.cfg_options,
                                 allow_init=args.allow_init).ok else 1
    print(f'done in {time.time() - t0:.1f} s (wall time)', flush=True)
    return code


if __name__ == '__main__':
    sys.exit(run_main(lambda: main(t_start=_T_START)))
