"""Shared fixtures: a tiny generated image folder, and the CI-size demo run once."""
import json
import os.path as osp
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the demo's code is tool code beside tools/demo.py (tools/addp_demo), not part of addp_mm
sys.path.insert(0, osp.join(REPO, 'tools'))
from addp_demo.pipeline import CONFIGS, SIZES  # noqa: E402
from addp_mm.engine.stages import latest_scalars  # noqa: E402

CONFIG_DIR = osp.join(REPO, 'configs', 'addp', 'from_scratch')


def config_path(stage: str) -> str:
    return osp.join(CONFIG_DIR, CONFIGS[stage])


def read_log(work_dir: str) -> list:
    """The training records of a stage's scalars.json."""
    path = latest_scalars(work_dir)
    assert path is not None, f'no scalars.json under {work_dir}'
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory) -> str:
    """12 smooth random 64x64 RGB images (blobs of colour), as PNG files."""
    from PIL import Image
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 64.
    for i in range(12):
        img = np.zeros((64, 64, 3))
        for _ in range(4):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.4)
            blob = np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * r * r))
            img += blob[..., None] * rng.uniform(0, 1, 3)
        img = (255 * img / img.max()).astype(np.uint8)
        Image.fromarray(img).save(root / f'img_{i:02d}.png')
    return str(root)


def stage_options(image_folder: str, batch: int = 4) -> dict:
    return {'train_dataloader.dataset.data_root': image_folder,
            'train_dataloader.batch_size': batch}


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory) -> dict:
    """``tools/demo.py --size ci``, run once as a user would (a subprocess).

    Its three stages are the tiny configs of configs/addp/from_scratch trained by the Runner for a
    few iterations, each loading the previous stage's checkpoint through its config field, so
    the stage and hand-off tests inspect this run instead of training again.
    """
    import os
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    root = tmp_path_factory.mktemp('demo')
    work_dir = root / 'demo'
    env = dict(os.environ, PYTHONPATH=repo)
    proc = subprocess.run(
        [sys.executable, osp.join(repo, 'tools', 'demo.py'), '--size', 'ci', '--work-dir',
         str(work_dir), '--seed', '0'],
        cwd=str(root), env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stages = {}
    for stage, iters in SIZES['ci']['iters'].items():
        stages[stage] = dict(work_dir=str(work_dir / stage),
                             ckpt=str(work_dir / stage / f'iter_{iters}.pth'), iters=iters)
    return dict(work_dir=str(work_dir), stdout=proc.stdout, **stages)
