"""Resume after faults: atomic checkpoint files, skipping torn checkpoints, SIGTERM saves, and
a SIGKILLed run that resumes bit-identically (real Runner, real tools/train.py)."""
import os
import signal
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.fileio import get_file_backend
from mmengine.logging import MMLogger
from mmengine.runner import Runner, save_checkpoint

import addp_mm  # noqa: F401  (atomic backend, safe loader, hooks)
from addp_mm.engine import fileio
from addp_mm.engine.fileio import AtomicLocalBackend
from addp_mm.engine.resume_checks import find_resumable_checkpoint, resolve_auto_resume
from addp_mm.engine.hooks import FaultToleranceHook, TrainingInterrupted
from addp_mm.checkpoints import load_checkpoint_file
from addp_mm.engine.hooks.fault_tolerance_hook import TrainingAlreadyFinished

from .conftest import ROOT, read_records, run_tool, toy_run_config
from .helpers import state_dict_sha


def _tmp_files(directory):
    return [p.name for p in directory.iterdir() if '.tmp-' in p.name]


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'iter_2.pth'
    assert isinstance(get_file_backend(str(path)), AtomicLocalBackend)
    # mmengine's own save function (what Runner.save_checkpoint calls) goes through it
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'], torch.ones(3))

    # a failure in the middle of the next write (here: fsync) leaves the old file intact
    def broken_fsync(fd):
        raise OSError('disk gone')

    monkeypatch.setattr(fileio.os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='disk gone'):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'], torch.ones(3))
    assert _tmp_files(tmp_path) == []
    with pytest.raises(OSError):
        get_file_backend(str(tmp_path / 'x.txt')).put_text('new', str(tmp_path / 'x.txt'))
    assert not (tmp_path / 'x.txt').exists()


def test_auto_resume_skips_missing_and_torn_checkpoints(tmp_path):
    good = tmp_path / 'iter_2.pth'
    torn = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, good)
    data = good.read_bytes()
    torn.write_bytes(data[:len(data) // 2])  # a crash half-way through writing iter_4.pth
    os.utime(torn, (good.stat().st_mtime + 10, ) * 2)
    pointer = tmp_path / 'last_checkpoint'

    assert find_resumable_checkpoint(str(tmp_path)) == (None, None)  # no pointer: from scratch
    for content, why in [(str(torn), 'incomplete'), ('', 'is empty'),
                         (str(tmp_path / 'iter_6.pth'), 'does not exist')]:
        pointer.write_text(content)
        path, note = find_resumable_checkpoint(str(tmp_path))
        assert path == str(good) and why in note, (content, note)
    pointer.write_text(str(good))
    assert find_resumable_checkpoint(str(tmp_path)) == (str(good), None)

    # tools/train.py's fix-up: load_from names the complete one; nothing complete -> fresh start
    pointer.write_text(str(torn))
    cfg = ConfigDict(work_dir=str(tmp_path), resume=True, load_from=None)
    with pytest.warns(UserWarning, match='incomplete'):
        resolve_auto_resume(cfg)
    assert cfg.resume is True and cfg.load_from == str(good)
    good.unlink()
    cfg = ConfigDict(work_dir=str(tmp_path), resume=True, load_from=None)
    with pytest.warns(UserWarning, match='starts from scratch'):
        resolve_auto_resume(cfg)
    assert cfg.resume is False and cfg.load_from is None


def test_the_hook_repairs_an_auto_resume_as_the_tool_does(tmp_path):
    """FaultToleranceHook.before_run (a Runner built in-process, without tools/train.py) takes
    the newest complete checkpoint when ``last_checkpoint`` names a torn one, starts fresh when
    there is none, and leaves an explicit ``load_from`` alone."""
    good, torn = tmp_path / 'iter_2.pth', tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, good)
    torn.write_bytes(good.read_bytes()[:100])
    (tmp_path / 'last_checkpoint').write_text(str(torn))
    logger = MMLogger.get_instance('fault_tolerance_repair')

    def before_run(resume, load_from):
        runner = SimpleNamespace(_resume=resume, _load_from=load_from, work_dir=str(tmp_path),
                                 logger=logger)
        FaultToleranceHook().before_run(runner)
        return runner._resume, runner._load_from

    assert before_run(True, None) == (True, str(good))
    assert before_run(True, str(torn)) == (True, str(torn))  # the user's own choice
    assert before_run(False, None) == (False, None)
    good.unlink()
    assert before_run(True, None) == (False, None)


def _toy_runner(work_dir, name, extra_hooks=(), by_epoch=True):
    """ToyLinearModel, 16 samples in batches of 4, 12 iterations: 3 epochs of DefaultSampler, or
    (``by_epoch=False``) an InfiniteSampler read by one persistent DataLoader worker."""
    import tests.test_distributed.helpers  # noqa: F401  (registers the test hooks)
    import tests.toy_modules  # noqa: F401
    if by_epoch:
        loader = dict(sampler=dict(type='DefaultSampler', shuffle=True), num_workers=0)
        train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3)
    else:
        loader = dict(sampler=dict(type='InfiniteSampler', shuffle=True), num_workers=1,
                      persistent_workers=True)
        train_cfg = dict(type='IterBasedTrainLoop', max_iters=12)
    return Runner(
        model=dict(type='ToyLinearModel'),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(dataset=dict(type='ToyRegressionDataset', num=16), batch_size=4,
                              **loader),
        train_cfg=train_cfg,
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2)),
        param_scheduler=dict(type='CosineAnnealingLR', T_max=12, by_epoch=False),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1 if by_epoch else 4,
                                           by_epoch=by_epoch),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='FaultToleranceHook'), dict(type='RecordTrainingHook'),
                      *extra_hooks],
        resume=True,
        randomness=dict(seed=0),
        default_scope='mmengine')


