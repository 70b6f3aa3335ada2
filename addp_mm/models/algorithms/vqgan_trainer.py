"""Training a VQGAN tokenizer (MaskGIT architecture) from scratch, read top to bottom.

One step: encode, quantize (nearest code, straight-through estimator), decode; reconstruction +
codebook + commitment losses (+ optional LPIPS and PatchGAN losses); the codebook's health (usage
over a window, perplexity) is logged, and codes left unused for a while are restarted from encoder
outputs of the batch.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine import dist
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.registry import MODELS

from ..losses.adversarial import hinge_d_loss, hinge_g_loss


class CodebookMonitor(nn.Module):
    """Codebook health: usage over a window of steps, perplexity, and dead-code restart.

    Counts are summed over all processes, and restarted vectors are chosen on rank 0 and
    broadcast, so every process keeps the same codebook under DDP.

    Args:
        n_embed (int): Codebook size.
        usage_window (int): ``usage`` = fraction of codes used in the last ``usage_window`` steps.
        dead_after (int): A code unused for this many steps is restarted (0 disables).
    """

    def __init__(self, n_embed: int, usage_window: int = 100, dead_after: int = 200) -> None:
        super().__init__()
        self.usage_window = usage_window
        self.dead_after = dead_after
        # Persistent so that a resumed run keeps its history.
        self.register_buffer('step', torch.zeros((), dtype=torch.long))
        self.register_buffer('last_used', torch.full((n_embed, ), -1, dtype=torch.long))
        self.register_buffer('last_reset', torch.zeros(n_embed, dtype=torch.long))

    @torch.no_grad()
    def update(self, ids: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Record the codes of one training step.

        Args:
            ids (Tensor): (B, L) code ids of the batch.

        Returns:
            dict: ``codebook_usage`` (fraction of codes used in the window) and
            ``codebook_perplexity`` (exp of the entropy of this step's code histogram; equals the
            codebook size when all codes are used equally), both 0-d tensors.
        """
        counts = torch.bincount(ids.flatten(), minlength=self.last_used.numel()).float()
        dist.all_reduce(counts)
        self.step += 1
        self.last_used[counts > 0] = self.step
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        seen = (self.last_used >= 0) & (self.step - self.last_used < self.usage_window)
        return dict(codebook_usage=seen.float().mean(), codebook_perplexity=perplexity)

    @torch.no_grad()
    def restart(self, codebook: torch.Tensor, latents: torch.Tensor,
                all_codes: bool = False) -> int:
        """Re-initialise dead codes from random encoder outputs of the batch.

        Args:
            codebook (Tensor): (n_embed, C) codebook weight, changed in place.
            latents (Tensor): (N, C) encoder outputs of the batch.
            all_codes (bool): Restart every code (data-dependent initialisation).

        Returns:
            int: Number of codes restarted.
        """
        last = torch.maximum(self.last_used, self.last_reset)
        if all_codes:
            dead = torch.ones_like(last, dtype=torch.bool)
        elif self.dead_after > 0:
            dead = self.step - last >= self.dead_after
        else:
            return 0
        n = int(dead.sum())
        if n == 0:
            return 0
        pick = torch.randint(latents.shape[0], (n, ), device=latents.device)
        new = latents[pick].to(codebook.dtype)
        # With fewer vectors than codes the same latent is drawn twice; a little noise separates
        # the copies so they can drift apart.
        new = new + 1e-3 * new.std() * torch.randn_like(new)
        dist.broadcast(new, src=0)
        codebook[dead] = new
        self.last_reset[dead] = self.step
        return n


