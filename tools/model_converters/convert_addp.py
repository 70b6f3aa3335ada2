#!/usr/bin/env python
"""Convert an official ADDP release file (or an addp_mm checkpoint) for addp_mm / mmpretrain.

Examples::

    # whole pre-training model (encoder, decoder, head, frozen VQGAN + token predictor)
    python tools/model_converters/convert_addp.py addp-vit-base-16.pth \
        checkpoints/addp_vit-base-p16_official-1600e_in1k.pth

    # backbone only, for mmpretrain's VisionTransformer (prefix 'backbone.')
    python tools/model_converters/convert_addp.py addp-vit-base-16.pth \
        checkpoints/addp_vit-base-p16_backbone.pth --backbone-only

The input is never modified; an existing output is only replaced with --overwrite.
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from addp_mm.utils.checkpoint import load_checkpoint_file  # noqa: E402
from addp_mm.utils.convert import (convert_official_addp, is_official_addp,  # noqa: E402
                                   to_backbone_state_dict)
from addp_mm.utils.weights import extract_state_dict  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official addp-vit-*-16.pth or an addp_mm checkpoint')
    parser.add_argument('dst', help='output .pth path')
    parser.add_argument('--backbone-only', action='store_true',
                        help="write only the encoder, as 'backbone.*' keys for mmpretrain's "
                        'VisionTransformer')
    parser.add_argument('--keep-norms', action='store_true',
                        help='with --backbone-only: keep pre_norm/ln1 (dropped by the official '
                        'fine-tuning)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    src, dst = osp.abspath(args.src), osp.abspath(args.dst)
    if not osp.isfile(src):
        sys.exit(f'error: input {args.src!r} does not exist.')
    if osp.exists(dst) and (osp.samefile(src, dst)):
        sys.exit('error: the output path is the input file; choose another output path.')
    if osp.exists(dst) and not args.overwrite:
        sys.exit(f'error: {args.dst!r} exists; pass --overwrite to replace it.')

    t0 = time.time()
    print(f'[1/3] loading {args.src} ...', flush=True)
    sd = extract_state_dict(load_checkpoint_file(src), args.src)
    print(f'      {len(sd)} tensors, {sum(v.numel() for v in sd.values()) / 1e6:.1f} M values',
          flush=True)

    print('[2/3] converting ...', flush=True)
    if is_official_addp(sd):
        out, dropped, unknown = convert_official_addp(sd)
        if unknown:
            sys.exit(f'error: {len(unknown)} keys are not part of the ADDP release layout '
                     f'(first: {unknown[:5]}); is this an ADDP checkpoint?')
        print(f'      official ADDP release: {len(out)} tensors kept, {len(dropped)} unused '
              f'tensors dropped ({", ".join(sorted({k.split(".")[0] for k in dropped}))})',
              flush=True)
    elif any(k.startswith('backbone.') for k in sd) and any(k.startswith('neck.') for k in sd):
        out = sd
        print('      addp_mm pre-training checkpoint', flush=True)
    else:
        sys.exit(f'error: {args.src!r} is neither an official ADDP release file (expects '
                 "'tokenizer_norm.*' and 'decoder_pos_mask_embed') nor an addp_mm ADDP "
                 "checkpoint ('backbone.*', 'neck.*'). MAGE and VQGAN files need no conversion: "
                 'give them to the target generator config as they are.')
    if args.backbone_only:
        out = to_backbone_state_dict(out, keep_norms=args.keep_norms)
        print(f'      backbone only: {len(out)} tensors', flush=True)

    print(f'[3/3] saving {args.dst} ...', flush=True)
    os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(dict(state_dict=out, meta=dict(converted_from=osp.basename(src),
                                              backbone_only=args.backbone_only)), tmp)
    os.replace(tmp, dst)
    print(f'done in {time.time() - t0:.1f} s', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
