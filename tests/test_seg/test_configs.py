"""The shipped segmentation configs: recipe values, full-size build + forward, and a tiny variant
that trains and evaluates with the real mmengine Runner on a tiny ADE20k-format dataset."""
import math

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.utils import resize_pos_embed

from ..test_det.conftest import (build_full_size, check_metafile, param_lrs,
                                 save_random_backbone, train_two_iterations)
from .conftest import SEG_B, SEG_L

CROP = 64  # the tiny variant's crop (4 x 4 tokens)


@pytest.mark.parametrize('config,arch,out_indices,D,dpr', [
    (SEG_B, 'base', [3, 5, 7, 11], 768, 0.1),
    (SEG_L, 'large', [7, 11, 15, 23], 1024, 0.2),
], ids=['base', 'large'])
def test_recipe(config, arch, out_indices, D, dpr):
    cfg = Config.fromfile(config)
    assert 'addp_mm' in cfg.custom_imports.imports and cfg.default_scope == 'mmseg'
    assert cfg.model.pretrained is None  # EncoderDecoder would pass it to the backbone
    bb = cfg.model.backbone
    assert (bb.type, bb.arch, bb.img_size, bb.out_indices, bb.drop_path_rate) == (
        'mmpretrain.VisionTransformer', arch, 512, out_indices, dpr)
    assert (bb.out_type, bb.with_cls_token, bb.final_norm) == ('featmap', True, False)
    assert bb.init_cfg == dict(type='Pretrained', prefix='backbone.',
                               checkpoint=f'checkpoints/addp-vit-{arch}-16_backbone.pth')
    assert [h.type for h in cfg.custom_hooks] == ['CheckPretrainedKeysHook']
    assert cfg.model.neck.type == 'Feature2Pyramid' and cfg.model.neck.embed_dim == D
    assert cfg.model.neck.rescales == [4, 2, 1, 0.5]
    assert cfg.model.decode_head.type == 'UPerHead' and cfg.model.decode_head.in_channels == [D] * 4
    assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
    assert cfg.model.auxiliary_head.type == 'FCNHead'
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    ow = cfg.optim_wrapper
    assert (ow.type, ow.constructor) == ('AmpOptimWrapper', 'ADDPLayerDecayOptimWrapperConstructor')
    assert ow.paramwise_cfg == dict(layer_decay_rate=0.65,
                                    num_layers={'base': 12, 'large': 24}[arch])
    assert (ow.optimizer.type, ow.optimizer.lr, ow.optimizer.weight_decay) == ('AdamW', 1e-4, 0.05)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, poly.type, poly.begin, poly.end) == ('LinearLR', 1500,
                                                                          'PolyLR', 1500, 160000)
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2
    assert {t.type: t for t in cfg.train_pipeline}['RandomCrop'].crop_size == (512, 512)


@pytest.mark.parametrize('config', [SEG_B, SEG_L], ids=['base', 'large'])
def test_full_size_model_predicts(config):
    """Full-size model (synthetic weights), one 64 x 64 image through the real data preprocessor and
    slide inference (a 512 crop covers it; 512 px inputs take too long on 2 CPU cores)."""
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import addp_mm  # noqa: F401
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_full_size(MODELS, cfg.model)
    model.eval()
    D = cfg.model.neck.embed_dim
    assert model.backbone.pos_embed.shape == (1, 1 + 32 * 32, D)
    img = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64))
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 64, 64))
        out = model.test_step(dict(inputs=[img], data_samples=[SegDataSample(metainfo=meta)]))
    # Feature2Pyramid: strides 4, 8, 16, 32 from the stride-16 maps
    assert [f.shape for f in feats] == [(1, D, 16, 16), (1, D, 8, 8), (1, D, 4, 4), (1, D, 2, 2)]
    assert out[0].seg_logits.data.shape == (150, 64, 64)
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)


