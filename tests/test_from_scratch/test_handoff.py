"""The documented path: stage-1 checkpoint -> stage 2 -> stage-2 checkpoint -> ADDP pre-training,
each hand-off made by a config field, and the demo's stage runner."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import addp_mm  # noqa: F401
from addp_mm.engine.stages import run_stage, set_max_iters, stage_config, stage_settings
from addp_mm.utils.errors import RefusedError
from addp_mm.checkpoints.loading import load_checkpoint_file

from .conftest import config_path, read_log


def test_addp_pretraining_from_the_first_two_stages(demo_run):
    """The demo trained stage 3 with the stage-1 and stage-2 checkpoints as config fields."""
    stage1, stage2, stage3 = demo_run['tokenizer'], demo_run['predictor'], demo_run['addp']
    ckpt = stage3['ckpt']
    log = read_log(stage3['work_dir'])
    assert len(log) == stage3['iters'] and all(r['loss'] > 0 for r in log)

    sd3 = load_checkpoint_file(ckpt)['state_dict']
    sd1 = load_checkpoint_file(stage1['ckpt'])['state_dict']
    sd2 = load_checkpoint_file(stage2['ckpt'])['state_dict']
    vq = {k[len('target_generator.vqgan.'):]: v for k, v in sd3.items()
          if k.startswith('target_generator.vqgan.')}
    pred = {k[len('target_generator.predictor.'):]: v for k, v in sd3.items()
            if k.startswith('target_generator.predictor.')}
    # the frozen parts of ADDP are exactly the stage-1 tokenizer and the stage-2 network,
    # untouched by ADDP training
    assert vq and set(vq) == {k[len('vqgan.'):] for k in sd1 if k.startswith('vqgan.')}
    assert all(torch.equal(v, sd1['vqgan.' + k]) for k, v in vq.items())
    assert pred and set(pred) == {k[len('backbone.'):] for k in sd2 if k.startswith('backbone.')}
    assert all(torch.equal(v, sd2['backbone.' + k]) for k, v in pred.items())
    # the trainable part did train: its LayerNorms start at exactly (1, 0) (official init), and
    # every one of them has moved; the loss of the stage fell (test_learning_from_scratch.py)
    norms = [k[:-len('.weight')] for k in sd3
             if k.startswith(('backbone.', 'neck.', 'head.')) and k.endswith('.weight')
             and k[:-len('.weight')] + '.bias' in sd3 and sd3[k].ndim == 1]
    assert len(norms) >= 4, norms
    for name in norms:
        assert not torch.equal(sd3[name + '.weight'], torch.ones_like(sd3[name + '.weight'])), name
        assert sd3[name + '.bias'].abs().max() > 0, name


def test_wrong_stage_checkpoint_is_a_clear_error(demo_run):
    stage1 = demo_run['tokenizer']
    """The predictor field given the tokenizer checkpoint (a likely slip) fails loudly."""
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config_path('addp'))
    pred = MODELS.build(dict(cfg.model.target_generator.predictor, checkpoint=stage1['ckpt']))
    with pytest.raises(KeyError, match='MAGE token predictor'):
        pred.init_weights()
    tok = MODELS.build(dict(cfg.model.target_generator.vqgan, checkpoint='no/such/file.pth'))
    with pytest.raises(FileNotFoundError, match='no/such/file.pth'):
        tok.init_weights()


def test_stage_runner_skips_finished_stages_and_rescales_schedules(tmp_path, capsys):
    cfg = Config.fromfile(config_path('tokenizer'))
    set_max_iters(cfg, 40)
    assert cfg.train_cfg.max_iters == 40
    assert [(s['begin'], s['end']) for s in cfg.param_scheduler] == [(0, 2), (2, 40)]
    assert cfg.param_scheduler[1]['T_max'] == 38
    assert cfg.default_hooks.checkpoint.interval == 40
    set_max_iters(cfg, 3)
    assert [(s['begin'], s['end']) for s in cfg.param_scheduler] == [(0, 1), (1, 3)]

    # a finished stage (its done.json, same settings) is reused without training ...
    config = config_path('tokenizer')
    settings = stage_settings(stage_config('x', config, str(tmp_path), 7), config, 0, None)
    assert settings['iters'] == 7 and settings['config'] == osp.basename(config)
    rec = dict(checkpoint=str(tmp_path / 'iter_7.pth'), iters=7, seconds=1., settings=settings)
    (tmp_path / 'done.json').write_text(json.dumps(rec))
    assert run_stage('x', config_path('tokenizer'), str(tmp_path), 7) == rec
    assert 'reusing' in capsys.readouterr().out
    assert not any(p.is_dir() for p in tmp_path.iterdir())  # no Runner ran
    # ... and one made with other settings is refused, naming the way out
    with pytest.raises(RefusedError, match='other settings'):
        run_stage('x', config_path('tokenizer'), str(tmp_path), 7, seed=1)
    # ... as is the same file name with another content (an edited config)
    edited = tmp_path / 'cfg' / osp.basename(config)
    edited.parent.mkdir()
    edited.write_text(f"_base_ = ['{config}']\nmodel = dict(beta=0.5)\n")
    with pytest.raises(RefusedError, match='other settings'):
        run_stage('x', str(edited), str(tmp_path), 7)
