"""ViTDet's simple feature pyramid, and ``LN2d`` for mmdet (mmdet 3.3 core has neither)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d

# ViTDet normalises the pyramid and the RoI heads with a channels-first LayerNorm. mmpretrain has
# one; expose it to mmdet configs as ``LN2d`` (the name ViTDet's configs use) unless something
# imported before us (e.g. mmdet's projects/ViTDet) already did.
if 'LN2d' not in MODELS.module_dict:
    MODELS.register_module(name='LN2d', module=LayerNorm2d)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid from a single stride-16 map.

    Each scale factor builds one level from the last backbone map: x4 = deconv (D -> D/2) -> norm
    -> GELU -> deconv (D/2 -> D/4); x2 = deconv (D -> D/2); x1 = identity; x0.5 = 2x2 max-pool.
    Each level then gets a 1x1 and a 3x3 conv (each followed by ``norm_cfg``, no activation) to
    ``out_channels``.
    Levels beyond the scale factors (``num_outs``) are stride-2 subsamplings of the coarsest one
    (detectron2's ``LastLevelMaxPool``, for the RPN's P6).

    Args:
        in_channels (int): Channels D of the backbone map.
        out_channels (int): Channels of every pyramid level. Defaults to 256.
        scale_factors (Sequence[float]): Up/down-sampling per level, from fine to coarse, each of
            4, 2, 1, 0.5. Defaults to (4., 2., 1., 0.5): strides 4, 8, 16, 32 from stride 16.
        num_outs (int): Number of outputs (>= len(scale_factors)). Defaults to 5.
        norm_cfg (dict): Norm after the deconvs and the convs. Defaults to
            ``dict(type='LN2d', eps=1e-6)``.
        init_cfg (dict | list[dict], optional): Defaults to Xavier-uniform convs, as mmdet's FPN.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 scale_factors: Sequence[float] = (4., 2., 1., 0.5),
                 num_outs: int = 5,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs ({num_outs}) must be >= the number of scale factors '
                             f'({len(scale_factors)}).')
        self.num_outs = num_outs
        D = in_channels
        self.stages = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for scale in scale_factors:
            if scale == 4.:
                stage = nn.Sequential(
                    nn.ConvTranspose2d(D, D // 2, 2, stride=2),
                    build_norm_layer(norm_cfg, D // 2)[1], nn.GELU(),
                    nn.ConvTranspose2d(D // 2, D // 4, 2, stride=2))
                channels = D // 4
            elif scale == 2.:
                stage, channels = nn.ConvTranspose2d(D, D // 2, 2, stride=2), D // 2
            elif scale == 1.:
                stage, channels = nn.Identity(), D
            elif scale == 0.5:
                stage, channels = nn.MaxPool2d(2, stride=2), D
            else:
                raise ValueError(f'scale factor {scale} is not supported; use 4, 2, 1 or 0.5.')
            self.stages.append(stage)
            # conv + norm without activation, as detectron2's SimpleFeaturePyramid
            self.lateral_convs.append(
                ConvModule(channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))
            self.output_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                           act_cfg=None))

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> Tuple[torch.Tensor]:
        """Build the pyramid.

        Args:
            inputs (Tensor | Sequence[Tensor]): the (B, D, h, w) map, or a backbone's tuple whose
                last entry is that map.

        Returns:
            tuple[Tensor]: ``num_outs`` maps (B, out_channels, h * s, w * s), fine to coarse.
        """
        x = inputs if isinstance(inputs, torch.Tensor) else inputs[-1]
        outs = [
            out_conv(lateral(stage(x)))
            for stage, lateral, out_conv in zip(self.stages, self.lateral_convs, self.output_convs)
        ]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
