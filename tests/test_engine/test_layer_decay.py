"""ADDPLayerDecayOptimWrapperConstructor on real mmpretrain / mmdet / mmseg models (construction
only).

The expected lr of a parameter with layer id ``i`` in a ViT with ``L`` blocks is
``base_lr * rate ** (L + 1 - i)``, with ``i = 0`` for the stem (patch_embed, cls_token, pos_embed),
``i = n + 1`` for ``backbone.layers.n.*`` and ``i = L + 1`` for everything else (necks, heads,
backbone norms after the blocks). That is mmpretrain's ``LearningRateDecayOptimWrapperConstructor``
(``rate ** (max_id - i - 1)`` with ``max_id = L + 2``) and the official ADDP ``param_groups_lrd``.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, DefaultScope

import addp_mm  # noqa: F401  (registers the constructor)
from addp_mm.engine import ADDPLayerDecayOptimWrapperConstructor

BASE_LR, WD, RATE = 1e-3, 0.05, 0.6
D, L = 32, 3
TINY_ARCH = dict(embed_dims=D, num_layers=L, num_heads=2, feedforward_channels=2 * D)


def optim_cfg(**paramwise):
    return dict(optimizer=dict(type='AdamW', lr=BASE_LR, betas=(0.9, 0.999), weight_decay=WD),
                constructor='ADDPLayerDecayOptimWrapperConstructor',
                paramwise_cfg=dict(layer_decay_rate=RATE, **paramwise))


def expected_layer_id(name: str, num_layers: int) -> int:
    if not name.startswith('backbone.'):
        return num_layers + 1
    name = name[len('backbone.'):]
    if name in ('cls_token', 'pos_embed') or name.startswith('patch_embed.'):
        return 0
    if name.startswith('layers.'):
        return int(name.split('.')[1]) + 1
    return num_layers + 1


def per_param(optim_wrapper):
    """{param name: (lr, weight_decay, layer_id)} from the built optimizer, each name once."""
    out = {}
    for group in optim_wrapper.optimizer.param_groups:
        assert len(group['params']) == len(group['param_names'])
        for name in group['param_names']:
            assert name not in out, f'{name} is in two param groups'
            out[name] = (group['lr'], group['weight_decay'], group['layer_id'])
    return out


def check_model(model, optim_wrapper, num_layers, no_decay_extra=()):
    """Every trainable parameter once, with the formula's lr and the right weight decay."""
    got = per_param(optim_wrapper)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(got) == set(trainable)
    for name, param in trainable.items():
        lr, wd, layer_id = got[name]
        want_id = expected_layer_id(name, num_layers)
        assert layer_id == want_id, name
        assert lr == pytest.approx(BASE_LR * RATE**(num_layers + 1 - want_id), rel=1e-12), name
        no_decay = (param.ndim == 1 or name.endswith(('.bias', '.pos_embed', '.cls_token'))
                    or name in no_decay_extra)
        assert wd == (0. if no_decay else WD), name
    return got


def tiny_classifier(**backbone_kwargs):
    from mmpretrain.registry import MODELS
    backbone = dict(type='VisionTransformer', arch=TINY_ARCH, img_size=32, patch_size=16,
                    out_type='avg_featmap', final_norm=False)
    backbone.update(backbone_kwargs)
    return MODELS.build(dict(type='ImageClassifier', _scope_='mmpretrain', backbone=backbone,
                             head=dict(type='LinearClsHead', num_classes=3, in_channels=D)))


def test_classifier_matches_formula_and_mmpretrain_constructor():
    model = tiny_classifier()
    ow = build_optim_wrapper(model, optim_cfg())
    got = check_model(model, ow, L)
    # spot values: head lr x1, ln2 (fc_norm) top layer, last block x rate, stem x rate^(L+1)
    assert got['head.fc.weight'][:2] == (BASE_LR, WD)
    assert got['backbone.ln2.weight'][:2] == (BASE_LR, 0.)
    assert got['backbone.layers.2.attn.qkv.weight'][0] == pytest.approx(BASE_LR * RATE)
    assert got['backbone.patch_embed.projection.weight'][0] == pytest.approx(BASE_LR * RATE**4)
    assert got['backbone.cls_token'][1:] == (0., 0)
    # groups are (layer, decay) pairs: 2 per layer id 0..L+1
    assert len(ow.optimizer.param_groups) == 2 * (L + 2)

    # the same per-parameter lrs as mmpretrain's own constructor (which needs get_layer_depth)
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    ref = LearningRateDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=WD)),
        dict(layer_decay_rate=RATE))(model)
    ref_lr = {g['param_name']: g['lr'] for g in ref.optimizer.param_groups}
    assert ref_lr.keys() == got.keys()
    for name, (lr, _, _) in got.items():
        assert lr == pytest.approx(ref_lr[name], rel=1e-12), name


