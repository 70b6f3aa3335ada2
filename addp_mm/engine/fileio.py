"""Crash-safe checkpoint files: every local write of mmengine is atomic.

mmengine 0.10.7 writes a checkpoint with ``LocalBackend.put`` (``open(path, 'wb')`` + one
``write``), so a process killed while saving leaves a truncated ``iter_N.pth``, and the
``last_checkpoint`` pointer can name it. Two remedies, both activated by ``import addp_mm`` (the
first through :func:`addp_mm.compat.register_atomic_local_backend`):

* :class:`AtomicLocalBackend` replaces mmengine's local file backend (same name ``'local'``, same
  empty URI prefix): every ``put``/``put_text`` writes a temporary file in the target directory,
  fsyncs it, ``os.replace``-s it over the target and fsyncs the directory. A reader sees the old
  complete file or the new complete file, never a torn one. That covers every ``.pth`` the Runner
  saves (``Runner.save_checkpoint`` -> ``mmengine.runner.save_checkpoint`` -> ``backend.put``).
* The pointer is written by ``CheckpointHook`` itself, outside any backend, so it cannot be made
  atomic without patching mmengine. Instead
  :func:`addp_mm.engine.resume_checks.find_resumable_checkpoint` makes the reading side
  robust: it checks that the checkpoint the pointer names is complete and otherwise falls back to
  the newest complete ``iter_N.pth``/``epoch_N.pth`` beside it. ``tools/train.py`` and
  :class:`~addp_mm.engine.hooks.FaultToleranceHook` call it before the Runner resumes. Pointers
  that addp_mm writes itself go through :func:`atomic_write`.
"""
import os
import os.path as osp
import socket
import threading
from contextlib import suppress
from typing import Union

from mmengine.fileio import LocalBackend


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
