"""ADDPViTDet (window attention, pos-embed interpolation, strict loading) and the simple pyramid."""
import copy
import functools

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.utils import resize_pos_embed

import addp_mm.det  # noqa: F401  (registers into mmdet)
from addp_mm.det import ADDPViTDet, SimpleFeaturePyramid, WindowTransformerBlock
from addp_mm.det.vit_det import window_partition, window_unpartition
from addp_mm.engine import check_pretrained_keys
from addp_mm.models.utils.transformer import TransformerBlock
from addp_mm.checkpoints.loading import load_checkpoint_file

from .conftest import DET_B, DET_L, release_backbone_shapes


def _fixture_arch(reference) -> dict:
    c = reference.config
    return dict(embed_dims=c['dim'], num_layers=c['depth'], num_heads=c['heads'])


@functools.lru_cache()
def _shipped_backbone() -> dict:
    """The shipped ViT-B backbone config (read once: parsing the config takes ~0.5 s)."""
    return Config.fromfile(DET_B).model.backbone.to_dict()


def _det_backbone_cfg(reference, checkpoint: str, **overrides) -> dict:
    """The shipped ViT-B backbone config with the fixture's sizes (last block global, window =
    the pre-training grid, as the shipped config)."""
    cfg = copy.deepcopy(_shipped_backbone())
    cfg.update(arch=_fixture_arch(reference), global_attn_indexes=(reference.config['depth'] - 1, ),
               patch_size=reference.patch_size, pretrain_img_size=reference.img_size,
               window_size=reference.grid,
               init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    cfg.update(overrides)
    return cfg


def _build_det(cfg: dict) -> ADDPViTDet:
    from mmdet.registry import MODELS
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def test_window_partition_round_trip_with_padding():
    x = torch.randn(2, 10, 7, 8)  # (B, H, W, C); window 4 pads to 12 x 8
    windows, padded = window_partition(x, 4)
    assert padded == (12, 8) and windows.shape == (2 * 3 * 2, 16, 8)
    # window (row 1, col 0) of image 1 holds x[1, 4:8, 0:4] in row-major order
    assert torch.equal(windows[1 * 6 + 1 * 2 + 0].view(4, 4, 8), x[1, 4:8, 0:4])
    # padding is zeros at the bottom/right: window (row 2, col 1) of image 0 = rows 8-11, cols 4-7
    last = windows[2 * 2 + 1].view(4, 4, 8)
    assert torch.equal(last[:2, :3], x[0, 8:10, 4:7])
    assert not last[2:].any() and not last[:, 3].any()
    assert torch.equal(window_unpartition(windows, 4, padded, (10, 7)), x)


def test_window_block_attends_within_windows_only():
    torch.manual_seed(0)
    block = WindowTransformerBlock(32, 4, window_size=4).eval()
    plain = TransformerBlock(32, 4).eval()
    plain.load_state_dict(block.state_dict())  # same parameter names
    x = torch.randn(1, 8 * 8, 32)
    y = block(x, (8, 8))
    grid = x.view(1, 8, 8, 32)
    # each window's output is the plain block run on that window alone
    for r, c in ((0, 0), (1, 0), (1, 1)):
        win = grid[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4].reshape(1, 16, 32)
        ref = plain(win).view(1, 4, 4, 32)
        out = y.view(1, 8, 8, 32)[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4]
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # a change in window (0, 0) leaves the other windows untouched but changes a global block
    x2 = x.clone()
    # not a constant: the pre-norm LayerNorm removes a shift of all channels, so +1 everywhere
    # would reach no other token, even through global attention
    x2[0, 0] += torch.linspace(-1., 1., 32)
    y2 = block(x2, (8, 8)).view(1, 8, 8, 32)
    assert torch.equal(y2[:, 4:, :], y.view(1, 8, 8, 32)[:, 4:, :])
    assert not torch.allclose(y2[:, :4, :4], y.view(1, 8, 8, 32)[:, :4, :4])
    glob = WindowTransformerBlock(32, 4, window_size=0).eval()
    glob.load_state_dict(block.state_dict())
    assert not torch.equal(glob(x2, (8, 8))[:, -1], glob(x, (8, 8))[:, -1])


def test_window_block_padding_matches_vitdet():
    """Grid 6 x 6, window 4: ViTDet pads the *normalised* tokens with zeros, unmasked."""
    torch.manual_seed(0)
    block = WindowTransformerBlock(16, 2, window_size=4).eval()
    x = torch.randn(1, 36, 16)
    y = block(x, (6, 6))
    # reference for the bottom-right window, written out: ln1 -> pad with zeros to 8 x 8 -> attn
    # over the 4 x 4 window, whose 12 padded zeros take part -> residual -> MLP on the real tokens
    normed = torch.nn.functional.pad(block.ln1(x).view(1, 6, 6, 16), (0, 0, 0, 2, 0, 2))
    win = normed[:, 4:8, 4:8].reshape(1, 16, 16)
    attn = block.attn(win).view(1, 4, 4, 16)[:, :2, :2].reshape(1, 4, 16)
    tokens = x.view(1, 6, 6, 16)[:, 4:6, 4:6].reshape(1, 4, 16) + attn
    ref = tokens + block.ffn(block.ln2(tokens))
    torch.testing.assert_close(y.view(1, 6, 6, 16)[:, 4:6, 4:6].reshape(1, 4, 16), ref)


def test_forward_shapes_and_pos_embed_interpolation():
    torch.manual_seed(0)
    m = ADDPViTDet(arch=dict(embed_dims=32, num_layers=4, num_heads=4), window_size=4,
                   global_attn_indexes=(1, 3), out_indices=(1, -1))
    m.init_weights()
    outs = m(torch.randn(2, 3, 96, 128))
    assert [o.shape for o in outs] == [(2, 32, 6, 8)] * 2
    # the pos_embed tensor keeps the pre-training shape (cls entry + 16 x 16)
    assert m.pos_embed.shape == (1, 257, 32)
    with pytest.raises(ValueError, match='not divisible by the patch size'):
        m(torch.randn(1, 3, 100, 128))
    with pytest.raises(ValueError, match='out of range'):
        ADDPViTDet(arch='base', global_attn_indexes=(12, ))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    kw = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=4), window_size=2,
              global_attn_indexes=(1, ), drop_path_rate=0.)
    plain, ckpt = ADDPViTDet(**kw), ADDPViTDet(with_cp=True, **kw)
    plain.init_weights()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for m in (plain, ckpt):
        m.train()
        m(x)[0].square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_get_layer_depth_numbering():
    m = ADDPViTDet(arch=dict(embed_dims=32, num_layers=4, num_heads=4))
    assert m.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 6)
    assert m.get_layer_depth('backbone.patch_embed.projection.weight', 'backbone.') == (0, 6)
    assert m.get_layer_depth('backbone.layers.2.attn.qkv.weight', 'backbone.') == (3, 6)
    assert m.get_layer_depth('neck.lateral_convs.0.conv.weight', 'backbone.') == (5, 6)


