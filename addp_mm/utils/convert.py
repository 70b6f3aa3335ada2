"""Key conversion between the official ADDP release layout and addp_mm's.

Official ``{'model': sd}`` (docs/method.md §8) -> addp_mm pre-training ``{'state_dict': sd}``:

==================================  ==============================================
official                            addp_mm (``ADDP`` algorithm)
==================================  ==============================================
``patch_embed.proj.*``              ``backbone.patch_embed.projection.*``
``cls_token``, ``pos_embed``        ``backbone.cls_token``, ``backbone.pos_embed``
``tokenizer_norm.*``                ``backbone.pre_norm.*``
``blocks.N.*`` (timm names)         ``backbone.layers.N.*`` (mmpretrain names)
``norm.*``                          ``backbone.ln1.*``
``decoder_*``, ``mask_token``,      ``neck.*`` (decoder blocks renamed)
``token_emb.weight``
``mlm_layer.*``                     ``head.mlm_layer.*``
``vqgan.*``                         ``target_generator.vqgan.*``
``token_predictor.*``               ``target_generator.predictor.*`` (its ``vqgan`` dropped)
==================================  ==============================================

Dropped (exist in the release, unused by ADDP): ``decoder_pos_embed``, ``decoder_pred.*``,
``pos_token_embed``, ``pos_mask_embed``, the predictor's ``patch_embed``, ``pos_embed``,
``cls_token``, ``mask_token``, ``decoder_pos_embed``, ``decoder_pred``, ``position_ids``.
"""
import re
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from .weights import StateDict, rename_official_blocks, timm_to_mmpretrain_block_key

OFFICIAL_UNUSED = ('decoder_pos_embed', 'decoder_pred.weight', 'decoder_pred.bias',
                   'pos_token_embed', 'pos_mask_embed')
PREDICTOR_UNUSED = ('patch_embed.proj.weight', 'patch_embed.proj.bias', 'pos_embed', 'cls_token',
                    'mask_token', 'decoder_pos_embed', 'decoder_pred.weight', 'decoder_pred.bias',
                    'token_emb.position_ids')
_NECK_KEYS = ('decoder_embed.', 'mask_token', 'decoder_pos_embed_learned', 'decoder_pos_mask_embed',
              'decoder_pos_token_embed', 'decoder_norm.', 'token_emb.')
# official encoder name -> ours (inside the backbone)
_BACKBONE_RENAMES = (('patch_embed.proj.', 'patch_embed.projection.'), ('tokenizer_norm.', 'pre_norm.'),
                     ('norm.', 'ln1.'))


def _backbone_key(key: str) -> str:
    for old, new in _BACKBONE_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def is_official_addp(sd: StateDict) -> bool:
    """Whether a state dict is in the official ADDP release layout."""
    return 'tokenizer_norm.weight' in sd and 'decoder_pos_mask_embed' in sd


def convert_official_addp(sd: StateDict) -> Tuple[StateDict, List[str], List[str]]:
    """Official ADDP release state dict -> addp_mm ``ADDP`` state dict.

    Args:
        sd (dict): The ``model`` dict of ``addp-vit-*-16.pth``.

    Returns:
        tuple: (converted state dict, dropped keys, unrecognised keys). Unrecognised keys mean the
        file is not an ADDP release; callers should fail on them.
    """
    out: Dict[str, torch.Tensor] = {}
    dropped: List[str] = []
    unknown: List[str] = []
    predictor = {}
    for k, v in sd.items():
        if k in OFFICIAL_UNUSED or k.startswith('token_predictor.vqgan.'):
            dropped.append(k)
        elif k.startswith('token_predictor.'):
            sub = k[len('token_predictor.'):]
            if sub in PREDICTOR_UNUSED:
                dropped.append(k)
            else:
                predictor[sub] = v
        elif k.startswith('vqgan.'):
            out['target_generator.' + k] = v
        elif k.startswith('mlm_layer.'):
            out['head.' + k] = v
        elif k.startswith('decoder_blocks.'):
            out['neck.' + timm_to_mmpretrain_block_key(k, 'decoder_blocks.', 'decoder_blocks.')] = v
        elif k.startswith(_NECK_KEYS):
            out['neck.' + k] = v
        elif k.startswith('blocks.'):
            out['backbone.' + timm_to_mmpretrain_block_key(k, 'blocks.', 'layers.')] = v
        elif k.startswith(('patch_embed.proj.', 'tokenizer_norm.', 'norm.')) or k in (
                'cls_token', 'pos_embed'):
            out['backbone.' + _backbone_key(k)] = v
        else:
            unknown.append(k)
    predictor = rename_official_blocks(predictor, ('blocks.', 'decoder_blocks.'))
    out.update({'target_generator.predictor.' + k: v for k, v in predictor.items()})
    return out, dropped, unknown


