"""The training state that mmengine 0.10.7's resume does not restore, and helpers to restore it.

What ``Runner.resume`` restores: weights, optimizer (incl. the AMP loss scaler), parameter
schedulers, the message hub, and the epoch/iteration counters. What it does not:

* **Position inside an epoch.** ``EpochBasedTrainLoop`` restarts the stored epoch from its first
  batch. A checkpoint written at the end of an epoch (``epoch_N.pth``) resumes exactly; one written
  mid-epoch (an iteration-interval ``CheckpointHook`` or a save on SIGTERM) repeats that epoch's
  first k batches, so the run ends k iterations later than planned and iteration-based schedules
  run past their end.
* **Cheap skipping.** ``IterBasedTrainLoop`` calls ``next(dataloader)`` once per finished
  iteration to skip the data already trained on, so every skipped batch is read and augmented:
  hours for a resume deep into an ImageNet run.
* **The sampler seed.** With ``randomness.seed=None`` (mmpretrain's default runtime) or
  ``diff_rank_seed=True``, ``DefaultSampler``/``InfiniteSampler`` draw their seed at start-up
  (``sync_random_seed``), so a relaunch shuffles differently and the skipped batches are not the
  ones that were trained on.
* **Random number generators.** torch, numpy and Python ``random`` are re-seeded from the config
  seed, so masks and augmentations after a resume differ from an uninterrupted run.

:class:`~addp_mm.engine.hooks.FaultToleranceHook` stores a small ``resume_state`` in every
checkpoint and uses the helpers here to restore all four. Whether a checkpoint may be resumed from
at all is :mod:`addp_mm.engine.resume_checks`.
"""
import random
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler

#: Key of the extra state in a Runner checkpoint (beside ``meta``, ``state_dict``, ...).
RESUME_STATE_KEY = 'resume_state'


def capture_rng_state() -> Dict[str, Any]:
    """The state of this process's global random number generators.

    Returns:
        dict: ``torch`` (CPU generator state), ``cuda`` (one state per visible GPU, only if CUDA is
        initialised), ``numpy`` and ``python`` (``random``). Only tensors, ints, floats, tuples and
        None, so the safe checkpoint loader accepts it.
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(name=str(name), keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), gauss=float(gauss)),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the global random number generators to a state from :func:`capture_rng_state`.

    Args:
        state (dict): As returned by :func:`capture_rng_state`.
    """
    torch.set_rng_state(state['torch'])
    np_state = state['numpy']
    np.random.set_state((np_state['name'], np_state['keys'].numpy().astype(np.uint32),
                         np_state['pos'], np_state['has_gauss'], np_state['gauss']))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class SkipSampler(Sampler):
    """Yields the indices of ``sampler`` from position ``skip`` on.

    Put between a ``BatchSampler`` and its sampler, skipping ``k * batch_size`` indices skips
    exactly the first k batches without loading them. ``on_start`` runs once, just before the first
    index is produced, i.e. when the DataLoader starts fetching (after it has drawn its own worker
    base seed), which is where an uninterrupted run's random state must be put back.

    Args:
        sampler (Sampler): The sampler to wrap; attributes (``seed``, ``set_epoch``, ...) are
            forwarded to it.
        skip (int): Number of indices to drop.
        on_start (callable, optional): Called without arguments before the first index.
    """

    def __init__(self, sampler: Sampler, skip: int,
                 on_start: Optional[Callable[[], None]] = None) -> None:
        self.sampler = sampler
        self.skip = int(skip)
        self._on_start = on_start

    def __iter__(self) -> Iterator[int]:
        it = iter(self.sampler)
        for _ in range(self.skip):
            if next(it, None) is None:
                break
        if self._on_start is not None:
            on_start, self._on_start = self._on_start, None
            on_start()
        yield from it

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found on the wrapper itself.
        if name == 'sampler':
            raise AttributeError(name)
        return getattr(self.sampler, name)


def plain_batch_sampler(dataloader: DataLoader) -> Optional[BatchSampler]:
    """The DataLoader's batch sampler if it is torch's plain ``BatchSampler`` (consecutive chunks of
    ``batch_size`` indices), else None.

    Only then does skipping ``k * batch_size`` indices equal skipping k batches; grouping samplers
    such as mmdet's ``AspectRatioBatchSampler`` reorder indices.
    """
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    return batch_sampler if type(batch_sampler) is BatchSampler else None


def base_sampler(sampler: Sampler) -> Sampler:
    """``sampler`` without any :class:`SkipSampler` around it."""
    while isinstance(sampler, SkipSampler):
        sampler = sampler.sampler
    return sampler
