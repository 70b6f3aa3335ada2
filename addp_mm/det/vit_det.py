"""The ADDP encoder as a ViTDet-style detection backbone (registered in mmdet's MODELS).

ViTDet (Li et al., "Exploring Plain Vision Transformer Backbones for Object Detection", ECCV 2022)
keeps the pre-trained plain ViT and only changes how it is run at high resolution: most blocks
attend inside non-overlapping windows, a few blocks (one per quarter of the depth) attend globally,
the absolute position embedding of the pre-training grid is interpolated to the input grid, and the
class token is dropped. The last feature map (stride 16) feeds a simple feature pyramid
(:class:`~addp_mm.det.simple_fpn.SimpleFeaturePyramid`).

:class:`ADDPViTDet` is :class:`~addp_mm.models.backbones.ADDPViT` (itself mmpretrain's
``VisionTransformer``) with window blocks and without class token, pre-norm and final norm: the
stem, the size parsing, the initialisation, the parameter names and the layer numbering of
layer-wise lr decay are ADDPViT's, so the ``backbone.*`` file written by
``tools/model_converters/convert_addp.py --backbone-only`` loads with no missing key.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmpretrain.models.utils import resize_pos_embed

from ..models.backbones.addp_vit import ADDPViT
from ..models.utils.transformer import TransformerBlock


def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Split a token map into non-overlapping windows, zero-padding the bottom/right edges.

    Args:
        x (Tensor): (B, H, W, C).
        window_size (int): Window side S.

    Returns:
        tuple: windows (B * nH * nW, S * S, C) and the padded size (Hp, Wp).
    """
    B, H, W, C = x.shape
    pad_h, pad_w = (-H) % window_size, (-W) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    # (B, nH, S, nW, S, C) -> (B, nH, nW, S, S, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, C)
    return windows, (Hp, Wp)


def window_unpartition(windows: torch.Tensor, window_size: int, padded_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows (Tensor): (B * nH * nW, S * S, C).
        window_size (int): Window side S.
        padded_hw (tuple[int, int]): (Hp, Wp) returned by :func:`window_partition`.
        hw (tuple[int, int]): (H, W) before padding.

    Returns:
        Tensor: (B, H, W, C).
    """
    Hp, Wp = padded_hw
    H, W = hw
    nH, nW = Hp // window_size, Wp // window_size
    B = windows.shape[0] // (nH * nW)
    x = windows.view(B, nH, nW, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, -1)
    return x[:, :H, :W].contiguous()


class WindowTransformerBlock(TransformerBlock):
    """addp_mm's ViT block, optionally with window attention (ViTDet).

    The parameters are those of :class:`~addp_mm.models.utils.transformer.TransformerBlock`
    (``ln1``, ``attn``, ``ln2``, ``ffn``), so pre-trained block weights load unchanged. With
    ``window_size == 0`` the forward is the parent's. Otherwise only the attention runs per window:
    as in ViTDet, the normalised tokens are partitioned (zero padding at the bottom/right edges
    takes part in the attention, unmasked), while the residuals, the MLP and stochastic depth act on
    the whole image, so drop-path still drops a block per image and not per window.

    Args:
        embed_dims (int): Channels D.
        num_heads (int): Attention heads.
        window_size (int): Window side in tokens; 0 for global attention.
        **kwargs: Other :class:`TransformerBlock` arguments.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 0, **kwargs) -> None:
        super().__init__(embed_dims, num_heads, **kwargs)
        if window_size < 0:
            raise ValueError(f'window_size must be >= 0 (0 = global attention), got {window_size}.')
        self.window_size = window_size

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        """Run the block.

        Args:
            x (Tensor): (B, H*W, D) tokens in row-major order.
            hw (tuple[int, int]): The token grid (H, W).

        Returns:
            Tensor: (B, H*W, D).
        """
        if self.window_size == 0:
            return super().forward(x)
        B, N, D = x.shape
        windows, padded_hw = window_partition(self.ln1(x).view(B, *hw, D), self.window_size)
        y = window_unpartition(self.attn(windows), self.window_size, padded_hw, hw)
        x = x + self.drop_path(y.view(B, N, D))
        return x + self.drop_path(self.ffn(self.ln2(x)))


