"""Runner checkpoints load under torch's default ``weights_only=True`` through addp_mm's loader.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 then refuses the
``HistoryBuffer``s and numpy arrays every Runner checkpoint holds. ``import addp_mm`` registers
``addp_mm.checkpoints.load_checkpoint_file`` (an allow-list unpickler) as mmengine's local-file
loader.
"""
import copy
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModule
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

import addp_mm  # noqa: F401  (registers the loader)
from addp_mm.checkpoints import load_checkpoint_file
from addp_mm.checkpoints.loading import load_from_local_safe
from tests.toy_modules import ToyLinearModel


@pytest.fixture(autouse=True)
def _default_weights_only(monkeypatch):
    # The point of these tests is torch's default behaviour; make sure nothing relaxes it.
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.delenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', raising=False)


@pytest.fixture(scope='module', autouse=True)
def _restore_mmengine_globals():
    """Building a Runner makes its DefaultScope/MessageHub/logger/visualizer the "current" global
    instances; put the previous ones back so later tests' ``MODELS.build`` is not switched to this
    module's ``default_scope='mmengine'``."""
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    classes = (DefaultScope, MessageHub, MMLogger, Visualizer)
    saved = {cls: cls._instance_dict.copy() for cls in classes}
    yield
    for cls in classes:
        for name, inst in list(cls._instance_dict.items()):
            if name not in saved[cls] and cls is MMLogger:
                for handler in list(inst.handlers):  # close this module's log files
                    handler.close()
                    inst.removeHandler(handler)
        cls._instance_dict.clear()
        cls._instance_dict.update(saved[cls])


class _StateRecorder(Hook):
    """Records the iteration, weights and optimizer state right after load/resume."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.weights = copy.deepcopy(runner.model.state_dict())
        self.optim_state = copy.deepcopy(runner.optim_wrapper.optimizer.state_dict())


def _make_runner(work_dir, max_iters, resume, name, custom_hooks=()):
    return Runner(
        model=ToyLinearModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            dataset=dict(type='ToyRegressionDataset', num=16),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(custom_hooks),
        log_processor=dict(by_epoch=False),
        resume=resume,
        randomness=dict(seed=0),
        default_scope='mmengine',
    )


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _exp_avgs(optim_state):
    return [s['exp_avg'] for _, s in sorted(optim_state['state'].items())]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 2-iteration Runner run; returns (work_dir, weights, AdamW state) at the end of it."""
    work_dir = tmp_path_factory.mktemp('toy_run')
    runner = _make_runner(work_dir, max_iters=2, resume=False, name='ckpt_test_first')
    runner.train()
    assert runner.iter == 2
    weights = copy.deepcopy(runner.model.state_dict())
    optim_state = copy.deepcopy(runner.optim_wrapper.optimizer.state_dict())
    return work_dir, weights, optim_state


def test_import_registers_loader():
    loader = CheckpointLoader._get_checkpoint_loader('/some/local/file.pth')
    assert loader is load_from_local_safe
    # URL schemes keep mmengine's own loaders.
    assert CheckpointLoader._get_checkpoint_loader('https://x/y.pth') is not load_from_local_safe


def test_runner_checkpoint_needs_the_safe_loader(trained):
    work_dir, weights, optim_state = trained
    ckpt_path = work_dir / 'iter_2.pth'
    assert ckpt_path.is_file()
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith('iter_2.pth')

    # The problem being solved: mmengine's own local loader fails on its own checkpoint.
    from mmengine.runner.checkpoint import load_from_local
    with pytest.raises(pickle.UnpicklingError):
        load_from_local(str(ckpt_path), 'cpu')

    ckpt = load_checkpoint_file(ckpt_path)
    assert ckpt['meta']['iter'] == 2
    from mmengine.logging import HistoryBuffer
    assert any(isinstance(v, HistoryBuffer) for v in ckpt['message_hub']['log_scalars'].values())
    _assert_state_equal(ckpt['state_dict'], weights)
    saved = _exp_avgs(ckpt['optimizer'])
    assert len(saved) == 2  # weight and bias
    for a, b in zip(saved, _exp_avgs(optim_state)):
        assert torch.equal(a, b)


