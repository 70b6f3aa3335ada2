"""LPIPS perceptual loss on a VGG-16 whose weights come from local files (never downloaded)."""
import os.path as osp
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from ...checkpoints.loading import load_checkpoint_file
from ...checkpoints.weights import extract_state_dict, load_strict
from ..utils.frozen import FrozenMixin

# torchvision's VGG-16 "D" layout; 'M' = 2x2 max-pool. Layer indices match torchvision's
# `vgg16().features`, so its state dict (`features.N.*`) loads as is.
_VGG16_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512)
# Feature taps after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (as LPIPS).
_TAPS = (4, 9, 16, 23, 30)
_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS input scaling for images in [-1, 1].
_LPIPS_SHIFT = (-.030, -.088, -.188)
_LPIPS_SCALE = (.458, .448, .450)


def _vgg16_features() -> nn.Sequential:
    layers: List[nn.Module] = []
    in_ch = 3
    for v in _VGG16_CFG:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU()]
            in_ch = v
    return nn.Sequential(*layers)


@MODELS.register_module()
class VGGPerceptualLoss(FrozenMixin, nn.Module):
    """LPIPS distance (Zhang et al., 2018) with a frozen VGG-16, for tokenizer training.

    ``d(x, y) = sum_l mean_hw w_l . (n(f_l(x)) - n(f_l(y)))^2`` where ``f_l`` are the VGG-16
    features after relu{1_2, 2_2, 3_3, 4_3, 5_3}, ``n`` normalises each feature vector to unit
    length and ``w_l`` are the LPIPS linear weights (or ones, summing over channels, when no LPIPS
    file is given: the unlearned "baseline" variant).

    Both files are local; nothing is downloaded.

    Args:
        vgg_checkpoint (str): torchvision VGG-16 ImageNet weights (``vgg16-397923af.pth``: a state
            dict with ``features.N.weight/bias``; ``classifier.*`` is ignored).
        lpips_checkpoint (str, optional): LPIPS v0.1 linear weights for VGG (``vgg.pth`` of the
            ``lpips`` package, keys ``lin{0..4}.model.1.weight``). None = uniform weights.
    """

    def __init__(self, vgg_checkpoint: str, lpips_checkpoint: Optional[str] = None) -> None:
        super().__init__()
        for path, what in ((vgg_checkpoint, 'VGG-16 weights (torchvision vgg16-397923af.pth)'),
                           (lpips_checkpoint, 'LPIPS linear weights (lpips/weights/v0.1/vgg.pth)')):
            if path is not None and not osp.isfile(path):
                raise FileNotFoundError(
                    f'perceptual loss: {what} not found at {path!r}. The perceptual loss only runs '
                    'from local files (nothing is downloaded): give the right path, or remove '
                    '`perceptual_loss` from the model config to train without it.')
        self.features = _vgg16_features()
        sd = extract_state_dict(load_checkpoint_file(vgg_checkpoint), vgg_checkpoint)
        sd = {k[len('features.'):]: v for k, v in sd.items() if k.startswith('features.')}
        load_strict(self.features, sd, 'VGG-16 features', repr(vgg_checkpoint))
        weights = [torch.ones(1, c, 1, 1) for c in _CHANNELS]
        if lpips_checkpoint is not None:
            lin = extract_state_dict(load_checkpoint_file(lpips_checkpoint), lpips_checkpoint)
            missing = [f'lin{i}.model.1.weight' for i in range(5)
                       if f'lin{i}.model.1.weight' not in lin]
            if missing:
                raise KeyError(f'{lpips_checkpoint!r} is not an LPIPS VGG weight file (missing '
                               f'{missing}); use lpips/weights/v0.1/vgg.pth.')
            weights = [lin[f'lin{i}.model.1.weight'].float().view(1, -1, 1, 1) for i in range(5)]
        for i, w in enumerate(weights):
            self.register_buffer(f'lin{i}', w)
        self.register_buffer('shift', torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1))
        self.freeze()

    def _taps(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats, start = [], 0
        for end in _TAPS:
            x = self.features[start:end](x)
            feats.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            start = end
        return feats

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS distance.

        Args:
            pred (Tensor): (B, 3, H, W) images in [0, 1] (gradients flow through).
            target (Tensor): (B, 3, H, W) images in [0, 1].

        Returns:
            Tensor: scalar.
        """
        pred = ((pred * 2 - 1) - self.shift) / self.scale
        target = ((target * 2 - 1) - self.shift) / self.scale
        dist = 0.
        for i, (a, b) in enumerate(zip(self._taps(pred), self._taps(target.detach()))):
            dist = dist + ((a - b).pow(2) * getattr(self, f'lin{i}')).sum(1).mean((1, 2))
        return dist.mean()
