"""Learning, not only running: the shipped classification, segmentation and detection models
(shrunk to a tiny ViT at 32-64 px, random init) learn data built to be learnable.

Each test trains the model of a shipped config with its own loss functions and optimizer
constructor (layer decay) for a few dozen to 200 steps on the CPU, then checks that the loss fell
and that the task metric on held-out images (computed here, or mmdet's CocoMetric for detection)
beats chance by the stated margin. Only sizes change: width, depth, image size, patch size, head
widths, class count; detection also shrinks its anchor scale, sample and proposal counts and drops
the mask head (listed in its test).
"""
import copy
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import addp_mm  # noqa: F401

from .conftest import REPO_ROOT

BENCH = osp.join(REPO_ROOT, 'configs', 'addp', 'benchmarks')
CLS_CFG = osp.join(BENCH, 'classification',
                   'cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py')
SEG_CFG = osp.join(BENCH, 'segmentation',
                   'upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512px.py')
DET_CFG = osp.join(
    BENCH, 'detection',
    'vitdet-mask-rcnn_vit-base-p16_addp-1600e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py')
TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def _optim_wrapper(model, cfg: Config, lr: float, depth: int):
    """The config's optimizer and constructor (layer decay), plain fp32, with ``lr``."""
    ow = copy.deepcopy(cfg.optim_wrapper)
    ow.type = 'OptimWrapper'
    ow.pop('loss_scale', None)
    ow.optimizer.lr = lr
    if 'num_layers' in ow.get('paramwise_cfg', {}):
        ow.paramwise_cfg.num_layers = depth
    return build_optim_wrapper(model, ow)


def _falls(losses, name: str, ratio: float) -> None:
    """The mean of the last 5 losses is below ``ratio`` x the mean of the first 5."""
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < ratio * first, f'{name}: loss {first:.3f} -> {last:.3f} (needed < {ratio} x)'