def test_sigterm_mid_epoch_saves_and_resumes_exactly(tmp_path, restore_mmengine_globals):
    """EpochBasedTrainLoop (the ADDP recipe's loop): SIGTERM after 2 of the 4 batches of epoch 2.

    mmengine alone would restart epoch 2 and end after 14 iterations; the hook skips the 2 trained
    batches, so the run ends after 12 with the weights of an uninterrupted run.
    """
    ref = _toy_runner(tmp_path / 'ref', 'ft_ref')
    ref.train()
    assert ref.iter == 12
    ref_records = read_records(tmp_path / 'ref')

    work = tmp_path / 'work'
    handler_before = signal.getsignal(signal.SIGTERM)
    kill = dict(type='ScheduledKillHook', plan=[dict(iter=6, signal='SIGTERM')])
    with pytest.raises(TrainingInterrupted) as stop:
        _toy_runner(work, 'ft_stop', [kill]).train()
    assert stop.value.code == 128 + signal.SIGTERM  # 143: "stopped by SIGTERM", not "finished"
    assert signal.getsignal(signal.SIGTERM) is handler_before  # handler put back
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_6.pth')
    ckpt = load_checkpoint_file(work / 'iter_6.pth')
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (1, 6)
    assert ckpt['resume_state']['epoch_batches_done'] == 2
    assert ckpt['optimizer']['state'][0]['step'] == 6
    assert ckpt['param_schedulers'][0]['last_step'] == 6

    resumed = _toy_runner(work, 'ft_resume', [kill])  # the same "command" again
    resumed.train()
    assert (resumed.iter, resumed.epoch) == (12, 3)
    records = read_records(work)
    assert [r['iter'] for r in records] == list(range(1, 13))
    for ours, theirs in zip(records, ref_records):
        assert ours['ids'] == theirs['ids'], ours['iter']  # same batches in the same order
        assert ours['sha'] == theirs['sha'], ours['iter']  # same weights after every step
    final = load_checkpoint_file(work / 'epoch_3.pth')
    assert state_dict_sha(final['state_dict']) == state_dict_sha(ref.model.state_dict())


def test_sigterm_iter_based_persistent_workers(tmp_path, restore_mmengine_globals):
    """IterBasedTrainLoop + InfiniteSampler + a persistent DataLoader worker (the mmseg layout):
    the resumed run skips the 5 trained batches without loading them and matches the reference."""
    ref = _toy_runner(tmp_path / 'ref', 'ft_iter_ref', by_epoch=False)
    ref.train()
    ref_records = read_records(tmp_path / 'ref')
    work = tmp_path / 'work'
    kill = dict(type='ScheduledKillHook', plan=[dict(iter=5, signal='SIGTERM')])
    with pytest.raises(TrainingInterrupted):
        _toy_runner(work, 'ft_iter_stop', [kill], by_epoch=False).train()
    assert load_checkpoint_file(work / 'iter_5.pth')['meta']['iter'] == 5
    resumed = _toy_runner(work, 'ft_iter_resume', [kill], by_epoch=False)
    resumed.train()
    assert resumed.iter == 12
    records = read_records(work)
    assert [r['iter'] for r in records] == list(range(1, 13))
    assert [(r['ids'], r['sha']) for r in records] == [(r['ids'], r['sha']) for r in ref_records]


