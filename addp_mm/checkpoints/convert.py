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
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..utils.errors import CheckpointMismatchError, ConfigError
from ..utils.grid import grid_side
from .layouts import is_official_addp  # noqa: F401  (part of this module's interface)
from .weights import StateDict, rename_official_blocks, timm_to_mmpretrain_block_key

OFFICIAL_UNUSED = ('decoder_pos_embed', 'decoder_pred.weight', 'decoder_pred.bias',
                   'pos_token_embed', 'pos_mask_embed')
PREDICTOR_UNUSED = ('patch_embed.proj.weight', 'patch_embed.proj.bias', 'pos_embed', 'cls_token',
                    'mask_token', 'decoder_pos_embed', 'decoder_pred.weight', 'decoder_pred.bias',
                    'token_emb.position_ids')
_NECK_KEYS = ('decoder_embed.', 'mask_token', 'decoder_pos_embed_learned', 'decoder_pos_mask_embed',
              'decoder_pos_token_embed', 'decoder_norm.', 'token_emb.')
#: The refusal for a file without ``backbone.*`` weights.
NO_BACKBONE = ('no backbone weights found: expected an ADDP pre-training checkpoint with '
               '"backbone.*" keys or an official ADDP release file.')
# official encoder name -> ours (inside the backbone)
_BACKBONE_RENAMES = (('patch_embed.proj.', 'patch_embed.projection.'),
                     ('tokenizer_norm.', 'pre_norm.'),
                     ('norm.', 'ln1.'))


def _backbone_key(key: str) -> str:
    for old, new in _BACKBONE_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


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
        raise CheckpointMismatchError(NO_BACKBONE)
    return out


# --------------------------------------------------------------------------------------------
# Targets of tools/model_converters/convert_addp.py --to
# --------------------------------------------------------------------------------------------
#: ``--to`` values and what each writes.
TARGETS = {
    'addp_mm': "the whole pre-training model, {'state_dict': ...} for addp_mm's ADDP",
    'mmpretrain': ("'backbone.*' keys for mmpretrain's VisionTransformer "
                   "(init_cfg prefix='backbone.')"),
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
    side = grid_side(bb['pos_embed'].shape[1] - 1)  # one class entry
    depth = 1 + max(int(k.split('.')[1]) for k in bb if k.startswith('layers.'))
    return dict(embed_dims=int(D), patch_size=int(p), grid=side, num_layers=depth)


def resize_pos_embed_grid(pos_embed: torch.Tensor, new_side: int) -> torch.Tensor:
    """Bicubic resize of a ``(1, 1 + s*s, D)`` position table to ``(1, 1 + n*n, D)`` (or of a
    ``(1 + s*s, D)`` one, as the token predictor's ``position_embeddings``); the class entry is
    kept as it is (mmpretrain's ``resize_pos_embed`` with one extra token)."""
    if pos_embed.dim() == 2:
        return resize_pos_embed_grid(pos_embed[None], new_side)[0]
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    side = grid_side(grid.shape[1])
    if side == new_side:
        return pos_embed
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=(new_side, new_side), mode='bicubic',
                         align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_side * new_side, -1).to(pos_embed.dtype)
    return torch.cat([cls, grid], dim=1)


#: The position tables of an addp_mm ``ADDP`` state dict, each a class entry and then the s x s
#: token grid: the encoder's, the token decoder's three and the frozen token predictor's two.
ADDP_POSITION_TABLES = ('backbone.pos_embed', 'neck.decoder_pos_embed_learned',
                        'neck.decoder_pos_mask_embed', 'neck.decoder_pos_token_embed',
                        'target_generator.predictor.decoder_pos_embed_learned',
                        'target_generator.predictor.token_emb.position_embeddings.weight')


def patch_grid(sd: StateDict, img_size: int, prefix: str = 'backbone.') -> Tuple[int, int, int]:
    """``(patch size, grid side of the file, grid side for img_size)`` of a state dict with
    ``{prefix}patch_embed.projection.weight`` and ``{prefix}pos_embed``.

    Raises:
        ConfigError: When ``img_size`` is not a multiple of the patch size (a ``ValueError``).
    """
    p = sd[f'{prefix}patch_embed.projection.weight'].shape[-1]
    if img_size % p:
        raise ConfigError(f'--img-size {img_size} is not a multiple of the patch size {p}')
    return p, grid_side(sd[f'{prefix}pos_embed'].shape[1] - 1), img_size // p


