"""VQGAN tokenizer (MaskGIT architecture, as released with MAGE): network and frozen wrapper.

:class:`VQGAN` is the network (trained from scratch by
:class:`~addp_mm.models.algorithms.VQGANTrainer`);
:class:`VQGANTokenizer` is the same network, frozen, as used by MAGE and ADDP. Key names follow
taming-transformers, so the official ``vqgan_jax_strongaug.ckpt`` and the checkpoints of the trainer
both load into the frozen tokenizer.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...utils.grid import grid_side
from ..utils.frozen import FrozenCheckpointMixin


def _norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """GroupNorm -> swish -> conv3x3 -> GroupNorm -> swish -> dropout -> conv3x3 (no conv biases).

    When the channel count changes, the released weights were trained with the 1x1
    ``nin_shortcut`` applied to the block's *output* ``h`` (not to its input), returning
    ``shortcut(h) + h``; kept here for weight compatibility.

    Without autograd (the frozen tokenizer, generation) the activations and the residual sum are
    computed in place: bit-identical values, less memory traffic (about 10% of a decode on CPU).
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.,
                 norm_groups: int = 32) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        else:
            self.nin_shortcut = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = not torch.is_grad_enabled()
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        h = self.conv2(self.dropout(F.silu(self.norm2(h), inplace=inplace)))
        if self.nin_shortcut is not None:
            out = self.nin_shortcut(h)
            return out.add_(h) if inplace else out + h
        return h.add_(x) if inplace else x + h


class _Mid(nn.Module):

    def __init__(self, channels: int, dropout: float, norm_groups: int = 32) -> None:
        super().__init__()
        self.block_1 = ResBlock(channels, channels, dropout, norm_groups)
        self.block_2 = ResBlock(channels, channels, dropout, norm_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.block_1(x))


