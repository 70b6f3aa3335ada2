"""Key conversion between the official ADDP release layout and addp_mm's.

Official ``{'model': sd}`` (SPEC 6) -> addp_mm pre-training ``{'state_dict': sd}``:

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
from typing import Dict, List, Tuple

import torch

from ..models.utils.transformer import timm_to_mmpretrain_block_key
from .weights import StateDict, rename_official_blocks

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
