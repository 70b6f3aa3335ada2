"""Loading checkpoint files safely, whatever their layout.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 does not pass the
flag. Checkpoints written by the mmengine Runner hold ``HistoryBuffer`` objects and numpy
arrays/scalars (``message_hub``, ``meta``), which the weights-only unpickler rejects, so resuming
and ``init_cfg=Pretrained`` from a Runner checkpoint fail. Release files of other code bases hold
more: MAE-family ``save_model`` files keep ``'args': argparse.Namespace`` beside ``'model'``, and
PyTorch-Lightning checkpoints (the taming/MAGE VQGAN) keep ``'hyper_parameters'`` (an omegaconf
``DictConfig``) and ``'callbacks'``. Turning ``weights_only`` off would let any file a user passes
in run code.

:func:`load_checkpoint_file` therefore unpickles with its own rules and never runs code from the
file:

* everything torch's weights-only unpickler accepts, plus exactly the types mmengine writes
  (``HistoryBuffer``, numpy arrays, dtypes, dtype classes and scalars, ``getattr`` restricted to
  ``HistoryBuffer``'s statistics methods) and a few inert value types (``set``, ``slice``, pure
  paths, ...) load as themselves;
* what omegaconf 2.0-2.3 and PyTorch-Lightning 1.x/2.x files name besides their own classes
  loads as itself: ``collections.defaultdict`` with a harmless factory only (``dict``, ``list``,
  ``set``, ``int`` or none: every omegaconf node's metadata holds ``resolver_cache =
  defaultdict(dict)``), the builtin types as values (``object_type=dict``) and ``typing.Any``
  (``ref_type``, ``key_type``). tests/test_checkpoints/real_pickles holds files written by the
  real classes;
* an object of any other class (``argparse.Namespace``, ``DictConfig``, a Lightning callback, a
  whole pickled ``nn.Module``, ...) becomes a :class:`LegacyObject` placeholder that records the
  class name and the pickled state, without importing or calling anything of that class;
* a pickle that would *call* something to build an object (``os.system`` in a ``__reduce__``,
  ``eval``, ``functools.partial``, ...) is refused with :class:`pickle.UnpicklingError` before
  anything is called;
* ``.safetensors`` files load as plain state dicts.

:func:`legacy_objects` lists the placeholders of a loaded checkpoint (the converter prints them).
:func:`addp_mm.compat.register_mmengine_loader` makes mmengine's local-file loader use
:func:`load_from_local_safe` (:func:`load_checkpoint_file`), so resume, ``load_from`` and
``init_cfg=Pretrained`` all go through it; ``import addp_mm`` calls it.

The one difference from stock mmengine that remains after ``import addp_mm``: an object of a class
outside the allow-list comes back as an inert :class:`LegacyObject` placeholder (stock mmengine,
with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, would rebuild it by running the pickle's code, and
without it refuses the file), and a file that would call code is refused.
"""
import _compat_pickle
import builtins
import collections
import copyreg
import datetime
import os
import os.path as osp
import pathlib
import pickle
import typing
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from safetensors.torch import load_file as load_safetensors_file
from torch._weights_only_unpickler import _get_allowed_globals

from ..utils.errors import ConfigError, MissingPathError

_EXTRA_ALLOWED: Optional[Dict[str, Any]] = None
_SAFETENSORS_SUFFIXES = ('.safetensors', )
# Types that load as themselves, as values (omegaconf's ``object_type=dict``) or as calls with plain
# arguments (``int('3')``); none of them runs code of the file.
_BUILTIN_TYPES = ('set', 'frozenset', 'slice', 'complex', 'range', 'bytearray', 'object', 'dict',
                  'list', 'tuple', 'int', 'float', 'bool', 'str', 'bytes')
# The only factories a pickled defaultdict may name: each makes an empty container or 0.
_DEFAULTDICT_FACTORIES = (None, dict, list, set, int)
# The module this file had before addp_mm.checkpoints: placeholders saved again by that version
# name its functions.
_OLD_MODULE = 'addp_mm.utils.checkpoint'


