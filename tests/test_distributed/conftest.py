"""Shared helpers of the fault-tolerance, distributed and mixed-precision tests."""
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

from ..conftest import write_smooth_images

ROOT = Path(__file__).resolve().parents[2]
TOY_CONFIG = (ROOT / 'configs' / 'addp'
              / 'addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')


def subprocess_env() -> Dict[str, str]:
    """The environment of a tool launched by a test: repo on the path, CPU only, one thread."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT)] + ([env['PYTHONPATH']]
                                                      if env.get('PYTHONPATH') else []))
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env['CUDA_VISIBLE_DEVICES'] = ''
    env['OMP_NUM_THREADS'] = '1'
    env['PYTHONWARNINGS'] = 'default'
    return env


def run_tool(args: Sequence[str], cwd, timeout: int = 300,
             extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a command to completion; returns the process (output in ``.stdout``, stderr merged)."""
    env = subprocess_env()
    env.update(extra_env or {})
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def read_records(work_dir, rank: int = 0) -> List[dict]:
    """Lines written by ``tests.test_distributed.helpers.RecordTrainingHook``."""
    path = Path(work_dir) / f'record_rank{rank}.jsonl'
    assert path.is_file(), f'no records in {work_dir}: {sorted(os.listdir(work_dir))}'
    return [json.loads(line) for line in path.read_text().splitlines()]


def toy_run_config(tmp_path, data_root, name: str, loader: str = '', dataset: str = '',
                   **fields: str) -> Path:
    """A config inheriting the toy ADDP pre-training config, reading images from ``data_root``.

    ``loader``: extra ``train_dataloader`` arguments as Python source (e.g. ``'batch_size=2'``);
    ``dataset``: extra ``train_dataloader.dataset`` arguments (e.g. ``'pipeline=[...]'``);
    ``fields``: further top-level fields, each value as Python source.
    """
    lines = [
        f'_base_ = [{str(TOY_CONFIG)!r}]',
        "custom_imports = dict(imports=['addp_mm', 'tests.test_distributed.helpers'], "
        'allow_failed_imports=False)',
    ]
    lines += [f'{key} = {value}' for key, value in fields.items()]
    extra = f', {dataset}' if dataset else ''
    lines.append(f'train_dataloader = dict(dataset=dict(data_root={str(data_root)!r}{extra}), '
                 f'{loader})')
    path = tmp_path / f'{name}.py'
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.fixture(scope='session')
def image_folder(tmp_path_factory) -> Path:
    """Twelve smooth random 72x72 PNGs (the toy config crops 64x64)."""
    root = tmp_path_factory.mktemp('fault_images')
    write_smooth_images(root, 12, 72)
    return root


@pytest.fixture
def restore_mmengine_globals():
    """Runners built in the test process leave mmengine's global state as it was."""
    from .helpers import mmengine_globals_restored
    with mmengine_globals_restored():
        yield


__all__ = ['ROOT', 'TOY_CONFIG', 'subprocess_env', 'run_tool', 'free_port', 'read_records',
           'toy_run_config']
