"""Loading checkpoints safely under torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 does not pass the flag.
Checkpoints written by the mmengine Runner hold ``HistoryBuffer`` objects and numpy arrays/scalars
(``message_hub``, ``meta``), which the weights-only unpickler rejects, so resuming and
``init_cfg=Pretrained`` from a Runner checkpoint fail. Turning ``weights_only`` off would let any file
a user passes in run code.

Instead, :func:`load_checkpoint_file` unpickles with an allow-list: everything torch's weights-only
unpickler accepts, plus exactly the types mmengine writes (``HistoryBuffer``, numpy arrays, dtypes,
dtype classes and scalars, ``getattr`` restricted to ``HistoryBuffer``'s statistics methods).
Anything else is refused with a clear error. :func:`register_mmengine_loader` makes mmengine's
local-file loader use it, so resume, ``load_from`` and ``init_cfg=Pretrained`` all go through it.
``import addp_mm`` calls it.
"""
import _compat_pickle
import builtins
import os
import os.path as osp
import pickle
from typing import Any, Callable, Dict, Optional, Union

import torch

_EXTRA_ALLOWED: Optional[Dict[str, Any]] = None


def _extra_allowed_globals() -> Dict[str, Any]:
    """Globals that mmengine Runner checkpoints need beyond torch's weights-only allow-list."""
    global _EXTRA_ALLOWED
    if _EXTRA_ALLOWED is None:
        import numpy as np
        from mmengine.logging.history_buffer import HistoryBuffer
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = dict(_get_allowed_globals())
        for obj in torch.serialization.get_safe_globals():
            if isinstance(obj, tuple):
                obj, name = obj
            else:
                name = f'{obj.__module__}.{obj.__name__}'
            allowed[name] = obj
        multiarray = np.core.multiarray
        for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            allowed[f'{mod}._reconstruct'] = multiarray._reconstruct
            allowed[f'{mod}.scalar'] = multiarray.scalar
        allowed['numpy.ndarray'] = np.ndarray
        allowed['numpy.dtype'] = np.dtype
        allowed['mmengine.logging.history_buffer.HistoryBuffer'] = HistoryBuffer
        allowed['builtins.getattr'] = _restricted_getattr
        for name in ('set', 'frozenset', 'slice', 'complex', 'range'):
            allowed[f'builtins.{name}'] = getattr(builtins, name)
        _EXTRA_ALLOWED = allowed
    return _EXTRA_ALLOWED


# ``HistoryBuffer.__getstate__`` stores its statistics methods, and protocol 2 pickles the functions
# ``HistoryBuffer.min`` etc. as ``getattr(HistoryBuffer, 'min')``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'mean', 'current')


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to what mmengine/numpy pickles need.

    Only ``getattr(HistoryBuffer, 'min' | 'max' | 'mean' | 'current')`` (mmengine
    ``message_hub``) is allowed; anything else is refused.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str) and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only the statistics '
        'methods of mmengine HistoryBuffer are allowed.')


def _numpy_dtype_class(module: str, name: str) -> Any:
    """numpy >= 1.25 pickles dtype classes as ``numpy.dtypes.<X>DType``; None for anything else."""
    if module != 'numpy.dtypes' or not name.endswith('DType'):
        return None
    import numpy as np
    obj = getattr(getattr(np, 'dtypes', None), name, None)
    if isinstance(obj, type) and issubclass(obj, np.dtype):
        return obj
    return None


class _RestrictedUnpickler(pickle.Unpickler):

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles (torch.save's default) name Python 2 modules, e.g.
        # `__builtin__.getattr`; pickle's own find_class maps them (fix_imports), this override must
        # do it too before looking the name up.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        obj = _extra_allowed_globals().get(f'{module}.{name}')
        if obj is None:
            obj = _numpy_dtype_class(module, name)
        if obj is None:
            raise pickle.UnpicklingError(
                f'the checkpoint contains the object {module}.{name}, which addp_mm does not load '
                '(it could run arbitrary code). Only tensors, containers, numpy arrays and mmengine '
                'Runner state are accepted. If you trust this file, re-save its state dict with '
                '`torch.save({"state_dict": sd}, path)` in a trusted Python session.')
        return obj


def _restricted_load(file, **kwargs) -> Any:
    """``pickle.load`` with the allow-list.

    torch's legacy (non-zip) format calls ``pickle_module.load`` directly for its header records, so
    this must be restricted as well: plain ``pickle.load`` here would run any code in a crafted
    file.
    """
    return _RestrictedUnpickler(file, **kwargs).load()


class _RestrictedPickleModule:
    """A ``pickle_module`` for :func:`torch.load` that only builds allow-listed objects."""
    Unpickler = _RestrictedUnpickler
    load = staticmethod(_restricted_load)
    UnpicklingError = pickle.UnpicklingError
    __name__ = 'addp_mm_restricted_pickle'


def load_checkpoint_file(filename: Union[str, os.PathLike],
                         map_location: Union[str, Callable, torch.device, None] = 'cpu') -> Any:
    """Load a checkpoint file without allowing arbitrary code.

    Plain state dicts, official ADDP/MAGE/VQGAN files and full mmengine Runner checkpoints load.

    Args:
        filename (str | PathLike): Local path.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The unpickled object (usually a dict).

    Raises:
        FileNotFoundError: With the path, when the file does not exist.
    """
    filename = os.fspath(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename!r}. Check the path (this '
                                'package never downloads weights; see configs/addp/README.md for '
                                'how to obtain and convert them).')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # Most likely a Runner checkpoint: retry with the mmengine allow-list below. Only
        # pickle-level refusals get here; TorchScript archives, corrupt files etc. raise other
        # errors.
        if os.getenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '0').lower() in ('1', 'y', 'yes', 'true'):
            raise  # the user asked torch for weights-only loading everywhere
    return torch.load(filename, map_location=map_location, weights_only=False,
                      pickle_module=_RestrictedPickleModule)


def load_from_local_safe(filename: str, map_location=None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (the ``''`` prefix).

    The name matters: mmengine logs ``loader.__name__[10:]`` ("Loads checkpoint by local_safe
    backend"), assuming the ``load_from_`` prefix of its own loaders.
    """
    return load_checkpoint_file(osp.expanduser(filename), map_location)


def register_mmengine_loader() -> None:
    """Route mmengine's local checkpoint loading through :func:`load_checkpoint_file`.

    mmengine resolves every checkpoint path with ``CheckpointLoader._get_checkpoint_loader``: the
    registered prefixes are tried longest first with ``re.match``, and the empty prefix (local
    files) matches whatever no URL scheme claimed. Replacing that entry (``force=True``;
    idempotent) covers ``Runner.resume``/``load_from`` (``Runner.load_checkpoint`` ->
    ``_load_checkpoint``), ``init_cfg=dict(type='Pretrained')`` (``load_checkpoint`` /
    ``_load_checkpoint_with_prefix``), ``CheckpointHook(published_keys=...)`` and
    ``mmengine.runner.load_checkpoint``. URL schemes (``http(s)://``, ``open-mmlab://``, ...) keep
    mmengine's loaders and torch's weights-only default.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)