@MODELS.register_module()
class VQGANTrainer(BaseModel):
    """Trains a :class:`~addp_mm.models.tokenizers.VQGAN` from scratch.

    Losses (all averaged over pixels / latent entries):

    - ``loss_rec``: L1 or L2 between the reconstruction and the image, times ``rec_weight``;
    - ``loss_codebook``: ``||z_q - sg(z)||^2`` (moves codes towards encoder outputs);
    - ``loss_commit``: ``beta ||z - sg(z_q)||^2`` (keeps the encoder near its codes), beta 0.25;
    - ``loss_perceptual`` (optional, local VGG/LPIPS weights): LPIPS times ``perceptual_weight``;
    - ``loss_g_adv`` / ``loss_disc`` (optional): hinge PatchGAN losses from step ``disc_start``,
      with a fixed ``disc_weight`` (no adaptive weight, unlike taming-transformers).

    The decoder reads the straight-through map ``z + sg(z_q - z)``. Also logged (not summed into
    the loss, since their names contain no ``'loss'``): ``codebook_usage``,
    ``codebook_perplexity`` and ``codebook_restarts``.

    Checkpoints hold the network under ``vqgan.*``, which ``VQGANTokenizer(checkpoint=...)``
    loads.

    With a discriminator, ``optim_wrapper`` must be an :class:`OptimWrapperDict` with ``vqgan``
    and ``discriminator`` entries (``constructor='SubmoduleOptimWrapperConstructor'``,
    :class:`~addp_mm.engine.optimizers.SubmoduleOptimWrapperConstructor`).

    Args:
        vqgan (dict): Config of the :class:`VQGAN` network.
        rec_loss (str): ``'l1'`` or ``'l2'``. Defaults to ``'l1'``.
        rec_weight (float): Defaults to 1.
        codebook_weight (float): Weight of codebook + commitment terms. Defaults to 1.
        beta (float): Commitment weight. Defaults to 0.25.
        perceptual_loss (dict, optional): e.g. ``dict(type='VGGPerceptualLoss',
            vgg_checkpoint=..., lpips_checkpoint=...)``. None disables it.
        perceptual_weight (float): Defaults to 1.
        discriminator (dict, optional): e.g. ``dict(type='PatchGANDiscriminator')``. None
            disables adversarial training.
        disc_weight (float): Weight of the generator's adversarial loss. Defaults to 0.1.
        disc_start (int): First step with adversarial losses. Defaults to 0.
        usage_window (int): Window (steps) of the usage statistic. Defaults to 100.
        dead_code_steps (int): Restart codes unused for this many steps; 0 disables.
            Defaults to 200.
        init_codebook_from_data (bool): At the first step, set every code to a random encoder
            output of the batch (a data-dependent initialisation; codes and encoder outputs then
            start on the same scale). Defaults to True.
        data_preprocessor (dict, optional): Must give RGB in [0, 1]. Defaults to
            ``SelfSupDataPreprocessor`` with mean 0 and std 255.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 vqgan: dict,
                 rec_loss: str = 'l1',
                 rec_weight: float = 1.,
                 codebook_weight: float = 1.,
                 beta: float = 0.25,
                 perceptual_loss: Optional[dict] = None,
                 perceptual_weight: float = 1.,
                 discriminator: Optional[dict] = None,
                 disc_weight: float = 0.1,
                 disc_start: int = 0,
                 usage_window: int = 100,
                 dead_code_steps: int = 200,
                 init_codebook_from_data: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SelfSupDataPreprocessor', mean=[0., 0., 0.],
                                     std=[255., 255., 255.], to_rgb=True)
        if isinstance(data_preprocessor, dict):
            # built from mmpretrain's registry whatever the default scope (as BaseSelfSupervisor)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if rec_loss not in ('l1', 'l2'):
            raise ValueError(f"rec_loss must be 'l1' or 'l2', got {rec_loss!r}.")
        self.vqgan = MODELS.build(vqgan)
        if not self.vqgan.codebook.requires_grad:
            raise ValueError(f'{type(self.vqgan).__name__} is frozen; train the network: '
                             "vqgan=dict(type='VQGAN', ...).")
        self.rec_loss = rec_loss
        self.rec_weight = rec_weight
        self.codebook_weight = codebook_weight
        self.beta = beta
        self.perceptual = None if perceptual_loss is None else MODELS.build(perceptual_loss)
        self.perceptual_weight = perceptual_weight
        self.discriminator = None if discriminator is None else MODELS.build(discriminator)
        self.disc_weight = disc_weight
        self.disc_start = disc_start
        self.init_codebook_from_data = init_codebook_from_data
        self.codebook_monitor = CodebookMonitor(self.vqgan.n_embed, usage_window, dead_code_steps)

    def forward(self,
                inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """``'loss'``: the loss dict of :meth:`loss`; ``'tensor'``: reconstructions
        (B, 3, H, W) clamped to [0, 1]."""
        images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if mode == 'loss':
            return self.loss(images)
        if mode == 'tensor':
            return self.vqgan(images)['rec'].clamp(0, 1)
        raise RuntimeError(f'VQGANTrainer supports the modes "loss" and "tensor", not {mode!r}.')

    def loss(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Generator losses of one step (and the codebook statistics).

        Args:
            images (Tensor): (B, 3, H, W) RGB in [0, 1].

        Returns:
            dict: the losses named above, plus ``codebook_usage``, ``codebook_perplexity`` and
            ``codebook_restarts`` (0-d tensors).
        """
        return self._losses(images)[0]

    def _losses(self, images: torch.Tensor) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """:meth:`loss` and the reconstruction (B, 3, H, W) it was computed from."""
        out = self._forward_with_restarts(images)
        rec, z, z_q = out['rec'], out['z'], out['z_q']
        if self.rec_loss == 'l1':
            loss_rec = F.l1_loss(rec, images)
        else:
            loss_rec = F.mse_loss(rec, images)
        losses = dict(
            loss_rec=self.rec_weight * loss_rec,
            loss_codebook=self.codebook_weight * F.mse_loss(z_q, z.detach()),
            loss_commit=self.codebook_weight * self.beta * F.mse_loss(z, z_q.detach()))
        if self.perceptual is not None:
            losses['loss_perceptual'] = self.perceptual_weight * self.perceptual(rec, images)
        if self.discriminator is not None and self._adversarial_now():
            losses['loss_g_adv'] = self.disc_weight * hinge_g_loss(self.discriminator(rec))
        losses.update(self.codebook_monitor.update(out['ids']))
        losses['codebook_restarts'] = out['restarts']
        return losses, rec

    def _forward_with_restarts(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """:meth:`VQGAN.forward`, restarting dead codes from this batch's encoder outputs first.

        The restart happens before the codebook enters this step's graph, so the in-place write
        is safe for autograd, and the new codes are used (and trained) in this very step.
        """
        vq = self.vqgan
        vq._check_size(images)
        z = vq.encoder(images)
        first = bool(self.codebook_monitor.step == 0) and self.init_codebook_from_data
        latents = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        restarts = self.codebook_monitor.restart(vq.codebook.data, latents, all_codes=first)
        out = vq.forward_latents(z)
        out['restarts'] = torch.tensor(float(restarts))
        return out

    def _adversarial_now(self) -> bool:
        # the monitor's step counts finished steps; this one is step + 1
        return int(self.codebook_monitor.step) + 1 > self.disc_start

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, torch.Tensor]:
        """One optimisation step (two, generator then discriminator, with a discriminator)."""
        if self.discriminator is not None:
            if not isinstance(optim_wrapper, OptimWrapperDict) or \
                    set(optim_wrapper.keys()) != {'vqgan', 'discriminator'}:
                raise TypeError(
                    'VQGANTrainer with a discriminator needs two optimizers: set optim_wrapper = '
                    "dict(constructor='SubmoduleOptimWrapperConstructor', vqgan=dict(...), "
                    'discriminator=dict(...)) (see configs/addp/from_scratch).')
            g_wrapper, d_wrapper = optim_wrapper['vqgan'], optim_wrapper['discriminator']
        else:
            g_wrapper, d_wrapper = optim_wrapper, None

        with g_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            images = data['inputs']
            images = images[0] if isinstance(images, (list, tuple)) else images
            losses, rec = self._losses(images)
        parsed, log_vars = self.parse_losses(losses)
        g_wrapper.update_params(parsed)

        if d_wrapper is not None and 'loss_g_adv' in losses:
            # the generator's adversarial loss also left gradients in the discriminator
            d_wrapper.zero_grad()
            with d_wrapper.optim_context(self.discriminator):
                loss_disc = hinge_d_loss(self.discriminator(images),
                                         self.discriminator(rec.detach()))
            d_wrapper.update_params(loss_disc)
            log_vars['loss_disc'] = loss_disc.detach()
        return log_vars

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            # taming-transformers' codebook init; irrelevant with init_codebook_from_data
            n = self.vqgan.n_embed
            nn.init.uniform_(self.vqgan.codebook, -1. / n, 1. / n)