def test_fixture_weights_load_with_no_missing_key(reference, converted_fixture):
    model = _build_det(_det_backbone_cfg(reference, converted_fixture))
    # the check the configs' CheckPretrainedKeysHook runs before training
    report = check_pretrained_keys(model)['']
    assert report['missing'] == [] and report['unexpected'] == ['cls_token']
    file_sd = load_checkpoint_file(converted_fixture)['state_dict']
    for k, v in model.state_dict().items():
        assert torch.equal(v, file_sd['backbone.' + k]), k


def test_det_backbone_equals_mmpretrain_vit(reference, converted_fixture):
    """Sanity equivalence: without windows, at the pre-training size, ADDPViTDet computes the
    token features of mmpretrain's VisionTransformer (no class token) on the same weights."""
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    c, grid, last = reference.config, reference.grid, reference.config['depth'] - 1
    vit = PRETRAIN_MODELS.build(dict(
        type='VisionTransformer', _scope_='mmpretrain', img_size=reference.img_size,
        patch_size=reference.patch_size, with_cls_token=False,
        out_type='featmap', final_norm=False, arch=dict(embed_dims=c['dim'], num_layers=c['depth'],
                                    num_heads=c['heads'], feedforward_channels=4 * c['dim']),
        init_cfg=dict(type='Pretrained', checkpoint=converted_fixture, prefix='backbone.')))
    vit.init_weights()
    vit.eval()
    file_sd = load_checkpoint_file(converted_fixture)['state_dict']
    assert torch.equal(vit.layers[last].ffn.layers[1].weight,
                       file_sd[f'backbone.layers.{last}.ffn.layers.1.weight'])
    x = reference.outputs['finetune_vit']['input_normalized']
    # at twice the size both interpolate the pre-training pos_embed bicubically, the class entry
    # excluded
    x2 = torch.nn.functional.interpolate(x, scale_factor=2., mode='bilinear')
    with torch.no_grad():
        ref, ref2 = vit(x)[0], vit(x2)[0]
        for window_size in (0, grid):  # global everywhere; one window = the whole grid
            det = _build_det(_det_backbone_cfg(reference, converted_fixture,
                                               window_size=window_size))
            ours = det(x)[0]
            assert ours.shape == (reference.batch, c['dim'], grid, grid)
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            _build_det(_det_backbone_cfg(reference, converted_fixture, window_size=0))(x2)[0],
            ref2, rtol=1e-5, atol=1e-5)
        # and window attention (windows of half the grid, the last block global) does change
        # the features
        windowed = _build_det(_det_backbone_cfg(reference, converted_fixture,
                                                window_size=grid // 2))(x)[0]
    assert not torch.allclose(windowed, ref, atol=1e-3)


def test_wrong_checkpoints_fail_the_key_check(reference, converted_fixture, tmp_path):
    from mmdet.registry import MODELS
    # the official release itself, not converted: no 'backbone.' key would load
    model = MODELS.build(_det_backbone_cfg(reference, reference.path('addp.pth')))
    with pytest.raises(RuntimeError, match='convert_addp.py'):
        check_pretrained_keys(model)
    # a backbone file that lacks a block tensor
    sd = load_checkpoint_file(converted_fixture)['state_dict']
    last = reference.config['depth'] - 1
    del sd[f'backbone.layers.{last}.attn.proj.weight']
    torch.save(dict(state_dict=sd), tmp_path / 'partial.pth')
    model = _build_det(_det_backbone_cfg(reference, str(tmp_path / 'partial.pth')))
    with pytest.raises(RuntimeError, match=rf'layers\.{last}\.attn\.proj\.weight'):
        check_pretrained_keys(model)
    model = MODELS.build(_det_backbone_cfg(reference, str(tmp_path / 'missing.pth')))
    with pytest.raises(FileNotFoundError, match='convert_addp.py'):
        check_pretrained_keys(model)


def test_pos_embed_of_another_pretraining_size_is_resized_on_load(reference, converted_fixture,
                                                                  tmp_path):
    """A pre-training at a smaller size (grid - 2, as 224 px is for 256 px) loads into the
    fixture's pos_embed."""
    grid, small = (reference.grid, ) * 2, (reference.grid - 2, ) * 2
    sd = load_checkpoint_file(converted_fixture)['state_dict']
    sd['backbone.pos_embed'] = resize_pos_embed(sd['backbone.pos_embed'], grid, small,
                                                'bicubic', 1)
    torch.save(dict(state_dict=sd), tmp_path / 'p224.pth')
    model = _build_det(_det_backbone_cfg(reference, str(tmp_path / 'p224.pth')))
    assert model.pos_embed.shape == (1, 1 + reference.num_tokens, reference.config['dim'])
    expected = resize_pos_embed(sd['backbone.pos_embed'], small, grid, 'bicubic', 1)
    torch.testing.assert_close(model.pos_embed.detach(), expected, rtol=0, atol=0)
    assert torch.equal(model.layers[0].attn.qkv.weight, sd['backbone.layers.0.attn.qkv.weight'])


@pytest.mark.parametrize('config', [DET_B, DET_L], ids=['base', 'large'])
def test_converted_release_keys_match_full_size_backbone(config):
    """At full size, the backbone needs exactly the converted release's tensors (+ unused cls)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config).model.backbone
    with torch.device('meta'):
        det = MODELS.build(cfg)
    expected = release_backbone_shapes(cfg.arch)
    ours = {k: v.shape for k, v in det.state_dict().items()}
    assert set(expected) - set(ours) == {'cls_token'}
    assert all(expected[k] == s for k, s in ours.items())


def test_simple_feature_pyramid():
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='SimpleFeaturePyramid', in_channels=64, out_channels=16,
                             norm_cfg=dict(type='LN2d', eps=1e-6)))
    neck.init_weights()
    x = torch.randn(2, 64, 8, 12)
    outs = neck((x, ))
    assert [o.shape[-2:] for o in outs] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    assert all(o.shape[:2] == (2, 16) for o in outs)
    # a tensor input gives the same result as the backbone's 1-tuple
    assert all(torch.equal(a, b) for a, b in zip(neck(x), outs))
    # the x4 branch halves then quarters the channels; LN2d (channels-first LayerNorm) normalises
    assert neck.stages[0][0].out_channels == 32 and neck.stages[0][3].out_channels == 16
    norm = neck.lateral_convs[2].norm
    assert type(norm).__name__ == 'LayerNorm2d' and norm.eps == 1e-6
    assert not neck.lateral_convs[2].with_activation
    y = neck.lateral_convs[2](x)  # 1x1 conv (no bias) + LN over channels: mean 0, var 1 per pixel
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 8, 12), atol=1e-5, rtol=0)
    # P6 is a stride-2 subsampling of P5
    assert torch.equal(outs[4], outs[3][..., ::2, ::2])
    assert isinstance(neck, SimpleFeaturePyramid)
    with pytest.raises(ValueError, match='scale factor 3'):
        SimpleFeaturePyramid(64, scale_factors=(3., ))
