"""The shipped detection configs: recipe values, full-size build + forward, and a tiny variant that
trains and evaluates with the real mmengine Runner on a tiny COCO-format dataset."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from .conftest import (CLASSES, DET_B, DET_L, build_full_size, check_metafile, param_lrs,
                       save_random_backbone, train_two_iterations)

IMG = 128  # the tiny variant's LSJ crop size (8 x 8 tokens: 2 x 2 windows of 4)


@pytest.mark.parametrize('config,arch,global_idx,decay,dpr', [
    (DET_B, 'base', (2, 5, 8, 11), 0.7, 0.1),
    (DET_L, 'large', (5, 11, 17, 23), 0.8, 0.4),
], ids=['base', 'large'])
def test_recipe(config, arch, global_idx, decay, dpr):
    cfg = Config.fromfile(config)
    assert 'addp_mm.det' in cfg.custom_imports.imports and cfg.default_scope == 'mmdet'
    bb = cfg.model.backbone
    assert (bb.type, bb.arch, bb.window_size, tuple(bb.global_attn_indexes), bb.drop_path_rate,
            bb.pretrain_img_size) == ('ADDPViTDet', arch, 16, global_idx, dpr, 256)
    assert bb.init_cfg.type == 'Pretrained' and bb.init_cfg.prefix == 'backbone.'
    assert bb.init_cfg.checkpoint == f'checkpoints/addp-vit-{arch}-16_backbone.pth'
    assert [h.type for h in cfg.custom_hooks] == ['CheckPretrainedKeysHook']
    assert cfg.model.neck.type == 'SimpleFeaturePyramid'
    assert cfg.model.neck.scale_factors == (4.0, 2.0, 1.0, 0.5)
    assert cfg.model.neck.in_channels == {'base': 768, 'large': 1024}[arch]
    assert cfg.model.roi_head.bbox_head.norm_cfg.type == 'LN2d'
    # LSJ at 1024
    aug = {t.type: t for t in cfg.train_pipeline}
    assert aug['RandomResize'].ratio_range == (0.1, 2.0) and aug['RandomResize'].scale == (1024,
                                                                                           1024)
    assert aug['RandomCrop'].crop_size == (1024, 1024) and aug['Pad'].size == (1024, 1024)
    assert cfg.model.data_preprocessor.batch_augments[0].size == (1024, 1024)
    # optimiser and 100-epoch schedule at batch 64
    ow = cfg.optim_wrapper
    assert ow.constructor == 'ADDPLayerDecayOptimWrapperConstructor'
    assert ow.paramwise_cfg.layer_decay_rate == decay
    assert ow.paramwise_cfg.num_layers == {'base': 12, 'large': 24}[arch]
    assert (ow.optimizer.type, ow.optimizer.lr, ow.optimizer.weight_decay) == ('AdamW', 1e-4, 0.1)
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 64
    assert cfg.train_cfg.max_iters == 184375
    assert cfg.param_scheduler[1].milestones == [163889, 177546]
    # 100 epochs of COCO train2017 (117266 images after filtering) at batch 64
    assert math.isclose(cfg.train_cfg.max_iters * 64 / 117266, 100, rel_tol=0.01)


@pytest.mark.parametrize('config', [DET_B, DET_L], ids=['base', 'large'])
def test_full_size_model_predicts(config):
    """Full-size model (synthetic weights), one image through the real data preprocessor.

    Reduced for CPU CI: a 64 x 64 input (4 x 4 tokens, padded to one 16 x 16 window in the
    windowed blocks; the config pads test images to 1024 x 1024) and at most 20 proposals / 5
    detections instead of 1000 / 100; the 1024 px forward takes minutes on 2 cores.
    """
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample

    import addp_mm.det  # noqa: F401
    cfg = Config.fromfile(config)
    assert cfg.model.data_preprocessor.pad_size_divisor == 1024
    cfg.model.data_preprocessor.pad_size_divisor = 32
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rpn.max_per_img = 20
    cfg.model.test_cfg.rcnn.update(max_per_img=5, score_thr=0.)
    model = build_full_size(MODELS, cfg.model).eval()
    D = {'base': 768, 'large': 1024}['large' if config == DET_L else 'base']
    assert model.backbone.embed_dims == D and len(model.backbone.layers) == {768: 12, 1024: 24}[D]
    img = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    meta = dict(img_shape=(64, 64), ori_shape=(80, 72), scale_factor=(64 / 72, 64 / 80))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[img], data_samples=[DetDataSample(metainfo=meta)]))
    pred = out[0].pred_instances
    assert len(pred) == 5 and pred.bboxes.shape == (5, 4) and pred.labels.max() < 80
    # masks are pasted at the original image size
    assert pred.masks.shape == (5, 80, 72) and pred.masks.dtype == torch.bool


def _resize_pipeline(pipeline, size):
    """The shipped pipeline with every 1024 replaced by ``size`` (crop, pad, resize scale)."""
    for t in pipeline:
        for key in ('scale', 'crop_size', 'size'):
            if key in t:
                t[key] = (size, size)
    return pipeline


def tiny_config(data_root: str, work_dir: str, backbone_file: str) -> Config:
    """The shipped ViT-B config with a tiny ViT (64-d, 2 blocks, 4 heads), 128 px, 2 classes."""
    cfg = Config.fromfile(DET_B)
    cfg.work_dir = work_dir
    cfg.model.backbone.update(
        arch=dict(embed_dims=64, num_layers=2, num_heads=4), window_size=4,
        global_attn_indexes=(1, ),
        init_cfg=dict(type='Pretrained', checkpoint=backbone_file, prefix='backbone.'))
    cfg.model.data_preprocessor.batch_augments[0].size = (IMG, IMG)
    cfg.model.data_preprocessor.pad_size_divisor = IMG
    C = 32
    cfg.model.neck.update(in_channels=64, out_channels=C)
    cfg.model.rpn_head.update(in_channels=C, feat_channels=C)
    rh = cfg.model.roi_head
    rh.bbox_roi_extractor.out_channels = rh.mask_roi_extractor.out_channels = C
    rh.bbox_head.update(in_channels=C, conv_out_channels=C, fc_out_channels=64,
                        num_classes=len(CLASSES))
    rh.mask_head.update(in_channels=C, conv_out_channels=C, num_classes=len(CLASSES))
    # fewer RoIs than COCO's 512 / 1000 / 100: CPU time
    tc, ts = cfg.model.train_cfg, cfg.model.test_cfg
    tc.rpn.sampler.num = tc.rcnn.sampler.num = 64
    tc.rpn_proposal.update(nms_pre=200, max_per_img=100)
    ts.rpn.update(nms_pre=200, max_per_img=100)
    ts.rcnn.max_per_img = 20
    cfg.optim_wrapper.paramwise_cfg.num_layers = 2
    cfg.optim_wrapper.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    # no validation inside train(): the test calls runner.val() itself
    cfg.train_cfg.update(max_iters=2, val_begin=3, dynamic_intervals=None)
    cfg.default_hooks.checkpoint.update(interval=100, save_last=False)
    cfg.default_hooks.logger.interval = 1
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=data_root, ann_file=f'annotations/instances_{split}.json',
                              data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=CLASSES))
        _resize_pipeline(loader.dataset.pipeline, IMG)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = cfg.test_evaluator.ann_file = osp.join(
        data_root, 'annotations', 'instances_val.json')
    return cfg


def test_tiny_variant_trains_and_evaluates(tiny_coco, tmp_path):
    backbone_file = save_random_backbone(str(tmp_path / 'backbone.pth'), 64, 2, 4)
    runner = train_two_iterations(tiny_config(tiny_coco, str(tmp_path / 'work'), backbone_file))
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'):
        assert math.isfinite(runner.message_hub.get_scalar(f'train/{key}').current()), key

    model = runner.model
    # the backbone started from the converted file: 2 warm-up steps moved it by < 1e-6
    file_sd = torch.load(backbone_file, weights_only=True)['state_dict']
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, file_sd['backbone.' + k], atol=1e-6, rtol=0)
    # layer-wise lr decay 0.7 over 2 blocks: stem x 0.7^3, block i x 0.7^(2 - i), heads x 1
    lrs = param_lrs(runner)
    head_lr = lrs[model.roi_head.bbox_head.fc_cls.weight]
    assert lrs[model.neck.lateral_convs[0].conv.weight] == pytest.approx(head_lr)
    assert lrs[model.backbone.layers[1].attn.qkv.weight] == pytest.approx(head_lr * 0.7)
    assert lrs[model.backbone.layers[0].attn.qkv.weight] == pytest.approx(head_lr * 0.7**2)
    assert lrs[model.backbone.patch_embed.projection.weight] == pytest.approx(head_lr * 0.7**3)
    assert lrs[model.backbone.pos_embed] == pytest.approx(head_lr * 0.7**3)

    metrics = runner.val()
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert 0. <= metrics[key] <= 1., (key, metrics[key])
    # one validation batch through the model: boxes and masks in original-image coordinates
    batch = next(iter(runner.val_dataloader))
    model.eval()
    with torch.no_grad():
        outs = model.test_step(batch)
    for out in outs:
        h, w = out.ori_shape
        assert out.pred_instances.masks.shape[1:] == (h, w)
        boxes = out.pred_instances.bboxes
        assert (boxes[:, 2] <= w + 1e-3).all() and (boxes[:, 3] <= h + 1e-3).all()


def test_metafile_and_readme_list_the_configs():
    check_metafile((DET_B, DET_L), 'box AP', (51.7, 54.6))