def test_auto_resume_restores_iter_weights_and_optimizer(trained, tmp_path):
    src_dir, weights, optim_state = trained
    work_dir = tmp_path / 'resumed'  # a copy, so the shared 2-iteration run stays as it is
    shutil.copytree(src_dir, work_dir)
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_2.pth'))
    recorder = _StateRecorder()
    runner = _make_runner(work_dir, max_iters=4, resume=True, name='ckpt_test_second',
                          custom_hooks=[recorder])
    runner.train()

    assert recorder.iter == 2
    _assert_state_equal(recorder.weights, weights)
    assert recorder.optim_state['state'][0]['step'] == optim_state['state'][0]['step']
    for a, b in zip(_exp_avgs(recorder.optim_state), _exp_avgs(optim_state)):
        assert torch.equal(a, b)
    assert runner.iter == 4
    assert load_checkpoint_file(work_dir / 'iter_4.pth')['meta']['iter'] == 4


def test_pretrained_init_from_runner_checkpoint(trained):
    work_dir, weights, _ = trained
    ckpt = str(work_dir / 'iter_2.pth')

    model = ToyLinearModel(init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    assert not torch.equal(model.linear.weight, weights['linear.weight'])
    model.init_weights()
    _assert_state_equal(model.state_dict(), weights)

    # With a prefix (mmengine's _load_checkpoint_with_prefix path).
    class Wrapper(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='linear.'))
            self.weight = nn.Parameter(torch.zeros(2, 4))
            self.bias = nn.Parameter(torch.zeros(2))

    bare = Wrapper()
    bare.init_weights()
    assert torch.equal(bare.weight, weights['linear.weight'])
    assert torch.equal(bare.bias, weights['linear.bias'])


def test_numpy_values_in_meta_load(tmp_path):
    path = tmp_path / 'np_meta.pth'
    torch.save(
        dict(
            state_dict={'w': torch.ones(2)},
            meta=dict(
                arr=np.arange(3, dtype=np.float32),
                scalar=np.float64(1.5),
                int_scalar=np.int64(7),
                dtype=np.dtype('int16'),
                dtype_cls=type(np.dtype('float64')),
            )), path)
    ckpt = load_checkpoint_file(path)
    assert np.array_equal(ckpt['meta']['arr'], np.arange(3, dtype=np.float32))
    assert ckpt['meta']['scalar'] == 1.5 and ckpt['meta']['int_scalar'] == 7
    assert ckpt['meta']['dtype'] == np.dtype('int16')
    assert ckpt['meta']['dtype_cls'] is type(np.dtype('float64'))


class _Evil:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('fmt', ['torch_zip', 'torch_legacy', 'plain_pickle'])
def test_malicious_pickle_is_refused(tmp_path, fmt):
    marker = tmp_path / 'pwned'
    path = tmp_path / f'evil_{fmt}.pth'
    payload = {'state_dict': {'w': torch.zeros(1)}, 'meta': _Evil(marker)}
    if fmt == 'torch_zip':
        torch.save(payload, path)
    elif fmt == 'torch_legacy':
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, 'wb') as f:
            pickle.dump(_Evil(marker), f)

    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(path)
    assert not marker.exists()
    # Also through mmengine (what Runner.resume / load_from / Pretrained use).
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / 'does_not_exist.pth'
    with pytest.raises(FileNotFoundError, match='does_not_exist.pth'):
        load_checkpoint_file(missing)
    with pytest.raises(FileNotFoundError, match='does_not_exist.pth'):
        CheckpointLoader.load_checkpoint(str(missing))


def test_resume_from_a_checkpoint_with_foreign_objects(trained, tmp_path):
    """Resume reads a Runner checkpoint to which other code added objects of its own classes
    (an ``argparse.Namespace`` in ``meta``, as MAE-style scripts do): they load as placeholders
    and the run resumes with the saved iteration, weights and optimizer state."""
    import argparse

    from addp_mm.checkpoints.loading import LegacyObject
    src_dir, weights, optim_state = trained
    work_dir = tmp_path / 'resumed_foreign'
    shutil.copytree(src_dir, work_dir)
    ckpt_path = work_dir / 'iter_2.pth'
    ckpt = load_checkpoint_file(ckpt_path)
    ckpt['meta']['args'] = argparse.Namespace(lr=0.1, output_dir='out')
    torch.save(ckpt, ckpt_path)
    assert isinstance(load_checkpoint_file(ckpt_path)['meta']['args'], LegacyObject)
    (work_dir / 'last_checkpoint').write_text(str(ckpt_path))
    recorder = _StateRecorder()
    runner = _make_runner(work_dir, max_iters=3, resume=True, name='ckpt_test_foreign',
                          custom_hooks=[recorder])
    runner.train()
    assert recorder.iter == 2 and runner.iter == 3
    _assert_state_equal(recorder.weights, weights)
    for a, b in zip(_exp_avgs(recorder.optim_state), _exp_avgs(optim_state)):
        assert torch.equal(a, b)
