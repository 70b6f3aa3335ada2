"""Rough edges that used to fail late, obscurely or not at all (issue 12): --cfg-options checks,
the generation overrides of tools/test.py, imports without network, a text file as checkpoint, an
empty image in a pipeline. (The converter's directory output and wall time are tested in
tests/test_tools/test_model_converters/test_convert_addp_targets.py.)"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
# addp_tools: the tool-only package beside tools/train.py and tools/test.py
sys.path.insert(0, str(ROOT / 'tools'))
from addp_tools.options import check_cfg_options  # noqa: E402

from addp_mm.utils.errors import ConfigError  # noqa: E402

from .tool_runs import load_tool  # noqa: E402
TOY = str(ROOT / 'configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')
TOY_GEN = str(ROOT / 'configs/addp/generation'
              / 'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py')


def _tool(name):
    return load_tool(f'tools/{name}.py')


def test_cfg_options_of_the_wrong_type_stop_with_the_key_named():
    cfg = Config.fromfile(TOY)
    with pytest.raises(ValueError, match=r"optim_wrapper\.optimizer\.lr='abc': expected a number"):
        check_cfg_options(cfg, {'optim_wrapper.optimizer.lr': 'abc'})
    with pytest.raises(ValueError, match='expected True or False'):
        check_cfg_options(cfg, {'resume': 'no'})
    check_cfg_options(cfg, {'optim_wrapper.optimizer.lr': 1e-4, 'train_cfg.max_iters': 10,
                            'resume': False, 'randomness.seed': None})  # no error
    # through the tool, before anything is built
    train = _tool('train')
    with pytest.raises(ValueError, match='lr'):
        train.merge_args(Config.fromfile(TOY), train.parse_args(
            [TOY, '--cfg-options', 'optim_wrapper.optimizer.lr=abc']))


def test_unknown_top_level_cfg_option_is_refused_with_a_suggestion():
    """It would have no effect: refused (it used to be a warning above a full run)."""
    cfg = Config.fromfile(TOY)
    with pytest.raises(ConfigError, match="'resum' is not a key.*did you mean 'resume'"):
        check_cfg_options(cfg, {'resum': False})
    # the name of a field inside one mmengine reads: its full path
    with pytest.raises(ConfigError, match="did you mean 'optim_wrapper.optimizer.lr'"):
        check_cfg_options(cfg, {'lr': 0.1})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_cfg_options(cfg, {'work_dir': 'x', 'load_from': 'y', 'model.backbone.img_size': 64})


def test_test_tool_inception_override_reaches_the_metrics(tmp_path):
    test = _tool('test')
    args = test.parse_args([TOY_GEN, 'ckpt.pth', '--cfg-options',
                            f'inception_path={tmp_path}/inc.pt', f'real_data_root={tmp_path}/r'])
    cfg = test.merge_args(Config.fromfile(TOY_GEN), args)
    assert [m['inception_path'] for m in cfg.test_evaluator.metrics] == [f'{tmp_path}/inc.pt'] * 2
    assert cfg.test_dataloader.dataset.data_root == f'{tmp_path}/r'
    # and the message of a missing Inception file gives exactly that override
    from addp_mm.generation.evaluation import INCEPTION_HELP
    assert '--cfg-options inception_path=' in INCEPTION_HELP
    assert 'test_evaluator.metrics.0.inception_path=' in INCEPTION_HELP


_NO_NETWORK = r'''
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:1])
    raise OSError('network disabled by the test')
class NoSocket(socket.socket):
    def connect(self, *a, **k): refuse(*a)
    def connect_ex(self, *a, **k): refuse(*a)
socket.socket = NoSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse
from mmengine.config import Config
for path in sys.argv[1:]:
    Config.fromfile(path)  # runs the config's custom_imports, as the tools do
import addp_mm.generation, addp_mm.det  # noqa
print('ATTEMPTS', attempts)
'''


def test_imports_make_no_network_request(tmp_path):
    """The segmentation / generation stacks import albumentations, which asks PyPI for a new
    version on import unless NO_ALBUMENTATIONS_UPDATE is 1 (the patched socket records that
    request: ``import albumentations`` alone makes one)."""
    env = dict(os.environ)
    env['NO_ALBUMENTATIONS_UPDATE'] = '0'  # inherited from a shell: addp_mm must still not ask
    env['PYTHONPATH'] = str(ROOT)
    env['OMP_NUM_THREADS'] = '1'
    seg = str(ROOT / 'configs/addp/benchmarks/segmentation/'
              'upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512px.py')
    proc = subprocess.run([sys.executable, '-c', _NO_NETWORK, seg, TOY_GEN], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ATTEMPTS []' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'new version of Albumentations' not in proc.stdout + proc.stderr


def test_a_text_file_is_not_a_pytorch_checkpoint(tmp_path):
    from addp_mm.checkpoints.loading import load_checkpoint_file
    (tmp_path / 'notes.pth').write_text('best epoch: 10\n')
    with pytest.raises(ValueError, match=r"notes\.pth' is not a PyTorch checkpoint"):
        load_checkpoint_file(tmp_path / 'notes.pth')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(ValueError, match='not a PyTorch checkpoint .an empty file'):
        load_checkpoint_file(tmp_path / 'empty.pth')


def test_an_empty_image_in_a_training_pipeline_is_named(tmp_path):
    import addp_mm  # noqa: F401
    from mmcv.transforms import LoadImageFromFile
    from addp_mm.utils.image_loading import UnreadableImageError
    (tmp_path / 'broken.jpg').write_bytes(b'')
    with pytest.raises(UnreadableImageError, match=r"broken\.jpg' \(an empty file\), 0 bytes"):
        LoadImageFromFile()(dict(img_path=str(tmp_path / 'broken.jpg')))
    assert LoadImageFromFile(ignore_empty=True)(dict(img_path=str(tmp_path / 'broken.jpg'))) \
        is None