class _Upsample(nn.Module):

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class VQEncoder(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> latent (B, z_channels, H / 2^(L-1), W / 2^(L-1))."""

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, in_channels: int,
                 z_channels: int, dropout: float, norm_groups: int = 32) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        in_ch = ch
        for i, mult in enumerate(ch_mult):
            level = nn.Module()
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(in_ch, ch * mult, dropout, norm_groups))
                in_ch = ch * mult
            level.block = nn.ModuleList(blocks)
            self.down.append(level)
        self.mid = _Mid(in_ch, dropout, norm_groups)
        self.norm_out = _norm(in_ch, norm_groups)
        self.conv_out = nn.Conv2d(in_ch, z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for block in level.block:
                h = block(h)
            if i != len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VQDecoder(nn.Module):
    """Latent (B, z_channels, h, w) -> image (B, out_ch, h * 2^(L-1), w * 2^(L-1)), not clamped."""

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, out_ch: int,
                 z_channels: int, dropout: float, norm_groups: int = 32) -> None:
        super().__init__()
        in_ch = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, in_ch, 3, padding=1)
        self.mid = _Mid(in_ch, dropout, norm_groups)
        up = []
        for i in reversed(range(len(ch_mult))):
            level = nn.Module()
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(in_ch, ch * ch_mult[i], dropout, norm_groups))
                in_ch = ch * ch_mult[i]
            level.block = nn.ModuleList(blocks)
            if i != 0:
                level.upsample = _Upsample(in_ch)
            up.insert(0, level)  # keep the official indexing: up[0] is the full-resolution level
        self.up = nn.ModuleList(up)
        self.norm_out = _norm(in_ch, norm_groups)
        self.conv_out = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for block in level.block:
                h = block(h)
            if i != 0:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup (L2)."""

    def __init__(self, n_embed: int, embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, C, h, w) -> ids (B, h*w) of the nearest codes, row-major (not differentiable)."""
        B, C, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, C)
        codebook = self.embedding.weight
        # ||z||^2 - 2 z.e + ||e||^2, the same expansion as the official quantizer.
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() +
                codebook.pow(2).sum(1)[None])
        return dist.argmin(1).view(B, h * w)

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """z: (B, C, h, w) -> quantized (B, C, h, w), ids (B, h*w) row-major.

        The quantized map is a differentiable lookup of the codebook (gradients reach the codebook,
        not ``z``; see :meth:`VQGAN.forward` for the straight-through estimator).
        """
        B, _, h, w = z.shape
        ids = self.nearest(z)
        return self.lookup(ids.view(B, h, w)), ids

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, h, w) -> codebook vectors (B, C, h, w)."""
        return self.embedding(ids).permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class VQGAN(BaseModule):
    """VQGAN network (MaskGIT architecture, docs/method.md §2.1) at any resolution, depth and size.

    Encoder -> nearest-code quantizer -> decoder, with the released model's quirks (bias-free
    ResBlock convs, the 1x1 shortcut on the block output, average-pool downsampling, no attention,
    no ``quant_conv``). This class is trainable; :class:`VQGANTokenizer` is the frozen version and
    loads the checkpoints of :class:`~addp_mm.models.algorithms.VQGANTrainer` (keys ``vqgan.*``).

    The default sizes are those of the released ``vqgan_jax_strongaug.ckpt`` (ch 128, 5 levels,
    256x256 -> 16x16 tokens, codebook 1024 x 256).

    Args:
        ch (int): Base channels (a multiple of 32: GroupNorm has 32 groups). Defaults to 128.
        ch_mult (Sequence[int]): Channel multiplier per level; ``len - 1`` halvings.
            Defaults to (1, 1, 2, 2, 4).
        num_res_blocks (int): ResBlocks per level. Defaults to 2.
        z_channels (int): Latent channels. Defaults to 256.
        embed_dim (int): Codebook vector size (must equal ``z_channels``). Defaults to 256.
        n_embed (int): Codebook size. Defaults to 1024.
        resolution (int): Image size the tokenizer is used at. Defaults to 256.
        in_channels (int): Input channels. Defaults to 3.
        out_ch (int): Output channels. Defaults to 3.
        dropout (float): ResBlock dropout. Defaults to 0.
        norm_groups (int): GroupNorm groups. The released model has 32 groups of 4 channels at
            ch 128; a narrower network needs fewer groups (ch 32: 8), since GroupNorm with one
            channel per group normalises away each image's per-channel means (its colours).
            Defaults to 32.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 ch: int = 128,
                 ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2,
                 z_channels: int = 256,
                 embed_dim: int = 256,
                 n_embed: int = 1024,
                 resolution: int = 256,
                 in_channels: int = 3,
                 out_ch: int = 3,
                 dropout: float = 0.,
                 norm_groups: int = 32,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dim != z_channels:
            raise ValueError(f'embed_dim ({embed_dim}) must equal z_channels ({z_channels}): the '
                             'MaskGIT VQGAN has no quant_conv.')
        if ch % norm_groups:
            raise ValueError(f'ch ({ch}) must be a multiple of norm_groups ({norm_groups}).')
        self.n_embed = n_embed
        self.embed_dim = embed_dim
        self.resolution = resolution
        self.downsample = 2**(len(ch_mult) - 1)
        if resolution % self.downsample:
            raise ValueError(f'resolution ({resolution}) must be divisible by the downsampling '
                             f'2^(len(ch_mult) - 1) = {self.downsample}.')
        self.encoder = VQEncoder(ch, ch_mult, num_res_blocks, in_channels, z_channels, dropout,
                                 norm_groups)
        self.decoder = VQDecoder(ch, ch_mult, num_res_blocks, out_ch, z_channels, dropout,
                                 norm_groups)
        self.quantize = VectorQuantizer(n_embed, embed_dim)

    @property
    def codebook(self) -> torch.Tensor:
        """(n_embed, embed_dim) codebook."""
        return self.quantize.embedding.weight

    @property
    def token_grid(self) -> int:
        """Side of the token grid at :attr:`resolution` (16 for the released model)."""
        return self.resolution // self.downsample

    def _check_size(self, images: torch.Tensor) -> None:
        if images.shape[-1] % self.downsample or images.shape[-2] % self.downsample:
            raise ValueError(f'image size {tuple(images.shape[-2:])} must be divisible by '
                             f'{self.downsample}; resize or crop the input.')

    def encode(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Quantize images.

        Args:
            images (Tensor): (B, 3, H, W) RGB in [0, 1]; H and W divisible by the downsampling.

        Returns:
            tuple: quantized map z_q (B, embed_dim, h, w) and ids (B, h*w) int64, row-major.
        """
        self._check_size(images)
        return self.quantize(self.encoder(images))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent (B, embed_dim, h, w) -> image (B, 3, H, W), not clamped."""
        return self.decoder(z)

    def decode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, h*w) -> image (B, 3, H, W), not clamped."""
        return self.decode(self.ids_to_vectors(ids))

    def ids_to_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, h*w) -> codebook vectors (B, embed_dim, h, w)."""
        B, L = ids.shape
        side = grid_side(L)
        return self.quantize.lookup(ids.view(B, side, side))

    def soft_vectors(self, probs: torch.Tensor) -> torch.Tensor:
        """Probability-weighted codebook vectors.

        Args:
            probs (Tensor): (B, n_embed, h, w) probabilities over the codebook.

        Returns:
            Tensor: (B, embed_dim, h, w).
        """
        return torch.einsum('bnhw,nc->bchw', probs, self.codebook)

    def decode_mixed(self, ids: torch.Tensor, mask: torch.Tensor,
                     probs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decode exact codes at unmasked positions and soft (probability-weighted) vectors at
        masked ones.

        ADDP's token-to-pixel step: the x_t of pre-training (reliable tokens exact, the token
        predictor's distribution at the others) and each image of generation (unmasked tokens
        exact, the network's distribution at masked positions).

        Args:
            ids (Tensor): (B, h*w) ids, read where ``mask`` is 0.
            mask (Tensor): (B, h*w), nonzero = masked: the position takes the soft vector.
            probs (Tensor, optional): (B, n_embed, h, w) probabilities over the codebook
                (:meth:`soft_vectors`). None means a uniform distribution: the mean codebook
                vector (the first image of inpainting, which must not see the masked pixels).

        Returns:
            Tensor: (B, 3, H, W) decoded image, not clamped.
        """
        hard = self.ids_to_vectors(ids)  # (B, C, h, w)
        B, C, h, w = hard.shape
        if probs is None:
            soft_z = self.codebook.mean(0).to(hard.dtype).view(1, C, 1, 1).expand_as(hard)
        else:
            soft_z = self.soft_vectors(probs.to(hard.dtype))
        return self.decode(torch.where(mask.view(B, 1, h, w).bool(), soft_z, hard))

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Training pass with the straight-through estimator.

        The decoder reads ``z + sg(z_q - z)``: the value of the quantized map, with the gradient
        of the reconstruction copied to the encoder output (van den Oord et al., 2017).

        Args:
            images (Tensor): (B, 3, H, W) RGB in [0, 1].

        Returns:
            dict: ``rec`` (B, 3, H, W) reconstruction (not clamped), ``z`` (B, C, h, w) encoder
            output, ``z_q`` (B, C, h, w) codebook vectors (differentiable w.r.t. the codebook),
            ``ids`` (B, h*w) code ids.
        """
        self._check_size(images)
        return self.forward_latents(self.encoder(images))

    def forward_latents(self, z: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The part of :meth:`forward` after the encoder: quantize, then decode ``z + sg(z_q - z)``.

        Args:
            z (Tensor): (B, C, h, w) encoder output.

        Returns:
            dict: as :meth:`forward`.
        """
        z_q, ids = self.quantize(z)
        rec = self.decoder(z + (z_q - z).detach())  # straight-through estimator
        return dict(rec=rec, z=z, z_q=z_q, ids=ids)


