"""MAGE's encoder as an image backbone: image -> frozen tokenizer -> frozen MAGE encoder.

The paper's MAGE row (linear probes of the token predictor's own encoder). Images enter the frozen
VQGAN, their token ids the frozen MAGE encoder (nothing masked); the grid positions' features
after the encoder's final norm come out as a (B, D, h, w) map, so mmpretrain's
``GlobalAveragePooling`` gives the mean feature.
"""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...utils.grid import grid_side


@MODELS.register_module()
class MAGETokenEncoder(BaseModule):
    """Frozen tokenizer + frozen MAGE encoder, a backbone for linear probes.

    Both parts load their own checkpoints when the model is initialised (``init_weights``) and
    never train; a probe trains only its neck and head.

    Args:
        tokenizer (dict): ``VQGANTokenizer`` config with its ``checkpoint``.
        predictor (dict): ``MAGETokenPredictor`` config with its ``checkpoint``.
        init_cfg (dict, optional): Unused (the parts load their checkpoints).

    Inputs are images in [0, 1] (set the classifier's data preprocessor to ``mean=0, std=255``).
    """

    def __init__(self, tokenizer: dict, predictor: dict, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tokenizer = MODELS.build(tokenizer)
        self.predictor = MODELS.build(predictor)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """(B, 3, H, W) images in [0, 1] -> ((B, D, h, w) encoder features of the grid,)."""
        ids = self.tokenizer.encode(x)[1]
        feats = self.predictor.forward_features(ids)[:, 1:]  # drop the class slot
        B, L, D = feats.shape
        side = grid_side(L)
        return (feats.transpose(1, 2).reshape(B, D, side, side), )
