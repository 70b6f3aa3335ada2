"""The toy generator through mmagic's Runner test loop (MultiTestLoop) with FID and IS.

Plumbing only: the Inception network is a tiny random TorchScript module with the interface of
NVIDIA's ``inception-2015-12-05.pt`` (``return_features`` -> features, else class
probabilities), so the numbers mean nothing; what is checked is that generated images flow from
``ADDPGenerator.forward`` into mmagic's metrics, that the reference statistics are computed from
the real-image folder and saved, and that missing files fail with a clear message.
"""
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.hooks import Hook
from PIL import Image

from .helpers import TOY_CONFIG


class TinyInception(nn.Module):
    """Random stand-in for the TorchScript Inception (uint8 BGR->RGB input, any size)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.fc = nn.Linear(8, 10)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(torch.tanh(self.conv(img.float() / 127.5 - 1.)), 1).flatten(1)
        if return_features:
            return x
        return F.softmax(self.fc(x), dim=1)


@pytest.fixture(scope='module')
def inception_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('inception') / 'tiny_inception.pt'
    # frozen like NVIDIA's file (mmagic extracts real-image features outside no_grad)
    torch.jit.script(TinyInception().eval().requires_grad_(False)).save(str(path))
    return str(path)


class CaptureMetrics(Hook):
    """mmagic's MultiTestLoop.run returns nothing; the metrics reach the after_test_epoch hooks."""

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.metrics = metrics


def run_test(cfg) -> dict:
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    capture = CaptureMetrics()
    runner.register_hook(capture)
    runner.test()
    return capture.metrics


def _runner_cfg(tmp_path, inception_path, load_from, real_root, pkl):
    from mmengine.config import Config
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = load_from
    cfg.test_dataloader.dataset.data_root = str(real_root)
    for metric in cfg.test_evaluator.metrics:
        metric.inception_path = inception_path
        metric.fake_nums = 6
    cfg.test_evaluator.metrics[0].inception_pkl = str(pkl)
    cfg.test_dataloader.batch_size = 3
    cfg.test_evaluator.metrics[1].splits = 2
    cfg.model.num_steps = 4
    return cfg


def test_fid_is_plumbing_through_mmagic_test_loop_with_random_inception(tmp_path, inception_file,
                                                                         toy_checkpoint):
    real = tmp_path / 'real'
    real.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(real / f'{i}.png')
    pkl = tmp_path / 'stats' / 'real_stats.pkl'
    cfg = _runner_cfg(tmp_path, inception_file, toy_checkpoint, real, pkl)
    metrics = run_test(cfg)

    assert osp.isfile(pkl)  # reference statistics computed from the 8 real images and saved
    assert set(metrics) >= {'FID-16/fid', 'IS-16/is'}
    assert math.isfinite(metrics['FID-16/fid']) and metrics['FID-16/fid'] > 0
    # IS of 10-class probabilities lies in [1, 10]
    assert 1. <= metrics['IS-16/is'] <= 10.

    # A second run reads the saved statistics: no real images needed any more.
    cfg2 = _runner_cfg(tmp_path, inception_file, toy_checkpoint, tmp_path / 'gone', pkl)
    cfg2.work_dir = str(tmp_path / 'work2')
    metrics2 = run_test(cfg2)
    # same seed (sample_kwargs seed=0) -> same images -> same FID
    assert metrics2['FID-16/fid'] == pytest.approx(metrics['FID-16/fid'], rel=1e-4)


def test_missing_files_fail_clearly(tmp_path, inception_file):
    from addp_mm.generation import OfflineFID, OfflineIS
    with pytest.raises(FileNotFoundError, match='inception-2015-12-05.pt'):
        OfflineIS(fake_nums=4, inception_path=str(tmp_path / 'nope.pt'))
    with pytest.raises(ValueError, match='local file'):
        OfflineFID(fake_nums=4, inception_path='https://example.com/inception.pt',
                   inception_pkl=str(tmp_path / 's.pkl'))
    with pytest.raises(ValueError, match='inception_pkl must be a local path'):
        OfflineFID(fake_nums=4, inception_path=inception_file, inception_pkl=None)

    # statistics missing and no real images: the error says how to produce them
    cfg = _runner_cfg(tmp_path, inception_file, None, tmp_path / 'no_real_images',
                      tmp_path / 'missing.pkl')
    with pytest.raises(FileNotFoundError, match='ImageNet val as 256x256 PNG'):
        run_test(cfg)


def test_mmagic_unconditional_inferencer(tmp_path, toy_checkpoint):
    """mmagic's UnconditionalInferencer builds the config's model, loads the checkpoint (our
    pre-training layout, through mmengine's non-strict loader) and saves the samples."""
    from mmagic.apis.inferencers.unconditional_inferencer import UnconditionalInferencer

    from .helpers import build_toy_generator
    inferencer = UnconditionalInferencer(
        config=TOY_CONFIG, ckpt=toy_checkpoint, device='cpu',
        extra_parameters=dict(num_batches=2, sample_kwargs=dict(seed=0, num_steps=3)))
    out_file = tmp_path / 'samples.png'
    preds, images = inferencer(result_out_dir=str(out_file))
    assert osp.isfile(out_file)
    assert images.shape == (2, 3, 64, 64)  # RGB in [0, 1], from fake_img (BGR 0-255)
    from addp_mm.generation.sampling import image_seeds
    ref = build_toy_generator().sample(image_seeds(0, [0, 1]), num_steps=3)['images']
    assert torch.allclose(images, ref, atol=1e-5)
