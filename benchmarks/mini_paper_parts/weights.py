"""Pre-trained encoders as mmpretrain ``VisionTransformer`` weights (what the probes load)."""
import torch

from addp_mm.checkpoints.convert import to_backbone_state_dict
from addp_mm.checkpoints.loading import load_checkpoint_file
from addp_mm.checkpoints.weights import extract_state_dict


def backbone_file(kind: str, ckpt: str, dst: str, keep_norms: bool) -> str:
    """The pre-trained encoder as ``backbone.*`` weights of mmpretrain's VisionTransformer.

    ADDP: :func:`addp_mm.checkpoints.convert.to_backbone_state_dict` (what ``convert_addp.py
    --backbone-only [--keep-norms]`` writes). MAE: mmpretrain's ``MAEViT`` already uses the
    ``VisionTransformer`` names; its fixed sin-cos ``pos_embed`` loads as the (then trainable)
    position embedding, as in mmpretrain's MAE fine-tuning.
    """
    sd = extract_state_dict(load_checkpoint_file(ckpt), ckpt)
    if kind == 'addp':
        out = to_backbone_state_dict(sd, keep_norms=keep_norms)
    else:
        out = {k: v for k, v in sd.items() if k.startswith('backbone.')}
        if not keep_norms:
            out = {k: v for k, v in out.items() if not k.startswith('backbone.ln1.')}
    torch.save(dict(state_dict=out), dst)
    return dst
