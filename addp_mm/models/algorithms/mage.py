"""MAGE token-predictor pre-training (Li et al., CVPR 2023), read top to bottom.

ADDP needs a trained MAGE model as its frozen token predictor. This algorithm trains one on the
tokens of a frozen VQGAN.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.masking import nested_masks, num_masked


def truncated_normal(mu: float, std: float, low: float, high: float,
                     generator: Optional[torch.Generator] = None) -> float:
    """One draw of N(mu, std) truncated to [low, high], by inverting the normal CDF.

    Returns the same distribution as ``scipy.stats.truncnorm((low - mu) / std,
    (high - mu) / std, loc=mu, scale=std)`` (what MAGE uses), on torch's random stream, so the
    Runner's seed makes it reproducible.
    """
    a = torch.special.ndtr(torch.tensor((low - mu) / std, dtype=torch.float64))
    b = torch.special.ndtr(torch.tensor((high - mu) / std, dtype=torch.float64))
    u = a + (b - a) * torch.rand((), dtype=torch.float64, generator=generator)
    return float((mu + std * torch.special.ndtri(u)).clamp(low, high))


@MODELS.register_module()
class MAGE(BaseSelfSupervisor):
    """MAGE pre-training of a :class:`~addp_mm.models.backbones.MAGEViT` on VQ tokens.

    One step (as the official ``models_mage.py``):

    1. tokenize the images with the frozen VQGAN (``target_generator``): ids (B, L);
    2. draw one mask ratio r for the batch from N(0.55, 0.25) truncated to [0.5, 1.0];
    3. per sample, order the positions by uniform noise; the ``ceil(L r)`` first are masked
       (replaced by the mask id) and the ``ceil(L * 0.5)`` first are also *dropped* from the
       encoder. Since r >= 0.5 the dropped tokens are always masked ones: the encoder never sees
       half of the sequence, and among the masked tokens the dropped ones are a random subset of
       fixed size (MAGE's "drop rate 0.5 of the sequence, masked tokens dropped first");
    4. the network predicts the codebook logits; loss = cross-entropy with label smoothing 0.1
       over the ``codebook_size`` codes, averaged over the masked positions.

    Checkpoints hold the network under ``backbone.*`` (and the frozen tokenizer under
    ``target_generator.*``), which ``MAGETokenPredictor(checkpoint=...)`` loads.

    ``target_generator`` here is the bare frozen tokenizer (:class:`VQGANTokenizer`);
    docs/method.md §1.3 lists its meaning in every model.

    Args:
        backbone (dict): :class:`MAGEViT` config.
        target_generator (dict): Frozen :class:`VQGANTokenizer` config; set its ``checkpoint``
            to the stage-1 (tokenizer) checkpoint.
        mask_ratio_range (tuple): Truncation [low, high] of the mask ratio. Defaults to (0.5, 1).
        mask_ratio_mu (float): Defaults to 0.55.
        mask_ratio_std (float): Defaults to 0.25.
        drop_ratio (float): Fraction of the sequence dropped from the encoder; must not exceed
            the lowest mask ratio. Defaults to 0.5 (MAGE's ``mask_ratio_min``).
        label_smoothing (float): Defaults to 0.1.
        data_preprocessor (dict, optional): Must give RGB in [0, 1].
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 target_generator: dict,
                 mask_ratio_range: Tuple[float, float] = (0.5, 1.0),
                 mask_ratio_mu: float = 0.55,
                 mask_ratio_std: float = 0.25,
                 drop_ratio: float = 0.5,
                 label_smoothing: float = 0.1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, target_generator=target_generator,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= drop_ratio <= mask_ratio_range[0]:
            raise ValueError(f'drop_ratio ({drop_ratio}) must be in [0, mask_ratio_range[0] = '
                             f'{mask_ratio_range[0]}]: only masked tokens may be dropped.')
        tok = self.target_generator
        if tok.n_embed != self.backbone.codebook_size:
            raise ValueError(f'the tokenizer has {tok.n_embed} codes but backbone.codebook_size is '
                             f'{self.backbone.codebook_size}; make them equal.')
        if tok.token_grid**2 != self.backbone.num_tokens:
            raise ValueError(f'the tokenizer makes {tok.token_grid}x{tok.token_grid} tokens at '
                             f'resolution {tok.resolution}, but backbone.num_tokens is '
                             f'{self.backbone.num_tokens}; set num_tokens={tok.token_grid**2}.')
        self.mask_ratio_range = mask_ratio_range
        self.mask_ratio_mu = mask_ratio_mu
        self.mask_ratio_std = mask_ratio_std
        self.drop_ratio = drop_ratio
        self.label_smoothing = label_smoothing

    def sample_masks(self, batch_size: int, num_tokens: int,
                     device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw (mask, drop) for a batch (step 2-3 above).

        Returns:
            tuple: two (B, L) float masks, 1 = masked / dropped; drop is a subset of mask, with
            ``ceil(L * drop_ratio)`` dropped and ``ceil(L * r)`` masked in every sample.
        """
        r = truncated_normal(self.mask_ratio_mu, self.mask_ratio_std, *self.mask_ratio_range)
        n_mask = num_masked(r, num_tokens)
        n_drop = num_masked(self.drop_ratio, num_tokens)
        noise = torch.rand(batch_size, num_tokens, device=device)
        drop, mask = nested_masks(noise, n_drop, n_mask)  # the lowest-noise positions first
        return mask, drop

    def tokenize(self, inputs: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """(B, L) ids of images (B, 3, H, W) in [0, 1], by the frozen tokenizer. Integer inputs
        (B, L) are the ids already (a token bank, ``addp_mm.datasets.TokenBankDataset``)."""
        images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if not images.is_floating_point():
            return images.long()
        return self.target_generator.encode(images)[1]  # frozen, no grad

    def extract_feat(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
                     **kwargs) -> torch.Tensor:
        """Codebook logits (B, L, K) of the unmasked token sequence of images (B, 3, H, W)."""
        ids = self.tokenize(inputs)
        return self.backbone(ids, torch.zeros_like(ids))

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One MAGE training step.

        Args:
            inputs (list[Tensor]): One view, (B, 3, H, W) RGB in [0, 1], or its (B, L) token ids.
            data_samples (list[DataSample]): Unused.

        Returns:
            dict: ``loss`` and ``mask_ratio`` (logged, not summed).
        """
        ids = self.tokenize(inputs)
        B, L = ids.shape
        mask, drop = self.sample_masks(B, L, ids.device)
        logits = self.backbone(ids, mask, drop)  # (B, L, K)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), ids.flatten(),
                             label_smoothing=self.label_smoothing, reduction='none').view(B, L)
        loss = (ce * mask).sum() / mask.sum()
        return dict(loss=loss, mask_ratio=mask.mean().detach())