def resize_position_tables(sd: StateDict, img_size: int) -> Tuple[StateDict, str]:
    """Resize every position table of an addp_mm ``ADDP`` state dict for ``img_size`` inputs.

    The encoder, the token decoder and the frozen token predictor all index the same token grid,
    so all their tables (:data:`ADDP_POSITION_TABLES`) are resized together (bicubic, class entry
    kept).

    Args:
        sd (dict): The whole model (``backbone.*``, ``neck.*``, ``target_generator.*``, ...).
        img_size (int): The input size of the model the file is for.

    Returns:
        tuple: (the state dict with resized tables, a note saying what was done).

    Raises:
        ConfigError: When ``img_size`` is not a multiple of the patch size, or when another
            tensor of the file follows the grid's length (a table this function does not know,
            so the result would not load).
    """
    p, old, new = patch_grid(sd, img_size)
    n_old = 1 + old * old
    unknown = sorted(k for k, v in sd.items() if k not in ADDP_POSITION_TABLES
                     and v.dim() in (2, 3) and v.shape[-2] == n_old)
    if unknown:
        raise ConfigError(f'--img-size cannot resize {unknown}: their length follows the '
                          f'{old}x{old} token grid, but they are not position tables addp_mm '
                          'knows; convert without --img-size and train at the '
                          f'file\'s {old * p} px.')
    if old == new:
        return sd, f'the position tables already fit --img-size {img_size} ({new}x{new}); unchanged'
    out = dict(sd)
    resized = [k for k in ADDP_POSITION_TABLES if k in sd]
    for k in resized:
        out[k] = resize_pos_embed_grid(sd[k], new)
    predictor = any(k.startswith('target_generator.predictor.') for k in resized)
    return out, (f'{len(resized)} position tables (encoder, decoder'
                 + (', token predictor' if predictor else '') + ') resized (bicubic, class '
                 f'entry kept) from {old}x{old} ({old * p} px) to {new}x{new} ({img_size} px), as '
                 '--img-size asks' + ('; the frozen token predictor was trained on the '
                                      f'{old}x{old} grid, so its predictions on {new}x{new} are '
                                      'those of an interpolated model' if predictor else ''))


def convert_for_target(full: StateDict, target: str, keep_norms: bool = False,
                       img_size: Optional[int] = None, num_heads: Optional[int] = None,
                       table_size: Optional[Tuple[int, int]] = None) -> Tuple[dict, List[str]]:
    """addp_mm state dict (whole model or ``backbone.*`` only) -> the file content of ``target``.

    Args:
        full (dict): addp_mm keys (``backbone.*``, and for ``addp_mm`` the rest of the model).
        target (str): One of :data:`TARGETS`.
        keep_norms (bool): Keep the pre-training-only ``pre_norm`` and final ``ln1`` where the
            target can hold them.
        img_size (int, optional): Resize the position tables to this input size: for ``addp_mm``
            all of them (:func:`resize_position_tables`), for the other targets ``pos_embed``.
            None keeps the pre-training grid.
        num_heads (int, optional): Heads of the encoder; ``mmseg-mae`` needs it for the shape of
            its relative position tables (default: ``embed_dims // 64``).
        table_size (tuple, optional): ``(height, width)`` of the inputs the relative position
            tables of ``mmseg-mae`` are made for (the consumer's ``model.backbone.img_size``);
            default: ``img_size``, else :data:`MMSEG_MAE_IMG_SIZE`.

    Returns:
        tuple: ``(checkpoint dict to save, notes)``; ``notes`` says what was dropped, added or
        resized, one line each.
    """
    if target not in TARGETS:
        raise ConfigError(f'unknown target {target!r}; choose one of {sorted(TARGETS)}')
    notes: List[str] = []
    if target == 'addp_mm':
        if not any(k.startswith('neck.') for k in full):
            raise ConfigError('--to addp_mm needs the whole pre-training model (an official '
                              'release file or an addp_mm ADDP checkpoint); this file only has '
                              'the encoder.')
        sd = dict(full)
        if img_size is not None:
            sd, note = resize_position_tables(sd, img_size)
            notes.append(note)
        return dict(state_dict=sd), notes

    bb = {k[len('backbone.'):]: v for k, v in full.items() if k.startswith('backbone.')}
    if 'pos_embed' not in bb:
        raise CheckpointMismatchError(NO_BACKBONE)
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
            notes.append('dropped pre_norm (official tokenizer_norm) and the final norm ln1: '
                         + why)
    if img_size is not None:
        bb['pos_embed'], note = _resized(bb, img_size)
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
        size = table_size or ((img_size, img_size) if img_size else (MMSEG_MAE_IMG_SIZE, ) * 2)
        notes.append(_add_mmseg_mae_tables(bb, geo, num_heads, size))
        return dict(state_dict=bb), notes
    # timm / vitdet
    out = {mmpretrain_to_timm_key(k): v for k, v in bb.items()}
    if target == 'vitdet':
        out.pop('cls_token')
        notes.append("dropped cls_token: mmdet's ViTDet ViT has none (its pos_embed keeps the "
                     'class entry, pretrain_use_cls_token=True)')
    return dict(model=out), notes


