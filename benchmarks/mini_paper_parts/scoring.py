"""FID and IS of digit images: a small digit CNN in place of Inception, and mmagic's metric classes.

Inception knows nothing of 32x32 digits, so the feature network is a small CNN digit classifier
trained on the train split (fixed seed, the same for every run) and saved as TorchScript with the
interface of the Inception file mmagic loads; FID and IS are then mmagic's own classes.
"""
import json
import os
import os.path as osp
import time
from typing import Dict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.evaluation.metrics import FrechetInceptionDistance, InceptionScore

from addp_mm.utils.provenance import write_json_atomic
from .data import read_split
from .stages import log

FEATURE_NET_SEED = 0  # the feature network is the same for every run

FEATURE_DIM = 64


class DigitFeatureNet(nn.Module):
    """32x32 digit classifier with the interface of NVIDIA's TorchScript Inception.

    ``forward(img, return_features)`` takes (B, 3, 32, 32) images with values in [0, 255]
    (mmagic passes uint8, channel order irrelevant: the channels are averaged) and returns
    the 64-d penultimate features (FID) or the 10 class probabilities (IS).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 4 * 4, FEATURE_DIM)
        self.cls = nn.Linear(FEATURE_DIM, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().mean(1, keepdim=True) / 127.5 - 1.
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 16x16
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 8x8
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)  # 4x4
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, img: torch.Tensor, return_features: bool = False,
                use_fp16: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        feats = self.features(img)
        if return_features:
            return feats
        return F.softmax(self.cls(feats), dim=1)


def train_feature_net(data: dict, path: str, epochs: int) -> dict:
    """Train the FID/IS feature network on the train split (seed 0) and save it as TorchScript.

    Training: Adam 1e-3, batch 64, random shifts of up to 2 pixels, cross-entropy. Returns its
    top-1 on the test split (a feature network that does not know digits makes FID meaningless).
    """
    info = path + '.json'
    if osp.isfile(path) and osp.isfile(info):
        with open(info) as f:
            rec = json.load(f)
        if rec['epochs'] == epochs:
            return rec
    start = time.time()
    x_train, y_train = read_split(data['root'], 'train')
    x_test, y_test = read_split(data['root'], 'test')
    with torch.random.fork_rng():
        torch.manual_seed(FEATURE_NET_SEED)
        net = DigitFeatureNet()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(FEATURE_NET_SEED)
        for _ in range(epochs):
            order = torch.randperm(len(x_train), generator=gen)
            for i in range(0, len(order), 64):
                idx = order[i:i + 64]
                dy, dx = torch.randint(-2, 3, (2, ), generator=gen).tolist()
                x = torch.roll(x_train[idx], shifts=(dy, dx), dims=(2, 3)) * 255.
                loss = F.cross_entropy(net.cls(net.features(x)), y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        top1 = float((net(x_test * 255.).argmax(1) == y_test).float().mean()) * 100.
    tmp = path + '.tmp'
    torch.jit.script(net).save(tmp)
    os.replace(tmp, path)  # a kill never leaves half a file under the final name
    rec = dict(path=path, test_top1=top1, epochs=epochs, seconds=time.time() - start)
    write_json_atomic(info, rec)
    log(f'feature network: test top-1 {top1:.1f}% ({rec["seconds"]:.0f} s) -> {path}')
    return rec


class FidIs:
    """FID and IS of image sets with mmagic's metric classes and the digit feature network.

    The reference statistics (mean and covariance of the features of the real train split) are
    computed by mmagic's own feature pass (``forward_inception``) and set on the FID metric;
    every image set then goes through ``process`` and ``compute_metrics`` as in mmagic's loop.
    IS is one split over all images (``splits=1``), at 32x32 (``resize=False``).
    """

    def __init__(self, feature_net: str, real_images) -> None:
        self.feature_net = feature_net
        ref = FrechetInceptionDistance(fake_nums=len(real_images), inception_style='StyleGAN',
                                       inception_path=feature_net)
        with torch.no_grad():
            feats = torch.cat([ref.forward_inception(self._rgb255(b))
                               for b in real_images.split(256)]).numpy()
        self.real_mean, self.real_cov = np.mean(feats, 0), np.cov(feats, rowvar=False)

    @staticmethod
    def _rgb255(images):
        return (images.float() * 255.).clamp(0, 255).round()

    def __call__(self, images) -> Dict[str, float]:
        """FID against the train split and IS of ``images`` (N, 3, 32, 32) in [0, 1]."""
        n = len(images)
        fid = FrechetInceptionDistance(fake_nums=n, inception_style='StyleGAN',
                                       inception_path=self.feature_net)
        fid.real_mean, fid.real_cov = self.real_mean, self.real_cov
        inception_score = InceptionScore(fake_nums=n, resize=False, splits=1,
                                         inception_style='StyleGAN',
                                         inception_path=self.feature_net)
        with torch.no_grad():
            for batch in images.split(250):
                samples = [dict(fake_img=img) for img in self._rgb255(batch)]
                fid.process({}, samples)
                inception_score.process({}, samples)
            return dict(fid=fid.compute_metrics(fid.fake_results)['fid'],
                        inception_score=inception_score.compute_metrics(
                            inception_score.fake_results)['is'])