def tiny_config(data_root: str, work_dir: str, backbone_file: str) -> Config:
    """The shipped ViT-B config with a tiny ViT (64-d, 4 blocks, 4 heads) and 64 px crops."""
    cfg = Config.fromfile(SEG_B)
    cfg.work_dir = work_dir
    cfg.model.backbone.update(
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256),
        img_size=CROP, out_indices=[0, 1, 2, 3],
        init_cfg=dict(type='Pretrained', checkpoint=backbone_file, prefix='backbone.'))
    cfg.model.data_preprocessor.size = (CROP, CROP)
    cfg.model.neck.embed_dim = 64
    cfg.model.decode_head.update(in_channels=[64] * 4, channels=32)
    cfg.model.auxiliary_head.update(in_channels=64, channels=16)
    cfg.model.test_cfg.update(crop_size=(CROP, CROP), stride=(43, 43))
    cfg.optim_wrapper.paramwise_cfg.num_layers = 4
    cfg.optim_wrapper.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    # no validation inside train(): the test calls runner.val() itself
    cfg.train_cfg.update(max_iters=2, val_begin=3)
    cfg.default_hooks.checkpoint.update(interval=100)
    cfg.default_hooks.logger.interval = 1
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
        for t in loader.dataset.pipeline:
            if t.type in ('RandomResize', 'Resize'):
                t.scale = (4 * CROP, CROP)  # ADE's (2048, 512), scaled like the crop
            if t.type == 'RandomCrop':
                t.crop_size = (CROP, CROP)
    cfg.test_dataloader = cfg.val_dataloader
    return cfg


def test_tiny_variant_trains_and_evaluates(tiny_ade, tmp_path):
    backbone_file = save_random_backbone(str(tmp_path / 'backbone.pth'), 64, 4, 4)
    runner = train_two_iterations(tiny_config(tiny_ade, str(tmp_path / 'work'), backbone_file))
    for key in ('loss', 'decode.loss_ce', 'aux.loss_ce'):
        value = runner.message_hub.get_scalar(f'train/{key}').current()
        assert math.isfinite(value) and value > 0, key

    model = runner.model
    # the backbone started from the converted file (pos_embed resized 16 x 16 -> 4 x 4); two
    # warm-up steps (lr <= 1e-4 x 2 / 1500) move it by far less than 1e-6
    file_sd = torch.load(backbone_file, weights_only=True)['state_dict']
    for k, v in model.backbone.state_dict().items():
        expected = file_sd['backbone.' + k]
        if k == 'pos_embed':
            expected = resize_pos_embed(expected, (16, 16), (4, 4), 'bicubic', 1)
        torch.testing.assert_close(v, expected, atol=1e-6, rtol=0, msg=k)
    # layer-wise lr decay 0.65 over 4 blocks: stem x 0.65^5, block i x 0.65^(4 - i), heads x 1
    lrs = param_lrs(runner)
    head_lr = lrs[model.decode_head.conv_seg.weight]
    assert lrs[model.auxiliary_head.conv_seg.weight] == pytest.approx(head_lr)
    for i in range(4):
        assert lrs[model.backbone.layers[i].attn.qkv.weight] == pytest.approx(
            head_lr * 0.65**(4 - i))
    assert lrs[model.backbone.patch_embed.projection.weight] == pytest.approx(head_lr * 0.65**5)
    assert lrs[model.backbone.cls_token] == pytest.approx(head_lr * 0.65**5)

    metrics = runner.val()
    assert set(metrics) >= {'aAcc', 'mIoU', 'mAcc'}
    assert all(0. <= metrics[k] <= 100. for k in ('aAcc', 'mIoU', 'mAcc')), metrics
    # one validation image through slide inference: a prediction per original pixel
    batch = next(iter(runner.val_dataloader))
    model.eval()
    with torch.no_grad():
        out = model.test_step(batch)[0]
    assert out.pred_sem_seg.data.shape[-2:] == tuple(out.ori_shape)
    assert out.gt_sem_seg.data.shape[-2:] == tuple(out.ori_shape)


def test_metafile_and_readme_list_the_configs():
    check_metafile((SEG_B, SEG_L), 'mIoU', (48.1, 54.3))