def test_frozen_parameters_are_skipped():
    # frozen_stages=1 freezes patch_embed, cls_token, pos_embed and layers.0
    model = tiny_classifier(frozen_stages=1)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert 'backbone.layers.0.attn.qkv.weight' in frozen and 'backbone.pos_embed' in frozen
    ow = build_optim_wrapper(model, optim_cfg())
    got = check_model(model, ow, L)
    assert not frozen & set(got)
    optimized = {id(p) for g in ow.optimizer.param_groups for p in g['params']}
    assert all(id(p) not in optimized for n, p in model.named_parameters() if n in frozen)


def test_no_decay_names_configurable():
    model = tiny_classifier()
    ow = build_optim_wrapper(model, optim_cfg(no_decay_names=['pos_embed', 'head.fc.weight']))
    got = per_param(ow)
    assert got['backbone.pos_embed'][1] == 0.
    assert got['head.fc.weight'][1] == 0.
    # the list replaces the default one, so cls_token (3-D) decays now
    assert got['backbone.cls_token'][1] == WD
    assert got['backbone.layers.0.attn.qkv.weight'][1] == WD


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg', 'mmengine'])
def test_registered_for_every_default_scope(scope):
    model = tiny_classifier()
    with DefaultScope.overwrite_default_scope(scope):
        reg = OPTIM_WRAPPER_CONSTRUCTORS
        with reg.switch_scope_and_registry(None) as registry:
            assert registry.scope == scope
            assert registry.get('ADDPLayerDecayOptimWrapperConstructor') is \
                ADDPLayerDecayOptimWrapperConstructor
        ow = build_optim_wrapper(model, optim_cfg())
    assert type(ow.optimizer).__name__ == 'AdamW'
    assert len(ow.optimizer.param_groups) == 2 * (L + 2)


def test_mmdet_mask_rcnn_with_mmpretrain_vit():
    import mmdet
    base = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
                    'mask-rcnn_r50_fpn.py')
    cfg = Config.fromfile(base).model
    cfg.backbone = dict(type='mmpretrain.VisionTransformer', arch=TINY_ARCH, img_size=64,
                        out_type='featmap', with_cls_token=False, out_indices=[1, 2],
                        final_norm=False)
    cfg.neck.update(in_channels=[D, D], out_channels=16, num_outs=2)
    cfg.rpn_head.update(in_channels=16, feat_channels=16)
    cfg.rpn_head.anchor_generator.strides = [16, 32]
    cfg.roi_head.bbox_roi_extractor.update(out_channels=16, featmap_strides=[16, 32])
    cfg.roi_head.bbox_head.update(in_channels=16, fc_out_channels=32)
    cfg.roi_head.mask_roi_extractor.update(out_channels=16, featmap_strides=[16, 32])
    cfg.roi_head.mask_head.update(in_channels=16, conv_out_channels=16)
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS
        model = MODELS.build(cfg)
        ow = build_optim_wrapper(model, optim_cfg())
    assert type(model).__name__ == 'MaskRCNN'
    got = check_model(model, ow, L)
    assert got['neck.lateral_convs.0.conv.weight'][:2] == (BASE_LR, WD)
    assert got['roi_head.bbox_head.fc_cls.weight'][0] == BASE_LR
    assert got['backbone.layers.0.ffn.layers.1.weight'][0] == pytest.approx(BASE_LR * RATE**3)


def test_window_attention_vit_in_mmdet():
    """mmpretrain's ViTSAM (ViTDet-style windows, rel-pos) keeps the layers.N naming."""
    arch = dict(TINY_ARCH, global_attn_indexes=[2])
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import MODELS
        model = MODELS.build(dict(
            type='RetinaNet',
            data_preprocessor=dict(type='DetDataPreprocessor'),
            backbone=dict(type='mmpretrain.ViTSAM', arch=arch, img_size=64, window_size=2,
                          out_channels=0, out_type='featmap', use_rel_pos=True),
            neck=dict(type='FPN', in_channels=[D], out_channels=16, num_outs=1),
            bbox_head=dict(type='RetinaHead', num_classes=2, in_channels=16, feat_channels=16,
                           stacked_convs=1,
                           anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                                 scales_per_octave=1, ratios=[1.0],
                                                 strides=[16]),
                           bbox_coder=dict(type='DeltaXYWHBBoxCoder'))))
        ow = build_optim_wrapper(model, optim_cfg(num_layers=L))
    got = check_model(model, ow, L)
    assert 'backbone.layers.0.attn.rel_pos_h' in got
    assert got['backbone.layers.0.attn.rel_pos_h'][0] == pytest.approx(BASE_LR * RATE**3)