@MODELS.register_module()
class ADDPViTDet(ADDPViT):
    """The ADDP ViT encoder as a ViTDet backbone: window + global attention, no class token.

    ``x -> patch embed (stride p) -> + pos_embed (pre-training grid, bicubic-resized to the input
    grid, class entry dropped) -> blocks -> (B, D, H/p, W/p)``. There is no pre-norm and no final
    norm: the official ADDP fine-tuning drops both (docs/method.md §6), and ViTDet feeds the last
    block's output to the pyramid.

    Args:
        arch (str | dict): ``'base'``, ``'large'``, ``'tiny'`` or a dict with ``embed_dims``,
            ``num_layers``, ``num_heads``. Defaults to ``'base'``.
        patch_size (int): Defaults to 16.
        pretrain_img_size (int): Input size of the pre-training (256 for ADDP); fixes the shape of
            ``pos_embed`` (1, 1 + (pretrain_img_size / p)^2, D), the shape in the checkpoint. A
            checkpoint of another size is resized to it on load.
        in_channels (int): Defaults to 3.
        mlp_ratio (float): Defaults to 4.
        drop_path_rate (float): Stochastic depth, increasing linearly over the blocks.
            Defaults to 0.1 (ViTDet ViT-B).
        window_size (int): Window side in tokens; 0 disables window attention everywhere.
            Defaults to 16: the pre-training grid (ViTDet uses 14 = 224 / 16 for the same reason).
        global_attn_indexes (Sequence[int], optional): Blocks that attend globally; the others use
            windows. None: the last block of each quarter of the depth, ViTDet's choice ((2, 5, 8,
            11) for ViT-B, (5, 11, 17, 23) for ViT-L). Defaults to None.
        out_indices (Sequence[int]): Blocks whose output is returned (negative counts from the
            end). Defaults to (-1,): only the last map, as ViTDet.
        with_cp (bool): Gradient checkpointing per block (saves memory at 1024 px).
            Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
            loads a converted backbone file (mmengine loads non-strictly: the configs add
            ``CheckPretrainedKeysHook``, which fails training if a tensor was missing). None:
            random (official ADDP) initialisation.
    """
    layer_type = WindowTransformerBlock

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 patch_size: int = 16,
                 pretrain_img_size: int = 256,
                 in_channels: int = 3,
                 mlp_ratio: float = 4.,
                 drop_path_rate: float = 0.1,
                 window_size: int = 16,
                 global_attn_indexes: Optional[Sequence[int]] = None,
                 out_indices: Sequence[int] = (-1, ),
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        if pretrain_img_size % patch_size:
            raise ValueError(f'pretrain_img_size {pretrain_img_size} must be divisible by '
                             f'patch_size {patch_size}.')
        num_layers = self.parse_arch(arch)['num_layers']
        if global_attn_indexes is None:
            global_attn_indexes = [i for i in ((k + 1) * num_layers // 4 - 1 for k in range(4))
                                   if i >= 0]
        for name, idx in (('global_attn_indexes', global_attn_indexes),
                          ('out_indices', out_indices)):
            if any(not -num_layers <= i < num_layers for i in idx):
                raise ValueError(f'{name} {list(idx)} out of range for {num_layers} blocks.')
        global_attn_indexes = sorted({i % num_layers for i in global_attn_indexes})
        # ViTDet's linear stochastic depth (Python floats, not ADDPViT's float32 linspace)
        dpr = [drop_path_rate * i / max(num_layers - 1, 1) for i in range(num_layers)]
        layer_cfgs = [
            dict(window_size=0 if i in global_attn_indexes else window_size, drop_path_rate=dpr[i])
            for i in range(num_layers)
        ]
        # The class entry of pos_embed is kept only so the pre-trained tensor loads as it is; it
        # is unused.
        super().__init__(arch=arch, img_size=pretrain_img_size, patch_size=patch_size,
                         in_channels=in_channels, mlp_ratio=mlp_ratio, drop_rate=0.,
                         normalize_input=False, with_cls_token=False, pre_norm=False,
                         final_norm=False, layer_cfgs=layer_cfgs, init_cfg=init_cfg)
        self.pretrain_grid = (pretrain_img_size // patch_size, ) * 2
        self.with_cp = with_cp
        self.global_attn_indexes = global_attn_indexes
        self.out_indices = sorted({i % num_layers for i in out_indices})
        self._register_load_state_dict_pre_hook(self._resize_pos_embed_on_load)

    def _resize_pos_embed_on_load(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load-state-dict pre-hook: a square-grid ``pos_embed`` of another pre-training size
        (e.g. 224 px, 14 x 14) is resized bicubically to ``pretrain_img_size`` before loading."""
        key = prefix + 'pos_embed'
        if key not in state_dict or state_dict[key].shape == self.pos_embed.shape:
            return
        src = state_dict[key]
        side = math.isqrt(max(src.shape[1] - 1, 0)) if src.ndim == 3 else 0
        if side == 0 or side * side != src.shape[1] - 1 or src.shape[2] != self.embed_dims:
            return  # not a (1, 1 + s^2, D) tensor: leave it to load_state_dict to report
        state_dict[key] = resize_pos_embed(src, (side, side), self.pretrain_grid, mode='bicubic',
                                           num_extra_tokens=1)
        MMLogger.get_current_instance().info(
            f'ADDPViTDet: resized the loaded pos_embed from a {side} x {side} to a '
            f'{self.pretrain_grid[0]} x {self.pretrain_grid[1]} grid.')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Encode a batch of (normalised) images.

        Args:
            x (Tensor): (B, 3, H, W), H and W multiples of ``patch_size``.

        Returns:
            tuple[Tensor]: one (B, D, H/p, W/p) map per ``out_indices`` entry.
        """
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f'input size {tuple(x.shape[-2:])} is not divisible by the patch size '
                             f'{self.patch_size}; pad the batch (e.g. data_preprocessor '
                             'pad_size_divisor=32 or BatchFixedSizePad).')
        B = x.shape[0]
        x, hw = self.embed(x)  # (B, H*W, D), (H/p, W/p)
        # Bicubic resize of the pre-training grid at every forward, as ViTDet (the tensor keeps
        # its checkpoint shape, and the same module serves any input size).
        pos = resize_pos_embed(self.pos_embed, self.pretrain_grid, hw, mode='bicubic',
                               num_extra_tokens=1)
        x = x + pos[:, 1:]
        outs = []
        for i, layer in enumerate(self.layers):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(layer, x, hw, use_reentrant=False)
            else:
                x = layer(x, hw)
            if i in self.out_indices:
                outs.append(x.transpose(1, 2).reshape(B, self.embed_dims, *hw))
        return tuple(outs)
