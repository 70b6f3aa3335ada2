"""The official training mode as config switches: the token predictor's dropout, drop_last in the
pre-training loader, TF32 off for fp32 CUDA entry points, the patch-embedding bias init."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from addp_mm.models.utils.transformer import Dropout

from ..conftest import REPO_ROOT, write_smooth_images
from ..tool_runs import load_tool

CONFIGS = osp.join(REPO_ROOT, 'configs', 'addp')
IMAGENET = [osp.join(CONFIGS, 'addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py'),
            osp.join(CONFIGS, 'addp_vit-large-p16_8xb512-amp-coslr-800e_in1k-256px.py'),
            osp.join(CONFIGS, 'from_scratch',
                     'addp_vit-base-p16_8xb512-amp-coslr-1600e_imagefolder-256px.py')]
TOY = osp.join(CONFIGS, 'addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')


def toy_target_generator(predictor_dropout: bool):
    cfg = Config.fromfile(TOY).model.target_generator.to_dict()
    cfg.update(predictor_dropout=predictor_dropout)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        tg = MODELS.build(cfg)
        tg.init_weights()
    return tg


def _spy_predictor(tg, monkeypatch):
    """Record the token predictor's batched output (mask_next queries, then mask_t queries)."""
    seen = []
    real = tg.predictor.predict

    def predict(tokens, mask):
        out = real(tokens, mask)
        seen.append(out)
        return out

    monkeypatch.setattr(tg.predictor, 'predict', predict)
    return seen


@pytest.mark.parametrize('path', IMAGENET, ids=lambda p: osp.basename(p)[:-3])
def test_imagenet_configs_train_in_the_official_mode(path):
    cfg = Config.fromfile(path)
    assert cfg.model.target_generator.predictor_dropout is True
    assert cfg.model.target_generator.predictor.get('drop_rate', 0.1) > 0
    assert cfg.train_dataloader.drop_last is True


def test_predictor_dropout_is_active_while_training_only(monkeypatch):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    L = 16
    # mask_t == mask_next: the two halves of the batched pass ask the same question
    mask = torch.zeros(2, L)
    mask[:, :10] = 1.
    official = toy_target_generator(True)
    deterministic = toy_target_generator(False)
    seen = _spy_predictor(official, monkeypatch)

    # a Runner calls model.train() every epoch: the dropout modules of the predictor switch on
    official.train()
    drops = [m for m in official.predictor.modules() if isinstance(m, Dropout)]
    assert drops and all(m.training for m in drops) and official.predictor.training
    assert not official.vqgan.training  # the tokenizer stays in eval mode
    assert not any(p.requires_grad for p in official.parameters())
    torch.manual_seed(1)
    a = official(images, mask, mask)
    b = official(images, mask, mask)
    assert not torch.equal(a['target'], b['target'])  # dropout draws differ between steps
    # the two queries of one batched pass get independent dropout masks
    first = seen[0]
    assert not torch.allclose(first[:2], first[2:])

    # evaluation is deterministic and equals the deterministic mode
    official.eval()
    assert not any(m.training for m in official.predictor.modules())
    c = official(images, mask, mask)
    deterministic.train()
    assert not deterministic.predictor.training
    d = deterministic(images, mask, mask)
    torch.testing.assert_close(c['target'], d['target'], rtol=0, atol=0)
    torch.testing.assert_close(c['x_t'], d['x_t'], rtol=0, atol=0)
    last = seen[-1]
    assert torch.equal(last[:2], last[2:])


def test_pretraining_loader_drops_the_last_partial_batch(tmp_path):
    """mmengine builds the configured DataLoader with drop_last: 10 images, batch 4 -> 2 full
    batches (no batch of 2)."""
    from mmengine.runner import Runner
    write_smooth_images(tmp_path, 10, 40)
    cfg = Config.fromfile(IMAGENET[2]).train_dataloader
    cfg.update(batch_size=4, num_workers=0, persistent_workers=False, pin_memory=False)
    cfg.dataset.data_root = str(tmp_path)
    cfg.dataset.pipeline[1].scale = 32
    loader = Runner.build_dataloader(cfg.to_dict(), seed=0)
    assert loader.drop_last is True
    sizes = [batch['inputs'][0].shape[0] if isinstance(batch['inputs'], list)
             else batch['inputs'].shape[0] for batch in loader]
    assert sizes == [4, 4]


def test_fp32_generation_turns_tf32_off_and_restores_it():
    from mmagic.registry import MODELS as MMAGIC_MODELS
    import addp_mm.generation  # noqa: F401
    from ..test_generation.helpers import toy_model_cfg
    gen = MMAGIC_MODELS.build(dict(toy_model_cfg(), _scope_='mmagic'))
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with gen.autocast():
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_tools_test_runs_fp32_evaluation_without_tf32(monkeypatch, tmp_path):
    tool = load_tool('tools/test.py')
    seen = {}

    class FakeRunner:
        test_evaluator = None

        @classmethod
        def from_cfg(cls, cfg):
            seen['flags'] = (torch.backends.cuda.matmul.allow_tf32,
                             torch.backends.cudnn.allow_tf32)
            return cls()

        def test(self):
            seen['tested'] = True

    monkeypatch.setattr(tool, 'Runner', FakeRunner)
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        (tmp_path / 'none.pth').write_bytes(b'x')  # tools/test.py checks that it exists
        tool.main([TOY, str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path)])
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    assert seen == dict(flags=(False, False), tested=True)
    # and the conformance suite itself runs without TF32 (tests/conftest.py)
    assert before == (False, False)


@pytest.mark.parametrize('name', ['ADDPViT', 'ADDPViTDet'])
def test_patch_embed_bias_has_pytorch_default_init(name):
    """Official: the conv bias keeps PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the
    weight is xavier-uniform over the flattened kernel; not a zero bias."""
    if name == 'ADDPViT':
        from addp_mm.models import ADDPViT as cls
    else:
        from addp_mm.det import ADDPViTDet as cls
    torch.manual_seed(0)
    m = cls(arch=dict(embed_dims=384, num_layers=1, num_heads=4), patch_size=8)
    with torch.no_grad():
        m.patch_embed.projection.bias.zero_()  # init_weights alone must set it
    m.init_weights()
    conv = m.patch_embed.projection
    fan_in = 3 * 8 * 8
    bound = 1 / math.sqrt(fan_in)
    bias = conv.bias.detach()
    assert bool((bias.abs() <= bound).all())
    # uniform on [-b, b]: std b / sqrt(3) (384 draws: within 15%), mean ~0
    assert bias.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)
    assert abs(bias.mean().item()) < 0.2 * bound
    w_bound = math.sqrt(6 / (fan_in + 384))  # xavier over (D, 3 * p * p)
    assert conv.weight.abs().max().item() <= w_bound
    assert conv.weight.abs().max().item() > 0.9 * w_bound