# ---------------------------------------------------------------- classification
def _shape_image(rng, label: int, size: int) -> np.ndarray:
    """Class 0: a red square; class 1: a green disk; random place and size, noisy background."""
    img = rng.integers(0, 70, (size, size, 3)).astype(np.uint8)
    r = int(rng.integers(size // 5, size // 3))
    cy, cx = rng.integers(r, size - r, 2)
    yy, xx = np.mgrid[:size, :size]
    if label == 0:
        inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        img[inside] = (230, 40, 40)
    else:
        inside = (yy - cy)**2 + (xx - cx)**2 <= r * r
        img[inside] = (40, 230, 40)
    return img


def _cls_batch(rng, n: int, size: int):
    from mmpretrain.structures import DataSample
    labels = rng.integers(0, 2, n)
    inputs = [torch.from_numpy(_shape_image(rng, int(y), size)[..., ::-1].copy()).permute(2, 0, 1)
              for y in labels]  # BGR uint8, as LoadImageFromFile + PackInputs give
    return dict(inputs=inputs, data_samples=[DataSample().set_gt_label(int(y)) for y in labels])


def test_classification_learns_two_shape_colour_classes():
    """Shipped fine-tuning model (mixup/cutmix, label smoothing, layer decay kept): > 90% top-1
    on 64 held-out images of two classes (chance 50%)."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = Config.fromfile(CLS_CFG)
    m = copy.deepcopy(cfg.model)
    m.backbone.update(arch=TINY, img_size=32, patch_size=8, init_cfg=None)
    m.head.update(num_classes=2, in_channels=TINY['embed_dims'])
    m.data_preprocessor = dict(cfg.data_preprocessor, num_classes=2)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(m)
        model.init_weights()
        ow = _optim_wrapper(model, cfg, lr=2e-3, depth=TINY['num_layers'])
    losses = []
    model.train()
    for _ in range(60):
        losses.append(model.train_step(_cls_batch(rng, 16, 32), ow)['loss'].item())
    # mixup/cutmix + label smoothing keep soft targets: the loss cannot approach 0
    _falls(losses, 'classification', 0.75)
    model.eval()
    val = _cls_batch(np.random.default_rng(1), 64, 32)
    with torch.no_grad():
        preds = model.val_step(val)
    acc = np.mean([int(p.pred_label.item() == p.gt_label.item()) for p in preds])
    assert acc > 0.9, f'top-1 {acc:.2f}'


# ---------------------------------------------------------------- segmentation
def _seg_batch(rng, n: int, size: int):
    """Two classes: background (0, dark noise) and a bright ellipse (1)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    yy, xx = np.mgrid[:size, :size]
    for _ in range(n):
        img = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        ry, rx = rng.integers(size // 6, size // 3, 2)
        label = (((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1).astype(np.int64)
        img[label == 1] = (60, 200, 220)
        img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        inputs.append(torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1))
        s = SegDataSample(gt_sem_seg=PixelData(data=torch.from_numpy(label)[None]))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_segmentation_learns_a_two_class_scene():
    """Shipped UperNet model: mIoU > 0.8 on 16 held-out images (all-background scores ~0.4)."""
    import addp_mm  # noqa: F401
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = Config.fromfile(SEG_CFG)
    size, D = 64, TINY['embed_dims']
    m = copy.deepcopy(cfg.model)
    m.backbone.update(arch=dict(TINY, num_layers=4), img_size=size, patch_size=8,
                      out_indices=[0, 1, 2, 3], init_cfg=None)
    m.neck.embed_dim = D
    m.decode_head.update(in_channels=[D] * 4, channels=D, num_classes=2)
    m.auxiliary_head.update(in_channels=D, channels=D, num_classes=2)
    m.data_preprocessor.size = (size, size)
    m.test_cfg = dict(mode='whole')
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(m)
        model.init_weights()
        ow = _optim_wrapper(model, cfg, lr=1e-3, depth=4)
    losses = []
    model.train()
    for _ in range(40):
        log = model.train_step(_seg_batch(rng, 4, size), ow)
        losses.append(sum(v.item() for k, v in log.items() if k.startswith('loss')))
    _falls(losses, 'segmentation', 0.6)
    model.eval()
    val = _seg_batch(np.random.default_rng(1), 16, size)
    with torch.no_grad():
        preds = model.val_step(val)
    inter, union = np.zeros(2), np.zeros(2)
    for p in preds:
        pred, gt = p.pred_sem_seg.data[0].numpy(), p.gt_sem_seg.data[0].numpy()
        for c in range(2):
            inter[c] += np.sum((pred == c) & (gt == c))
            union[c] += np.sum((pred == c) | (gt == c))
    miou = float(np.mean(inter / union))
    assert miou > 0.8, f'mIoU {miou:.3f}'


# ---------------------------------------------------------------- detection
def _det_batch(rng, n: int, size: int, first_id: int = 0):
    """One class: 1-2 bright (200-255) axis-aligned squares of side 12-24 px, uniformly placed,
    at least 2 px apart, on dark noise (0-59). Boxes are exact (x1, y1, x2, y2) pixel edges."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    inputs, samples = [], []
    for i in range(n):
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        boxes = []
        for _ in range(int(rng.integers(1, 3))):
            for _ in range(20):  # rejection: no overlap with the square already drawn
                side = int(rng.integers(12, 25))
                x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
                b = (x0, y0, x0 + side, y0 + side)
                if all(b[0] >= o[2] + 2 or o[0] >= b[2] + 2 or b[1] >= o[3] + 2
                       or o[1] >= b[3] + 2 for o in boxes):
                    boxes.append(b)
                    break
        for x0, y0, x1, y1 in boxes:
            img[y0:y1, x0:x1] = rng.integers(200, 256, (y1 - y0, x1 - x0, 3))
        inputs.append(torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1))  # BGR uint8
        s = DetDataSample(metainfo=dict(img_id=first_id + i, img_shape=(size, size),
                                        ori_shape=(size, size), scale_factor=(1., 1.)))
        s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                      labels=torch.zeros(len(boxes), dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _coco_bbox(model, val) -> dict:
    """mmdet's ``CocoMetric`` (bbox) of ``model`` on the batch ``val``; the ground truth goes to the
    metric as a dataset's ``instances`` (no annotation file)."""
    from mmdet.evaluation import CocoMetric
    model.eval()
    with torch.no_grad():
        preds = model.val_step(val)
    model.train()
    metric = CocoMetric(metric='bbox')
    metric.dataset_meta = dict(classes=('square', ))
    results = []
    for pred, gt in zip(preds, val['data_samples']):
        d = pred.to_dict()
        d['instances'] = [dict(bbox=b.tolist(), bbox_label=0, ignore_flag=0)
                          for b in gt.gt_instances.bboxes]
        results.append(d)
    metric.process({}, results)
    return metric.compute_metrics(metric.results)


def test_detection_learns_bright_squares():
    """Shipped Mask R-CNN (ADDPViTDet + SimpleFeaturePyramid, RPN, Shared4Conv1FC box head with
    LN, the config's AdamW + layer decay and linear warm-up) finds one class of bright squares:
    mmdet's CocoMetric on 32 held-out images gives bbox AP (0.5:0.95) > 0.4 and AP50 > 0.9
    after 200 steps of batch 4; untrained it is 0.000 (AP50 0.001). Measured: AP 0.70, AP50 1.00
    (0.67 / 0.98 with other seeds).

    Shrunk: ViT 32-d, 2 blocks, 2 heads (window 2, the last block global, drop path as shipped),
    patch 16 kept; 64 px images (a 4 x 4 token grid); pyramid/RPN/RoI channels 32, box-head fc 64;
    anchor scale 4 instead of 8 (anchors 16-256 px for 12-24 px squares; ratios kept); RPN sampler
    64 anchors and RoI sampler 32 RoIs per image (COCO: 256 / 512); 100 pre-NMS / 30 post-NMS
    proposals (COCO: 2000 / 1000 train, 1000 / 1000 test); at most 10 detections per image; lr
    2e-3 (shipped 1e-4), warm-up 10 steps (shipped 250); fp32 instead of AMP. Dropped: the mask
    head and its RoI extractor (the data have no masks): what remains is the config's Faster
    R-CNN part. ~20 s on 2 loaded CPU cores.
    """
    import addp_mm.det  # noqa: F401  (registers ADDPViTDet, SimpleFeaturePyramid into mmdet)
    from mmdet.registry import MODELS
    from mmengine.optim import LinearLR
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = Config.fromfile(DET_CFG)
    size, D, C = 64, TINY['embed_dims'], 32
    m = copy.deepcopy(cfg.model)
    m.backbone.update(arch=TINY, window_size=2, global_attn_indexes=(TINY['num_layers'] - 1, ),
                      init_cfg=None)
    m.data_preprocessor.update(pad_size_divisor=size, pad_mask=False)
    m.data_preprocessor.batch_augments[0].update(size=(size, size), pad_mask=False)
    m.neck.update(in_channels=D, out_channels=C)
    m.rpn_head.update(in_channels=C, feat_channels=C)
    m.rpn_head.anchor_generator.scales = [4]
    rh = m.roi_head
    rh.bbox_roi_extractor.out_channels = C
    rh.bbox_head.update(in_channels=C, conv_out_channels=C, fc_out_channels=64, num_classes=1)
    rh.mask_head = rh.mask_roi_extractor = None
    tc, ts = m.train_cfg, m.test_cfg
    tc.rpn.sampler.num, tc.rcnn.sampler.num = 64, 32
    tc.rpn_proposal.update(nms_pre=100, max_per_img=30)
    ts.rpn.update(nms_pre=100, max_per_img=30)
    ts.rcnn.max_per_img = 10
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(m)
        model.init_weights()
        ow = _optim_wrapper(model, cfg, lr=2e-3, depth=TINY['num_layers'])
    warmup = LinearLR(ow, start_factor=0.001, by_epoch=False, begin=0, end=10)
    val = _det_batch(np.random.default_rng(1), 32, size, first_id=1)
    untrained = _coco_bbox(model, val)
    assert untrained['bbox_mAP'] < 0.05, untrained  # measured 0.000 (AP50 0.001)
    losses = []
    model.train()
    for _ in range(200):
        losses.append(model.train_step(_det_batch(rng, 4, size), ow)['loss'].item())
        warmup.step()
    # RPN + RoI classification + box regression; the regression term first grows with the number
    # of positive RoIs as the proposals start to hit the squares (measured 1.41 -> 0.64)
    _falls(losses, 'detection', 0.7)
    trained = _coco_bbox(model, val)
    assert trained['bbox_mAP'] > 0.4 and trained['bbox_mAP_50'] > 0.9, trained
