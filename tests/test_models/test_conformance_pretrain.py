"""Pre-training conformance against the official implementation's outputs (the shared fixture)."""
import copy

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from addp_mm.checkpoints.convert import convert_official_addp
from addp_mm.checkpoints.loading import load_checkpoint_file
from addp_mm.checkpoints.weights import extract_state_dict

from ..conftest import assert_close_rel, assert_equal_or_tie, reference_model_cfg


@pytest.fixture(scope='module')
def converted(reference, tmp_path_factory):
    sd = extract_state_dict(load_checkpoint_file(reference.path('addp.pth')))
    out, dropped, unknown = convert_official_addp(sd)
    assert unknown == []
    path = tmp_path_factory.mktemp('conv') / 'addp_mm.pth'
    torch.save(dict(state_dict=out), path)
    return str(path)


@pytest.fixture(scope='module')
def model(reference, converted):
    """The whole ADDP model built from config.json and loaded from the converted release."""
    m = MODELS.build(reference_model_cfg(reference.config))
    m.init_weights()
    load_checkpoint(m, converted, strict=True, map_location='cpu')
    return m.eval()


@pytest.fixture(scope='module')
def vqgan(reference):
    cfg = reference_model_cfg(reference.config, vqgan_ckpt=reference.path('vqgan.ckpt'))
    m = MODELS.build(cfg['target_generator']['vqgan'])
    m.init_weights()
    return m


@pytest.fixture(scope='module')
def predictor(reference):
    cfg = reference_model_cfg(reference.config, predictor_ckpt=reference.path('mage.pth'))
    m = MODELS.build(cfg['target_generator']['predictor'])
    m.init_weights()
    return m


def test_vqgan_encode(reference, vqgan):
    images = reference.inputs['images']
    z_q, ids = vqgan.encode(images)
    # scores for the tie check: negative squared distance to every code
    z = vqgan.encoder(images).permute(0, 2, 3, 1).reshape(ids.shape[0], ids.shape[1], -1)
    dist = torch.cdist(z.double(), vqgan.codebook.double()[None])**2
    assert_equal_or_tie(ids, reference.outputs['vq_tokens'], -dist, True, 'vq_tokens')
    assert_close_rel(z_q, reference.outputs['vq_z0'], name='vq_z0')


def test_vqgan_decode(reference, vqgan):
    assert_close_rel(vqgan.decode(reference.outputs['vq_z0']), reference.outputs['vq_decoded'],
                     name='vq_decoded')


def test_vqgan_channels_last(reference):
    """`channels_last=True` (the ViT-B/L configs) keeps the conformance of encode and decode."""
    cfg = reference_model_cfg(reference.config, vqgan_ckpt=reference.path('vqgan.ckpt'))
    m = MODELS.build(dict(cfg['target_generator']['vqgan'], channels_last=True))
    m.init_weights()
    assert m.encoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert m.decoder.conv_out.weight.is_contiguous(memory_format=torch.channels_last)
    z_q, ids = m.encode(reference.inputs['images'])
    assert_close_rel(z_q, reference.outputs['vq_z0'], name='vq_z0 (channels_last)')
    assert_close_rel(m.decode(reference.outputs['vq_z0']), reference.outputs['vq_decoded'],
                     name='vq_decoded (channels_last)')


@pytest.mark.parametrize('source', ['vqgan.ckpt', 'mage.pth', 'addp.pth'])
def test_vqgan_loads_from_every_release_layout(reference, vqgan, source, tmp_path):
    """The tokenizer loads from the VQGAN file, MAGE's `vqgan.*` and ADDP's `vqgan.*` keys."""
    cfg = reference_model_cfg(reference.config, vqgan_ckpt=reference.path(source))
    m = MODELS.build(cfg['target_generator']['vqgan'])
    m.init_weights()
    sd = extract_state_dict(load_checkpoint_file(reference.path(source)))
    key = 'quantize.embedding.weight'
    expected = sd[key] if key in sd else sd['vqgan.' + key]
    assert torch.equal(m.codebook, expected)


def test_vqgan_raw_state_dict(reference, vqgan, tmp_path):
    """A raw (unwrapped) VQGAN state dict gives the same tokenizer."""
    sd = extract_state_dict(load_checkpoint_file(reference.path('vqgan.ckpt')))
    raw = tmp_path / 'raw.ckpt'
    torch.save(sd, raw)
    cfg = reference_model_cfg(reference.config, vqgan_ckpt=str(raw))
    m = MODELS.build(cfg['target_generator']['vqgan'])
    m.init_weights()
    for (k, a), b in zip(m.state_dict().items(), vqgan.state_dict().values()):
        assert torch.equal(a, b), k


