"""MAGE token predictor p(z_0 | visible tokens): the frozen wrapper of the network.

:class:`~addp_mm.models.backbones.MAGEViT` is the network (a backbone, trained from scratch by
:class:`~addp_mm.models.algorithms.MAGE`); :class:`MAGETokenPredictor` is the same network, frozen,
as ADDP uses it to make its training samples.
"""
from typing import Optional

import torch
from mmpretrain.registry import MODELS

from ...checkpoints.weights import StateDict, rename_official_blocks
from ..backbones.mage_vit import MAGEViT
from ..utils.frozen import FrozenCheckpointMixin


@MODELS.register_module()
class MAGETokenPredictor(FrozenCheckpointMixin, MAGEViT):
    """Frozen :class:`MAGEViT` that predicts VQ-token distributions at masked positions.

    Parameters have ``requires_grad=False``, the module stays in eval mode (dropout off) and runs
    without gradients; weights are loaded strictly in :meth:`init_weights`, after any parent
    initialisation (see :class:`~addp_mm.models.utils.frozen.FrozenCheckpointMixin`).

    Args:
        checkpoint (str, optional): Local path to a MAGE release file (``{'model': ...}``), an ADDP
            release file (``token_predictor.*`` keys), a :class:`MAGE` Runner checkpoint
            (``backbone.*``) or an ADDP Runner checkpoint (``target_generator.predictor.*``). None
            keeps random weights (tests only).
        **kwargs: The sizes, as :class:`MAGEViT` (``embed_dims``, ``depth``, ``num_heads``,
            ``decoder_depth``, ``decoder_num_heads``, ``codebook_size``, ``num_tokens``, ...);
            they must be those of the checkpoint.
    """

    frozen_name = 'MAGE token predictor'
    checkpoint_prefixes = ('', 'backbone.', 'token_predictor.', 'target_generator.predictor.')
    checkpoint_field = 'model.target_generator.predictor.checkpoint'
    checkpoint_example = ('the predictor `make demo` trains, work_dirs/demo/predictor/'
                          'iter_300.pth, a MAGE checkpoint of configs/addp/from_scratch, or the '
                          'official mage-vitb-1600.pth')

    def convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        """Official (timm) block names -> ours, in the encoder and decoder block lists."""
        return rename_official_blocks(state_dict, ('blocks.', 'decoder_blocks.'))

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor,
                drop: Optional[torch.Tensor] = None) -> torch.Tensor:
        """As :meth:`MAGEViT.forward`, without gradients: (B, L, codebook_size) logits."""
        return super().forward(ids, mask, drop)

    @torch.no_grad()
    def predict(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """As :meth:`MAGEViT.predict`, without gradients: (B, codebook_size, h, w)."""
        return super().predict(ids, mask)
