"""PatchGAN discriminator and hinge losses for optional adversarial tokenizer training."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class PatchGANDiscriminator(BaseModule):
    """The pix2pix / taming-transformers PatchGAN: strided 4x4 convs -> one logit per patch.

    ``conv(4, s2) -> LeakyReLU(0.2)``, then ``num_layers - 1`` blocks of
    ``conv(4, s2) -> BatchNorm -> LeakyReLU`` doubling channels (capped at 8x), one stride-1 block,
    and a stride-1 conv to one channel. Trained from scratch (no weights needed).

    Args:
        in_channels (int): Image channels. Defaults to 3.
        base_channels (int): Channels of the first conv. Defaults to 64.
        num_layers (int): Strided blocks (each halves the resolution). Defaults to 3.
        init_cfg (dict, optional): Defaults to the taming initialisation (conv N(0, 0.02),
            BatchNorm weight N(1, 0.02)).
    """

    def __init__(self,
                 in_channels: int = 3,
                 base_channels: int = 64,
                 num_layers: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = base_channels
        for n in range(1, num_layers + 1):
            out = base_channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0., 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1., 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [0, 1] -> patch logits (B, 1, h, w)."""
        return self.main(images * 2 - 1)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``(relu(1 - D(x)) + relu(1 + D(G(z)))) / 2``, averaged."""
    return 0.5 * (F.relu(1. - real_logits).mean() + F.relu(1. + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss ``-D(G(z))``, averaged."""
    return -fake_logits.mean()
