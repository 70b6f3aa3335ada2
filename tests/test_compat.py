"""addp_mm/compat.py: each change addp_mm makes to other packages is needed and works, and
``import addp_mm`` changes no other third-party global.

For every patch one subprocess runs stock upstream (without addp_mm) and one runs it after
``import addp_mm``: the "upstream" tests pin the behaviour that makes the patch necessary with the
versions of requirements/constraints.txt (when one fails after an upgrade, the patch may go), the
"after import" tests fail without the patch.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import addp_mm
from addp_mm import compat

ROOT = Path(__file__).resolve().parents[1]

_PROBES = r'''
import json, logging, os, sys
attempts = []


def no_network(event, args):  # an audit hook: every name lookup and connection is refused
    if event in ('socket.getaddrinfo', 'socket.connect'):
        attempts.append(event)
        raise OSError('network disabled by the test')


sys.addaudithook(no_network)

if sys.argv[1] == 'patched':
    import addp_mm  # noqa: F401
out = dict(env=os.environ.get('NO_ALBUMENTATIONS_UPDATE'))
tmp = sys.argv[2]

# albumentations: its update check at import
import albumentations  # noqa: F401,E402
out['albumentations_attempts'] = len(attempts)

# a Runner checkpoint (HistoryBuffer, numpy scalar) through mmengine's local loader
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.logging.history_buffer import HistoryBuffer  # noqa: E402
from mmengine.runner.checkpoint import CheckpointLoader  # noqa: E402
path = os.path.join(tmp, 'iter_1.pth')
torch.save(dict(state_dict=dict(w=torch.ones(2)), meta=dict(seed=np.int64(3)),
                message_hub=dict(log_scalars=dict(loss=HistoryBuffer([1.0, 2.0], [1, 1])))), path)
try:
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    out['loaded'] = [type(ckpt['message_hub']['log_scalars']['loss']).__name__,
                     int(ckpt['meta']['seed']), ckpt['state_dict']['w'].tolist()]
except Exception as e:  # noqa: BLE001
    out['loaded'] = type(e).__name__

# a write that fails half-way over a complete file (a process killed while saving)
from mmengine.fileio import get_file_backend  # noqa: E402
target = os.path.join(tmp, 'latest.pth')
with open(target, 'wb') as f:
    f.write(b'complete checkpoint')
try:
    get_file_backend(target).put(None, target)  # None: the write itself fails
except TypeError:
    pass
with open(target, 'rb') as f:
    out['after_failed_write'] = f.read().decode()

# an optimizer over a model with frozen parameters
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import DefaultOptimWrapperConstructor  # noqa: E402
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
MMLogger.get_current_instance().addHandler(Keep())
model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
for p in model[0].parameters():
    p.requires_grad_(False)
DefaultOptimWrapperConstructor(dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=0.1)),
                               dict(bias_decay_mult=0.))(model)
out['frozen_logs'] = [r for r in records if 'requires_grad' in r]

# an empty and an undecodable image
from mmcv.transforms import LoadImageFromFile  # noqa: E402
empty, garbage = os.path.join(tmp, 'empty.jpg'), os.path.join(tmp, 'garbage.jpg')
open(empty, 'wb').close()
with open(garbage, 'wb') as f:
    f.write(b'not an image' * 20)
for key, kwargs, path in (('empty', {}, empty), ('garbage_ignored', dict(ignore_empty=True),
                                                   garbage)):
    try:
        result = LoadImageFromFile(**kwargs)(dict(img_path=path))
        out[key] = ['returned', repr(result)]
    except Exception as e:  # noqa: BLE001
        out[key] = [type(e).__name__, str(e)]
print('RESULT ' + json.dumps(out))
'''


def _run(code: str, *args: str, env_overrides=None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    env['NO_ALBUMENTATIONS_UPDATE'] = '0'  # as if inherited from a shell
    env.update(env_overrides or {})
    proc = subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith('RESULT ')][-1]
    return json.loads(line[len('RESULT '):])


@pytest.fixture(scope='module')
def upstream(tmp_path_factory):
    return _run(_PROBES, 'upstream', str(tmp_path_factory.mktemp('upstream')))


@pytest.fixture(scope='module')
def patched(tmp_path_factory):
    return _run(_PROBES, 'patched', str(tmp_path_factory.mktemp('patched')))


# ----------------------------------------------------------------------------- albumentations
def test_albumentations_upstream_asks_pypi_at_import(upstream):
    assert upstream['env'] == '0'
    assert upstream['albumentations_attempts'] > 0


def test_albumentations_stays_offline_after_import(patched):
    assert patched['env'] == '1'
    assert patched['albumentations_attempts'] == 0


# ----------------------------------------------------------------------------- checkpoints
def test_runner_checkpoints_fail_upstream(upstream):
    assert upstream['loaded'] == 'UnpicklingError'  # torch's weights-only default


def test_runner_checkpoints_load_after_import(patched):
    assert patched['loaded'] == ['HistoryBuffer', 3, [1.0, 1.0]]


# ----------------------------------------------------------------------------- local writes
def test_local_writes_tear_upstream(upstream):
    assert upstream['after_failed_write'] == ''  # truncated before the write failed


def test_local_writes_are_atomic_after_import(patched):
    assert patched['after_failed_write'] == 'complete checkpoint'


# ----------------------------------------------------------------------------- frozen logs
def test_frozen_parameter_logs_one_per_parameter_upstream(upstream):
    assert upstream['frozen_logs'] == [
        '0.weight is skipped since its requires_grad=False',
        '0.bias is skipped since its requires_grad=False']


def test_frozen_parameter_logs_one_line_after_import(patched):
    assert patched['frozen_logs'] == [
        'optimizer: 2 frozen parameters (requires_grad=False) are not optimized: 0 (2)']


# ----------------------------------------------------------------------------- images
def test_unreadable_images_unnamed_upstream(upstream):
    kind, message = upstream['empty']
    assert kind == 'error' and 'empty.jpg' not in message  # cv2.error, without the path
    kind, message = upstream['garbage_ignored']
    assert kind == 'AssertionError' and 'failed to load image' in message  # not skipped


def test_unreadable_images_named_after_import(patched):
    kind, message = patched['empty']
    assert kind == 'UnreadableImageError'
    assert "empty.jpg' (an empty file), 0 bytes" in message
    assert 'set ignore_empty=True in LoadImageFromFile' in message
    assert patched['garbage_ignored'] == ['returned', 'None']  # skipped, as the hint says


# ----------------------------------------------------------------------------- nothing else
_GLOBALS = r'''
import importlib, json, logging, os, sys, warnings


def no_network(event, args):
    if event in ('socket.getaddrinfo', 'socket.connect'):
        raise OSError('network disabled by the test')


sys.addaudithook(no_network)
ROOTS = ('mmengine', 'mmcv', 'mmpretrain', 'torch', 'numpy', 'albumentations', 'cv2')


def loaded():
    return [n for n in sys.modules if n.split('.')[0] in ROOTS]


if sys.argv[1] == 'list':
    import addp_mm  # noqa: F401
    print('RESULT ' + json.dumps(dict(names=loaded())))
    sys.exit()
names = json.loads(sys.argv[2])
for name in names:  # every third-party module addp_mm loads, loaded first without it
    importlib.import_module(name)


def entries(prefix, d, out):
    for k, v in list(d.items()):
        out[f'{prefix}.{k}'] = id(v)
        if isinstance(v, dict) and not (isinstance(k, str) and k.startswith('__')):
            for dk, dv in list(v.items()):
                out[f'{prefix}.{k}[{dk!r}]'] = id(dv)


def snapshot():
    out = {}
    for name, mod in list(sys.modules.items()):
        d = getattr(mod, '__dict__', None)
        if name.split('.')[0] not in ROOTS or not isinstance(d, dict):
            continue
        entries(name, d, out)
        for k, v in list(d.items()):
            if isinstance(v, type) and getattr(v, '__module__', None) == name:
                entries(f'{name}.{k}', dict(vars(v)), out)
    out.update({f'os.environ[{k!r}]': v for k, v in os.environ.items()})
    out['warnings.filters'] = repr(warnings.filters)
    root = logging.getLogger()
    out['logging.root'] = repr((root.level, root.handlers, root.filters))
    return out


before = snapshot()
import addp_mm  # noqa: E402,F401
after = snapshot()
changed = sorted(k for k in set(before) | set(after) if before.get(k, '-') != after.get(k, '-'))
print('RESULT ' + json.dumps(dict(changed=changed,
                                  new=[n for n in loaded() if n not in set(names)])))
'''

#: What ``import addp_mm`` changes in third-party packages: the patches of addp_mm/compat.py
#: (mmengine's backend tables are re-exported by three modules), nothing else.
EXPECTED_CHANGES = [
    "mmcv.transforms.loading.LoadImageFromFile.transform",
    "mmengine.fileio.backends.backends['local']",
    "mmengine.fileio.backends.prefix_to_backends['']",
    "mmengine.fileio.backends.registry_utils.backends['local']",
    "mmengine.fileio.backends.registry_utils.prefix_to_backends['']",
    "mmengine.fileio.io.backends['local']",
    "mmengine.fileio.io.prefix_to_backends['']",
    "mmengine.optim.optimizer.default_constructor.DefaultOptimWrapperConstructor.__call__",
    "mmengine.optim.optimizer.default_constructor._addp_mm_frozen_summary",
    "mmengine.optim.optimizer.default_constructor.print_log",
    "mmengine.runner.checkpoint.CheckpointLoader._schemes",
    "mmengine.runner.checkpoint.CheckpointLoader._schemes['']",
    "os.environ['NO_ALBUMENTATIONS_UPDATE']",
]


def test_import_changes_no_other_third_party_global():
    """Module globals, class attributes and the dicts among them of mmengine, mmcv, mmpretrain,
    torch, numpy, albumentations and cv2, the environment, warning filters and the root logger:
    compared by identity before and after ``import addp_mm`` (the third-party modules it loads
    are loaded first)."""
    names = _run(_GLOBALS, 'list')['names']
    assert len(names) > 100
    result = _run(_GLOBALS, 'compare', json.dumps(names))
    assert result['new'] == []
    assert result['changed'] == EXPECTED_CHANGES


def test_install_is_idempotent():
    from mmcv.transforms import LoadImageFromFile
    from mmengine.optim.optimizer import default_constructor
    from mmengine.runner.checkpoint import CheckpointLoader
    patched = (LoadImageFromFile.transform, default_constructor.print_log,
               default_constructor.DefaultOptimWrapperConstructor.__call__,
               CheckpointLoader._schemes[''])
    compat.install()
    assert (LoadImageFromFile.transform, default_constructor.print_log,
            default_constructor.DefaultOptimWrapperConstructor.__call__,
            CheckpointLoader._schemes['']) == patched
    assert [p.__name__ for p in compat.PATCHES] == [
        'keep_albumentations_offline', 'register_mmengine_loader',
        'register_atomic_local_backend', 'summarize_frozen_parameter_logs',
        'name_unreadable_images']
    assert addp_mm.compat is compat
