"""Crash-safe checkpoint files: atomic local writes and finding a checkpoint that is safe to resume.

mmengine 0.10.7 writes a checkpoint with ``LocalBackend.put`` (``open(path, 'wb')`` + one
``write``), so a process killed while saving leaves a truncated ``iter_N.pth``. ``CheckpointHook``
then writes the ``last_checkpoint`` pointer with a plain ``open(path, 'w')``, which truncates the
file first; a kill or power loss at that moment leaves it empty. Auto-resume
(``resume=True``, ``load_from=None``) trusts the pointer and fails on either.

Two remedies, both activated by ``import addp_mm``:

* :class:`AtomicLocalBackend` replaces mmengine's local file backend (same name ``'local'``, same
  empty URI prefix): every ``put``/``put_text`` writes a temporary file in the target directory,
  fsyncs it, ``os.replace``-s it over the target and fsyncs the directory. A reader sees the old
  complete file or the new complete file, never a torn one. That covers every ``.pth`` the Runner
  saves (``Runner.save_checkpoint`` -> ``mmengine.runner.save_checkpoint`` -> ``backend.put``).
* The pointer is written by ``CheckpointHook`` itself, outside any backend, so it cannot be made
  atomic without patching mmengine. Instead :func:`find_resumable_checkpoint` makes the reading side
  robust: it checks that the checkpoint the pointer names is complete and otherwise falls back to
  the newest complete ``iter_N.pth``/``epoch_N.pth`` beside it. ``tools/train.py`` and
  :class:`~addp_mm.engine.hooks.FaultToleranceHook` call it before the Runner resumes. Pointers
  that addp_mm writes itself go through :func:`atomic_write`.
"""
import os
import os.path as osp
import re
import socket
import threading
import warnings
import zipfile
from contextlib import suppress
from typing import List, Optional, Tuple, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mm_io

from ..checkpoints.loading import load_checkpoint_file

# mmengine's CheckpointHook default ``filename_tmpl`` ('epoch_{}.pth' / 'iter_{}.pth').
_CKPT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
_ZIP_MAGIC = b'PK\x03\x04'