def _extra_allowed_globals() -> Dict[str, Any]:
    """Globals that load as themselves: torch's weights-only allow-list, mmengine Runner state and
    inert value types."""
    global _EXTRA_ALLOWED
    if _EXTRA_ALLOWED is None:
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
        for name in _BUILTIN_TYPES:
            allowed[f'builtins.{name}'] = getattr(builtins, name)
        allowed['collections.defaultdict'] = _safe_defaultdict
        allowed['typing.Any'] = typing.Any
        # Inert value types whose constructors touch nothing outside the object. Concrete paths
        # load as pure paths (no file system access, and a WindowsPath loads on Linux).
        allowed['pathlib.PurePath'] = pathlib.PurePath
        allowed['pathlib.PurePosixPath'] = allowed['pathlib.PosixPath'] = pathlib.PurePosixPath
        allowed['pathlib.PureWindowsPath'] = pathlib.PureWindowsPath
        allowed['pathlib.WindowsPath'] = pathlib.PureWindowsPath
        allowed['pathlib.Path'] = pathlib.PurePath
        for name in ('datetime', 'date', 'time', 'timedelta', 'timezone'):
            allowed[f'datetime.{name}'] = getattr(datetime, name)
        allowed['copyreg._reconstructor'] = _safe_reconstructor
        # placeholders saved again (e.g. a loaded release re-saved) stay inert placeholders
        for module in (__name__, _OLD_MODULE):
            allowed[f'{module}._rebuild_legacy'] = _rebuild_legacy
            allowed[f'{module}._legacy_class'] = _legacy_class
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
    if obj is HistoryBuffer and isinstance(name, str) and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only the statistics '
        'methods of mmengine HistoryBuffer are allowed.')


def _safe_defaultdict(default_factory=None, *args) -> collections.defaultdict:
    """``collections.defaultdict(factory)``, how a pickled defaultdict is rebuilt (its items follow
    as ``SETITEMS``), for the harmless factories only: a factory is called on every missing key,
    so any other callable would be code the file asks to run."""
    if args or not any(default_factory is f for f in _DEFAULTDICT_FACTORIES):
        name = getattr(default_factory, 'legacy_class', None) or getattr(
            default_factory, '__qualname__', repr(default_factory))
        raise pickle.UnpicklingError(
            f'the checkpoint asks for a collections.defaultdict whose factory is {name}; only '
            'dict, list, set and int are allowed (a factory runs on every missing key), so it is '
            'refused and nothing was called. ' + _call_refused_advice())
    return collections.defaultdict(default_factory)


def _numpy_dtype_class(module: str, name: str) -> Any:
    """numpy >= 1.25 pickles dtype classes as ``numpy.dtypes.<X>DType``; None for anything else."""
    if module != 'numpy.dtypes' or not name.endswith('DType'):
        return None
    obj = getattr(getattr(np, 'dtypes', None), name, None)
    if isinstance(obj, type) and issubclass(obj, np.dtype):
        return obj
    return None


class LegacyObject:
    """An inert stand-in for an object of a class that addp_mm does not rebuild from a checkpoint.

    Nothing of the original class is imported or called. The placeholder keeps what the pickle
    held, as plain data:

    Attributes:
        legacy_class (str): ``'module.QualName'`` of the original class (class attribute).
        legacy_args (tuple): Arguments the pickle gave to ``__new__`` or the constructor.
        legacy_state: The pickled state (``__dict__`` or ``__getstate__()``), if any.
        legacy_items (dict) / legacy_list (list): Items of dict/list subclasses, if any.
    """
    legacy_class = '?'

    def __init__(self, *args, **kwargs):  # only reached for LegacyObject itself
        object.__setattr__(self, 'legacy_args', args)

    def __setstate__(self, state):
        object.__setattr__(self, 'legacy_state', state)

    # dict / list subclasses are rebuilt with SETITEMS / APPENDS
    def __setitem__(self, key, value):
        self.__dict__.setdefault('legacy_items', {})[key] = value

    def append(self, value):
        self.__dict__.setdefault('legacy_list', []).append(value)

    def extend(self, values):
        self.__dict__.setdefault('legacy_list', []).extend(values)

    def __getattr__(self, name):
        if name.startswith('legacy_'):
            return None
        raise AttributeError(
            f'{name!r}: this is a placeholder for a {self.legacy_class} object from a checkpoint '
            'file; addp_mm does not rebuild objects of that class (loading them would run code '
            'from the file). Its pickled state is in `.legacy_state`.')

    def __repr__(self):
        return f'<LegacyObject {self.legacy_class}>'


