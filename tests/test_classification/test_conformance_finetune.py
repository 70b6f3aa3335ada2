"""Conformance of the classification backbones with the official ADDP fine-tuning ViT.

The fixture's ``addp.pth`` (official release layout) goes through the real converter
(``--backbone-only``) into the model of the shipped ViT-B fine-tuning config (sizes from the
fixture's config.json), and must reproduce the official fine-tuning ViT: the tokens after the last
block (no final norm) and the mean of the patch tokens that feeds ``fc_norm`` (mmpretrain's
``ln2``).
"""
import copy
import functools

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from addp_mm.engine import check_pretrained_keys
from ..conftest import assert_close_rel
from .conftest import FINETUNE_B, LINEAR_B

LN2 = r'backbone\.ln2\..*'


def patch_size(config: dict) -> int:
    """Image side / token-grid side (the ViT's patch grid is the VQGAN's token grid)."""
    return 2**(len(config['vqgan']['ddconfig']['ch_mult']) - 1)


def fixture_arch(config: dict) -> dict:
    D = config['dim']
    return dict(embed_dims=D, num_layers=config['depth'], num_heads=config['heads'],
                feedforward_channels=4 * D)


@functools.lru_cache()
def _shipped_model(path: str):
    """The shipped config's model (read once per config: parsing takes ~0.5 s)."""
    return Config.fromfile(path).model


def build_from_config(path: str, config: dict, checkpoint: str):
    """The shipped config's classifier with the fixture's sizes and the converted checkpoint."""
    model_cfg = copy.deepcopy(_shipped_model(path))
    model_cfg.backbone.arch = fixture_arch(config)
    model_cfg.backbone.img_size = config['vqgan']['ddconfig']['resolution']
    model_cfg.backbone.patch_size = patch_size(config)
    if 'frozen_stages' in model_cfg.backbone:
        model_cfg.backbone.frozen_stages = config['depth']
    model_cfg.backbone.init_cfg.checkpoint = checkpoint
    model_cfg.head.in_channels = config['dim']
    if model_cfg.get('neck'):
        model_cfg.neck[-1].input_features = config['dim']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def test_finetune_vit_matches_official(reference, converted):
    config, ref = reference.config, reference.outputs['finetune_vit']
    model = build_from_config(FINETUNE_B, config, converted['finetune'])

    # zero missing backbone weights; ln2 is the official fc_norm, the only new backbone layer,
    # exactly as the official loader reports (fc_norm + head missing)
    report = check_pretrained_keys(model, allowed_missing=[LN2])['backbone']
    assert report['missing'] == []
    assert report['unexpected'] == []
    assert report['allowed_missing'] == ['backbone.ln2.bias', 'backbone.ln2.weight']
    assert sorted(ref['loaded_missing']) == ['fc_norm.bias', 'fc_norm.weight', 'head.bias',
                                             'head.weight']
    with pytest.raises(RuntimeError, match=r'backbone\.ln2\.weight'):
        check_pretrained_keys(model)  # without the allowance the new layer is reported

    captured = {}
    model.backbone.layers[-1].register_forward_hook(
        lambda m, i, o: captured.__setitem__('tokens', o))
    model.backbone.ln2.register_forward_hook(lambda m, i, o: captured.__setitem__('avg', i[0]))
    with torch.no_grad():
        feats = model.extract_feat(ref['input_normalized'])
    B, N = reference.batch, reference.num_tokens
    assert captured['tokens'].shape == (B, N + 1, config['dim'])
    assert_close_rel(captured['tokens'], ref['tokens_after_blocks'], name='tokens_after_blocks')
    assert_close_rel(captured['avg'], ref['avg_patch_tokens'], name='avg_patch_tokens')
    # the head's input is fc_norm(avg) with a fresh LayerNorm (weight 1, bias 0)
    expected = torch.nn.functional.layer_norm(ref['avg_patch_tokens'], (config['dim'], ), eps=1e-6)
    assert_close_rel(feats[0], expected, name='ln2(avg_patch_tokens)')


def test_linear_probe_backbone_is_the_pretraining_encoder(reference, converted):
    """The linear probe's frozen backbone computes ADDP's pre-training encoder (pre_norm + ln1)."""
    config = reference.config
    model = build_from_config(LINEAR_B, config, converted['linear'])
    report = check_pretrained_keys(model)['backbone']
    assert report['missing'] == [] and report['unexpected'] == []
    assert not any(p.requires_grad for p in model.backbone.parameters())
    # patch-embed bias kept (mmpretrain drops it by default when pre_norm=True)
    assert model.backbone.patch_embed.projection.bias is not None

    from addp_mm.models import ADDPViT
    from addp_mm.checkpoints.loading import load_checkpoint_file
    encoder = ADDPViT(arch=dict(embed_dims=config['dim'], num_layers=config['depth'],
                                num_heads=config['heads']),
                      img_size=reference.img_size, patch_size=reference.patch_size,
                      normalize_input=False)
    sd = load_checkpoint_file(converted['linear'])['state_dict']
    encoder.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()}, strict=True)
    encoder.eval()
    x = reference.outputs['finetune_vit']['input_normalized']
    with torch.no_grad():
        tokens = encoder(x)[0]  # (B, 1 + N, D) after ln1
        featmap = model.backbone(x)[0]  # (B, D, H, W) patch tokens after ln1
    ours = featmap.flatten(2).transpose(1, 2)
    assert_close_rel(ours, tokens[:, 1:], name='linear-probe patch tokens')


def test_missing_norms_fail_the_linear_probe(reference, converted):
    """The fine-tuning file (no pre_norm/ln1) must not silently load into the linear probe."""
    model = build_from_config(LINEAR_B, reference.config, converted['finetune'])
    with pytest.raises(RuntimeError, match=r'(?s)backbone\.ln1\.bias.*--keep-norms'):
        check_pretrained_keys(model)
