"""Stage 1: VQGAN tokenizer training (losses, straight-through estimator, codebook health)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from addp_mm.models.algorithms.vqgan_trainer import CodebookMonitor
from addp_mm.checkpoints.loading import load_checkpoint_file

from .conftest import config_path, read_log, stage_options

TINY_VQGAN = dict(type='VQGAN', ch=32, ch_mult=[1, 2], num_res_blocks=1, z_channels=8,
                  embed_dim=8, n_embed=16, resolution=16)


def build_trainer(**kwargs):
    model = MODELS.build(dict(type='VQGANTrainer', vqgan=TINY_VQGAN, **kwargs))
    model.init_weights()
    return model


def test_losses_and_straight_through_gradients():
    torch.manual_seed(0)
    model = build_trainer(rec_loss='l2', beta=0.25)
    images = torch.rand(2, 3, 16, 16)
    losses = model.loss(images)
    # recompute from the network's own pieces
    vq = model.vqgan
    z = vq.encoder(images)
    z_q, ids = vq.quantize(z)
    assert torch.allclose(losses['loss_codebook'], F.mse_loss(z_q, z))
    assert torch.allclose(losses['loss_commit'], 0.25 * F.mse_loss(z_q, z))
    assert torch.allclose(losses['loss_rec'], F.mse_loss(vq.decoder(z_q), images), atol=1e-6)

    # the reconstruction loss reaches the encoder through the straight-through estimator and
    # never the codebook; the codebook loss reaches only the codebook
    model.zero_grad()
    losses['loss_rec'].backward(retain_graph=True)
    assert vq.encoder.conv_in.weight.grad.abs().sum() > 0
    assert vq.codebook.grad is None or vq.codebook.grad.abs().sum() == 0
    model.zero_grad()
    losses['loss_codebook'].backward(retain_graph=True)
    assert vq.codebook.grad.abs().sum() > 0
    assert vq.encoder.conv_in.weight.grad is None or vq.encoder.conv_in.weight.grad.abs().sum() == 0
    # the commitment loss moves the encoder, not the codebook
    model.zero_grad()
    losses['loss_commit'].backward()
    assert vq.encoder.conv_in.weight.grad.abs().sum() > 0
    assert vq.codebook.grad is None or vq.codebook.grad.abs().sum() == 0


def test_first_step_initialises_the_codebook_from_encoder_outputs():
    torch.manual_seed(0)
    model = build_trainer()
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        latents = model.vqgan.encoder(images).permute(0, 2, 3, 1).reshape(-1, 8)
    losses = model.loss(images)
    assert losses['codebook_restarts'] == 16
    # every code is now (up to the 1e-3 x std jitter) one of the batch's encoder outputs
    dist = torch.cdist(model.vqgan.codebook.detach(), latents).min(1).values
    assert dist.max() < 1e-2 * latents.std() * math.sqrt(8)
    assert model.loss(images)['codebook_restarts'] == 0  # only once


def test_codebook_monitor_usage_perplexity_and_dead_code_restart():
    monitor = CodebookMonitor(n_embed=8, usage_window=3, dead_after=4)
    ids = torch.tensor([[0, 1, 0, 1]])  # two codes, equally often
    stats = monitor.update(ids)
    assert stats['codebook_usage'] == pytest.approx(2 / 8)
    assert stats['codebook_perplexity'] == pytest.approx(2.0, rel=1e-5)
    stats = monitor.update(torch.tensor([[2, 2, 2, 2]]))
    assert stats['codebook_usage'] == pytest.approx(3 / 8)
    assert stats['codebook_perplexity'] == pytest.approx(1.0, rel=1e-5)
    for _ in range(2):
        monitor.update(torch.tensor([[2, 2, 2, 2]]))
    # codes 0, 1 were last used at step 1, three steps ago: out of the usage window
    assert monitor.update(torch.tensor([[2]]))['codebook_usage'] == pytest.approx(1 / 8)

    # after 5 steps: codes 3..7 never used (5 >= dead_after), 0 and 1 unused for 4 steps
    codebook = torch.zeros(8, 2)
    codebook[2] = 7.
    latents = torch.tensor([[10., 20.], [30., 40.]])
    n = monitor.restart(codebook, latents)
    assert n == 7  # all but code 2
    assert torch.equal(codebook[2], torch.tensor([7., 7.]))
    for i in (0, 1, 3, 4, 5, 6, 7):
        assert min((codebook[i] - lat).abs().max() for lat in latents) < 0.1
    # restarted codes get a fresh grace period
    assert monitor.restart(codebook, latents) == 0


def test_trainer_checks_its_config():
    with pytest.raises(ValueError, match='rec_loss'):
        build_trainer(rec_loss='l3')
    with pytest.raises(ValueError, match="type='VQGAN'"):
        MODELS.build(dict(type='VQGANTrainer', vqgan=dict(TINY_VQGAN, type='VQGANTokenizer')))
    tok = MODELS.build(dict(TINY_VQGAN, type='VQGANTokenizer'))
    with pytest.raises(RuntimeError, match='frozen'):
        tok(torch.rand(1, 3, 16, 16))


def test_runner_logs_codebook_health_and_the_checkpoint_is_a_frozen_tokenizer(demo_run):
    stage1 = demo_run['tokenizer']
    log = read_log(stage1['work_dir'])
    assert len(log) == stage1['iters']  # logged every iteration
    for rec in log:
        for key in ('loss', 'loss_rec', 'loss_codebook', 'loss_commit', 'codebook_usage',
                    'codebook_perplexity'):
            assert key in rec, key
        # the statistics are logged but not added to the loss
        assert rec['loss'] == pytest.approx(
            rec['loss_rec'] + rec['loss_codebook'] + rec['loss_commit'], rel=1e-4)
        assert 0 < rec['codebook_usage'] <= 1
        assert 1 <= rec['codebook_perplexity'] <= 256
    assert log[0]['codebook_restarts'] == 256  # data-dependent init at the first step

    cfg = Config.fromfile(config_path('predictor'))
    tok = MODELS.build(dict(cfg.model.target_generator, checkpoint=stage1['ckpt']))
    tok.init_weights()
    sd = load_checkpoint_file(stage1['ckpt'])['state_dict']
    own = tok.state_dict()
    assert set(own) == {k[len('vqgan.'):] for k in sd if k.startswith('vqgan.')}
    for k, v in own.items():
        assert torch.equal(v, sd['vqgan.' + k]), k
    assert not any(p.requires_grad for p in tok.parameters())


def test_perceptual_loss_from_local_files(tmp_path):
    from addp_mm.models.losses.perceptual import _vgg16_features
    torch.manual_seed(0)
    vgg = str(tmp_path / 'vgg16.pth')
    torch.save({f'features.{k}': v for k, v in _vgg16_features().state_dict().items()}, vgg)
    lin = str(tmp_path / 'lin.pth')
    torch.save({f'lin{i}.model.1.weight': torch.rand(1, c, 1, 1)
                for i, c in enumerate((64, 128, 256, 512, 512))}, lin)
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    values = []
    for lin_file in (None, lin):
        loss = MODELS.build(dict(type='VGGPerceptualLoss', vgg_checkpoint=vgg,
                                 lpips_checkpoint=lin_file))
        assert not any(p.requires_grad for p in loss.parameters())
        assert loss(a, a).item() == pytest.approx(0., abs=1e-6)
        x = a.clone().requires_grad_(True)
        d = loss(x, b)
        d.backward()
        assert d.item() > 0 and x.grad.abs().sum() > 0
        values.append(d.item())
    # the LPIPS weights (uniform(0, 1) here) weigh the channels: a different distance
    assert values[0] != pytest.approx(values[1], rel=1e-3)


def test_perceptual_loss_needs_local_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        MODELS.build(dict(type='VGGPerceptualLoss', vgg_checkpoint=str(tmp_path / 'no.pth')))
    bad = str(tmp_path / 'bad.pth')
    torch.save({'something.weight': torch.zeros(1)}, bad)
    with pytest.raises(KeyError, match='VGG-16 features'):
        MODELS.build(dict(type='VGGPerceptualLoss', vgg_checkpoint=bad))


def test_adversarial_training_with_two_optimizers(image_folder, tmp_path):
    """PatchGAN + hinge losses: both optimizers step, both losses are logged."""
    cfg = Config.fromfile(config_path('tokenizer'))
    cfg.merge_from_dict(stage_options(image_folder, batch=2))
    cfg.model.vqgan = TINY_VQGAN  # 16x16 images: this test is about the two optimizers
    cfg.train_dataloader.dataset.pipeline[1].scale = 16
    cfg.log_processor = dict(by_epoch=False, window_size=1)  # per-iteration values
    cfg.model.discriminator = dict(type='PatchGANDiscriminator', base_channels=8, num_layers=2)
    cfg.model.disc_start = 1  # the first step is generator-only
    cfg.optim_wrapper = dict(
        constructor='SubmoduleOptimWrapperConstructor',
        vqgan=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9))),
        discriminator=dict(type='OptimWrapper',
                           optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9))))
    cfg.param_scheduler = []
    cfg.train_cfg.max_iters = 3
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 3
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = 'test-adversarial'
    runner = Runner.from_cfg(cfg)
    d0 = {k: v.clone() for k, v in runner.model.discriminator.state_dict().items()}
    runner.train()
    log = read_log(str(tmp_path))
    assert 'loss_g_adv' not in log[0] and 'loss_disc' not in log[0]
    assert 'loss_g_adv' in log[2] and 'loss_disc' in log[2]
    assert log[2]['loss'] == pytest.approx(
        log[2]['loss_rec'] + log[2]['loss_codebook'] + log[2]['loss_commit'] +
        log[2]['loss_g_adv'], rel=1e-4)
    changed = [k for k, v in runner.model.discriminator.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, d0[k])]
    assert any(k.endswith('weight') for k in changed)


def test_adversarial_training_needs_two_optimizers():
    model = build_trainer(discriminator=dict(type='PatchGANDiscriminator', base_channels=8,
                                             num_layers=1))
    from mmengine.optim import OptimWrapper
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match='SubmoduleOptimWrapperConstructor'):
        model.train_step(dict(inputs=[torch.zeros(1, 3, 16, 16, dtype=torch.uint8)]), wrapper)