class _LegacyClassMeta(type):
    """Metaclass of the per-name placeholder classes: calling one (a pickle ``REDUCE``) is a call
    the file asks for, refused; ``__new__`` (``NEWOBJ``, how protocol 2 pickles plain objects)
    gives an inert placeholder."""

    def __call__(cls, *args, **kwargs):
        raise pickle.UnpicklingError(_call_refused(cls.legacy_class))

    def __repr__(cls):
        return f'<placeholder class {cls.legacy_class}>'



class _LegacyBase(LegacyObject, metaclass=_LegacyClassMeta):

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        object.__setattr__(obj, 'legacy_args', args)
        if kwargs:
            object.__setattr__(obj, 'legacy_kwargs', kwargs)
        return obj

    def __reduce__(self):
        return (_rebuild_legacy, (self.legacy_class, dict(self.__dict__)))


_LEGACY_CLASSES: Dict[str, type] = {}


def _legacy_class(qualname: str) -> type:
    """The placeholder class standing for ``qualname`` (one per name, so ``isinstance`` and ``is``
    work between objects of one file)."""
    cls = _LEGACY_CLASSES.get(qualname)
    if cls is None:
        module, _, name = qualname.rpartition('.')
        cls = _LegacyClassMeta(name or qualname, (_LegacyBase, ), dict(legacy_class=qualname,
                                                                        __module__=__name__))
        _LEGACY_CLASSES[qualname] = cls
    return cls


# Pickle saves classes by module and name unless copyreg has a reducer for their metaclass: a
# placeholder class (a dict key in Lightning's 'callbacks', say) saved again stays a placeholder.
copyreg.pickle(_LegacyClassMeta, lambda cls: (_legacy_class, (cls.legacy_class, )))


def _rebuild_legacy(qualname: str, attrs: dict) -> LegacyObject:
    obj = _LegacyBase.__new__(_legacy_class(qualname))
    obj.__dict__.update(attrs)
    return obj


def _call_refused(qualname: str) -> str:
    return (f'the checkpoint asks to call {qualname}(...) while it is loaded; addp_mm never runs '
            'code from a checkpoint file, so it is refused and nothing was called. '
            + _call_refused_advice())


def _call_refused_advice() -> str:
    return ('Tensors, containers, numpy arrays and inert objects (Namespace, DictConfig, Lightning '
            'callbacks, ...) load; a file that needs a call does not. If you trust this file and '
            'the code it names, load it in that code base and re-save its state dict with '
            '`torch.save({"state_dict": sd}, path)`.')


def _safe_reconstructor(cls, base, state):
    """``copyreg._reconstructor``, how protocols 0 and 1 pickle plain objects: only for placeholder
    classes over ``object`` (nothing is called)."""
    if isinstance(cls, _LegacyClassMeta) and base is object and state is None:
        return _LegacyBase.__new__(cls)
    name = getattr(cls, 'legacy_class', None) or f'{getattr(cls, "__module__", "?")}.' \
        f'{getattr(cls, "__qualname__", cls)}'
    raise pickle.UnpicklingError(_call_refused(name))


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
            # Never import or resolve the real object: a placeholder class that can be
            # instantiated without a call (NEWOBJ) but refuses to be called (REDUCE).
            obj = _legacy_class(f'{module}.{name}')
        return obj


def _restricted_load(file, **kwargs) -> Any:
    """``pickle.load`` with the rules above.

    torch's legacy (non-zip) format calls ``pickle_module.load`` directly for its header records, so
    this must be restricted as well: plain ``pickle.load`` here would run any code in a crafted
    file.
    """
    return _RestrictedUnpickler(file, **kwargs).load()


class _RestrictedPickleModule:
    """A ``pickle_module`` for :func:`torch.load` that calls nothing outside the allow-list."""
    Unpickler = _RestrictedUnpickler
    load = staticmethod(_restricted_load)
    UnpicklingError = pickle.UnpicklingError
    __name__ = 'addp_mm_restricted_pickle'


def _is_safetensors(filename: str) -> bool:
    if filename.endswith(_SAFETENSORS_SUFFIXES):
        return True
    # A safetensors file starts with the 8-byte little-endian header length and a JSON object.
    with open(filename, 'rb') as f:
        head = f.read(9)
    return (len(head) == 9 and head[8:9] == b'{'
            and 0 < int.from_bytes(head[:8], 'little') < osp.getsize(filename))


