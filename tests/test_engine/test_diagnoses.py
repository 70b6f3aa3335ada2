"""Refusals name what a file really is (issue 23, item 4), on the checkpoints the demo's stages
write: a MAGE stage file is a token predictor (not a VQGAN tokenizer), as ``load_from`` and as a
resume of an ADDP run, and a resume of another model leads with ``model.type`` and suggests only
what would work."""
import pytest
from mmengine.runner import Runner

import addp_mm  # noqa: F401  (hooks)
from addp_mm.checkpoints import guess_layout, load_checkpoint_file
from addp_mm.engine.stages import stage_config as runner_config
from tests.test_distributed.helpers import mmengine_globals_restored

from .conftest import stage_config, stage_options

PREDICTOR_FIELD = 'model.target_generator.predictor.checkpoint'


@pytest.fixture(autouse=True)
def _restore_globals():
    with mmengine_globals_restored():
        yield


def test_each_stage_file_is_told_apart(stage_files):
    kinds = {stage: guess_layout(load_checkpoint_file(stage_files[stage]))
             for stage in ('tokenizer', 'predictor', 'addp')}
    assert {s: k.kind for s, k in kinds.items()} == dict(tokenizer='vqgan', predictor='mage',
                                                         addp='addp_mm')
    mage = kinds['predictor']
    # the MAGE file also holds its tokenizer (target_generator.encoder.*): still a predictor
    keys = load_checkpoint_file(stage_files['predictor'])['state_dict']
    assert any(k.startswith('target_generator.encoder.') for k in keys)
    assert any(k.startswith('backbone.blocks.') for k in keys)
    assert 'token predictor' in mage.name and 'VQGAN' not in mage.name
    assert 'vqgan.checkpoint' not in mage.advice
    assert PREDICTOR_FIELD in mage.advice
    assert 'model.target_generator.vqgan.checkpoint' in kinds['tokenizer'].advice


def _addp_run(tmp_path, stage_files, name, **kw):
    cfg = runner_config(name, stage_config('addp'), str(tmp_path / name), max_iters=2,
                        options=stage_options('addp', stage_files['data'], stage_files))
    cfg.update(kw)
    # what tools/train.py adds to every config
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='CheckPretrainedKeysHook', require_pretrained=False)]
    return Runner.from_cfg(cfg)


def test_load_from_a_mage_stage_file_names_the_predictor_field(stage_files, tmp_path):
    runner = _addp_run(tmp_path, stage_files, 'addp_load_mage', load_from=stage_files['predictor'])
    with pytest.raises(RuntimeError) as err:
        runner.train()
    msg = str(err.value)
    assert stage_files['predictor'] in msg and 'trainable backbone weights' in msg
    assert 'addp_mm MAGE checkpoint' in msg and PREDICTOR_FIELD in msg
    assert 'VQGAN tokenizer' not in msg and 'vqgan.checkpoint' not in msg
    assert runner.iter == 0


def test_resume_from_a_mage_file_leads_with_the_model_type(stage_files, tmp_path):
    runner = _addp_run(tmp_path, stage_files, 'addp_resume_mage', resume=True,
                       load_from=stage_files['predictor'])
    with pytest.raises(RuntimeError) as err:
        runner.train()
    msg = str(err.value)
    first = msg.splitlines()[0]
    assert "model.type='MAGE'" in first and "model.type='ADDP'" in first
    # the ways out: a fresh start, or the file where it belongs; not load_from (refused too)
    assert '--work-dir' in msg and PREDICTOR_FIELD in msg
    assert 'load_from=' not in msg
    assert runner.iter == 0


def test_resume_of_the_same_run_is_not_refused(stage_files, tmp_path):
    """The check that refuses the two above lets a plain resume through (the ADDP stage's own
    checkpoint, a longer schedule)."""
    runner = _addp_run(tmp_path, stage_files, 'addp_resume_same', resume=True,
                       load_from=stage_files['addp'])
    runner.train()
    assert runner.iter == 2
