"""Every check of a resume, in one place: which checkpoint to resume from, and whether it may be.

* **Which checkpoint.** mmengine resumes from the path in ``<work_dir>/last_checkpoint`` and
  starts from scratch when that file does not exist. ``CheckpointHook`` writes the pointer with a
  plain ``open(path, 'w')`` (not atomically, unlike the checkpoints themselves: see
  :mod:`addp_mm.engine.fileio`), so a crash can leave it empty or naming a file cut short.
  :func:`find_resumable_checkpoint` checks the file the pointer names and falls back to the newest
  complete ``iter_N.pth``/``epoch_N.pth``; :func:`resolve_auto_resume` (``tools/train.py``) and
  :class:`~addp_mm.engine.hooks.FaultToleranceHook` use it before the Runner resumes.
  :func:`nothing_to_resume` says when an auto-resume has no checkpoint at all (a fresh start).
* **Whether it may be.** Auto-resume continues whatever run is in the work directory, even one
  made with other data or another model. :func:`check_resume_settings` compares the data and model
  settings stored in the checkpoint (``meta['cfg']``) with the current ones
  (:data:`RESUME_FIELDS`) and refuses a resume that would continue another run, leading with
  ``model.type`` when the checkpoint is of another model, and suggesting only commands that would
  work.

:class:`~addp_mm.engine.hooks.CheckResumeHook` runs the last two in a Runner.
"""
import os
import os.path as osp
import re
import warnings
import zipfile
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger

from ..checkpoints import guess_layout, load_checkpoint_file
from ..utils.errors import RefusedError
from ..utils.provenance import differences
from .weight_checks import missing_load_from_weights

# mmengine's CheckpointHook default ``filename_tmpl`` ('epoch_{}.pth' / 'iter_{}.pth').
_CKPT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
_ZIP_MAGIC = b'PK\x03\x04'

#: Config fields a resumed run must share with the run that wrote the checkpoint: what is trained
#: (model, preprocessing) and on what (the training data and batch). Everything else (train_cfg,
#: e.g. a larger max_iters / max_epochs to extend a run, optimizer, schedules, hooks, workers)
#: may change.
RESUME_FIELDS = ('model', 'data_preprocessor', 'train_dataloader.dataset',
                 'train_dataloader.batch_size')


# ------------------------------------------------------------------------- which checkpoint


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


def repair_auto_resume(resume: bool, load_from: Optional[str],
                       work_dir: str) -> Tuple[bool, Optional[str], Optional[str]]:
    """``(resume, load_from, note)`` of a run after checking the checkpoint an auto-resume
    would take (:func:`find_resumable_checkpoint`).

    Args:
        resume (bool): The run's ``resume``.
        load_from (str, optional): The run's ``load_from``.
        work_dir (str): Its work directory.

    Returns:
        tuple: Unchanged, with ``note=None``, unless this is an auto-resume (``resume`` and no
        ``load_from``) whose ``last_checkpoint`` is empty or names a missing or cut-short file:
        then ``load_from`` is the newest complete checkpoint, or ``resume`` is False when there
        is none, and ``note`` says what was repaired.
    """
    if not resume or load_from is not None:
        return resume, load_from, None
    path, note = find_resumable_checkpoint(work_dir)
    if note is None:
        return resume, load_from, None
    return path is not None, path, note


def resolve_auto_resume(cfg) -> Optional[str]:
    """Make auto-resume skip a missing or incomplete newest checkpoint.

    With ``resume=True`` and no ``load_from``, mmengine resumes from the path in
    ``<work_dir>/last_checkpoint``. If that file is empty or names a checkpoint that is missing or
    cut short (a crash while saving), ``load_from`` is set to the newest complete checkpoint in the
    work directory, or ``resume`` is turned off when there is none
    (:func:`repair_auto_resume`). Call it after ``work_dir`` is final.

    Args:
        cfg (Config): The merged config (edited in place).

    Returns:
        str | None: A note saying what was repaired (also issued as a warning), or None. (With no
        checkpoint at all, :class:`~addp_mm.engine.hooks.CheckResumeHook` turns resume off at run
        time, so mmengine does not log "Auto resumed from the latest checkpoint None".)
    """
    resume, load_from, note = repair_auto_resume(cfg.get('resume', False),
                                                 cfg.get('load_from', None), cfg.work_dir)
    if note is not None:
        warnings.warn(note)
        cfg.resume, cfg.load_from = resume, load_from
    return note