def _load_safetensors(filename: str, map_location) -> Dict[str, torch.Tensor]:
    sd = load_safetensors_file(filename, device='cpu')
    if isinstance(map_location, (str, torch.device)) and str(map_location) != 'cpu':
        sd = {k: v.to(map_location) for k, v in sd.items()}
    return sd


def load_checkpoint_file(filename: Union[str, os.PathLike],
                         map_location: Union[str, Callable, torch.device, None] = 'cpu') -> Any:
    """Load a checkpoint file without running any code from it.

    Plain state dicts, official ADDP/MAGE/VQGAN files, MAE-family ``save_model`` files,
    PyTorch-Lightning checkpoints, full mmengine Runner checkpoints and ``.safetensors`` files load.
    Objects of classes outside the allow-list come back as :class:`LegacyObject` placeholders.

    Args:
        filename (str | PathLike): Local path.
        map_location: As in :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The unpickled object (usually a dict); a state dict for ``.safetensors``.

    Raises:
        MissingPathError: With the path, when the file does not exist (a
            ``FileNotFoundError``).
        ConfigError: When the file is not a PyTorch checkpoint at all (text, empty, ...; a
            ``ValueError``).
        pickle.UnpicklingError: When the file would call code while loading.
    """
    filename = os.fspath(filename)
    if not osp.isfile(filename):
        raise MissingPathError(f'checkpoint file not found: {filename!r}. Check the path (this '
                               'package never downloads weights; see configs/addp/README.md for '
                               'how to obtain and convert them).')
    if _is_safetensors(filename):
        return _load_safetensors(filename, map_location)
    _check_torch_file(filename)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # A Runner checkpoint or a release file with other objects: retry with the rules above.
        # Only pickle-level refusals get here; TorchScript archives, corrupt files etc. raise
        # other errors.
        if os.getenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '0').lower() in ('1', 'y', 'yes', 'true'):
            raise  # the user asked torch for weights-only loading everywhere
    return torch.load(filename, map_location=map_location, weights_only=False,
                      pickle_module=_RestrictedPickleModule)


def _check_torch_file(filename: str) -> None:
    """Raise a clear error for a file that cannot be a ``torch.save`` output.

    ``torch.save`` writes a zip archive (``PK\\x03\\x04``, torch >= 1.6) or, in the legacy format,
    a pickle (first byte ``0x80``). Anything else (a text file, an image, an empty file) would fail
    deep inside the unpickler with an unrelated error (``IndexError: pop from empty list``).
    """
    with open(filename, 'rb') as f:
        head = f.read(4)
    if head[:4] == b'PK\x03\x04' or head[:1] == b'\x80':
        return
    what = 'an empty file' if not head else f'a file starting with {head!r}'
    raise ConfigError(f'{filename!r} is not a PyTorch checkpoint ({what}; torch.save writes a zip '
                      'archive or a pickle). Check the path: it should be a .pth/.ckpt file '
                      'written by torch.save (or a .safetensors file).')


def legacy_objects(obj: Any, path: str = '') -> List[Tuple[str, str]]:
    """``(where, class name)`` of every :class:`LegacyObject` in a loaded checkpoint, e.g.
    ``[("['args']", 'argparse.Namespace')]``. Placeholders inside placeholders are not listed."""
    found: List[Tuple[str, str]] = []
    if isinstance(obj, LegacyObject):
        found.append((path or '<file>', obj.legacy_class))
    elif isinstance(obj, type) and isinstance(obj, _LegacyClassMeta):
        found.append((path or '<file>', obj.legacy_class))
    elif isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return found  # a state dict: nothing to look at
        for k, v in obj.items():
            if isinstance(k, _LegacyClassMeta):
                found.append((f'{path}[key]', k.legacy_class))
            found.extend(legacy_objects(v, f'{path}[{k!r}]'))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found.extend(legacy_objects(v, f'{path}[{i}]'))
    return found


def load_from_local_safe(filename: str, map_location=None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (the ``''`` prefix).

    The name matters: mmengine logs ``loader.__name__[10:]`` ("Loads checkpoint by local_safe
    backend"), assuming the ``load_from_`` prefix of its own loaders.
    """
    return load_checkpoint_file(osp.expanduser(filename), map_location)
