"""Shared fixtures of the detection tests: converted fixture weights and a tiny COCO dataset."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from PIL import Image

from ..conftest import REPO_ROOT

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'addp', 'benchmarks', 'detection')
DET_B = osp.join(CONFIG_DIR, 'mask-rcnn_vit-base-p16-addp-pre_simplefpn_lsj-100e_coco.py')
DET_L = osp.join(CONFIG_DIR, 'mask-rcnn_vit-large-p16-addp-pre_simplefpn_lsj-100e_coco.py')
CLASSES = ('box', 'disk')


def run_converter(*argv: str) -> None:
    """Run tools/model_converters/convert_addp.py in this process (the real CLI entry point)."""
    path = osp.join(REPO_ROOT, 'tools', 'model_converters', 'convert_addp.py')
    spec = importlib.util.spec_from_file_location('convert_addp', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(list(argv)) == 0


def save_random_backbone(path: str, embed_dims: int, num_layers: int, num_heads: int) -> str:
    """A converted ``backbone.*`` file from a randomly initialised ADDP pre-training encoder.

    Goes through the same function as ``convert_addp.py --backbone-only`` on an addp_mm checkpoint.
    """
    from mmpretrain.registry import MODELS

    import addp_mm  # noqa: F401
    from addp_mm.utils.convert import to_backbone_state_dict
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='ADDPViT', _scope_='mmpretrain', img_size=256,
                            arch=dict(embed_dims=embed_dims, num_layers=num_layers,
                                      num_heads=num_heads)))
    vit.init_weights()
    sd = to_backbone_state_dict({'backbone.' + k: v for k, v in vit.state_dict().items()})
    torch.save(dict(state_dict=sd), path)
    return path


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Run each test under mmdet's default scope, restoring the previous scopes afterwards (a
    leaked scope would change how other test packages' unprefixed names resolve)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture(scope='session')
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
