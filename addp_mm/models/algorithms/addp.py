"""ADDP's trainable network and its pre-training (Tian et al., ICLR 2024), read top to bottom.

:class:`ADDPNetwork` is the one network, image + reliable tokens -> token logits; :class:`ADDP`
(pre-training) and :class:`~addp_mm.generation.ADDPGenerator` (generation, inpainting) are that
network with their own surroundings, with the same state-dict layout (``backbone.*``, ``neck.*``,
``head.*``, ``target_generator.vqgan.*``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.masking import nested_masks, num_masked, training_ratio_grid


class ADDPNetwork:
    """The trainable ADDP network: image x_t + reliable tokens -> token logits.

    A mixin for a module that has built ``backbone`` (:class:`ADDPViT`, the pixel encoder),
    ``neck`` (:class:`ADDPTokenDecoder`) and ``head`` (:class:`ADDPHead`) as top-level
    sub-modules; it calls :meth:`tie_head` once after building them. The chain:

    1. the encoder reads the image: (B, 1 + L, D) features;
    2. the token decoder replaces the masked positions by its mask token and appends the
       embeddings of the reliable tokens: (B, 1 + L + K, D) features (K reliable tokens);
    3. the head scores every position against the decoder's token embeddings: logits over the
       whole vocabulary (codes, class slots, mask id).

    Pre-training scores the result as it is; generation asks for the codebook logits of the grid
    positions only, and shares the first step's pass (see :meth:`network_logits`).
    See docs/method.md §3 (pre-training) and §4 (generation).
    """

    def tie_head(self) -> None:
        """Give the head the decoder's token embedding (the logits are tied to it)."""
        self.head.tie_embedding(self.neck.token_emb)

    def compile_network(self, compile: Union[bool, dict],
                        extra: Sequence[torch.nn.Module] = ()) -> None:
        """``torch.compile`` the encoder, decoder and head (and ``extra`` modules) in place.

        ``nn.Module.compile`` keeps every parameter name, so checkpoints, ``load_from`` and the
        layer-decay groups are unchanged. Off by default: on the CPUs measured it is slower than
        eager and its first call compiles for minutes (benchmarks/README.md, "torch.compile").

        Args:
            compile (bool | dict): False does nothing; True compiles with PyTorch's defaults
                (inductor); a dict is passed to ``torch.compile`` (e.g. ``dict(mode=
                'max-autotune', dynamic=True)``).
            extra (Sequence[nn.Module]): More modules to compile (generation: the VQGAN decoder).
        """
        if not compile:
            return
        kwargs = dict(compile) if isinstance(compile, dict) else {}
        for module in (self.backbone, self.neck, self.head, *extra):
            module.compile(**kwargs)

    def network_logits(self,
                       x: Optional[torch.Tensor],
                       ids: torch.Tensor,
                       mask: torch.Tensor,
                       num_codes: Optional[int] = None,
                       share_all_masked: bool = False) -> torch.Tensor:
        """Token logits for (image, ids, mask).

        Args:
            x (Tensor | None): (B, 3, H, W) image in [0, 1] (the encoder clamps it). None is only
                valid when every position is masked (the decoder input then does not depend on
                it, and the encoder is skipped).
            ids (Tensor): (B, L) z_0 ids, read at unmasked (reliable) positions.
            mask (Tensor): (B, L), 1 = masked; every row must have the same count.
            num_codes (int, optional): Score only the L grid positions and keep the first
                ``num_codes`` vocabulary entries (the codebook): (B, L, num_codes). None (the
                default) scores every position over the whole vocabulary.
            share_all_masked (bool): When every position of the batch is masked, skip the
                encoder and run the decoder once for the whole batch (its input is then the same
                for every image; the result is expanded). Only for eval mode, where dropout is
                off. Defaults to False.

        Returns:
            Tensor: (B, 1 + L + K, vocab) logits, K = unmasked count; or (B, L, num_codes).
        """
        B, L = mask.shape
        shared = share_all_masked and bool(mask.bool().all())
        if shared:
            feats = self.neck(None, ids[:1], mask[:1])
        else:
            if x is None and not bool(mask.bool().all()):
                raise ValueError('an image x is needed when some tokens are unmasked (decided).')
            feats = self.neck(None if x is None else self.backbone(x)[0], ids, mask)
        if num_codes is None:
            logits = self.head(feats)
        else:
            # the head is per position: score only the grid positions, keep the codebook entries
            logits = self.head(feats[:, 1:L + 1])[..., :num_codes]
        return logits.expand(B, -1, -1) if shared else logits


@MODELS.register_module()
class ADDP(ADDPNetwork, BaseSelfSupervisor):
    """Alternating Denoising Diffusion Process, pre-training.

    One step (:meth:`loss`): tokenize the image (z_0), draw two nested masks, let the frozen
    token predictor make the unreliable tokens and the target, decode x_t with the frozen VQGAN
    (:class:`ADDPTargetGenerator`), then run the network (:meth:`network_logits`: encode x_t,
    decode tokens, score them) and score the logits against the target (``head.loss``).

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
            head; see :meth:`ADDPNetwork.compile_network`). ``tools/train.py --compile`` sets it.
            Defaults to False.
        data_preprocessor (dict, optional): Should scale images to [0, 1] RGB.
    """

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
        super().__init__(backbone=backbone, neck=neck, head=head,
                         target_generator=target_generator,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        ratios, probs = training_ratio_grid(mask_ratio_steps, *mask_ratio_range, mask_ratio_mu,
                                            mask_ratio_std)
        self.register_buffer('mask_ratios', ratios, persistent=False)
        self.register_buffer('mask_ratio_probs', probs, persistent=False)
        self.max_step_offset = max_step_offset
        self.tie_head()
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

    def predict_logits(self, x: Optional[torch.Tensor], ids: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """Token logits of the trainable network for (x_t, z_0 ids, mask_t).

        Args:
            x (Tensor | None): (B, 3, H, W) image in [0, 1]; None (skips the encoder) is only
                valid when every position is masked.
            ids (Tensor): (B, L) z_0 ids.
            mask (Tensor): (B, L), 1 = masked.

        Returns:
            Tensor: (B, 1 + L + K, vocab) logits (see :meth:`network_logits`).
        """
        return self.network_logits(x, ids, mask)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """One ADDP training step.

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
        logits = self.predict_logits(target['x_t'], target['ids'], mask_t)
        return dict(loss=self.head.loss(logits, target['target'], mask_t))
