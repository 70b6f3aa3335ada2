"""Shared fixtures of the segmentation tests: converted fixture weights and a tiny ADE20k."""
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image

from ..conftest import REPO_ROOT
from ..test_det.conftest import converted_fixture  # noqa: F401  (the same session fixture)

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'addp', 'benchmarks', 'segmentation')
SEG_B = osp.join(CONFIG_DIR,
                 'upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512px.py')
SEG_L = osp.join(CONFIG_DIR,
                 'upernet_vit-large-p16_addp-800e-pre_8xb2-amp-160000iter_ade20k-512px.py')


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Run each test under mmseg's default scope, restoring the previous scopes afterwards."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='session')
def tiny_ade(tmp_path_factory) -> str:
    """An ADEChallengeData2016-layout folder: ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png`` (uint8 labels, 0 = unlabelled, k = class k - 1).

    4 training and 2 validation images; each has vertical bands of ADE classes 1-4 with their own
    colours and an unlabelled top strip.
    """
    root = tmp_path_factory.mktemp('tiny_ade')
    rng = np.random.default_rng(0)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]], np.uint8)
    for split, n_images in (('training', 4), ('validation', 2)):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(n_images):
            h, w = int(rng.integers(72, 100)), int(rng.integers(80, 120))
            edges = np.sort(rng.choice(np.arange(8, w - 8), 3, replace=False))
            label = (np.searchsorted(edges, np.arange(w), side='right') + 1).astype(np.uint8)
            label = np.repeat(label[None], h, 0)
            label[:6] = 0
            img = colours[np.maximum(label, 1) - 1] + rng.integers(0, 30, (h, w, 3), dtype=np.uint8)
            img[label == 0] = 0
            name = f'ADE_{split}_{i:08d}'
            Image.fromarray(img).save(root / 'images' / split / f'{name}.jpg', quality=95)
            Image.fromarray(label).save(root / 'annotations' / split / f'{name}.png')
    return str(root)
