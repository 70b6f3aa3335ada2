"""The one error style of the command-line tools (addp_mm/utils/errors.py) on every tool: each
predictable mistake ends in ``error: <sentence>`` and exit status 2, ``--debug`` /
``ADDP_MM_DEBUG=1`` for the traceback. (run_main and the messages themselves:
tests/test_utils/test_errors.py.)"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from addp_mm.utils import errors
from addp_mm.utils.errors import EXIT_USER_ERROR, run_main

from ..tool_runs import load_tool

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------
# Every tool on every predictable mistake: one `error:` line that names the fix, status 2, no
# traceback. Run in-process through run_main (the path `python tools/X.py` takes; one subprocess
# per tool below checks that wiring).

TOY = str(ROOT / 'configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')
TINY_ADDP = str(ROOT / 'configs/addp/from_scratch/'
                'addp_vit-tiny-p4_1xb16-cpu-coslr-300iter_imagefolder-32px.py')
TOY_GEN = str(ROOT / 'configs/addp/generation/'
              'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py')
TOOLS = {'train': 'tools/train.py', 'test': 'tools/test.py', 'generate': 'tools/generate.py',
         'demo': 'tools/demo.py', 'convert': 'tools/model_converters/convert_addp.py'}


def _load(tool):
    return load_tool(TOOLS[tool])


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """Files the mistakes need: images, an empty folder, a text file, an undecodable PNG, a mask
    of another size, a black mask, a folder with a broken image."""
    from PIL import Image
    from tests.conftest import write_smooth_images
    root = tmp_path_factory.mktemp('cli_inputs')
    for name in ('images', 'broken'):
        (root / name).mkdir()
    write_smooth_images(root / 'images', 4, 72)
    (root / 'empty').mkdir()
    (root / 'README.md').write_text('# notes\n')
    (root / 'bad.png').write_bytes(b'not a png')
    import torch
    torch.save({'state_dict': {'backbone.x': torch.zeros(3)}, 'meta': {}}, root / 'other.pth')
    Image.new('RGB', (64, 64), (200, 10, 10)).save(root / 'img.png')
    Image.new('L', (32, 32), 255).save(root / 'small_mask.png')
    Image.new('L', (64, 64), 0).save(root / 'black_mask.png')
    write_smooth_images(root / 'broken', 3, 72)
    (root / 'broken' / 'img_zz.png').write_bytes(b'')
    return root


def _run(tool, argv, capsys):
    """(status, output) of ``run_main(tool.main, argv)``."""
    from mmengine.logging import MMLogger
    from tests.test_distributed.helpers import mmengine_globals_restored
    module = _load(tool)
    with mmengine_globals_restored():
        # loggers made now write to this test's captured streams (and are closed afterwards)
        MMLogger._instance_dict.clear()
        try:
            code = run_main(module.main, [str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code
    out = capsys.readouterr()
    return code, out.out + out.err


def _error_line(output):
    lines = [line for line in output.splitlines() if 'error: ' in line]
    assert lines, output[-3000:]
    return lines[-1]


MISTAKES = [
    # (id, tool, argv (with {d}: the inputs folder), what the error line must say)
    ('train-missing-config', 'train', ['{d}/nope.py'], "the config '{d}/nope.py' does not exist"),
    ('train-default-data-root', 'train', [TOY, '--work-dir', '{d}/w'],
     "train_dataloader.dataset.data_root 'data/images' does not exist; set --cfg-options "
     'train_dataloader.dataset.data_root=PATH'),
    ('train-empty-data-root', 'train',
     [TOY, '--work-dir', '{d}/w', '--cfg-options', 'train_dataloader.dataset.data_root={d}/empty'],
     "data_root '{d}/empty' holds no image"),
    ('train-unwritable-work-dir', 'train', [TOY, '--work-dir', '{d}/README.md/run'],
     "cannot write to --work-dir '{d}/README.md/run' (not a directory); choose a folder"),
    ('train-missing-load-from', 'train',
     [TOY, '--work-dir', '{d}/w', '--cfg-options', 'train_dataloader.dataset.data_root={d}/images',
      'load_from={d}/nope.pth'], "load_from '{d}/nope.pth' does not exist; set --cfg-options"),
    ('train-missing-resume', 'train',
     [TOY, '--work-dir', '{d}/w', '--resume', '{d}/nope.pth', '--cfg-options',
      'train_dataloader.dataset.data_root={d}/images'],
     "the checkpoint to resume from '{d}/nope.pth' does not exist; give an existing checkpoint"),
    ('train-missing-frozen-checkpoint', 'train',
     [TINY_ADDP, '--work-dir', '{d}/w', '--cfg-options',
      'train_dataloader.dataset.data_root={d}/images'],
     "model.target_generator.vqgan.checkpoint 'work_dirs/vqgan_maskgit-tiny"),
    ('train-consumed-variable', 'train', [TINY_ADDP, '--cfg-options', 'max_iters=3'],
     "'max_iters' is a variable of the config file, copied into train_cfg.max_iters"),
    ('train-unknown-key', 'train', [TOY, '--cfg-options', 'resum=False'],
     "did you mean 'resume'?"),
    ('train-unknown-loop-key', 'train', [TOY, '--cfg-options', 'train_cfg.max_iter=3'],
     "IterBasedTrainLoop has no argument 'max_iter'; to set the number of iterations pass "
     '--max-iters 3'),
    ('train-bad-value', 'train', [TOY, '--cfg-options', 'optim_wrapper.optimizer.lr=abc'],
     "optim_wrapper.optimizer.lr='abc': expected a number"),
    ('train-short-schedule', 'train', [TOY, '--cfg-options', 'train_cfg.max_iters=5'],
     'param_scheduler still runs to iteration 50'),
    ('train-bad-option', 'train', [TOY, '--max-iters', 'many'], "invalid int value: 'many'"),
    ('train-text-file-checkpoint', 'train',
     [TOY, '--work-dir', '{d}/w', '--cfg-options',
      'train_dataloader.dataset.data_root={d}/images', 'load_from={d}/README.md'],
     "'{d}/README.md' is not a PyTorch checkpoint"),
    ('test-missing-config', 'test', ['{d}/nope.py', '{d}/img.png'],
     "the config '{d}/nope.py' does not exist"),
    ('test-missing-checkpoint', 'test', [TOY_GEN, '{d}/nope.pth'],
     "the checkpoint '{d}/nope.pth' does not exist"),
    ('test-unwritable-work-dir', 'test', [TOY, '{d}/img.png', '--work-dir', '{d}/README.md/x'],
     "cannot write to --work-dir '{d}/README.md/x'"),
    ('test-consumed-variable', 'test', [TOY, '{d}/img.png', '--cfg-options', 'img_size=32'],
     'set --cfg-options model.backbone.img_size=32'),
    ('test-text-file-checkpoint', 'test',
     [TOY_GEN, '{d}/README.md', '--work-dir', '{d}/wt'],
     "'{d}/README.md' is not a PyTorch checkpoint"),
    # the checkpoint is loaded (and refused) before the metrics load the Inception network
    ('test-checkpoint-of-another-model', 'test',
     [TOY_GEN, '{d}/other.pth', '--work-dir', '{d}/wt'],
     'the checkpoint does not hold the weights of the ADDP generator'),
    ('generate-checkpoint-of-another-model', 'generate',
     [TOY_GEN, '{d}/other.pth', '--out', '{d}/g', '--num', 1],
     'the checkpoint does not hold the weights of the ADDP generator'),
    ('generate-missing-checkpoint', 'generate', [TOY_GEN, '{d}/nope.pth', '--out', '{d}/g',
                                                 '--num', 1],
     "the checkpoint '{d}/nope.pth' does not exist"),
    ('generate-missing-config', 'generate', ['{d}/nope.py', 'random', '--out', '{d}/g', '--num', 1],
     "the config '{d}/nope.py' does not exist"),
    ('generate-unwritable-out', 'generate', [TOY_GEN, 'random', '--out', '{d}/README.md/g',
                                             '--num', 1],
     "cannot write to --out '{d}/README.md/g' (not a directory)"),
    ('generate-missing-image', 'generate', [TOY_GEN, 'random', '--out', '{d}/g', '--num', 1,
                                            '--reconstruct', '{d}/nope.png'],
     "--reconstruct '{d}/nope.png' does not exist"),
    ('generate-undecodable-image', 'generate', [TOY_GEN, 'random', '--out', '{d}/g', '--num', 1,
                                                '--inpaint', '{d}/bad.png', '--mask',
                                                '{d}/small_mask.png'],
     "--inpaint '{d}/bad.png' cannot be read as an image"),
    ('generate-mask-of-another-size', 'generate',
     [TOY_GEN, 'random', '--out', '{d}/g', '--num', 1, '--inpaint', '{d}/img.png', '--mask',
      '{d}/small_mask.png'], 'is 32x32 but the image is 64x64; draw the mask at the image size'),
    ('generate-empty-mask', 'generate',
     [TOY_GEN, 'random', '--out', '{d}/g', '--num', 1, '--inpaint', '{d}/img.png', '--mask',
      '{d}/black_mask.png'], 'covers no token, so there is nothing to generate; paint'),
    ('generate-bad-option', 'generate', [TOY_GEN, 'random', '--out', '{d}/g', '--num', 1,
                                         '--outpaint', '{d}/img.png', '--keep', 0],
     '--keep must be >= 1'),
    ('generate-text-file-checkpoint', 'generate',
     [TOY_GEN, '{d}/README.md', '--out', '{d}/g', '--num', 1],
     "'{d}/README.md' is not a PyTorch checkpoint"),
    ('demo-unwritable-work-dir', 'demo', ['--work-dir', '{d}/README.md/demo'],
     "cannot write to --work-dir '{d}/README.md/demo'"),
    ('demo-missing-config-dir', 'demo', ['--config-dir', '{d}/nope', '--work-dir', '{d}/demo'],
     "--config-dir '{d}/nope' is not a folder; give the configs/addp/from_scratch folder"),
    ('convert-missing-input', 'convert', ['{d}/nope.pth', '{d}/out.pth'],
     "input '{d}/nope.pth' does not exist"),
    ('convert-existing-output', 'convert', ['{d}/img.png', '{d}/README.md'],
     'exists; pass --overwrite to replace it'),
    ('convert-text-file', 'convert', ['{d}/README.md', '{d}/out.pth'],
     "'{d}/README.md' is not a PyTorch checkpoint"),
]


@pytest.mark.parametrize('name,tool,argv,expected', MISTAKES,
                         ids=[m[0] for m in MISTAKES])
def test_each_tool_on_each_mistake(name, tool, argv, expected, inputs, capsys, monkeypatch):
    monkeypatch.chdir(inputs)  # relative defaults (data/images) resolve here
    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    code, output = _run(tool, [str(a).format(d=inputs) for a in argv], capsys)
    assert 'Traceback' not in output, output[-3000:]
    assert code == EXIT_USER_ERROR, output[-3000:]
    line = _error_line(output)
    assert expected.format(d=inputs) in line, line


@pytest.mark.parametrize('tool', sorted(TOOLS))
def test_each_tool_lists_the_debug_flag(tool, capsys):
    """``--help`` of every tool names ``--debug`` (run_main removes the flag before parsing, so
    only the help shows whether the tool's parser declares it)."""
    with pytest.raises(SystemExit) as stop:
        _load(tool).parse_args(['--help'])
    assert stop.value.code == 0
    assert f'{errors.DEBUG_FLAG} ' in capsys.readouterr().out


def _train_once(inputs, work_dir, capsys, data_root):
    argv = [TOY, '--work-dir', work_dir, '--max-iters', 1, '--cfg-options',
            'train_dataloader.batch_size=2', f'train_dataloader.dataset.data_root={data_root}']
    return _run('train', argv, capsys)


def test_train_refused_resume(inputs, tmp_path, capsys, monkeypatch):
    """A resume from a run made with another image folder is refused in one line."""
    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    code, output = _train_once(inputs, tmp_path / 'run', capsys, inputs / 'images')
    assert code == 0, output[-3000:]
    code, output = _run('train', [TOY, '--work-dir', tmp_path / 'run', '--resume', '--cfg-options',
                                  'train_dataloader.batch_size=2',
                                  f'train_dataloader.dataset.data_root={inputs}/broken'], capsys)
    assert code == EXIT_USER_ERROR and 'Traceback' not in output, output[-3000:]
    assert 'cannot resume from' in _error_line(output)


def test_train_unreadable_image(inputs, tmp_path, capsys, monkeypatch):
    """An empty PNG in the training data is named in one line."""
    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    code, output = _run('train', [TOY, '--work-dir', tmp_path / 'run', '--max-iters', 1,
                                  '--cfg-options', 'train_dataloader.batch_size=4',
                                  f'train_dataloader.dataset.data_root={inputs}/broken'], capsys)
    assert code == EXIT_USER_ERROR and 'Traceback' not in output, output[-3000:]
    assert "cannot read the image '" in _error_line(output)


def test_test_tool_names_the_checkpoint_before_building_the_metrics(inputs, capsys, monkeypatch):
    """A checkpoint of another model stops tools/test.py with the checkpoint's problem, before the
    FID metrics are built (they would fail first on the missing Inception file): one line that
    names the checkpoint and not Inception."""
    monkeypatch.chdir(inputs)
    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    code, output = _run('test', [TOY_GEN, inputs / 'other.pth', '--work-dir', inputs / 'wt'],
                        capsys)
    assert code == EXIT_USER_ERROR and 'Traceback' not in output, output[-3000:]
    message = _error_line(output)
    assert 'the checkpoint does not hold the weights of the ADDP generator' in message
    assert 'nception' not in message


@pytest.mark.parametrize('tool,argv,expected', [
    ('train', ['nope.py'], "error: the config 'nope.py' does not exist"),
    ('test', ['cfg.py', 'nope.pth'], "error: the checkpoint 'nope.pth' does not exist"),
    ('generate', ['cfg.py', 'nope.pth', '--out', 'g', '--num', '1'],
     "error: the checkpoint 'nope.pth' does not exist"),
    ('demo', ['--config-dir', 'nope'], "error: --config-dir 'nope' is not a folder"),
    ('convert', ['nope.pth', 'out.pth'], "error: input 'nope.pth' does not exist"),
])
def test_each_script_exits_2_with_one_line(tool, argv, expected, tmp_path):
    """``python tools/X.py``: the status and the one line reach the shell; --debug shows the
    traceback, with the same line and status."""
    (tmp_path / 'cfg.py').write_text('x = 1\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    env.pop(errors.DEBUG_ENV, None)
    command = [sys.executable, str(ROOT / TOOLS[tool]), *argv]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == EXIT_USER_ERROR, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.splitlines()[-1].startswith(expected), proc.stderr[-2000:]
    if tool == 'train':
        debug = subprocess.run(command + ['--debug'], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
        assert debug.returncode == EXIT_USER_ERROR
        assert 'Traceback' in debug.stderr
        assert debug.stderr.splitlines()[-1].startswith(expected), debug.stderr[-2000:]
