"""The frozen half of ADDP training: VQGAN tokenizer + token predictor -> (x_t, z_0, target)."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class ADDPTargetGenerator(BaseModule):
    """Builds the inputs and targets of one ADDP training step (docs/method.md §3.1, §3.4).

    Both sub-models are frozen and run without gradients. The two token-predictor queries
    (mask_next for the unreliable tokens, mask_t for the target) run as one batched pass.

    This is what ``target_generator`` means in :class:`~addp_mm.models.algorithms.ADDP`
    (``target_generator.vqgan.*``, ``target_generator.predictor.*``); docs/method.md §1.3 lists
    its meaning in every model.

    Args:
        vqgan (dict): Config of the :class:`VQGANTokenizer`.
        predictor (dict): Config of the :class:`MAGETokenPredictor`.
        predictor_dropout (bool): Run the frozen token predictor with its dropout active while
            the model trains, as the official pre-training does (its per-epoch ``model.train()``
            re-enables the predictor's dropout; the paper's numbers come from that mode). The two
            queries of the batched pass then get independent dropout masks, which is the same
            distribution as the official two separate passes. Evaluation (``model.eval()``) is
            always deterministic. False keeps the predictor in eval mode during training too (a
            deterministic target for given masks). Defaults to False; the ImageNet
            reproduction configs set True.
    """

    def __init__(self, vqgan: dict, predictor: dict, predictor_dropout: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.vqgan = MODELS.build(vqgan)
        self.predictor = MODELS.build(predictor)
        self.predictor_dropout = bool(predictor_dropout)

    def train(self, mode: bool = True):
        super().train(False)
        if mode and self.predictor_dropout:
            # the frozen predictor's own train() keeps eval mode; bypass it for this switch only
            nn.Module.train(self.predictor, True)
        return self

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """images (B, 3, H, W) in [0, 1] -> ``ids`` (B, L) and ``z0`` (B, C, h, w).

        Integer ``images`` are taken as the ids themselves, (B, L): the frozen tokenizer's output
        for the images, computed once (a token bank, ``addp_mm.datasets.TokenBankDataset``); the
        tokenizer is deterministic, so the result is the same.
        """
        if not images.is_floating_point():
            ids = images.long()
            return dict(ids=ids, z0=self.vqgan.ids_to_vectors(ids))
        z0, ids = self.vqgan.encode(images)
        return dict(ids=ids, z0=z0)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, mask_t: torch.Tensor,
                mask_next: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Make x_t and the target distribution.

        Args:
            images (Tensor): (B, 3, H, W) RGB in [0, 1], or (B, L) int token ids (see
                :meth:`tokenize`).
            mask_t (Tensor): (B, L), 1 = masked at step t.
            mask_next (Tensor): (B, L), 1 = masked at the next (noisier) step; contains mask_t.

        Returns:
            dict: ``ids`` (B, L) z_0 ids, ``z0`` (B, C, h, w) quantized map, ``x_t`` (B, 3, H, W)
            decoded image (not clamped), ``target`` (B, K, h, w) token-predictor probabilities
            given (z_0, mask_t).
        """
        out = self.tokenize(images)
        ids = out['ids']
        B = ids.shape[0]
        probs = self.predictor.predict(torch.cat([ids, ids]), torch.cat([mask_next, mask_t]))
        probs_next, target = probs[:B], probs[B:]
        # x_t: z_0's codes where reliable, the predictor's soft vectors given mask_next elsewhere
        out.update(x_t=self.vqgan.decode_mixed(ids, mask_t, probs_next), target=target)
        return out