def mmseg_mae_table_shape(table_size: Tuple[int, int], patch_size: int,
                          num_heads: int) -> Tuple[int, int]:
    """Shape of one relative position bias table of mmseg's MAE/BEiT block for inputs of
    ``table_size = (height, width)``: ``((2h - 1)(2w - 1) + 3, num_heads)`` for its ``h x w``
    patch window (the 3 extra rows: class-to-token, token-to-class, class-to-class)."""
    h, w = (t // patch_size for t in table_size)
    return (2 * h - 1) * (2 * w - 1) + 3, num_heads


def _add_mmseg_mae_tables(bb: StateDict, geo: Dict[str, int], num_heads: Optional[int],
                          table_size: Tuple[int, int]) -> str:
    """Add the layer scales and zero relative position bias tables of mmseg's MAE (in place)."""
    D, L, p = geo['embed_dims'], geo['num_layers'], geo['patch_size']
    if num_heads is None:
        if D % 64:
            raise ConfigError(f'embed_dims {D} is not a multiple of 64: pass --num-heads (the '
                              'relative position tables of mmseg MAE have one column per head)')
        num_heads = D // 64
    if D % num_heads:
        raise ConfigError(f'--num-heads {num_heads} does not divide embed_dims {D}')
    bad = [t for t in table_size if t % p]
    if bad:
        raise ConfigError(f'the input size {table_size} is not a multiple of the patch size {p}')
    # mmseg resizes a table of another size with scipy's interp2d (gone since SciPy 1.14), so the
    # tables are written at the consumer's size.
    shape = mmseg_mae_table_shape(table_size, p, num_heads)
    ref = bb['cls_token']
    for i in range(L):
        bb[f'layers.{i}.gamma_1'] = torch.ones(D, dtype=ref.dtype)
        bb[f'layers.{i}.gamma_2'] = torch.ones(D, dtype=ref.dtype)
        bb[f'layers.{i}.attn.relative_position_bias_table'] = torch.zeros(shape, dtype=ref.dtype)
    h, w = table_size
    return (f'added layer scale gamma_1/gamma_2 = 1 and zero relative position bias tables '
            f'({shape[0]} x {num_heads} heads, for {h}x{w} px inputs: {h // p}x{w // p} patches) '
            f'for each of the {L} blocks: mmseg MAE has both, ADDP has neither, and these values '
            "make the MAE block compute ADDP's (they train from there)")


def _resized(bb: StateDict, img_size: int) -> Tuple[torch.Tensor, str]:
    """The backbone's ``pos_embed`` for ``img_size`` inputs, and a note."""
    p, old, new = patch_grid(bb, img_size, prefix='')
    if old == new:
        return bb['pos_embed'], (f'pos_embed already fits --img-size {img_size} ({new}x{new}); '
                                 'unchanged')
    return resize_pos_embed_grid(bb['pos_embed'], new), (
        f'pos_embed resized (bicubic, class entry kept) from {old}x{old} ({old * p} px) to '
        f'{new}x{new} ({img_size} px), as --img-size asks')