def _fsync_dir(path: str) -> None:
    """Persist a rename. Some file systems (e.g. some network mounts) refuse to open directories."""
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(filepath: Union[str, os.PathLike], data: Union[bytes, str],
                 encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``filepath`` so that readers never see a partial file.

    The data goes to a temporary file in the same directory (so the final rename stays on one file
    system), is fsynced, and replaces the target with ``os.replace``; the directory is fsynced so
    the rename survives a power loss. On any error the temporary file is removed and the target is
    left as it was.

    Args:
        filepath (str | PathLike): Destination; missing parent directories are created.
        data (bytes | str): Content; ``str`` is encoded with ``encoding``.
        encoding (str): Encoding for ``str`` data. Defaults to ``'utf-8'``.
    """
    filepath = osp.abspath(os.fspath(filepath))
    if isinstance(data, str):
        data = data.encode(encoding)
    directory = osp.dirname(filepath)
    os.makedirs(directory, exist_ok=True)
    # Unique per host, process and thread: ranks on several nodes may share the directory.
    tmp = osp.join(directory, f'.{osp.basename(filepath)}.tmp-{socket.gethostname()}-'
                   f'{os.getpid()}-{threading.get_ident()}')
    try:
        # 0o666 & ~umask, like open(); tempfile.mkstemp would create the checkpoint as 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose writes are atomic (see :func:`atomic_write`).

    Reading, listing and removing are inherited unchanged.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Write bytes to ``filepath`` atomically, creating parent directories."""
        atomic_write(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically, creating parent directories."""
        atomic_write(filepath, obj, encoding=encoding)


def register_atomic_local_backend() -> None:
    """Make :class:`AtomicLocalBackend` mmengine's backend for local paths (idempotent).

    ``get_file_backend(path)`` resolves a path without a URI scheme through the ``''`` prefix and
    ``backend_args=dict(backend='local')`` through the name; both are replaced. Cached singleton
    instances of the old class (``get_file_backend(..., enable_singleton=True)``) are dropped so
    they are rebuilt with the new one.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, backend in list(mm_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mm_io.backend_instances[key]


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a checkpoint file that was written to the end.

    ``torch.save`` writes a zip archive whose central directory comes last, so a file cut short by
    a crash has a zip header but no readable directory. Only the structure is checked (cheap on
    multi-GB files); a file that is not a zip archive at all (torch's legacy format) is loaded
    through addp_mm's safe loader instead.

    Args:
        path (str): Local file path.

    Returns:
        bool: True if the file exists and is a complete checkpoint archive.
    """
    if not osp.isfile(path) or osp.getsize(path) == 0:
        return False
    with open(path, 'rb') as f:
        magic = f.read(4)
    if magic == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as zf:
                return any(name == 'data.pkl' or name.endswith('/data.pkl')
                           for name in zf.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return False
    try:
        load_checkpoint_file(path)
    except Exception:  # any failure to load means it cannot be resumed from
        return False
    return True


def _checkpoints_in(directory: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` files in ``directory``, newest first (mtime, then N)."""
    if not osp.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _CKPT_NAME.match(name)
        path = osp.join(directory, name)
        if match and osp.isfile(path):
            found.append((osp.getmtime(path), int(match.group(1)), path))
    return [path for _, _, path in sorted(found, reverse=True)]


def find_resumable_checkpoint(work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint auto-resume should load from ``work_dir``, and why it differs from mmengine's.

    mmengine resumes from the path in ``<work_dir>/last_checkpoint`` and starts from scratch when
    that file does not exist. This keeps both rules but checks the named checkpoint: if the pointer
    is empty, names a missing file or a file cut short by a crash, the newest complete
    ``iter_N.pth``/``epoch_N.pth`` in the pointer's directory or ``work_dir`` is used instead.

    Args:
        work_dir (str): The run's work directory.

    Returns:
        tuple: ``(path, note)``. ``note`` is None when mmengine's own choice is fine (``path`` is
        then the pointer's target, or None without a pointer). Otherwise ``note`` explains the
        repair and ``path`` is the checkpoint to resume from, or None if no complete checkpoint
        exists (training must start from scratch).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None, None
    with open(pointer) as f:
        named = f.read().strip()
    if named and is_complete_checkpoint(named):
        return named, None
    problem = ('is empty' if not named else
               f'names {named!r}, which does not exist' if not osp.exists(named) else
               f'names {named!r}, which is incomplete (a crash while saving?)')
    directories = [work_dir]
    if named and osp.dirname(named) and osp.abspath(osp.dirname(named)) != osp.abspath(work_dir):
        directories.insert(0, osp.dirname(named))
    for directory in directories:
        for path in _checkpoints_in(directory):
            if path != named and is_complete_checkpoint(path):
                return path, f'{pointer} {problem}; resuming from {path}, the newest complete one.'
    return None, (f'{pointer} {problem} and no complete checkpoint was found in '
                  f'{" or ".join(directories)}; training starts from scratch.')


def resolve_auto_resume(cfg) -> Optional[str]:
    """Make auto-resume skip a missing or incomplete newest checkpoint.

    With ``resume=True`` and no ``load_from``, mmengine resumes from the path in
    ``<work_dir>/last_checkpoint``. If that file is empty or names a checkpoint that is missing or
    cut short (a crash while saving), ``load_from`` is set to the newest complete checkpoint in the
    work directory, or ``resume`` is turned off when there is none
    (:func:`find_resumable_checkpoint`). Call it after ``work_dir`` is final.

    Args:
        cfg (Config): The merged config (edited in place).

    Returns:
        str | None: A note saying what was repaired (also issued as a warning), or None. (With no
        checkpoint at all, CheckPretrainedKeysHook turns resume off at run time, so mmengine does
        not log "Auto resumed from the latest checkpoint None".)
    """
    if not cfg.get('resume', False) or cfg.get('load_from', None) is not None:
        return None
    path, note = find_resumable_checkpoint(cfg.work_dir)
    if note is None:
        return None
    warnings.warn(note)
    if path is None:
        cfg.resume = False
    else:
        cfg.load_from = path
    return note
