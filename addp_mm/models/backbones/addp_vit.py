"""ADDP pixel encoder: mmpretrain's ``VisionTransformer`` run the ADDP way."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.utils import to_2tuple
from mmpretrain.registry import MODELS

from ..utils.init import init_official, init_patch_embed
from ..utils.transformer import Dropout, TransformerBlock

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@MODELS.register_module()
class ADDPViT(VisionTransformer):
    """ADDP pixel encoder (docs/method.md §3.5): a subclass of mmpretrain's ``VisionTransformer``.

    ``x -> clamp [0, 1] -> ImageNet mean/std -> patch embed + pos -> [cls] -> pre_norm -> dropout ->
    blocks -> ln1``. All positions are encoded (no token dropping).

    What it takes from ``VisionTransformer``: the architecture zoo (``arch_zoo``, plus ``'tiny'``
    for mmpretrain's ``'deit-tiny'``), the patch embedding (mmcv ``PatchEmbed``), the parameter
    names (``patch_embed.projection``, ``cls_token``, ``pos_embed``, ``layers.i.*``, ``ln1`` for
    the final norm and ``pre_norm`` for the official ``tokenizer_norm``, so the weights load into a
    stock ``VisionTransformer`` for fine-tuning) and the layer numbering of layer-wise lr decay
    (``get_layer_depth``). What differs, as the official ADDP encoder: the block
    (:class:`~addp_mm.models.utils.transformer.TransformerBlock`, dropout inside attention and MLP),
    the dropout after the pre-norm instead of after the position embedding, the input
    normalisation inside the model and the official initialisation. The parent's ``__init__`` is
    not run (it would build mmpretrain's blocks), as mmpretrain's own ``BEiTViT`` does.

    Args:
        arch (str | dict): A key of :attr:`arch_zoo` (``'base'``, ``'large'``, ``'tiny'``, ...) or
            a dict with ``embed_dims``, ``num_layers``, ``num_heads`` (``feedforward_channels``
            optional).
        img_size (int): Input size. Defaults to 256.
        patch_size (int): Defaults to 16.
        in_channels (int): Defaults to 3.
        mlp_ratio (float, optional): MLP hidden width / D. None: the arch's
            ``feedforward_channels`` / D, or 4. Defaults to None.
        drop_rate (float): Dropout after the pre-norm and inside every block (official 0.1).
        drop_path_rate (float): Stochastic depth, increasing linearly over the blocks.
            Defaults to 0.
        normalize_input (bool): Clamp to [0, 1] and apply ImageNet mean/std inside the model (the
            pre-training input is a VQGAN decode in [0, 1]). Defaults to True.
        mean (Sequence[float]): Input mean. Defaults to ImageNet's.
        std (Sequence[float]): Input std. Defaults to ImageNet's.
        with_cls_token (bool): Prepend the class token. ``pos_embed`` keeps its class entry either
            way (the pre-trained tensor's shape). Defaults to True.
        pre_norm (bool): LayerNorm (+ dropout) before the blocks. Defaults to True.
        final_norm (bool): LayerNorm ``ln1`` after the blocks. Defaults to True.
        layer_cfgs (dict | Sequence[dict]): Extra arguments of each block (of
            :attr:`layer_type`), one dict for all or one per block; they override the defaults
            above. Defaults to ``dict()``.
        init_cfg (dict, optional): Defaults to the official initialisation.
    """
    arch_zoo = {
        **VisionTransformer.arch_zoo,
        **dict.fromkeys(['t', 'tiny'], VisionTransformer.arch_zoo['deit-tiny']),
    }
    #: The block class; subclasses (ViTDet) swap it, keeping the parameter names.
    layer_type = TransformerBlock

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: int = 256,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 mlp_ratio: Optional[float] = None,
                 drop_rate: float = 0.1,
                 drop_path_rate: float = 0.,
                 normalize_input: bool = True,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 with_cls_token: bool = True,
                 pre_norm: bool = True,
                 final_norm: bool = True,
                 layer_cfgs: Union[dict, Sequence[dict]] = dict(),
                 init_cfg: Optional[dict] = None) -> None:
        # BaseBackbone.__init__: VisionTransformer.__init__ would build mmpretrain's blocks.
        super(VisionTransformer, self).__init__(init_cfg=init_cfg)
        self.arch_settings = self.parse_arch(arch)
        if img_size % patch_size:
            raise ValueError(f'img_size {img_size} must be divisible by patch_size {patch_size}.')
        D = self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.arch_settings['num_layers']
        if mlp_ratio is None:
            mlp_ratio = self.arch_settings.get('feedforward_channels', 4 * D) / D
        self.img_size = to_2tuple(img_size)
        self.patch_size = patch_size
        self.num_patches = (img_size // patch_size)**2
        self.normalize_input = normalize_input
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        # what VisionTransformer's inherited methods read
        self.out_type = 'raw'
        self.with_cls_token = with_cls_token
        self.interpolate_mode = 'bicubic'
        self.frozen_stages = -1
        self.final_norm = final_norm
        self.out_indices = [self.num_layers - 1]

        self.patch_embed = PatchEmbed(in_channels=in_channels, input_size=img_size, embed_dims=D,
                                      conv_type='Conv2d', kernel_size=patch_size,
                                      stride=patch_size)
        self.patch_resolution = self.patch_embed.init_out_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if with_cls_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, D))
        self.pre_norm = nn.LayerNorm(D, eps=1e-6) if pre_norm else nn.Identity()
        self.drop_after_pre_norm = Dropout(drop_rate)
        # (on the CPU also when the model is built on the meta device)
        dpr = torch.linspace(0, drop_path_rate, self.num_layers, device='cpu').tolist()
        if isinstance(layer_cfgs, dict):
            layer_cfgs = [layer_cfgs] * self.num_layers
        if len(layer_cfgs) != self.num_layers:
            raise ValueError(f'layer_cfgs has {len(layer_cfgs)} entries for {self.num_layers} '
                             'blocks.')
        self.layers = nn.ModuleList(
            self.layer_type(D, self.arch_settings['num_heads'],
                            **dict(dict(mlp_ratio=mlp_ratio, drop_rate=drop_rate,
                                        drop_path_rate=dpr[i]), **layer_cfgs[i]))
            for i in range(self.num_layers))
        if final_norm:
            self.ln1 = nn.LayerNorm(D, eps=1e-6)

    @classmethod
    def parse_arch(cls, arch: Union[str, dict]) -> dict:
        """A key of :attr:`arch_zoo` or a dict -> dict(embed_dims, num_layers, num_heads, ...)."""
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'unknown arch {arch!r}; choose from {sorted(cls.arch_zoo)} or '
                                 'give a dict(embed_dims=..., num_layers=..., num_heads=...).')
            return dict(cls.arch_zoo[arch.lower()])
        missing = {'embed_dims', 'num_layers', 'num_heads'} - set(arch)
        if missing:
            raise ValueError(f'arch dict misses {sorted(missing)}.')
        return dict(arch)

    def init_weights(self) -> None:
        """``init_cfg`` (e.g. ``Pretrained``), or else the official ADDP initialisation: xavier
        Linear, LayerNorm (1, 0), normal(0.02) class token and position embedding, and the
        official patch-embedding init. (Not ``VisionTransformer.init_weights``, which draws a
        truncated normal ``pos_embed``.)"""
        super(VisionTransformer, self).init_weights()
        if self.init_cfg is not None:
            return
        init_official(self)
        for p in (self.cls_token, self.pos_embed):
            if p is not None:
                nn.init.normal_(p, std=.02)
        init_patch_embed(self.patch_embed.projection)  # bias: PyTorch's default, as official

    def train(self, mode: bool = True) -> 'ADDPViT':
        """As ``nn.Module.train``, returning the module (mmpretrain's ``BaseBackbone.train``
        returns None, which would break ``model = model.eval()``)."""
        super().train(mode)
        return self

    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Patch embedding of images whose size is a multiple of the patch size.

        Args:
            x (Tensor): (B, C, H, W).

        Returns:
            tuple: tokens (B, H/p * W/p, D) and the token grid (H/p, W/p).
        """
        if x.shape[-1] % self.patch_size or x.shape[-2] % self.patch_size:
            raise ValueError(f'input size {tuple(x.shape[-2:])} is not divisible by the patch size '
                             f'{self.patch_size}.')
        return self.patch_embed(x)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Encode images.

        Args:
            x (Tensor): (B, 3, H, W); in [0, 1] when ``normalize_input`` (else already normalized).

        Returns:
            tuple[Tensor]: one tensor (B, 1 + H/p * W/p, D): class token then patch tokens, after
            the final norm.
        """
        if self.normalize_input:
            x = (x.clamp(0, 1) - self.mean) / self.std
        x, _ = self.embed(x)  # (B, L, D)
        if x.shape[1] != self.num_patches:
            raise ValueError(f'input gives {x.shape[1]} patches but the model was built for '
                             f'{self.num_patches} (img_size); resize the input.')
        x = x + self.pos_embed[:, 1:]
        if self.cls_token is not None:
            cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x], dim=1)  # (B, 1+L, D)
        x = self.drop_after_pre_norm(self.pre_norm(x))
        for layer in self.layers:
            x = layer(x)
        return (self.ln1(x) if self.final_norm else x, )

