"""Survive preemption, Ctrl-C and crashes: save on SIGTERM / SIGINT, resume exactly, never resume
from a torn file, and say so when a relaunched run has nothing left to train.

Slurm (preemption, time limit, ``scancel``) and torchrun's shutdown send SIGTERM to every process of
a job, wait a grace period (Slurm ``KillWait``, 30 s by default; torchrun 30 s) and then SIGKILL;
Ctrl-C sends SIGINT to every process of the terminal's foreground job. Without this hook the signal
stops training at once (SIGINT with a ``KeyboardInterrupt`` traceback) and everything since the last
periodic checkpoint is lost; with ``num_workers > 0`` the DataLoader workers also die and the
trainer raises "DataLoader worker ... is killed by signal" wherever it happens to be.
"""
import functools
import os
import os.path as osp
import signal
import threading
from typing import Any, Dict, Optional, Sequence

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import all_gather_object, all_reduce, barrier, get_dist_info, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from ...utils.errors import signal_exit_code
from ..fileio import atomic_write
from ..resume_checks import repair_auto_resume
from ..resume import (RESUME_STATE_KEY, SkipSampler, base_sampler, capture_rng_state,
                      plain_batch_sampler, restore_rng_state)


class TrainingInterrupted(SystemExit):
    """Raised (on every rank) after the checkpoint of an interrupted run has been saved.

    A ``SystemExit``: uncaught, the process ends quietly with ``code`` (``128 + signal``: 130 for
    SIGINT, 143 for SIGTERM, see :func:`addp_mm.utils.errors.signal_exit_code`); relaunching the
    same command (with auto-resume) continues the run.
    """


class TrainingAlreadyFinished(SystemExit):
    """Raised (on every rank) before the first iteration when a resumed run has no iteration (or
    epoch) left to train. A ``SystemExit`` with status 0: uncaught, the process ends quietly after
    the one log line that says so; in-process callers can catch it."""


