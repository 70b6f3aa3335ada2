"""The checkpoints the demo's three stages write, made once per session by the same configs and
Runner as ``make demo`` (addp_mm.engine.stages.run_stage), one iteration each."""
import os.path as osp

import pytest

from addp_mm.engine.stages import run_stage
from tests.conftest import REPO_ROOT, write_smooth_images
from tests.test_distributed.helpers import mmengine_globals_restored

FROM_SCRATCH = osp.join(REPO_ROOT, 'configs', 'addp', 'from_scratch')
#: the demo's configs (tools/addp_demo/pipeline.py CONFIGS)
STAGE_CONFIGS = dict(
    tokenizer='vqgan_maskgit-tiny-f4-c256_1xb8-cpu-coslr-1000iter_imagefolder-32px.py',
    predictor='mage_vit-tiny-p4_1xb32-cpu-coslr-300iter_imagefolder-32px.py',
    addp='addp_vit-tiny-p4_1xb16-cpu-coslr-300iter_imagefolder-32px.py',
)


def stage_config(stage: str) -> str:
    return osp.join(FROM_SCRATCH, STAGE_CONFIGS[stage])


def stage_options(stage: str, data: str, files: dict) -> dict:
    """The demo's options of ``stage``: its data, and the previous stages' checkpoints."""
    options = {'train_dataloader.dataset.data_root': data, 'train_dataloader.batch_size': 2}
    if stage == 'predictor':
        options['model.target_generator.checkpoint'] = files['tokenizer']
    if stage == 'addp':
        options['model.target_generator.vqgan.checkpoint'] = files['tokenizer']
        options['model.target_generator.predictor.checkpoint'] = files['predictor']
    return options


@pytest.fixture(scope='session')
def stage_files(tmp_path_factory) -> dict:
    """``{'tokenizer', 'predictor', 'addp': iter_1.pth, 'data': image folder}``: Runner
    checkpoints of the VQGANTrainer, MAGE and ADDP stages, each loading the previous ones."""
    root = tmp_path_factory.mktemp('stages')
    data = root / 'images'
    data.mkdir()
    write_smooth_images(data, num=4, size=40)
    files = dict(data=str(data))
    with mmengine_globals_restored():
        for stage in ('tokenizer', 'predictor', 'addp'):
            files[stage] = run_stage(stage, stage_config(stage), str(root / stage), 1,
                                     stage_options(stage, str(data), files))['checkpoint']
    return files