@MODELS.register_module()
class VQGANTokenizer(FrozenCheckpointMixin, VQGAN):
    """Frozen :class:`VQGAN` that maps images to token ids and back (used by MAGE and ADDP).

    Parameters have ``requires_grad=False``, the module stays in eval mode under ``model.train()``
    and its methods run without gradients. When ``checkpoint`` is given, its weights are loaded in
    :meth:`init_weights` after any parent initialisation, so a parent ``init_cfg`` never overwrites
    them; the load is strict (every tensor present with the configured shape; see
    :class:`~addp_mm.models.utils.frozen.FrozenCheckpointMixin`).

    Args:
        checkpoint (str, optional): Local path of the VQGAN weights: a raw state dict,
            ``{'state_dict': ...}`` (official), ``{'model': ...}`` with ``vqgan.*`` keys (MAGE/ADDP
            release), a :class:`VQGANTrainer` Runner checkpoint (``vqgan.*``), a :class:`MAGE` or
            ADDP Runner checkpoint (``target_generator.*`` / ``target_generator.vqgan.*``). None
            leaves random weights (tests only).
        channels_last (bool): Keep the encoder and decoder convolutions in channels-last memory
            format: the same convolutions, run by oneDNN (CPU) / cuDNN in their faster layout
            (results move by about 1e-6 of their magnitude). Defaults to False.
        **kwargs: The sizes, as :class:`VQGAN` (``ch``, ``ch_mult``, ``num_res_blocks``,
            ``z_channels``, ``embed_dim``, ``n_embed``, ``resolution``, ...); they must be those of
            the checkpoint. ``init_cfg`` is not used for weights; pass ``checkpoint`` instead.
    """

    frozen_name = 'VQGAN tokenizer'
    checkpoint_prefixes = ('', 'vqgan.', 'target_generator.', 'target_generator.vqgan.')
    checkpoint_field = ('model.target_generator.vqgan.checkpoint (ADDP) or '
                        'model.target_generator.checkpoint (MAGE)')
    checkpoint_example = ('the tokenizer `make demo` trains, work_dirs/demo/tokenizer/'
                          'iter_1000.pth, a VQGANTrainer checkpoint, or the official '
                          'vqgan_jax_strongaug.ckpt')

    def __init__(self,
                 checkpoint: Optional[str] = None,
                 channels_last: bool = False,
                 **kwargs) -> None:
        super().__init__(checkpoint=checkpoint, **kwargs)
        if channels_last:
            self.use_channels_last()

    def use_channels_last(self, encoder: bool = True, decoder: bool = True) -> None:
        """Store the convolution weights of the encoder and/or decoder channels-last.

        PyTorch then runs those convolutions (and the activations between them) in channels-last
        layout whatever the layout of the input; loading weights later keeps the layout.
        """
        for part, enabled in ((self.encoder, encoder), (self.decoder, decoder)):
            if enabled:
                part.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`VQGAN.encode`, without gradients."""
        return super().encode(images)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """As :meth:`VQGAN.decode`, without gradients."""
        return super().decode(z)

    @torch.no_grad()
    def decode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """As :meth:`VQGAN.decode_ids`, without gradients."""
        return super().decode_ids(ids)

    @torch.no_grad()
    def decode_mixed(self, ids: torch.Tensor, mask: torch.Tensor,
                     probs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """As :meth:`VQGAN.decode_mixed`, without gradients: (B, 3, H, W), not clamped."""
        return super().decode_mixed(ids, mask, probs)

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        raise RuntimeError('VQGANTokenizer is frozen: use encode/decode. To train a tokenizer, use '
                           "the VQGANTrainer model with vqgan=dict(type='VQGAN', ...).")
