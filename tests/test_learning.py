"""Learning, not only running: the shipped classification and segmentation models (shrunk to a
tiny ViT at 32-64 px, random init) learn data built to be learnable.

Each test trains the model of a shipped config with its own loss functions and optimizer
constructor (layer decay) for a few dozen steps on the CPU, then checks that the loss fell and that
the task metric, computed here from the model's predictions on held-out images, beats chance by
the stated margin. Only sizes change: width, depth, image size, patch size, head widths, class
count.
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
                   'vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py')
SEG_CFG = osp.join(BENCH, 'segmentation', 'addp-vit-base_upernet_8xb2-amp-160k_ade20k-512x512.py')
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
    import addp_mm.seg  # noqa: F401
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
