"""The from-scratch trainers learn: the tiny VQGAN tokenizer and the tiny MAGE predictor fit a
fixed batch (their losses fall by the stated factor in a few dozen CPU steps), and every stage
of the demo's CI-size run ends with a lower loss than it starts with."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from .conftest import read_log
from .test_mage import build_mage
from .test_vqgan_trainer import build_trainer


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build with mmpretrain's registries whatever scope an earlier Runner left current."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def smooth_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) smooth random images in [0, 1] (bilinear upsampling of 4x4 noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode='bilinear',
                                           align_corners=False)


def _mean(values, part):
    return float(np.mean(values[:5] if part == 'first' else values[-5:]))


def test_vqgan_trainer_loss_falls():
    torch.manual_seed(0)
    model = build_trainer(rec_loss='l2').train()
    images = smooth_batch(8, 16)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(20):
        out = model.loss(images)
        loss = sum(v for k, v in out.items() if k.startswith('loss'))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = _mean(losses, 'first'), _mean(losses, 'last')
    assert last < 0.4 * first, f'VQGAN loss {first:.4f} -> {last:.4f}'


def test_mage_loss_falls():
    model = build_mage().train()
    # one image, four times: its token sequence is learnable from the positions alone, even when
    # every token is masked
    images = smooth_batch(1, 16, seed=1).expand(4, -1, -1, -1)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(0)
    losses = []
    for _ in range(80):
        loss = model.loss([images], None)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = _mean(losses, 'first'), _mean(losses, 'last')
    # starts near log(16) = 2.77 (uniform over the 16 codes); the image's tokens are learnt
    assert first > 2.0
    assert last < 0.6 * first, f'MAGE loss {first:.3f} -> {last:.3f}'


def test_demo_ci_stages_end_lower_than_they_start(demo_run):
    """Each stage of the CI-size demo (a smoke-size run: 4 / 12 / 12 iterations with the
    configs' warm-up) ends with a lower mean loss over its last third of iterations than over
    its first third. The margins are small at this size (the predictor's ~0.2%); the learning
    checks above and in tests/test_learning.py are the strong ones."""
    for stage in ('tokenizer', 'predictor', 'addp'):
        log = read_log(demo_run[stage]['work_dir'])
        losses = [r['loss'] for r in log if 'loss' in r]
        assert len(losses) == demo_run[stage]['iters'] >= 4, stage
        third = len(losses) // 3
        assert np.mean(losses[-third:]) < np.mean(losses[:third]), f'{stage}: loss {losses}'
