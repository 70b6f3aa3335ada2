"""Test-only hooks for the fault-tolerance and distributed tests (imported via ``custom_imports``).

Registered in mmengine's root HOOKS, so configs of any default scope find them.
"""
import hashlib
import json
import os
import os.path as osp
import signal
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from addp_mm.engine.resume import base_sampler


@contextmanager
def mmengine_globals_restored() -> Iterator[None]:
    """Put back mmengine's "current" DefaultScope/MessageHub/logger/visualizer after Runners built
    in the test process (so later tests do not build under their scope); close their log files."""
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer
    classes = (DefaultScope, MessageHub, MMLogger, Visualizer)
    saved = {cls: cls._instance_dict.copy() for cls in classes}
    try:
        yield
    finally:
        for name, logger in MMLogger._instance_dict.items():
            if name not in saved[MMLogger]:
                for handler in list(logger.handlers):
                    handler.close()
                    logger.removeHandler(handler)
        for cls in classes:
            cls._instance_dict.clear()
            cls._instance_dict.update(saved[cls])


def state_dict_sha(state_dict: Dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names and exact bytes of every tensor of a state dict."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
                          .tobytes())
    return digest.hexdigest()


def _sample_ids(data_batch) -> List:
    """Dataset indices of a batch (mmpretrain DataSample.sample_idx), else the inputs' values."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    if samples and hasattr(samples[0], 'metainfo') and 'sample_idx' in samples[0].metainfo:
        return [int(s.sample_idx) for s in samples]
    inputs = data_batch['inputs']
    inputs = torch.stack(list(inputs)) if isinstance(inputs, (list, tuple)) else inputs
    return inputs.flatten(1).tolist()


@HOOKS.register_module(force=True)
class RecordTrainingHook(Hook):
    """Appends one JSON line per training iteration to ``<work_dir>/record_rank<R>.jsonl``.

    Each line: ``iter`` (iterations done), ``epoch``, ``rank``, ``pid``, ``ids`` (the batch's
    dataset indices), ``sha`` (hash of the model's state dict after the step), ``sampler_seed``.
    """
    priority = 'NORMAL'

    def _path(self, runner) -> str:
        return osp.join(runner.work_dir, f'record_rank{runner.rank}.jsonl')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loader = runner.train_loop.dataloader
        sampler = base_sampler(getattr(loader.batch_sampler, 'sampler', loader.sampler))
        line = dict(iter=runner.iter + 1, epoch=runner.epoch, rank=runner.rank, pid=os.getpid(),
                    ids=_sample_ids(data_batch), sha=state_dict_sha(model.state_dict()),
                    sampler_seed=getattr(sampler, 'seed', None))
        with open(self._path(runner), 'a') as f:
            f.write(json.dumps(line) + '\n')


@HOOKS.register_module(force=True)
class ScheduledKillHook(Hook):
    """Sends a signal after a given iteration, once per work directory (a marker file remembers).

    Relaunching the same command therefore does not kill again, as after a real fault.

    Args:
        plan (list[dict]): Items ``dict(iter=N, signal='SIGTERM'|'SIGKILL', rank=R, group=False)``:
            after iteration N on rank R send the signal to this process, or with ``group=True`` to
            its whole process group (the trainer and its DataLoader workers, as Slurm and torchrun
            do; the process must lead its own group, which torchrun's workers do).
    """
    priority = 'NORMAL'

    def __init__(self, plan: Sequence[dict]) -> None:
        self.plan = [dict(item) for item in plan]

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        for n, item in enumerate(self.plan):
            if item['iter'] != runner.iter + 1 or item.get('rank', 0) != runner.rank:
                continue
            marker = osp.join(runner.work_dir, f'killed_{n}')
            if osp.exists(marker):
                continue
            with open(marker, 'w') as f:
                f.write(f"{item['signal']} after iter {item['iter']}\n")
                f.flush()
                os.fsync(f.fileno())
            signum = getattr(signal, item['signal'])
            if item.get('group', False):
                if os.getpgid(0) != os.getpid():
                    raise RuntimeError('group=True needs a process that leads its own group')
                os.killpg(os.getpid(), signum)
            else:
                os.kill(os.getpid(), signum)