def to_backbone_state_dict(sd: StateDict, keep_norms: bool = False) -> StateDict:
    """addp_mm ``ADDP`` state dict -> weights of mmpretrain's ``VisionTransformer``.

    Keys keep the ``backbone.`` prefix, the convention of mmpretrain's self-supervised checkpoints
    (``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``). As the official
    fine-tuning does, the pre-training-only ``pre_norm`` (official ``tokenizer_norm``) and final
    ``ln1`` are dropped unless ``keep_norms``.
    """
    out = {}
    for k, v in sd.items():
        if not k.startswith('backbone.'):
            continue
        if not keep_norms and k.startswith(('backbone.pre_norm.', 'backbone.ln1.')):
            continue
        out[k] = v
    if 'backbone.pos_embed' not in out:
        raise KeyError('no backbone weights found: expected an ADDP pre-training checkpoint with '
                       '"backbone.*" keys or an official ADDP release file.')
    return out


# --------------------------------------------------------------------------------------------
# Targets of tools/model_converters/convert_addp.py --to
# --------------------------------------------------------------------------------------------
#: ``--to`` values and what each writes.
TARGETS = {
    'addp_mm': "the whole pre-training model, {'state_dict': ...} for addp_mm's ADDP",
    'mmpretrain': "'backbone.*' keys for mmpretrain's VisionTransformer (init_cfg prefix='backbone.')",
    'mmseg-mae': "unprefixed keys for mmseg's own MAE/BEiT backbone (model.pretrained=DST)",
    'timm': "{'model': ...} with timm VisionTransformer names",
    'vitdet': "{'model': ...} with timm names minus cls_token, for mmdet's projects/ViTDet ViT",
}

#: input size the relative position tables of ``--to mmseg-mae`` are made for without --img-size
MMSEG_MAE_IMG_SIZE = 512

# mmpretrain VisionTransformer names (inside the backbone) -> timm VisionTransformer names
_MMPRETRAIN_TO_TIMM = (
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
    (r'^pre_norm\.', 'norm_pre.'),
    (r'^ln1\.', 'norm.'),
)


def mmpretrain_to_timm_key(key: str) -> str:
    """``layers.3.ffn.layers.0.0.weight`` -> ``blocks.3.mlp.fc1.weight`` (backbone-relative)."""
    for pattern, repl in _MMPRETRAIN_TO_TIMM:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def backbone_geometry(bb: StateDict) -> Dict[str, int]:
    """Embedding width, depth, patch size and pre-training grid side of a backbone state dict
    (mmpretrain names, no prefix)."""
    D, _, p, _ = bb['patch_embed.projection.weight'].shape
    n_pos = bb['pos_embed'].shape[1] - 1  # one class entry
    side = int(round(n_pos**0.5))
    if side * side != n_pos:
        raise ValueError(f'pos_embed has {n_pos} grid entries, not a square grid')
    depth = 1 + max(int(k.split('.')[1]) for k in bb if k.startswith('layers.'))
    return dict(embed_dims=int(D), patch_size=int(p), grid=side, num_layers=depth)


def resize_pos_embed_grid(pos_embed: torch.Tensor, new_side: int) -> torch.Tensor:
    """Bicubic resize of a ``(1, 1 + s*s, D)`` position embedding to ``(1, 1 + n*n, D)``; the class
    entry is kept as it is (mmpretrain's ``resize_pos_embed`` with one extra token)."""
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    side = int(round(grid.shape[1]**0.5))
    if side == new_side:
        return pos_embed
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=(new_side, new_side), mode='bicubic',
                         align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_side * new_side, -1).to(pos_embed.dtype)
    return torch.cat([cls, grid], dim=1)


