"""Shared fixtures and helpers of the detection and segmentation tests: converted fixture weights,
a tiny COCO dataset, random converted backbones and the tiny Runner run."""
import functools
import json
import os.path as osp
from typing import Dict

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from PIL import Image

from ..conftest import REPO_ROOT
from ..test_classification.conftest import run_converter

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'addp', 'benchmarks', 'detection')
DET_B = osp.join(
    CONFIG_DIR,
    'vitdet-mask-rcnn_vit-base-p16_addp-1600e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py')
DET_L = osp.join(
    CONFIG_DIR,
    'vitdet-mask-rcnn_vit-large-p16_addp-800e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py')
CLASSES = ('box', 'disk')


def save_random_backbone(path: str, embed_dims: int, num_layers: int, num_heads: int) -> str:
    """A converted ``backbone.*`` file from a randomly initialised ADDP pre-training encoder.

    Goes through the same function as ``convert_addp.py --backbone-only`` on an addp_mm checkpoint.
    """
    from mmpretrain.registry import MODELS

    import addp_mm  # noqa: F401
    from addp_mm.checkpoints.convert import to_backbone_state_dict
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='ADDPViT', _scope_='mmpretrain', img_size=256,
                            arch=dict(embed_dims=embed_dims, num_layers=num_layers,
                                      num_heads=num_heads)))
    vit.init_weights()
    sd = to_backbone_state_dict({'backbone.' + k: v for k, v in vit.state_dict().items()})
    torch.save(dict(state_dict=sd), path)
    return path


@functools.lru_cache()  # the detection and segmentation tests ask for the same two
def release_backbone_shapes(arch: str) -> Dict[str, torch.Size]:
    """Key -> shape of what ``convert_addp.py --backbone-only`` writes for an ADDP encoder of
    ``arch`` (without the ``backbone.`` prefix)."""
    from mmpretrain.registry import MODELS

    from addp_mm.checkpoints.convert import to_backbone_state_dict
    vit = MODELS.build(dict(type='ADDPViT', _scope_='mmpretrain', arch=arch, img_size=256))
    converted = to_backbone_state_dict({'backbone.' + k: v for k, v in vit.state_dict().items()})
    return {k[len('backbone.'):]: v.shape for k, v in converted.items()}


def build_full_size(registry, model_cfg) -> torch.nn.Module:
    """Build a full-size model fast: the modules are built on the meta device, then materialised
    with small deterministic weights (U(-0.03, 0.03) matrices, norms (1, 0), zero biases, fresh
    BatchNorm statistics) instead of PyTorch's default init, which alone takes ~10 s for a ViT-L
    model on 2 cores. The data preprocessor (mean/std buffers) is built normally."""
    with torch.device('meta'):
        model = registry.build(model_cfg)
    model.to_empty(device='cpu')
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.uniform_(-.03, .03, generator=gen)  # uniform_: several times faster than normal_
            else:
                p.fill_(1. if name.endswith('weight') else 0.)
    for m in model.modules():
        if hasattr(m, 'reset_running_stats'):
            m.reset_running_stats()
    model.data_preprocessor = registry.build(model_cfg.data_preprocessor)
    return model


def check_metafile(configs, metric: str, paper_values) -> None:
    """The folder's metafile.yml lists exactly ``configs`` (existing paths, README links) with the
    paper's ``metric`` values, in order."""
    import yaml
    folder = osp.dirname(configs[0])
    with open(osp.join(folder, 'metafile.yml')) as f:
        models = yaml.safe_load(f)['Models']
    with open(osp.join(folder, 'README.md')) as f:
        readme = f.read()
    assert [m['Name'] for m in models] == [osp.splitext(osp.basename(c))[0] for c in configs]
    for m in models:
        assert osp.isfile(osp.join(REPO_ROOT, m['Config'])), m['Config']
        assert f"(./{m['Name']}.py)" in readme, m['Name']
    assert [m['Results'][0]['Metrics'][metric] for m in models] == list(paper_values)


def train_two_iterations(cfg):
    """Train a tiny config (2 iterations) with the real Runner; return the Runner.

    Also checks what ``CheckPretrainedKeysHook`` found before the first iteration: every backbone
    tensor in the converted file.
    """
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    check = next(h for h in runner.hooks if type(h).__name__ == 'CheckPretrainedKeysHook')
    assert check.reports['backbone']['missing'] == []
    return runner


def param_lrs(runner) -> dict:
    """Parameter -> current learning rate of its optimizer group."""
    groups = runner.optim_wrapper.optimizer.param_groups
    return {p: g['lr'] for g in groups for p in g['params']}


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Run each test under mmdet's default scope, restoring the previous scopes afterwards (a
    leaked scope would change how other test packages' unprefixed names resolve)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(scope='module')  # per fixture folder (reference is module-scoped)
def converted_fixture(reference, tmp_path_factory) -> str:
    """The fixture's official ``addp.pth`` converted with ``--backbone-only``."""
    path = str(tmp_path_factory.mktemp('det_converted') / 'backbone.pth')
    run_converter(reference.path('addp.pth'), path, '--backbone-only')
    return path


def _shape_annotation(rng: np.random.Generator, label: int, h: int, w: int):
    """A random axis-aligned box (label 0) or ellipse (label 1): polygon, bbox and drawing mask."""
    bw, bh = int(rng.integers(w // 5, w // 2)), int(rng.integers(h // 5, h // 2))
    x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
    if label == 0:
        poly = [x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]
    else:
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        cx, cy = x0 + bw / 2, y0 + bh / 2
        poly = np.stack([cx + bw / 2 * np.cos(t), cy + bh / 2 * np.sin(t)], 1).ravel().tolist()
    xs, ys = poly[0::2], poly[1::2]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return [float(v) for v in poly], [float(v) for v in bbox]


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> str:
    """A COCO-format folder: ``annotations/instances_{train,val}.json`` with polygon masks and
    ``{train,val}/*.jpg``; 4 training and 2 validation images with 2-3 objects of 2 classes."""
    from PIL import ImageDraw
    root = tmp_path_factory.mktemp('tiny_coco')
    (root / 'annotations').mkdir()
    rng = np.random.default_rng(0)
    ann_id = 1
    for split, n_images in (('train', 4), ('val', 2)):
        (root / split).mkdir()
        images, annotations = [], []
        for i in range(n_images):
            h, w = int(rng.integers(96, 144)), int(rng.integers(96, 144))
            img = Image.fromarray(rng.integers(0, 60, (h, w, 3), dtype=np.uint8))
            draw = ImageDraw.Draw(img)
            for k in range(int(rng.integers(2, 4))):
                label = k % 2
                poly, bbox = _shape_annotation(rng, label, h, w)
                draw.polygon(poly, fill=(220, 60, 60) if label == 0 else (60, 220, 60))
                annotations.append(dict(id=ann_id, image_id=i + 1, category_id=label + 1,
                                        segmentation=[poly], bbox=bbox,
                                        area=bbox[2] * bbox[3], iscrowd=0))
                ann_id += 1
            name = f'{split}_{i:03d}.jpg'
            img.save(root / split / name, quality=95)
            images.append(dict(id=i + 1, file_name=name, height=h, width=w))
        categories = [dict(id=c + 1, name=n, supercategory='shape') for c, n in enumerate(CLASSES)]
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return str(root)