def test_sigkill_then_relaunch_continues_bit_identically(tmp_path, image_folder):
    """The toy ADDP config through tools/train.py --resume --amp (bf16 on CPU): SIGKILL after
    iteration 7 (last checkpoint: iteration 4), a torn iter_6.pth named by last_checkpoint as if
    the crash hit a save, then the same command again.

    Masks and crops are random: the resumed run reproduces iterations 5-7 of the killed run bit
    for bit only if weights, AdamW state, lr schedule, sampler position and seed, and the torch /
    numpy / random generator states were all restored.
    """
    work = tmp_path / 'work'
    config = toy_run_config(
        tmp_path, image_folder, 'sigkill', loader='batch_size=2',
        train_cfg='dict(max_iters=8)',
        default_hooks='dict(checkpoint=dict(interval=4), logger=dict(interval=1))',
        custom_hooks="[dict(type='FaultToleranceHook'), dict(type='RecordTrainingHook'), "
        "dict(type='ScheduledKillHook', plan=[dict(iter=7, signal='SIGKILL')])]")
    command = [sys.executable, ROOT / 'tools' / 'train.py', config, '--work-dir', work,
               '--resume', '--amp']

    first = run_tool(command, cwd=tmp_path)
    assert first.returncode == -signal.SIGKILL, first.stdout[-3000:]
    assert 'bfloat16 autocast' in first.stdout  # --amp on a CPU-only machine
    killed = read_records(work)
    assert [r['iter'] for r in killed] == list(range(1, 8))
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')
    data = (work / 'iter_4.pth').read_bytes()
    (work / 'iter_6.pth').write_bytes(data[:len(data) // 3])
    (work / 'last_checkpoint').write_text(str(work / 'iter_6.pth'))

    second = run_tool(command, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-5000:]
    assert 'resuming from' in second.stdout and 'iter_4.pth, the newest complete one' in \
        second.stdout
    assert 'resumed epoch: 0, iter: 4' in second.stdout
    assert 'skipping the 4 trained batches through the sampler' in second.stdout
    resumed = read_records(work)[len(killed):]
    assert [r['iter'] for r in resumed] == [5, 6, 7, 8]
    for before, after in zip(killed[4:], resumed):
        assert after['ids'] == before['ids'], after['iter']
        assert after['sha'] == before['sha'], after['iter']
    final = load_checkpoint_file(work / 'iter_8.pth')
    assert final['meta']['iter'] == 8
    assert state_dict_sha(final['state_dict']) == resumed[-1]['sha']
    # AdamW skips parameters without a gradient (the encoder when every token is masked)
    assert max(float(s['step']) for s in final['optimizer']['state'].values()) == 8
    assert [s['_global_step'] for s in final['param_schedulers']] == [8, 8]


def test_sigint_saves_exits_130_and_a_finished_run_says_so(tmp_path, image_folder):
    """Ctrl-C (SIGINT) through tools/train.py: the current iteration is saved atomically and the
    process exits 130 without a traceback; the same command continues to the end (exit 0); run
    once more it says "already finished" in one line, trains nothing and exits 0."""
    work = tmp_path / 'work'
    config = toy_run_config(
        tmp_path, image_folder, 'sigint', loader='batch_size=2',
        train_cfg='dict(max_iters=5)',
        default_hooks='dict(checkpoint=dict(interval=5), logger=dict(interval=1))',
        custom_hooks="[dict(type='FaultToleranceHook'), dict(type='RecordTrainingHook'), "
        "dict(type='ScheduledKillHook', plan=[dict(iter=3, signal='SIGINT')])]")
    command = [sys.executable, ROOT / 'tools' / 'train.py', config, '--work-dir', work,
               '--resume']

    first = run_tool(command, cwd=tmp_path)
    assert first.returncode == 130, first.stdout[-3000:]
    assert 'Traceback' not in first.stdout and 'KeyboardInterrupt' not in first.stdout
    assert 'stopped by SIGINT after iteration 3' in first.stdout
    assert 'exit status 130' in first.stdout
    assert [r['iter'] for r in read_records(work)] == [1, 2, 3]
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_3.pth')
    assert load_checkpoint_file(work / 'iter_3.pth')['meta']['iter'] == 3
    assert _tmp_files(work) == []

    second = run_tool(command, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:]
    assert 'resumed epoch: 0, iter: 3' in second.stdout
    assert [r['iter'] for r in read_records(work)] == [1, 2, 3, 4, 5]

    third = run_tool(command, cwd=tmp_path)
    assert third.returncode == 0, third.stdout[-3000:]
    finished = [line for line in third.stdout.splitlines() if 'already finished' in line]
    assert len(finished) == 1 and '5 of 5 iterations' in finished[0], third.stdout[-3000:]
    assert '--max-iters' in finished[0]  # how to train longer
    assert 'Advance dataloader' not in third.stdout
    assert [r['iter'] for r in read_records(work)] == [1, 2, 3, 4, 5]  # nothing trained

    # the hint of that line works: --max-iters 7 trains 2 more iterations of the same run
    fourth = run_tool(command + ['--max-iters', '7'], cwd=tmp_path)
    assert fourth.returncode == 0, fourth.stdout[-3000:]
    assert [r['iter'] for r in read_records(work)] == [1, 2, 3, 4, 5, 6, 7]
    assert load_checkpoint_file(work / 'iter_7.pth')['meta']['iter'] == 7


def test_a_finished_run_in_process_raises_already_finished(tmp_path, restore_mmengine_globals):
    """In-process callers get TrainingAlreadyFinished (status 0), not a run over finished data."""
    _toy_runner(tmp_path, 'ft_done').train()
    with pytest.raises(TrainingAlreadyFinished) as done:
        _toy_runner(tmp_path, 'ft_done_again').train()
    assert done.value.code == 0