def convert_for_target(full: StateDict, target: str, keep_norms: bool = False,
                       img_size: int = None, num_heads: int = None
                       ) -> Tuple[dict, List[str]]:
    """addp_mm state dict (whole model or ``backbone.*`` only) -> the file content of ``target``.

    Args:
        full (dict): addp_mm keys (``backbone.*``, and for ``addp_mm`` the rest of the model).
        target (str): One of :data:`TARGETS`.
        keep_norms (bool): Keep the pre-training-only ``pre_norm`` and final ``ln1`` where the
            target can hold them.
        img_size (int, optional): Resize ``pos_embed`` to this input size. None keeps the
            pre-training grid.
        num_heads (int, optional): Heads of the encoder; ``mmseg-mae`` needs it for the shape of
            its relative position tables (default: ``embed_dims // 64``).

    Returns:
        tuple: ``(checkpoint dict to save, notes)``; ``notes`` says what was dropped, added or
        resized, one line each.
    """
    if target not in TARGETS:
        raise ValueError(f'unknown target {target!r}; choose one of {sorted(TARGETS)}')
    notes: List[str] = []
    if target == 'addp_mm':
        if not any(k.startswith('neck.') for k in full):
            raise ValueError('--to addp_mm needs the whole pre-training model (an official release '
                             "file or an addp_mm ADDP checkpoint); this file only has the encoder.")
        sd = dict(full)
        if img_size is not None:
            sd['backbone.pos_embed'], note = _resized(sd['backbone.pos_embed'], sd, img_size)
            notes.append(note)
        return dict(state_dict=sd), notes

    bb = {k[len('backbone.'):]: v for k, v in full.items() if k.startswith('backbone.')}
    if 'pos_embed' not in bb:
        raise KeyError('no backbone weights found: expected an ADDP pre-training checkpoint with '
                       '"backbone.*" keys or an official ADDP release file.')
    geo = backbone_geometry(bb)
    others = sorted({k.split('.')[0] for k in full if not k.startswith('backbone.')})
    if others:
        notes.append(f'dropped the pre-training-only modules ({", ".join(others)}): only the '
                     'encoder is fine-tuned')
    norms = [k for k in bb if k.startswith(('pre_norm.', 'ln1.'))]
    if target == 'vitdet' or (norms and not keep_norms):
        for k in norms:
            del bb[k]
        if norms:
            why = ("mmdet's ViTDet ViT has no such norms" if target == 'vitdet' else
                   'the official fine-tuning drops them; --keep-norms keeps them')
            notes.append(f'dropped pre_norm (official tokenizer_norm) and the final norm ln1: {why}')
    if img_size is not None:
        bb['pos_embed'], note = _resized(bb['pos_embed'], {'backbone.' + k: v for k, v in bb.items()},
                                         img_size)
        notes.append(note)
    else:
        g, s = geo['grid'], geo['grid'] * geo['patch_size']
        consumer = {
            'mmpretrain': f"mmpretrain's ViT resizes it at load if its img_size is not {s}",
            'mmseg-mae': "mmseg's MAE resizes it at load to its img_size",
            'timm': f'build the timm model with img_size={s}',
            'vitdet': f"set the ViTDet ViT's pretrain_img_size={s} (it interpolates per forward)",
        }[target]
        notes.append(f'pos_embed kept at the pre-training grid {g}x{g} ({s} px input): '
                     f'{consumer}; --img-size resizes it here instead')

    if target == 'mmpretrain':
        return dict(state_dict={'backbone.' + k: v for k, v in bb.items()}), notes
    if target == 'mmseg-mae':
        D, L = geo['embed_dims'], geo['num_layers']
        if num_heads is None:
            if D % 64:
                raise ValueError(f'embed_dims {D} is not a multiple of 64: pass --num-heads (the '
                                 'relative position tables of mmseg MAE have one column per head)')
            num_heads = D // 64
        # mmseg resizes a table of another size with scipy's interp2d (gone since SciPy 1.14),
        # so the tables are written at the consumer's size: --img-size, else the 512 px crop of
        # mmseg's MAE/BEiT UperNet configs.
        table_img = MMSEG_MAE_IMG_SIZE if img_size is None else img_size
        side = table_img // geo['patch_size']
        n_rel = (2 * side - 1)**2 + 3
        ref = bb['cls_token']
        for i in range(L):
            bb[f'layers.{i}.gamma_1'] = torch.ones(D, dtype=ref.dtype)
            bb[f'layers.{i}.gamma_2'] = torch.ones(D, dtype=ref.dtype)
            bb[f'layers.{i}.attn.relative_position_bias_table'] = torch.zeros(
                n_rel, num_heads, dtype=ref.dtype)
        notes.append(f'added layer scale gamma_1/gamma_2 = 1 and zero relative position bias '
                     f'tables ({n_rel} x {num_heads} heads, for {table_img} px inputs: '
                     f'{side}x{side} patches) for each of the {L} blocks: mmseg MAE '
                     'has both, ADDP has neither, and these values make the MAE block compute '
                     "ADDP's (they train from there)")
        return dict(state_dict=bb), notes
    # timm / vitdet
    out = {mmpretrain_to_timm_key(k): v for k, v in bb.items()}
    if target == 'vitdet':
        out.pop('cls_token')
        notes.append("dropped cls_token: mmdet's ViTDet ViT has none (its pos_embed keeps the "
                     'class entry, pretrain_use_cls_token=True)')
    return dict(model=out), notes


def _resized(pos_embed: torch.Tensor, full: StateDict, img_size: int) -> Tuple[torch.Tensor, str]:
    p = full['backbone.patch_embed.projection.weight'].shape[-1]
    if img_size % p:
        raise ValueError(f'--img-size {img_size} is not a multiple of the patch size {p}')
    old = int(round((pos_embed.shape[1] - 1)**0.5))
    new = img_size // p
    if old == new:
        return pos_embed, f'pos_embed already fits --img-size {img_size} ({new}x{new}); unchanged'
    return resize_pos_embed_grid(pos_embed, new), (
        f'pos_embed resized (bicubic, class entry kept) from {old}x{old} ({old * p} px) to '
        f'{new}x{new} ({img_size} px), as --img-size asks')
