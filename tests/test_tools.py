"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on a toy config (CPU)."""
import importlib.util
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TOY_CONFIG = '''
custom_imports = dict(imports=['tests.toy_modules'], allow_failed_imports=False)
default_scope = {scope!r}
model = dict(type='ToyLinearModel')
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='ToyRegressionDataset', num=16),
    sampler=dict(type='DefaultSampler', shuffle=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-2))
test_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(type='ToyRegressionDataset', num=8, seed=1),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_cfg = dict(type='TestLoop')
test_evaluator = dict(type='ToyMSEMetric')
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='ToyDoneHook')]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
'''


def _write_config(tmp_path, scope):
    path = tmp_path / f'toy_{scope}.py'
    path.write_text(TOY_CONFIG.format(scope=scope))
    return path


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT)] +
                                        ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env['CUDA_VISIBLE_DEVICES'] = ''  # the CPU paths are what these tests check
    env['OMP_NUM_THREADS'] = '1'
    return env


def _run(args, cwd, timeout=120):
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(map(str, args))} failed:\n{output[-6000:]}'
    return output


def _log_text(work_dir):
    logs = sorted(Path(work_dir).glob('*/*.log'))
    assert logs, f'no log file under {work_dir}'
    return '\n'.join(p.read_text() for p in logs)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f'addp_tools_{name}',
                                                  ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_resume_and_test(tmp_path):
    config = _write_config(tmp_path, 'mmpretrain')
    work_dir = tmp_path / 'work'
    train = [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir',
             str(work_dir)]

    # 1) 2 iterations; --amp on a CPU-only machine falls back to fp32 with a warning.
    out = _run(train + ['--amp'], cwd=tmp_path)
    assert 'mixed-precision training needs a GPU' in out
    assert (work_dir / 'iter_2.pth').is_file()
    assert (work_dir / 'done_rank0_iter2_world1').is_file()

    # 2) bare --resume continues from last_checkpoint (iter 2) up to the new max_iters.
    _run(train + ['--resume', '--cfg-options', 'train_cfg.max_iters=4'], cwd=tmp_path)
    assert (work_dir / 'iter_4.pth').is_file()
    assert (work_dir / 'done_rank0_iter4_world1').is_file()
    log = _log_text(work_dir)
    assert 'Auto resumed from the latest checkpoint' in log
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log

    # 3) tools/test.py loads the Runner checkpoint (load_from) and dumps predictions.
    out_file = tmp_path / 'preds.pkl'
    _run([sys.executable, str(ROOT / 'tools' / 'test.py'), str(config),
          str(work_dir / 'iter_4.pth'), '--work-dir', str(tmp_path / 'test_work'), '--out',
          str(out_file)], cwd=tmp_path)
    with open(out_file, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8
    assert 'mse' in _log_text(tmp_path / 'test_work')


def test_train_merge_args(tmp_path):
    from mmengine.config import Config
    train = _load_tool('train')
    config = _write_config(tmp_path, 'mmpretrain')

    def merged(*argv):
        args = train.parse_args([str(config), *argv])
        return train.merge_args(Config.fromfile(str(config)), args)

    cfg = merged()
    assert cfg.work_dir == osp.join('./work_dirs', 'toy_mmpretrain')
    assert cfg.get('resume', False) is False
    # mmpretrain scope: default_collate unless the config names a collate_fn.
    assert cfg.train_dataloader.collate_fn == dict(type='default_collate')
    assert cfg.test_dataloader.collate_fn == dict(type='default_collate')

    cfg = merged('--resume')
    assert cfg.resume is True and cfg.load_from is None
    cfg = merged('--resume', 'auto')
    assert cfg.resume is True and cfg.load_from is None
    cfg = merged('--resume', '/ckpts/iter_2.pth', '--work-dir', 'wd')
    assert cfg.resume is True and cfg.load_from == '/ckpts/iter_2.pth' and cfg.work_dir == 'wd'

    cfg = merged('--cfg-options', 'train_cfg.max_iters=7',
                 'train_dataloader.collate_fn.type=pseudo_collate')
    assert cfg.train_cfg.max_iters == 7
    assert cfg.train_dataloader.collate_fn.type == 'pseudo_collate'

    with pytest.raises(ValueError, match='auto_scale_lr'):
        merged('--auto-scale-lr')

    # Other scopes keep mmengine's pseudo_collate default.
    other = _write_config(tmp_path, 'mmdet')
    cfg = train.merge_args(Config.fromfile(str(other)), train.parse_args([str(other)]))
    assert 'collate_fn' not in cfg.train_dataloader


def test_dist_train_two_cpu_processes(tmp_path):
    config = _write_config(tmp_path, 'mmengine')
    work_dir = tmp_path / 'dist_work'
    env_prefix = ['env', f'PYTHON={sys.executable}', f'PORT={_free_port()}']
    _run(env_prefix + ['bash', str(ROOT / 'tools' / 'dist_train.sh'), str(config), '2',
                       '--work-dir', str(work_dir), '--cfg-options',
                       'env_cfg.dist_cfg.backend=gloo'],
         cwd=tmp_path, timeout=180)
    for rank in (0, 1):
        assert (work_dir / f'done_rank{rank}_iter2_world2').is_file(), sorted(os.listdir(work_dir))
    log = _log_text(work_dir)
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'Iter(train) [2/2]' in log
    assert (work_dir / 'iter_2.pth').is_file()


@pytest.mark.parametrize('scope,hook,check', [
    ('mmpretrain', 'VisualizationHook', lambda cfg: cfg.default_hooks.visualization.enable is True
     and cfg.default_hooks.visualization.out_dir == 'vis'),
    ('mmdet', 'DetVisualizationHook', lambda cfg: cfg.default_hooks.visualization.draw is True
     and cfg.default_hooks.visualization.test_out_dir == 'vis'),
    ('mmseg', 'SegVisualizationHook', lambda cfg: cfg.default_hooks.visualization.draw is True
     and cfg.visualizer.save_dir == 'vis'),
])
def test_test_merge_args(tmp_path, scope, hook, check):
    from mmengine.config import Config
    test = _load_tool('test')
    config = tmp_path / f'{scope}.py'
    config.write_text(
        TOY_CONFIG.format(scope=scope) +
        f"default_hooks.update(visualization=dict(type='{hook}'))\n"
        "visualizer = dict(type='Visualizer')\n")
    args = test.parse_args([str(config), 'ckpt.pth', '--show-dir', 'vis'])
    cfg = test.merge_args(Config.fromfile(str(config)), args)
    assert cfg.load_from == 'ckpt.pth' and cfg.resume is False
    assert check(cfg)
    assert ('collate_fn' in cfg.test_dataloader) == (scope == 'mmpretrain')


def test_amp_falls_back_to_fp32_without_gpu():
    from mmengine.config import ConfigDict
    from addp_mm.utils.runtime import amp_device_available, setup_amp
    if amp_device_available():
        pytest.skip('checks the CPU-only fallback')
    # A config that asks for AMP itself (mmpretrain/mmseg style), without --amp.
    cfg = ConfigDict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                        dtype='float16', optimizer=dict(type='AdamW', lr=1e-3)))
    with pytest.warns(UserWarning, match='needs a GPU'):
        setup_amp(cfg, enable=False)
    assert cfg.optim_wrapper == dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    # mmagic-style multi-optimizer config with --amp: nothing to change on a CPU, but a warning.
    cfg = ConfigDict(optim_wrapper=dict(
        constructor='MultiOptimWrapperConstructor',
        generator=dict(optimizer=dict(type='Adam', lr=1e-4)),
        discriminator=dict(type='AmpOptimWrapper', optimizer=dict(type='Adam', lr=1e-4))))
    with pytest.warns(UserWarning, match='--amp was given'):
        setup_amp(cfg, enable=True)
    assert cfg.optim_wrapper.discriminator.type == 'OptimWrapper'
    assert 'type' not in cfg.optim_wrapper.generator
    # Plain fp32 configs without --amp: untouched, no warning.
    cfg = ConfigDict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        setup_amp(cfg, enable=False)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
