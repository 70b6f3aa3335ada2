"""Shared fixtures of the classification tests: converted fixture weights and a tiny ImageNet."""
import os.path as osp
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from ..conftest import REPO_ROOT
from ..tool_runs import TOOL, load_tool

CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'addp', 'benchmarks', 'classification')
FINETUNE_B = osp.join(CONFIG_DIR,
                      'cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py')
FINETUNE_L = osp.join(CONFIG_DIR,
                      'cls_vit-large-p16_addp-800e-pre_8xb128-amp-coslr-50e_in1k-256px.py')
LINEAR_B = osp.join(CONFIG_DIR,
                    'cls_vit-base-p16_addp-1600e-pre_8xb2048-amp-linear-coslr-90e_in1k-256px.py')
ALL_CONFIGS = (FINETUNE_B, FINETUNE_L, LINEAR_B)
NUM_CLASSES = 3


def run_converter(*argv: str) -> None:
    """Run tools/model_converters/convert_addp.py in this process (the real CLI entry point)."""
    assert load_tool(TOOL).main(list(argv)) == 0


@pytest.fixture(scope='module')  # per fixture folder (reference is module-scoped)
def converted(reference, tmp_path_factory) -> Dict[str, str]:
    """The fixture's official ``addp.pth`` converted for fine-tuning and for the linear probe."""
    out = tmp_path_factory.mktemp('converted')
    paths = dict(finetune=str(out / 'backbone.pth'), linear=str(out / 'backbone-norms.pth'))
    run_converter(reference.path('addp.pth'), paths['finetune'], '--backbone-only')
    run_converter(reference.path('addp.pth'), paths['linear'], '--backbone-only', '--keep-norms')
    return paths


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory) -> str:
    """An ImageNet-layout folder: ``{train,val}/*.JPEG`` + ``meta/{train,val}.txt`` ("path label").

    8 training and 6 validation images of 3 classes, each class a different dominant colour.
    """
    root = tmp_path_factory.mktemp('tiny_imagenet')
    rng = np.random.default_rng(0)
    (root / 'meta').mkdir()
    for split, per_class in (('train', (3, 3, 2)), ('val', (2, 2, 2))):
        (root / split).mkdir()
        lines = []
        for label, count in enumerate(per_class):
            for i in range(count):
                h, w = int(rng.integers(96, 160)), int(rng.integers(96, 160))
                img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
                img[..., label] += 150
                name = f'n{label:08d}_{i}.JPEG'
                Image.fromarray(img).save(root / split / name, quality=90)
                lines.append(f'{name} {label}')
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return str(root)
