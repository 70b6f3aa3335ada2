"""Stage 2: MAGE token-predictor training (masking, token dropping, loss, hand-off)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from addp_mm.models.algorithms.mage import truncated_normal
from addp_mm.checkpoints.loading import load_checkpoint_file

from .conftest import config_path, read_log

NET = dict(embed_dims=32, depth=2, num_heads=4, decoder_depth=1, decoder_num_heads=4,
           codebook_size=16, num_tokens=16)
TOK = dict(type='VQGANTokenizer', ch=32, ch_mult=[1, 2, 2], num_res_blocks=1, z_channels=8,
           embed_dim=8, n_embed=16, resolution=16)


def build_mage(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MAGE', backbone=dict(type='MAGEViT', **NET),
                              target_generator=TOK, **kwargs))
    model.init_weights()
    return model


def test_truncated_normal_is_mages_distribution():
    from scipy import stats
    torch.manual_seed(0)
    draws = torch.tensor([truncated_normal(0.55, 0.25, 0.5, 1.0) for _ in range(4000)])
    assert draws.min() >= 0.5 and draws.max() <= 1.0
    ref = stats.truncnorm((0.5 - 0.55) / 0.25, (1.0 - 0.55) / 0.25, loc=0.55, scale=0.25)
    assert draws.mean().item() == pytest.approx(ref.mean(), abs=0.01)
    assert draws.median().item() == pytest.approx(ref.median(), abs=0.015)


def test_masks_drop_half_the_sequence_among_masked_tokens():
    model = build_mage()
    torch.manual_seed(1)
    for _ in range(20):
        mask, drop = model.sample_masks(3, 16, torch.device('cpu'))
        assert torch.all(drop <= mask)  # only masked tokens are dropped
        assert torch.all(drop.sum(1) == 8)  # ceil(16 * 0.5)
        n = mask.sum(1)
        assert torch.all(n == n[0]) and 8 <= n[0] <= 16
    with pytest.raises(ValueError, match='drop_ratio'):
        build_mage(drop_ratio=0.6)


def test_dropped_tokens_never_reach_the_encoder():
    """With dropping, the logits do not depend on anything at the dropped positions'
    encoder inputs (their position embeddings here); without dropping, they do."""
    net = build_mage().backbone.eval()
    ids = torch.randint(0, 16, (2, 16))
    mask = torch.zeros(2, 16)
    mask[:, :10] = 1
    drop = torch.zeros(2, 16)
    drop[:, :8] = 1
    with torch.no_grad():
        ref_drop, ref_full = net(ids, mask, drop), net(ids, mask)
        # (not a constant shift: the embedding LayerNorm would remove it)
        net.token_emb.position_embeddings.weight[1:9] += 3 * torch.randn(8, 32)
        assert torch.allclose(net(ids, mask, drop), ref_drop, atol=1e-5)
        assert not torch.allclose(net(ids, mask), ref_full, atol=1e-3)
    # drop=None and an empty drop mask are the same computation
    assert torch.allclose(net(ids, mask, torch.zeros_like(drop)), net(ids, mask), atol=1e-5)


def test_loss_is_label_smoothed_cross_entropy_on_masked_tokens(monkeypatch):
    model = build_mage().train()
    images = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 16)
    mask[0, :12] = 1
    mask[1, 4:] = 1
    drop = torch.zeros(2, 16)
    drop[0, :8] = 1
    drop[1, 4:12] = 1
    monkeypatch.setattr(model, 'sample_masks', lambda *a: (mask, drop))
    torch.manual_seed(3)
    out = model.loss([images], None)
    _, ids = model.target_generator.encode(images)
    torch.manual_seed(3)  # same dropout draws
    logits = model.backbone(ids, mask, drop)
    logp = logits.log_softmax(-1)
    nll = -logp.gather(-1, ids[..., None])[..., 0]
    per_token = 0.9 * nll + 0.1 * -logp.mean(-1)  # smoothing over the 16 codes
    expected = (per_token * mask).sum() / mask.sum()
    assert out['loss'].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out['mask_ratio'].item() == pytest.approx(24 / 32)
    # unmasked positions do not count
    ce = F.cross_entropy(logits.flatten(0, 1), ids.flatten(), label_smoothing=0.1)
    assert out['loss'].item() != pytest.approx(ce.item(), rel=1e-3)


def test_sizes_must_match_the_tokenizer():
    with pytest.raises(ValueError, match='num_tokens=16'):
        MODELS.build(dict(type='MAGE', backbone=dict(type='MAGEViT', **dict(NET, num_tokens=64)),
                          target_generator=TOK))
    with pytest.raises(ValueError, match='codebook_size'):
        MODELS.build(dict(type='MAGE',
                          backbone=dict(type='MAGEViT', **dict(NET, codebook_size=32)),
                          target_generator=TOK))


def test_runner_checkpoint_loads_as_the_frozen_predictor(demo_run):
    stage1, stage2 = demo_run['tokenizer'], demo_run['predictor']
    log = read_log(stage2['work_dir'])
    assert len(log) == stage2['iters'] and all('loss' in r and 'mask_ratio' in r for r in log)
    # uniform-ish initial predictions over 256 codes: the loss starts near log(256)
    assert abs(log[0]['loss'] - math.log(256)) < 1.5

    sd = load_checkpoint_file(stage2['ckpt'])['state_dict']
    # the frozen tokenizer inside the stage-2 checkpoint is the stage-1 tokenizer
    sd1 = load_checkpoint_file(stage1['ckpt'])['state_dict']
    tok_keys = [k for k in sd if k.startswith('target_generator.')]
    assert tok_keys and all(
        torch.equal(sd[k], sd1['vqgan.' + k[len('target_generator.'):]]) for k in tok_keys)

    cfg = Config.fromfile(config_path('addp'))
    pred = MODELS.build(dict(cfg.model.target_generator.predictor, checkpoint=stage2['ckpt']))
    pred.init_weights()
    own = pred.state_dict()
    assert set(own) == {k[len('backbone.'):] for k in sd if k.startswith('backbone.')}
    for k, v in own.items():
        assert torch.equal(v, sd['backbone.' + k]), k

    # same predictions as the trained network in eval mode
    net = MODELS.build(dict(type='MAGEViT', **Config.fromfile(config_path('predictor')).predictor))
    net.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()
                         if k.startswith('backbone.')})
    ids = torch.randint(0, 256, (2, 64))
    mask = (torch.rand(2, 64) < 0.6).float()
    assert torch.allclose(pred.predict(ids, mask), net.eval().predict(ids, mask), atol=1e-6)


def test_tensor_mode_gives_codebook_logits():
    model = build_mage().eval()
    images = torch.rand(2, 3, 16, 16)
    logits = model([images], mode='tensor')
    assert logits.shape == (2, 16, 16)  # (B, L, codebook_size)
    _, ids = model.target_generator.encode(images)
    assert torch.allclose(logits, model.backbone(ids, torch.zeros_like(ids)))