def _shield_worker_then_init(init_fn, signums: Sequence[int], worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: survive stop signals not sent by the trainer, then init.

    torch's workers install a C handler that dies on any SIGTERM not sent by their parent, and the
    trainer then raises from its SIGCHLD handler ("DataLoader worker ... is killed by signal"),
    so a scheduler's SIGTERM to the whole process group would abort the checkpoint. The signals are
    blocked here and read by a watcher thread instead: one from the parent (the trainer shutting
    its workers down, e.g. multiprocessing's exit handler) ends the worker as torch's handler would;
    any other is ignored, the trainer decides. SIGKILL still works, and a worker whose parent died
    exits through torch's own watchdog.
    """
    signums = set(signums)
    if signums and hasattr(signal, 'sigwaitinfo'):  # Linux; elsewhere keep torch's behaviour

        def watch() -> None:
            while True:
                info = signal.sigwaitinfo(signums)
                if info.si_pid == os.getppid():
                    os._exit(0)

        # Threads inherit the mask, so no thread of this worker receives the signals except
        # through sigwaitinfo.
        signal.pthread_sigmask(signal.SIG_BLOCK, signums)
        threading.Thread(target=watch, name='addp-worker-signals', daemon=True).start()
    if init_fn is not None:
        init_fn(worker_id)


def _index_sampler(dataloader):
    """The sampler that draws the dataset indices (inside the batch sampler if there is one)."""
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None)
    return base_sampler(sampler if sampler is not None else dataloader.sampler)


class _FastForwardIterator:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator`` when resuming.

    mmengine's loop calls ``next()`` once per finished iteration to skip trained data; the first
    ``swallow`` calls return None without loading anything (the loop discards them) because the
    sampler has already been advanced by :class:`SkipSampler`. The real iterator is created at the
    first real fetch, i.e. after the hook wrapped ``worker_init_fn``.
    """

    def __init__(self, dataloader, swallow: int) -> None:
        self._make = functools.partial(_InfiniteDataloaderIterator, dataloader)
        self.pending = int(swallow)
        self._iterator = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.pending > 0:
            self.pending -= 1
            return None
        if self._iterator is None:
            self._iterator = self._make()
        return next(self._iterator)


@HOOKS.register_module()
class FaultToleranceHook(Hook):
    """Checkpoint on SIGTERM, exact resume, and auto-resume that skips incomplete checkpoints.

    * **Stop on a signal.** A handler for ``signals`` (SIGTERM and SIGINT, i.e. Ctrl-C) only sets
      a flag. After each training iteration all ranks combine their flags (one ``all_reduce`` of a
      single integer, so a signal that reached only some ranks still stops all of them at the same
      iteration); then rank 0 saves ``iter_<N>.pth`` in the ``CheckpointHook`` directory (unless
      ``CheckpointHook`` saved that very iteration), points ``last_checkpoint`` at it, all ranks
      meet at a barrier and raise :class:`TrainingInterrupted` (exit status ``128 + signal``, the
      same on every rank, unless ``exit_code`` is set). A second Ctrl-C while the first is pending
      stops at once, without saving. DataLoader workers ignore these signals unless the trainer
      sends them, so a signal to the whole process group (Slurm, torchrun, a terminal) cannot kill
      them and abort the save.
    * **Nothing left to train.** A resumed run whose checkpoint is already at ``max_iters``
      (``max_epochs``) logs one line that says so and raises :class:`TrainingAlreadyFinished`
      (exit status 0) instead of advancing the dataloader through the finished run.
    * **Exact resume.** Every checkpoint gets a ``resume_state`` entry (sampler seed, batches done
      in the current epoch, data layout and the torch/numpy/random generator states of every
      rank). On resume the sampler seed is restored; the data already trained on is
      skipped by advancing the sampler without loading it (``InfiniteSampler`` in
      ``IterBasedTrainLoop``; any sampler mid-epoch in ``EpochBasedTrainLoop``, where mmengine
      would repeat the epoch's first batches); and the generator states are put back right before
      the first batch is drawn. A single-process run killed and resumed then produces the same
      weights as an uninterrupted one when ``num_workers=0`` (worker processes restart their own
      generators from the seed). In distributed runs every rank's generator states are gathered
      (one ``all_gather_object``, only for the iterations that save a checkpoint) and each rank
      gets its own back, so a resumed run with the same world size draws the same masks and
      dropout as an uninterrupted one.
    * **Safe auto-resume.** Before an auto-resume (``resume=True`` without ``load_from``) the
      checkpoint named by ``last_checkpoint`` is checked; if it is missing or incomplete the newest
      complete one is used (:func:`addp_mm.engine.resume_checks.repair_auto_resume`).

    Checkpoint files themselves are written atomically by ``import addp_mm`` (see
    :mod:`addp_mm.engine.fileio`).

    Args:
        signals (Sequence[str]): Signals that request a checkpoint and a clean stop. Slurm sends
            SIGTERM before SIGKILL; ``sbatch --signal=USR1@120`` gives earlier notice with SIGUSR1;
            Ctrl-C sends SIGINT. Defaults to ``('SIGTERM', 'SIGINT')``.
        check_interval (int): Combine the stop flags every this many iterations. 1 costs one tiny
            all_reduce per iteration; larger values stop up to ``check_interval - 1`` iterations
            later. Defaults to 1.
        exit_code (int, optional): Exit status after an interrupted run was saved. Defaults to
            None: ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM).
        save_rng_state (bool): Store the generator states (of every rank) in checkpoints.
            Defaults to True.
        fast_forward (bool): Skip trained data through the sampler instead of loading it.
            Defaults to True.
    """

    # After CheckpointHook (VERY_LOW): by the time this hook runs, a checkpoint of the current
    # iteration, if any, exists; and the state it stores is final for the iteration.
    priority = 'LOWEST'

    def __init__(self,
                 signals: Sequence[str] = ('SIGTERM', 'SIGINT'),
                 check_interval: int = 1,
                 exit_code: Optional[int] = None,
                 save_rng_state: bool = True,
                 fast_forward: bool = True) -> None:
        if isinstance(signals, str):
            signals = (signals, )
        unknown = [s for s in signals if not isinstance(getattr(signal, str(s), None), int)]
        if unknown or not signals:
            raise ValueError(f'FaultToleranceHook: unknown signal name(s) {unknown or signals}; '
                             "use names such as 'SIGTERM' or 'SIGUSR1'.")
        if int(check_interval) < 1:
            raise ValueError(f'FaultToleranceHook: check_interval must be >= 1, got '
                             f'{check_interval}.')
        self.signals = tuple(str(s) for s in signals)
        self.check_interval = int(check_interval)
        self.exit_code = None if exit_code is None else int(exit_code)
        self.save_rng_state = save_rng_state
        self.fast_forward = fast_forward

        self._received: Optional[int] = None
        self._previous_handlers: Dict[int, Any] = {}
        self._pid = os.getpid()
        self._loaded_state: Optional[dict] = None
        self._epoch_batches = 0  # batches of the current epoch done, including skipped ones
        self._epoch_skip: Optional[tuple] = None  # (batches, rng state) for the next epoch
        self._skip_sampler: Optional[SkipSampler] = None
        self._fast_forward: Optional[_FastForwardIterator] = None
        self._gathered_rng: Optional[tuple] = None  # (iterations done, [state of each rank])

    # ------------------------------------------------------------------ launch and resume
    def before_run(self, runner) -> None:
        """Repair an auto-resume whose ``last_checkpoint`` names a missing or torn file."""
        if self.save_rng_state and get_dist_info()[1] > 1:
            self._gather_rng_before_checkpoints(runner)
        # Runner keeps these private; load_or_resume() reads them after before_run.
        resume, load_from, note = repair_auto_resume(runner._resume, runner._load_from,
                                                     runner.work_dir)
        if note is not None:
            runner.logger.warning(note)
            runner._resume, runner._load_from = resume, load_from

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's ``resume_state``; used in ``before_train`` if this is a resume."""
        self._loaded_state = checkpoint.get(RESUME_STATE_KEY)

    def before_train(self, runner) -> None:
        """Install the signal handlers and restore the data position of a resumed run."""
        loop = runner.train_loop
        self._stop_if_finished(runner, loop)
        self._install_signal_handlers(runner)
        dataloader = getattr(loop, 'dataloader', None)
        if dataloader is None:
            return
        signums = [getattr(signal, s) for s in self.signals]
        if dataloader.num_workers > 0:
            dataloader.worker_init_fn = functools.partial(
                _shield_worker_then_init, dataloader.worker_init_fn, signums)

        state = self._loaded_state
        if state is not None and (runner.iter == 0 or state.get('iter') != runner.iter):
            state = None  # loaded as pre-trained weights (load_from), or not by this hook
        world_size = get_dist_info()[1]
        batch_sampler = plain_batch_sampler(dataloader)
        sampler = base_sampler(batch_sampler.sampler) if batch_sampler is not None else None
        same_layout = False
        rng = None
        if state is not None:
            self._restore_sampler_seed(runner, dataloader, state)
            same_layout = (batch_sampler is not None and state.get('world_size') == world_size
                           and state.get('batch_size') == batch_sampler.batch_size
                           and state.get('dataset_size') == len(dataloader.dataset))
            if batch_sampler is None:
                runner.logger.info(
                    'FaultToleranceHook: the batch sampler '
                    f'({type(dataloader.batch_sampler).__name__}) is not a plain BatchSampler, so '
                    'trained data cannot be skipped through the sampler (mmengine default resume '
                    'behaviour for the data position).')
            elif not same_layout:
                runner.logger.warning(
                    'FaultToleranceHook: the world size, batch size or dataset size differ from '
                    'the checkpoint; the data position cannot be restored exactly (mmengine '
                    'default resume behaviour).')
            if world_size == 1 and state.get('world_size') == 1 and same_layout:
                rng = state.get('rng')
            elif same_layout and state.get('rng_per_rank') and \
                    len(state['rng_per_rank']) == world_size:
                rng = state['rng_per_rank'][get_dist_info()[0]]

        if isinstance(loop, IterBasedTrainLoop):
            self._prepare_iter_loop(runner, loop, dataloader, batch_sampler, sampler,
                                    state is not None and same_layout, rng)
        elif isinstance(loop, EpochBasedTrainLoop) and state is not None:
            done = int(state.get('epoch_batches_done', 0))
            if done > 0 and not same_layout:
                runner.logger.warning(
                    f'FaultToleranceHook: the checkpoint was saved after {done} batches of epoch '
                    f'{runner.epoch + 1}; that epoch restarts from its first batch.')
                done = 0
            self._epoch_skip = (done, rng)

    def _stop_if_finished(self, runner, loop) -> None:
        """Raise :class:`TrainingAlreadyFinished` if the resumed run has nothing left to train."""
        if isinstance(loop, IterBasedTrainLoop):
            done, total, unit = runner.iter, loop.max_iters, 'iterations'
        elif isinstance(loop, EpochBasedTrainLoop):
            done, total, unit = runner.epoch, loop.max_epochs, 'epochs'
        else:
            return
        if done == 0 or done < total:
            return
        option = '--max-iters N' if unit == 'iterations' else \
            '--cfg-options train_cfg.max_epochs=N'
        runner.logger.info(
            f'already finished: {runner.work_dir} holds the end of this run ({done} of {total} '
            f'{unit}), so there is nothing to train; to train longer pass {option} with a larger '
            'N, to train again choose another --work-dir.')
        raise TrainingAlreadyFinished(0)

    def _restore_sampler_seed(self, runner, dataloader, state: dict) -> None:
        seed = state.get('sampler_seed')
        sampler = _index_sampler(dataloader)
        if seed is None or getattr(sampler, 'seed', None) in (None, seed):
            return
        runner.logger.info(f'FaultToleranceHook: restoring the sampler seed {seed} of the '
                           f'checkpoint (this launch drew {sampler.seed}).')
        sampler.seed = seed
        if isinstance(sampler, InfiniteSampler):
            # Its index stream is a generator made once in __init__ from the seed.
            sampler.indices = sampler._indices_of_rank()

    def _prepare_iter_loop(self, runner, loop, dataloader, batch_sampler, sampler,
                           exact: bool, rng: Optional[dict]) -> None:
        fast = (exact and self.fast_forward and runner.iter > 0
                and isinstance(sampler, InfiniteSampler))
        if not (fast or dataloader.num_workers > 0):
            if runner.iter > 0 and rng is not None:
                runner.logger.info('FaultToleranceHook: random generator states are not restored '
                                   '(the data is skipped by loading it, which draws random '
                                   'numbers).')
            return
        # The loop made its iterator in its constructor, which started the workers without the
        # signal-ignoring init; replace it.
        if dataloader.persistent_workers and getattr(dataloader, '_iterator', None) is not None:
            dataloader._iterator._shutdown_workers()
            dataloader._iterator = None
        index_sampler = _index_sampler(dataloader)
        if isinstance(index_sampler, InfiniteSampler):
            # Its index stream is one generator made in __init__; the discarded iterator has
            # drawn (prefetched) from it and closes it when collected. Start a fresh one from the
            # seed: the stream an uninterrupted run reads.
            index_sampler.indices = index_sampler._indices_of_rank()
        if fast:
            on_start = functools.partial(restore_rng_state, rng) if rng is not None else None
            batch_sampler.sampler = SkipSampler(sampler, runner.iter * batch_sampler.batch_size,
                                                on_start)
            runner.logger.info(f'FaultToleranceHook: skipping the {runner.iter} trained batches '
                               'through the sampler, without loading them.')
        self._fast_forward = _FastForwardIterator(dataloader, runner.iter if fast else 0)
        loop.dataloader_iterator = self._fast_forward

    def before_train_epoch(self, runner) -> None:
        """Skip the part of the epoch a mid-epoch checkpoint already trained on."""
        self._epoch_batches = 0
        if self._epoch_skip is None:
            return
        done, rng = self._epoch_skip
        self._epoch_skip = None
        if done == 0:
            if rng is not None:
                # Nothing between here and the DataLoader's first draw uses the generators, as
                # between an epoch-end checkpoint and the next epoch of an uninterrupted run.
                restore_rng_state(rng)
            return
        dataloader = runner.train_loop.dataloader
        batch_sampler = plain_batch_sampler(dataloader)
        on_start = functools.partial(restore_rng_state, rng) if rng is not None else None
        self._skip_sampler = SkipSampler(batch_sampler.sampler, done * batch_sampler.batch_size,
                                         on_start)
        batch_sampler.sampler = self._skip_sampler
        self._epoch_batches = done
        runner.logger.info(f'FaultToleranceHook: resuming epoch {runner.epoch + 1} after its '
                           f'first {done} batches.')

    def after_train_epoch(self, runner) -> None:
        """Put the original sampler back after a partially skipped epoch."""
        if self._skip_sampler is not None:
            batch_sampler = runner.train_loop.dataloader.batch_sampler
            if batch_sampler.sampler is self._skip_sampler:
                batch_sampler.sampler = self._skip_sampler.sampler
            self._skip_sampler = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Count the batches of the epoch (stored in mid-epoch checkpoints)."""
        if self._fast_forward is not None and self._fast_forward.pending:
            raise RuntimeError(
                'FaultToleranceHook: IterBasedTrainLoop no longer skips trained batches with '
                'next() (an mmengine change); set `fast_forward=False` in the hook config.')
        self._epoch_batches += 1

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add ``resume_state`` to every checkpoint (called on the saving rank only)."""
        loop = runner.train_loop
        dataloader = getattr(loop, 'dataloader', None)
        if dataloader is None:
            return
        meta = checkpoint.get('meta', {})
        batch_sampler = getattr(dataloader, 'batch_sampler', None)
        sampler = _index_sampler(dataloader)
        world_size = get_dist_info()[1]
        # A save at the end of an epoch is stamped epoch + 1; a mid-epoch save with the epoch
        # still running.
        mid_epoch = isinstance(loop, EpochBasedTrainLoop) and meta.get('epoch') == runner.epoch
        state = dict(
            iter=meta.get('iter'),
            epoch=meta.get('epoch'),
            epoch_batches_done=self._epoch_batches if mid_epoch else 0,
            world_size=world_size,
            batch_size=getattr(batch_sampler, 'batch_size', None),
            dataset_size=len(dataloader.dataset),
            sampler_seed=getattr(sampler, 'seed', None))
        if self.save_rng_state and world_size == 1:
            state['rng'] = capture_rng_state()
        elif self.save_rng_state and self._gathered_rng is not None and \
                self._gathered_rng[0] == meta.get('iter'):
            state['rng_per_rank'] = self._gathered_rng[1]
        checkpoint[RESUME_STATE_KEY] = state

    def _gather_rng_before_checkpoints(self, runner) -> None:
        """Make CheckpointHook gather every rank's generator states before it saves.

        ``CheckpointHook._save_checkpoint`` runs on every rank (only the file is written by rank
        0), so it is the one place where all ranks meet for exactly the checkpoints written during
        training; this hook runs after it (priority LOWEST).
        """
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook) or getattr(hook, '_addp_mm_gathers', False):
                continue
            save = hook._save_checkpoint

            def save_with_rng(runner_, _save=save, _hook=hook):
                done = runner_.iter if _hook.by_epoch else runner_.iter + 1
                self.gather_rng_states(runner_, done)
                return _save(runner_)

            hook._save_checkpoint = save_with_rng
            hook._addp_mm_gathers = True

    def gather_rng_states(self, runner, iterations_done: int) -> None:
        """Collect every rank's generator states for a checkpoint of ``iterations_done``
        (collective: call on all ranks)."""
        self._gathered_rng = (iterations_done, all_gather_object(capture_rng_state()))

    # ------------------------------------------------------------------ stopping on a signal
    def _install_signal_handlers(self, runner) -> None:
        self._received = None
        self._pid = os.getpid()
        for name in self.signals:
            signum = getattr(signal, name)
            try:
                previous = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread of the main interpreter
                runner.logger.warning('FaultToleranceHook: cannot install signal handlers outside '
                                      'the main thread; a signal will stop training without a '
                                      'checkpoint.')
                self._restore_signal_handlers()
                return
            self._previous_handlers.setdefault(signum, previous)

    def _restore_signal_handlers(self) -> None:
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous_handlers = {}

    def _on_signal(self, signum: int, frame) -> None:
        # Forked DataLoader workers inherit this handler before their own init runs; only the
        # trainer stops. No logging here: the handler may run in the middle of a logging call
        # (os.write takes no lock).
        if os.getpid() != self._pid:
            return
        if self._received is None:
            self._received = signum
            if signum == signal.SIGINT:
                os.write(2, b'\nCtrl-C: saving a checkpoint after this iteration, then stopping '
                         b'(Ctrl-C again stops at once, without saving).\n')
        elif signum == signal.SIGINT:
            self._restore_signal_handlers()
            raise KeyboardInterrupt

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """All ranks agree whether a stop was requested; if so save and stop."""
        if not self._previous_handlers or (runner.iter + 1) % self.check_interval:
            return
        # the signal number (0: none); the largest of all ranks decides the exit status
        stop = torch.tensor([0 if self._received is None else int(self._received)],
                            dtype=torch.int32)
        if get_dist_info()[1] > 1:
            all_reduce(stop, op='max')
        if stop.item():
            self._save_and_stop(runner, int(stop.item()))

    def _save_and_stop(self, runner, signum: int) -> None:
        step = runner.iter + 1  # iterations done; the loop increments runner.iter after the hooks
        if self.save_rng_state and get_dist_info()[1] > 1:
            self.gather_rng_states(runner, step)
        ckpt_hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        out_dir = getattr(ckpt_hook, 'out_dir', None) or runner.work_dir
        backend = getattr(ckpt_hook, 'file_backend', None)
        filename = f'iter_{step}.pth'
        path = backend.join_path(out_dir, filename) if backend is not None else \
            osp.join(out_dir, filename)
        if runner.message_hub.get_info('last_ckpt') != path:  # else CheckpointHook just saved it
            runner.save_checkpoint(
                out_dir, filename, save_optimizer=True, save_param_scheduler=True,
                meta=dict(epoch=runner.epoch, iter=step), by_epoch=False,
                backend_args=getattr(ckpt_hook, 'backend_args', None))
            runner.message_hub.update_info('last_ckpt', path)
            if is_main_process():
                atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), path)
        barrier()
        self._restore_signal_handlers()
        name = signal.Signals(signum).name
        if self._received is None:
            name += ' on another rank'
        code = signal_exit_code(signum) if self.exit_code is None else self.exit_code
        runner.logger.warning(
            f'FaultToleranceHook: stopped by {name} after iteration {step} (epoch '
            f'{runner.epoch + 1}); checkpoint {path}; exit status {code}. To continue, run the '
            'same command with auto-resume (tools/train.py --resume).')
        raise TrainingInterrupted(code)

    def after_train(self, runner) -> None:
        self._restore_signal_handlers()

    def after_run(self, runner) -> None:
        self._restore_signal_handlers()
