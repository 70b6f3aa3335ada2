"""ADDP pixel encoder: a plain ViT that reads (decoded) images."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS

from ..utils.init import init_official, init_patch_embed
from ..utils.transformer import Dropout, TransformerBlock

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ARCH_ZOO = {
    'tiny': dict(embed_dims=192, num_layers=12, num_heads=3),
    'base': dict(embed_dims=768, num_layers=12, num_heads=12),
    'large': dict(embed_dims=1024, num_layers=24, num_heads=16),
}


def resolve_arch(arch) -> dict:
    """``'tiny'`` / ``'base'`` / ``'large'`` or a dict -> dict(embed_dims, num_layers, num_heads)."""
    if isinstance(arch, str):
        if arch not in ARCH_ZOO:
            raise ValueError(f'unknown arch {arch!r}; choose from {sorted(ARCH_ZOO)} or give a '
                             'dict(embed_dims=..., num_layers=..., num_heads=...).')
        return ARCH_ZOO[arch]
    missing = {'embed_dims', 'num_layers', 'num_heads'} - set(arch)
    if missing:
        raise ValueError(f'arch dict misses {sorted(missing)}.')
    return arch


class PatchEmbed(nn.Module):
    """16x16 conv patch embedding, named like mmpretrain's (``projection``)."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H/p * W/p, D)."""
        return self.projection(x).flatten(2).transpose(1, 2)


@MODELS.register_module()
class ADDPViT(BaseBackbone):
    """The ADDP pixel encoder (SPEC 3).

    ``x -> clamp [0, 1] -> ImageNet mean/std -> patch embed + pos -> [cls] -> pre_norm -> dropout ->
    blocks -> ln1``. All positions are encoded (no token dropping).

    Parameter names match mmpretrain's ``VisionTransformer`` (``patch_embed.projection``,
    ``cls_token``, ``pos_embed``, ``layers.i.*``, ``ln1`` for the final norm and ``pre_norm`` for the
    official ``tokenizer_norm``), so the weights load into it for fine-tuning.

    Args:
        arch (str | dict): ``'base'``, ``'large'``, ``'tiny'`` or a dict with ``embed_dims``,
            ``num_layers``, ``num_heads``.
        img_size (int): Input size. Defaults to 256.
        patch_size (int): Defaults to 16.
        drop_rate (float): Dropout after the pre-norm and inside every block (official 0.1).
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        normalize_input (bool): Clamp to [0, 1] and apply ImageNet mean/std inside the model (the
            pre-training input is a VQGAN decode in [0, 1]). Defaults to True.
        init_cfg (dict, optional): Defaults to the official initialisation.
    """

    def __init__(self,
                 arch='base',
                 img_size: int = 256,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.1,
                 drop_path_rate: float = 0.,
                 normalize_input: bool = True,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch)
        if img_size % patch_size:
            raise ValueError(f'img_size {img_size} must be divisible by patch_size {patch_size}.')
        self.embed_dims = arch['embed_dims']
        self.num_layers = arch['num_layers']
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size)**2
        self.normalize_input = normalize_input
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)

        D = self.embed_dims
        self.patch_embed = PatchEmbed(in_channels, D, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, D))
        self.pre_norm = nn.LayerNorm(D, eps=1e-6)
        self.drop_after_pre_norm = Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.layers = nn.ModuleList(
            TransformerBlock(D, arch['num_heads'], mlp_ratio, drop_rate=drop_rate,
                             drop_path_rate=dpr[i]) for i in range(self.num_layers))
        self.ln1 = nn.LayerNorm(D, eps=1e-6)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        init_official(self)
        for p in (self.cls_token, self.pos_embed):
            nn.init.normal_(p, std=.02)
        init_patch_embed(self.patch_embed.projection)  # bias: PyTorch's default, as official

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Encode images.

        Args:
            x (Tensor): (B, 3, H, W); in [0, 1] when ``normalize_input`` (else already normalized).

        Returns:
            tuple[Tensor]: one tensor (B, 1 + H/p * W/p, D): class token then patch tokens, after
            the final norm.
        """
        if x.shape[-1] % self.patch_size or x.shape[-2] % self.patch_size:
            raise ValueError(f'input size {tuple(x.shape[-2:])} is not divisible by the patch size '
                             f'{self.patch_size}.')
        if self.normalize_input:
            x = (x.clamp(0, 1) - self.mean) / self.std
        x = self.patch_embed(x)  # (B, L, D)
        if x.shape[1] != self.num_patches:
            raise ValueError(f'input gives {x.shape[1]} patches but the model was built for '
                             f'{self.num_patches} (img_size); resize the input.')
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x + self.pos_embed[:, 1:]], dim=1)  # (B, 1+L, D)
        x = self.drop_after_pre_norm(self.pre_norm(x))
        for layer in self.layers:
            x = layer(x)
        return (self.ln1(x), )

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise lr decay, as mmpretrain's ``VisionTransformer`` numbers it.

        Returns:
            tuple[int, int]: (layer id, number of layers + 2).
        """
        num_layers = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name in ('cls_token', 'pos_embed') or name.startswith(('patch_embed', 'pre_norm')):
            return 0, num_layers
        if name.startswith('layers.'):
            return int(name.split('.')[1]) + 1, num_layers
        return num_layers - 1, num_layers
