"""The paths a run needs, checked before anything is built: each missing, empty or unwritable one
stops the tool with one sentence that names it and the fix (:mod:`addp_mm.utils.errors`)."""
import os
import os.path as osp
import tempfile
from typing import Iterable, Optional, Sequence

from mmengine.config import Config
from PIL import Image

from addp_mm.utils.errors import ConfigError, MissingPathError, UnwritableError

#: Image extensions of an image-folder dataset that names none (mmpretrain's CustomDataset).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')


def is_local(path: str) -> bool:
    """Whether ``path`` names a local file (not ``s3://``, ``http://``, ...)."""
    return '://' not in str(path)


def load_config(path: str) -> Config:
    """``Config.fromfile(path)`` (runs the config's ``custom_imports``), after checking the file.

    Raises:
        MissingPathError: The config file does not exist.
    """
    if not osp.isfile(path):
        kind = 'is a folder, not a config file' if osp.isdir(path) else 'does not exist'
        raise MissingPathError(f'the config {path!r} {kind}; give the path of a config file '
                               '(e.g. one under configs/).')
    return Config.fromfile(path)


def check_writable_dir(path: str, option: str) -> None:
    """Create the folder ``path`` (with its parents) and check that a file can be written in it.

    Args:
        path (str): The folder.
        option (str): How the user named it (``--work-dir``, ``--out``), for the message.

    Raises:
        UnwritableError: The folder cannot be created or written.
    """
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.addp_mm_write_check_', dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        why = (e.strerror or str(e)).lower()
        raise UnwritableError(f'cannot write to {option} {path!r} ({why}); choose a folder you '
                              f'can write to with {option}.') from e


def check_file(path: str, what: str, fix: str) -> None:
    """Check that ``path`` is an existing, non-empty file.

    Args:
        path (str): The file (remote paths are not checked).
        what (str): What it is, for the message (``'the checkpoint'``).
        fix (str): How to set another one (``'give the path of a .pth file'``).

    Raises:
        MissingPathError: It does not exist, is a folder or is empty.
    """
    if not is_local(path):
        return
    if osp.isdir(path):
        problem = 'is a folder, not a file'
    elif not osp.exists(path):
        problem = 'does not exist'
    elif osp.getsize(path) == 0:
        problem = 'is an empty file (0 bytes)'
    else:
        return
    raise MissingPathError(f'{what} {path!r} {problem}; {fix}.')


def check_image(path: str, option: str) -> None:
    """Check that ``path`` is an image file PIL can decode.

    Raises:
        MissingPathError: It does not exist, is a folder or is empty.
        ConfigError: It cannot be decoded.
    """
    check_file(path, option, 'give the path of an image file')
    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ConfigError(f'{option} {path!r} cannot be read as an image ({e}); give a PNG or '
                          'JPEG file.') from e


def _has_file(root: str, extensions: Optional[Sequence[str]]) -> bool:
    for folder, _, files in os.walk(root, followlinks=True):
        for name in files:
            if extensions is None or name.lower().endswith(tuple(extensions)):
                return True
    return False


def check_data_roots(cfg, fields: Iterable[str]) -> None:
    """Check the ``data_root`` of the dataset of each dataloader in ``fields``.

    A ``data_root`` must exist; a dataset without an ``ann_file`` (an image folder, searched
    recursively) must hold at least one image.

    Raises:
        MissingPathError: Naming the field and the ``--cfg-options`` that sets it.
    """
    for field in fields:
        dataset = (cfg.get(field, None) or {}).get('dataset', None)
        if not isinstance(dataset, dict):
            continue
        root = dataset.get('data_root', None)
        if not isinstance(root, str) or not root or not is_local(root):
            continue
        key = f'{field}.dataset.data_root'
        fix = f'set --cfg-options {key}=PATH to your data'
        if not osp.isdir(root):
            problem = 'is a file, not a folder' if osp.exists(root) else 'does not exist'
            raise MissingPathError(f'{key} {root!r} {problem}; {fix}.')
        if not dataset.get('ann_file', None):
            extensions = dataset.get('extensions', None) or IMAGE_EXTENSIONS
            if not _has_file(root, [e.lower() for e in extensions]):
                raise MissingPathError(
                    f'{key} {root!r} holds no image ({", ".join(extensions)}, searched in '
                    f'subfolders too); {fix} (a folder of images).')


def _checkpoint_fields(node, prefix: str):
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{prefix}.{key}'
            if key in ('checkpoint', 'pretrained') and isinstance(value, str):
                yield path, value
            else:
                yield from _checkpoint_fields(value, path)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _checkpoint_fields(value, f'{prefix}.{i}')


def check_model_checkpoints(cfg) -> None:
    """Check the local files named by ``checkpoint`` / ``pretrained`` fields inside ``model``
    (frozen modules, ``init_cfg=dict(type='Pretrained', ...)``), which training loads when it
    initialises the weights.

    Raises:
        MissingPathError: Naming the field and the ``--cfg-options`` that sets it.
    """
    for key, path in _checkpoint_fields(cfg.get('model', None), 'model'):
        check_file(path, key, f'set --cfg-options {key}=PATH to an existing checkpoint')