def test_mmseg_encoder_decoder_with_mmpretrain_vit():
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.registry import MODELS
        model = MODELS.build(dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(type='mmpretrain.VisionTransformer', arch=TINY_ARCH, img_size=64,
                          out_type='featmap', with_cls_token=False, out_indices=[0, 1, 2, 2],
                          final_norm=False),
            neck=dict(type='Feature2Pyramid', embed_dim=D, rescales=[4, 2, 1, 0.5],
                      norm_cfg=dict(type='BN')),
            decode_head=dict(type='UPerHead', in_channels=[D] * 4, in_index=[0, 1, 2, 3],
                             channels=16, num_classes=3, norm_cfg=dict(type='BN'),
                             pool_scales=(1, 2)),
            auxiliary_head=dict(type='FCNHead', in_channels=D, in_index=2, channels=16,
                                num_convs=1, num_classes=3, norm_cfg=dict(type='BN'))))
        ow = build_optim_wrapper(model, optim_cfg())
    got = check_model(model, ow, L)
    assert got['decode_head.conv_seg.weight'][:2] == (BASE_LR, WD)
    assert got['auxiliary_head.conv_seg.weight'][0] == BASE_LR


def test_backbone_without_get_layer_depth_uses_names():
    """mmseg's MAE backbone has layers.N names but no get_layer_depth: ids come from the names."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.registry import MODELS
        model = MODELS.build(dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(type='MAE', img_size=(32, 32), embed_dims=D, num_layers=L, num_heads=2,
                          out_indices=[L - 1], init_values=1.0),
            decode_head=dict(type='FCNHead', in_channels=D, channels=16, num_convs=1,
                             num_classes=3, norm_cfg=dict(type='BN'))))
    assert not hasattr(model.backbone, 'get_layer_depth')
    ow = build_optim_wrapper(model, optim_cfg())
    got = check_model(model, ow, L)
    # layer-scale gammas are 1-D: no decay; the per-layer rel-pos table lives in its layer
    assert got['backbone.layers.1.gamma_1'] == (pytest.approx(BASE_LR * RATE**2), 0., 2)
    rel = 'backbone.layers.0.attn.relative_position_bias_table'
    assert got[rel][2] == 1


def test_clear_errors():
    model = tiny_classifier()
    with pytest.raises(ValueError, match='layer_decay_rate'):
        ADDPLayerDecayOptimWrapperConstructor(dict(optimizer=dict(type='AdamW', lr=1e-3)), {})
    with pytest.raises(ValueError, match="'decay_rate' is called 'layer_decay_rate'"):
        ADDPLayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-3)), dict(decay_rate=0.65, num_layers=3))
    with pytest.raises(ValueError, match='has 3 transformer blocks'):
        build_optim_wrapper(model, optim_cfg(num_layers=12))
    with pytest.raises(ValueError, match=r'in \(0, 1\]'):
        build_optim_wrapper(model, dict(optim_cfg(), paramwise_cfg=dict(layer_decay_rate=1.5)))
    with pytest.raises(ValueError, match='cannot find the transformer blocks'):
        build_optim_wrapper(torch.nn.Sequential(torch.nn.Linear(2, 2)), optim_cfg())


def test_optimizer_state_round_trip():
    """Resuming works: a fresh wrapper loads the state of a stepped one (groups carry names)."""
    model = tiny_classifier()
    ow = build_optim_wrapper(model, optim_cfg())
    model(torch.randn(2, 3, 32, 32), mode='tensor').sum().backward()
    ow.step()
    fresh = build_optim_wrapper(tiny_classifier(), optim_cfg())
    fresh.load_state_dict(ow.state_dict())
    assert len(fresh.optimizer.state) == len(list(model.parameters()))
    assert [g['lr'] for g in fresh.optimizer.param_groups] == \
        [g['lr'] for g in ow.optimizer.param_groups]
