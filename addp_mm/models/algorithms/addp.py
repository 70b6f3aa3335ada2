"""ADDP pre-training (Tian et al., ICLR 2024), read top to bottom.

:class:`ADDP` is the trainable network (:class:`~addp_mm.models.networks.ADDPNetwork`,
``models/networks/addp_network.py``: image + reliable tokens -> token logits) with the surroundings
of pre-training: the mask schedule and the frozen target generator. Its state-dict layout
(``backbone.*``, ``neck.*``, ``head.*``, ``target_generator.*``) is addp_mm's checkpoint layout
(docs/method.md §8).
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..networks.addp_network import ADDPNetwork, build_network_parts
from ..target_generators.addp_target import ADDPTargetGenerator
from ..utils.masking import nested_masks, num_masked, training_ratio_grid


@MODELS.register_module()
class ADDP(ADDPNetwork, BaseSelfSupervisor):
    """Alternating Denoising Diffusion Process, pre-training.

    One step (:meth:`loss`): draw two nested masks, tokenize the image (z_0), let the frozen
    token predictor make the unreliable tokens and the target, decode x_t with the frozen VQGAN
    (:class:`ADDPTargetGenerator`), then run the network (:meth:`forward_logits`: encode x_t,
    decode tokens, score them) and score the logits against the target (``head.loss``).

    ``target_generator`` here is the frozen VQGAN + token predictor
    (:class:`ADDPTargetGenerator`); docs/method.md §1.3 lists its meaning in every model.

    Args:
        backbone (dict): :class:`ADDPViT` config (the pixel encoder).
        neck (dict): :class:`ADDPTokenDecoder` config.
        head (dict): :class:`ADDPHead` config.
        target_generator (dict): :class:`ADDPTargetGenerator` config (frozen VQGAN + predictor).
        mask_ratio_steps (int): Resolution of the mask-ratio grid. Defaults to 100.
        mask_ratio_range (tuple): Kept grid ratios [low, high). Defaults to (0.5, 1.0).
        mask_ratio_mu (float): Mean of the truncated normal over ratios. Defaults to 0.55.
        mask_ratio_std (float): Its std. Defaults to 0.25.
        max_step_offset (int): The next step is 1..max_step_offset grid points noisier.
            Defaults to 5.
        compile (bool | dict): ``torch.compile`` the trainable network (encoder, decoder,
            head; see :meth:`~addp_mm.models.networks.ADDPNetwork.compile_network`).
            ``tools/train.py --compile`` sets it. Defaults to False.
        data_preprocessor (dict, optional): Should scale images to [0, 1] RGB.
    """

    target_generator: ADDPTargetGenerator

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 target_generator: dict,
                 mask_ratio_steps: int = 100,
                 mask_ratio_range: Tuple[float, float] = (0.5, 1.0),
                 mask_ratio_mu: float = 0.55,
                 mask_ratio_std: float = 0.25,
                 max_step_offset: int = 5,
                 compile: Union[bool, dict] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(**build_network_parts(backbone, neck, head),
                         target_generator=target_generator,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        ratios, probs = training_ratio_grid(mask_ratio_steps, *mask_ratio_range, mask_ratio_mu,
                                            mask_ratio_std)
        self.register_buffer('mask_ratios', ratios, persistent=False)
        self.register_buffer('mask_ratio_probs', probs, persistent=False)
        self.max_step_offset = max_step_offset
        self.compile_network(compile)

    def sample_masks(self, batch_size: int, num_tokens: int,
                     device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw (mask_t, mask_next) for a batch: one ratio and offset per batch, nested
        per-sample masks (docs/method.md §3.2, §3.3).

        Returns:
            tuple: two (B, L) float masks, 1 = masked, mask_t a subset of mask_next.
        """
        i = int(torch.multinomial(self.mask_ratio_probs.float().cpu(), 1))
        j = min(i + int(torch.randint(1, self.max_step_offset + 1, ())), len(self.mask_ratios) - 1)
        n_t = num_masked(float(self.mask_ratios[i]), num_tokens)
        n_next = num_masked(float(self.mask_ratios[j]), num_tokens)
        noise = torch.rand(batch_size, num_tokens, device=device)
        return nested_masks(noise, n_t, n_next)

    def extract_feat(self, inputs: torch.Tensor, **kwargs) -> Tuple[torch.Tensor]:
        """Encoder features of images in [0, 1]: a tuple with (B, 1 + L, D)."""
        return self.backbone(inputs)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One ADDP training step (docs/method.md §3). The parts it calls, in order:

        1. :meth:`sample_masks` (this file, with ``models/utils/masking.py``): mask_t inside
           mask_next;
        2. ``target_generator`` (``models/target_generators/addp_target.py``, frozen, no
           gradients): the z_0 ids of the images by the VQGAN encoder
           (``models/tokenizers/vqgan.py``), the token predictor's probabilities given mask_next
           and mask_t (``models/predictors/mage_predictor.py``), x_t by the VQGAN decoder
           (``models/tokenizers/vqgan.py``);
        3. :meth:`forward_logits` (``models/networks/addp_network.py``): the encoder reads x_t
           (``models/backbones/addp_vit.py``), the token decoder adds the reliable tokens
           (``models/necks/addp_decoder.py``), the head scores them (``models/heads/addp_head.py``);
        4. ``head.loss`` (``models/heads/addp_head.py``): cross-entropy against the target over
           the positions of mask_t.

        Args:
            inputs (list[Tensor]): One view, (B, 3, H, W) RGB in [0, 1].
            data_samples (list[DataSample]): Unused.

        Returns:
            dict: ``loss``.
        """
        images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        B = images.shape[0]
        num_tokens = self.neck.num_tokens
        mask_t, mask_next = self.sample_masks(B, num_tokens, images.device)
        target = self.target_generator(images, mask_t, mask_next)
        logits = self.forward_logits(target['x_t'], target['ids'], mask_t)
        return dict(loss=self.head.loss(logits, target['target'], mask_t))