def nothing_to_resume(resume: bool, load_from: Optional[str], work_dir: str) -> bool:
    """Whether a run asks for an auto-resume (``resume=True``, no ``load_from``) and its work
    directory has no ``last_checkpoint`` pointer: then it is a fresh start, which mmengine would
    log as "Auto resumed from the latest checkpoint None"."""
    return bool(resume) and load_from is None and not osp.isfile(
        osp.join(work_dir, 'last_checkpoint'))


# ---------------------------------------------------------------------- whether it may be


def _field(cfg, dotted: str):
    node = cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg
    for part in dotted.split('.'):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def stored_config(checkpoint) -> Optional[Config]:
    """The config a Runner checkpoint stores in ``meta['cfg']``, or None when it stores none (or
    one this version cannot parse)."""
    text = (checkpoint.get('meta') or {}).get('cfg') if isinstance(checkpoint, dict) else None
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return Config.fromstring(text, '.py')
    except Exception:  # noqa: BLE001  (a config this version cannot parse: nothing to compare)
        return None


def resume_differences(cfg_now, checkpoint: dict) -> Optional[list]:
    """The data/model settings (:data:`RESUME_FIELDS`) that differ between the config stored in
    a Runner checkpoint (``meta['cfg']``) and ``cfg_now``.

    Returns:
        list[str] | None: ``field: old -> new`` lines; None when the checkpoint stores no
        readable config (nothing can be compared).
    """
    old = stored_config(checkpoint)
    if old is None:
        return None
    lines = []
    for field in RESUME_FIELDS:
        lines.extend(differences({field: _field(old, field)}, {field: _field(cfg_now, field)}))
    return lines


def check_resume_settings(cfg_now, checkpoint: dict, path: Optional[str],
                          work_dir: Optional[str], model: Optional[nn.Module] = None,
                          allowed_missing: Sequence[str] = ()) -> None:
    """Raise if the checkpoint a run resumes from was made with other data or model settings.

    Args:
        cfg_now (Config): The config of this run.
        checkpoint (dict): The loaded checkpoint.
        path (str, optional): Its path (None for an auto-resume).
        work_dir (str, optional): The run's work directory.
        model (nn.Module, optional): This run's model: with it, the refusal suggests
            ``load_from=`` only when that would load every trainable backbone weight.
        allowed_missing (Sequence[str]): Regexes of weights ``load_from`` may leave out.

    Raises:
        RefusedError: Leading with ``model.type`` when the checkpoint is of another model, then
            the differing settings and the commands that start this run instead.
    """
    logger = MMLogger.get_current_instance()
    diffs = resume_differences(cfg_now, checkpoint)
    where = path or (f'the latest checkpoint of {work_dir}' if work_dir else 'the checkpoint')
    if diffs is None:
        logger.warning(f'resume: {where} stores no readable config; its data and model settings '
                       'could not be compared with this run.')
        return
    if not diffs:
        logger.info(f'resume: the data and model settings of {where} match this run.')
        return
    old_type = _field(stored_config(checkpoint), 'model.type')
    new_type = _field(cfg_now, 'model.type')
    shown = diffs[:12] + ([f'... and {len(diffs) - 12} more'] if len(diffs) > 12 else [])
    if old_type != new_type:
        head = (f'cannot resume from {where}: it is a checkpoint of model.type={old_type!r}, and '
                f'this run trains model.type={new_type!r}; resuming would load another model. '
                f'{len(diffs)} data and model settings differ in all:')
    else:
        head = (f'cannot resume from {where}: it was trained with other data or model settings '
                'than this run, so resuming would continue (or, if it had finished, silently '
                'end) the old run:')
    ways = [f'To start fresh, give this run its own work directory (--work-dir NEW_DIR), or move '
            f'{work_dir or "the work directory"} away, or pass --cfg-options resume=False '
            '(without --resume) to train from scratch there.']
    if old_type == new_type and model is not None and path and not missing_load_from_weights(
            model, checkpoint, allowed_missing):
        ways.append('To start from the old weights with the new settings, pass --cfg-options '
                    f'resume=False load_from={path}.')
    elif old_type != new_type:
        layout = guess_layout(checkpoint)
        if layout.kind != 'unknown':
            ways.append(f'The file looks like {layout.name}: {layout.advice}')
    ways.append('(Changing train_cfg, e.g. a larger max_iters / max_epochs to extend the run, '
                'is allowed.)')
    raise RefusedError(head + '\n  ' + '\n  '.join(shown) + '\n' + ' '.join(ways))