def test_predictor_probs(reference, predictor):
    out = reference.outputs
    probs = predictor.predict(out['vq_tokens'], reference.inputs['mask_t'])
    assert_close_rel(probs, out['tp_probs_mask_t'], name='tp_probs_mask_t')


def test_predictor_soft_vectors(reference, predictor, vqgan):
    out = reference.outputs
    probs = predictor.predict(out['vq_tokens'], reference.inputs['mask_next'])
    assert_close_rel(vqgan.soft_vectors(probs), out['tp_soft_z_mask_next'],
                     name='tp_soft_z_mask_next')


def test_predictor_from_addp_release_equals_mage_release(reference, predictor):
    cfg = reference_model_cfg(reference.config, predictor_ckpt=reference.path('addp.pth'))
    m = MODELS.build(cfg['target_generator']['predictor'])
    m.init_weights()
    out = reference.outputs
    probs = m.predict(out['vq_tokens'], reference.inputs['mask_t'])
    assert_close_rel(probs, out['tp_probs_mask_t'], name='tp_probs_mask_t (ADDP release)')


@pytest.fixture(scope='module')
def target(reference, model):
    """The converted model's frozen parts on the fixture's images and masks (run once: the VQGAN
    encode and decode dominate this module's time)."""
    inp = reference.inputs
    return model.target_generator(inp['images'], inp['mask_t'], inp['mask_next'])


def test_target_generator_end_to_end(reference, target):
    """Tokens, x_t and target from images and masks through the converted model's frozen parts."""
    out = reference.outputs
    res = target
    assert torch.equal(res['ids'], out['vq_tokens'])
    assert_close_rel(res['z0'], out['vq_z0'], name='vq_z0')
    assert_close_rel(res['target'], out['tp_probs_mask_t'], name='target')
    assert_close_rel(res['x_t'], out['x_t'], name='x_t')


def test_x_t_from_reference_parts(reference, model):
    out, inp = reference.outputs, reference.inputs
    B = out['vq_z0'].shape[0]
    h, w = out['vq_z0'].shape[-2:]
    z_t = torch.where(inp['mask_t'].view(B, 1, h, w).bool(), out['tp_soft_z_mask_next'],
                      out['vq_z0'])
    assert_close_rel(model.target_generator.vqgan.decode(z_t), out['x_t'], name='x_t')


def test_encoder_output(reference, model):
    assert_close_rel(model.backbone(reference.outputs['x_t'])[0], reference.outputs['encoder_out'],
                     name='encoder_out')


def test_decoder_logits(reference, model):
    out = reference.outputs
    feats = model.neck(out['encoder_out'], out['vq_tokens'], reference.inputs['mask_t'])
    logits = model.head(feats, model.neck.token_emb.weight)  # tied to the decoder's embedding
    assert_close_rel(logits, out['decoder_logits'], name='decoder_logits')


def test_loss(reference, model):
    out = reference.outputs
    loss = model.head.loss(out['decoder_logits'], out['tp_probs_mask_t'],
                           reference.inputs['mask_t'])
    assert_close_rel(loss, out['loss'], name='loss')


def test_full_chain_loss(reference, model, target):
    """Images + masks -> loss through every part of our model."""
    inp, out = reference.inputs, reference.outputs
    res = target
    logits = model.forward_logits(res['x_t'], res['ids'], inp['mask_t'])
    assert_close_rel(logits, out['decoder_logits'], name='decoder_logits (chain)')
    loss = model.head.loss(logits, res['target'], inp['mask_t'])
    assert_close_rel(loss, out['loss'], name='loss (chain)')


def test_wrong_sizes_fail_loudly(reference, converted):
    cfg = reference_model_cfg(reference.config)
    cfg = copy.deepcopy(cfg)
    cfg['target_generator']['predictor'].update(checkpoint=reference.path('mage.pth'),
                                                embed_dims=reference.config['tp_dim'] * 2,
                                                num_heads=reference.config['tp_heads'])
    m = MODELS.build(cfg['target_generator']['predictor'])
    with pytest.raises(ValueError, match='sizes in the config'):
        m.init_weights()


def test_wrong_file_fails_loudly(reference):
    cfg = reference_model_cfg(reference.config, predictor_ckpt=reference.path('vqgan.ckpt'))
    m = MODELS.build(cfg['target_generator']['predictor'])
    with pytest.raises(KeyError, match='does not hold the weights'):
        m.init_weights()
