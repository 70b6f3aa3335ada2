"""Real training of the toy ADDP config: Runner, loss decrease, frozen parts, resume."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401

from ..conftest import write_smooth_images

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs', 'addp',
                   'addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory) -> str:
    """A dozen smooth random images (so the VQGAN sees structure), 80x80 JPEG + PNG."""
    root = tmp_path_factory.mktemp('images')
    write_smooth_images(root, 12, 80, suffixes=('jpg', 'png'))
    return str(root)


def toy_cfg(work_dir: str, data_root: str, **overrides) -> Config:
    cfg = Config.fromfile(TOY_CFG)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = 4
    cfg.merge_from_dict(overrides)
    return cfg


def frozen_state(model) -> dict:
    return {k: v.clone() for k, v in model.target_generator.state_dict().items()}


def test_toy_config_trains_with_runner_and_resumes(tmp_path, image_folder):
    work_dir = str(tmp_path / 'work')
    cfg = toy_cfg(work_dir, image_folder, **{
        'train_cfg.max_iters': 4,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1,
    })
    runner = Runner.from_cfg(cfg)
    frozen_before = frozen_state(runner.model)
    runner.train()
    assert runner.iter == 4
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss) and loss > 0
    # the frozen VQGAN and token predictor are bit-identical after optimizer steps
    for k, v in runner.model.target_generator.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k
    trained = {k: v.clone() for k, v in runner.model.state_dict().items()}
    optim_state = runner.optim_wrapper.state_dict()['state']

    # relaunching the same config (resume=True in the toy config) continues at iteration 4
    cfg2 = toy_cfg(work_dir, image_folder, **{'train_cfg.max_iters': 6})
    runner2 = Runner.from_cfg(cfg2)
    runner2.load_or_resume()
    assert runner2.iter == 4
    for k, v in runner2.model.state_dict().items():
        assert torch.equal(v, trained[k]), k
    state2 = runner2.optim_wrapper.state_dict()['state']
    some = next(iter(optim_state))
    assert torch.equal(state2[some]['exp_avg'], optim_state[some]['exp_avg'])
    runner2.train()
    assert runner2.iter == 6


def test_loss_falls_on_fixed_batch():
    """On one fixed sample the loss falls well above noise, and stays above its floor (the
    cross-entropy of the smoothed target with itself); gradients reach the encoder."""
    cfg = Config.fromfile(TOY_CFG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    images = torch.rand(4, 3, 64, 64)
    frozen_before = frozen_state(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=2e-3)

    # the lowest reachable loss: cross-entropy of the smoothed target with itself
    torch.manual_seed(1)
    mask_t, mask_next = model.sample_masks(4, model.neck.num_tokens, torch.device('cpu'))
    q = model.target_generator(images, mask_t, mask_next)['target'].flatten(2).transpose(1, 2)
    eps, C = model.head.label_smoothing, model.head.vocab_size
    t = torch.cat([(1 - eps) * q + eps / C,
                   torch.full((*q.shape[:2], C - q.shape[-1]), eps / C)], -1)
    floor = float(((-(t * t.log()).sum(-1)) * mask_t).sum() / mask_t.sum())

    def step() -> float:
        torch.manual_seed(1)  # the same masks every step: a fixed sample
        loss = model.loss([images], [])['loss']
        optim.zero_grad()
        loss.backward()
        optim.step()
        return loss.item()

    losses = [step() for _ in range(12)]
    assert all(np.isfinite(losses))
    assert losses[-1] > floor - 1e-4
    assert losses[-1] < losses[0] - 0.5, losses
    assert losses[-1] < min(losses[:-1]), losses
    grads = [p.grad for p in model.backbone.layers[0].parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    for k, v in model.target_generator.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k


def test_frozen_parts_stay_frozen():
    cfg = Config.fromfile(TOY_CFG)
    model = MODELS.build(cfg.model)
    model.train()
    tg = model.target_generator
    assert not tg.training and not tg.vqgan.training and not tg.predictor.training
    assert all(not m.training for m in tg.modules())
    assert all(not p.requires_grad for p in tg.parameters())
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_missing_frozen_checkpoint_is_a_clear_error(tmp_path):
    cfg = Config.fromfile(TOY_CFG)
    cfg.model.target_generator.vqgan.checkpoint = str(tmp_path / 'nope.ckpt')
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match='nope.ckpt'):
        model.init_weights()


def test_mask_sampling_follows_the_spec():
    cfg = Config.fromfile(TOY_CFG)
    model = MODELS.build(cfg.model)
    torch.manual_seed(0)
    counts = set()
    for _ in range(50):
        mask_t, mask_next = model.sample_masks(3, 256, torch.device('cpu'))
        n_t, n_next = mask_t.sum(1), mask_next.sum(1)
        # one ratio per batch, nested masks, at least half masked, never all
        assert (n_t == n_t[0]).all() and (n_next == n_next[0]).all()
        assert bool(((mask_next - mask_t) >= 0).all())
        assert 128 <= n_t[0] <= n_next[0] <= 256
        counts.add(int(n_t[0]))
    grid = {int(np.ceil(256 * float(r))) for r in model.mask_ratios}
    assert counts <= grid and len(counts) > 5
