"""tools/train.py and tools/test.py end to end on a toy config (CPU), their option handling on real
configs of every family, and the torchrun/Slurm launch scripts. (tools/dist_train.sh with real
processes: tests/test_distributed/test_dist_train.py.)"""
import importlib.util
import os
import os.path as osp
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# addp_tools: the tool-only package beside tools/train.py and tools/test.py
sys.path.insert(0, str(ROOT / 'tools'))

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


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f'addp_tools_{name}',
                                                  ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_tool_evaluates_a_runner_checkpoint(tmp_path):
    """tools/test.py loads a Runner checkpoint (load_from) and dumps predictions. The checkpoint
    comes from a Runner built in this process by tools/train.py's own merge_args (training through
    the tool as a subprocess, with --resume and --amp: tests/test_distributed)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from tests.test_distributed.helpers import mmengine_globals_restored
    config = _write_config(tmp_path, 'mmpretrain')
    work_dir = tmp_path / 'work'
    train = _load_tool('train')
    args = train.parse_args([str(config), '--work-dir', str(work_dir), '--amp'])
    with mmengine_globals_restored():
        with pytest.warns(UserWarning, match='bfloat16 autocast on the CPU'):
            cfg = train.merge_args(Config.fromfile(str(config)), args)
        runner = Runner.from_cfg(cfg)
        runner.train()
        assert type(runner.optim_wrapper).__name__ == 'AutocastOptimWrapper'
    assert (work_dir / 'iter_2.pth').is_file()
    assert (work_dir / 'done_rank0_iter2_world1').is_file()

    out_file = tmp_path / 'preds.pkl'
    _run([sys.executable, str(ROOT / 'tools' / 'test.py'), str(config),
          str(work_dir / 'iter_2.pth'), '--work-dir', str(tmp_path / 'test_work'), '--out',
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
    # the config's own hooks stay; FaultToleranceHook is added once (opt out with a flag), and
    # the load/resume checks of CheckPretrainedKeysHook always
    assert [h['type'] for h in cfg.custom_hooks] == ['ToyDoneHook', 'FaultToleranceHook',
                                                     'CheckPretrainedKeysHook']
    assert [h['type'] for h in merged('--no-fault-tolerance').custom_hooks] == [
        'ToyDoneHook', 'CheckPretrainedKeysHook']
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


def test_amp_on_cpu_is_bf16_autocast(monkeypatch):
    from mmengine.config import ConfigDict
    from addp_tools import runtime
    monkeypatch.setattr(runtime, 'amp_device_available', lambda: False)
    # A config that asks for fp16 AMP itself (the ADDP recipe), without --amp.
    cfg = ConfigDict(optim_wrapper=dict(type='AmpOptimWrapper',
                                        loss_scale=dict(growth_interval=500),
                                        optimizer=dict(type='AdamW', lr=1e-3)))
    with pytest.warns(UserWarning, match='bfloat16 autocast on the CPU') as record:
        runtime.setup_amp(cfg, enable=False)
    assert cfg.optim_wrapper == dict(type='AutocastOptimWrapper', dtype='bfloat16',
                                     optimizer=dict(type='AdamW', lr=1e-3))
    # ... and says when bf16 would be emulated (many times slower than fp32) on this CPU
    from addp_mm.utils.device import cpu_has_native_bf16
    emulated_note = any('no native bf16' in str(w.message) for w in record)
    assert emulated_note == (not cpu_has_native_bf16())
    # --amp on an fp32 config; mmagic-style multi-optimizer configs convert every sub-wrapper.
    cfg = ConfigDict(optim_wrapper=dict(
        constructor='MultiOptimWrapperConstructor',
        generator=dict(optimizer=dict(type='Adam', lr=1e-4)),
        discriminator=dict(type='AmpOptimWrapper', dtype='float16',
                           optimizer=dict(type='Adam', lr=1e-4))))
    with pytest.warns(UserWarning, match='--amp was given'):
        runtime.setup_amp(cfg, enable=True)
    for sub in ('generator', 'discriminator'):
        assert cfg.optim_wrapper[sub].type == 'AutocastOptimWrapper'
        assert cfg.optim_wrapper[sub].dtype == 'bfloat16'
    # The documented fp32 override of an AMP config drops the AMP-only keys.
    cfg = ConfigDict(optim_wrapper=dict(type='OptimWrapper', loss_scale='dynamic',
                                        optimizer=dict(type='SGD', lr=0.1)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        runtime.setup_amp(cfg, enable=False)
    assert cfg.optim_wrapper == dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    with pytest.raises(ValueError, match='needs an `optim_wrapper`'):
        runtime.setup_amp(ConfigDict(), enable=True)


def test_amp_on_gpu_keeps_fp16_loss_scaling_unless_bf16_asked(monkeypatch):
    from mmengine.config import ConfigDict
    from addp_tools import runtime
    monkeypatch.setattr(runtime, 'amp_device_available', lambda: True)
    cfg = ConfigDict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    runtime.setup_amp(cfg, enable=True)
    assert cfg.optim_wrapper == dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                     optimizer=dict(type='SGD', lr=0.1))
    recipe = dict(type='AmpOptimWrapper', loss_scale=dict(growth_interval=500),
                  optimizer=dict(type='AdamW', lr=1e-3))
    for enable in (False, True):  # the recipe's own loss scale is kept
        cfg = ConfigDict(optim_wrapper=recipe)
        runtime.setup_amp(cfg, enable=enable)
        assert cfg.optim_wrapper == recipe
    bf16 = dict(type='AutocastOptimWrapper', dtype='bfloat16', optimizer=dict(type='SGD', lr=0.1))
    cfg = ConfigDict(optim_wrapper=bf16)
    runtime.setup_amp(cfg, enable=True)
    assert cfg.optim_wrapper == bf16
    cfg = ConfigDict(optim_wrapper=dict(type='MyWrapper', optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(ValueError, match="uses 'MyWrapper'"):
        runtime.setup_amp(cfg, enable=True)


# One shipped config per family; the config's default_scope picks the registries.
FAMILY_CONFIGS = [
    ('configs/addp/addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py', 'mmpretrain', True),
    ('configs/addp/benchmarks/classification/'
     'cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py', 'mmpretrain', True),
    ('configs/addp/benchmarks/detection/'
     'vitdet-mask-rcnn_vit-base-p16_addp-1600e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py',
     'mmdet', True),
    ('configs/addp/benchmarks/segmentation/'
     'upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512px.py',
     'mmseg', True),
    ('configs/addp/generation/addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py',
     'mmagic', False),
]


@pytest.mark.parametrize('path,scope,trains', FAMILY_CONFIGS,
                         ids=[scope for _, scope, _ in FAMILY_CONFIGS])
def test_launcher_options_hold_for_every_config_family(tmp_path, monkeypatch, path, scope,
                                                       trains):
    """--work-dir, --resume, --amp and --cfg-options on real configs of each family, and every
    type they name resolves in that family's registries (CPU-only machine)."""
    import importlib
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from addp_tools import runtime
    monkeypatch.setattr(runtime, 'amp_device_available', lambda: False)
    train = _load_tool('train')
    cfg = Config.fromfile(str(ROOT / path), import_custom_modules=False)
    assert cfg.default_scope == scope
    work_dir = str(tmp_path / 'w')
    argv = [str(ROOT / path), '--work-dir', work_dir, '--resume', '--cfg-options',
            'default_hooks.logger.interval=7'] + (['--amp'] if trains else [])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        cfg = train.merge_args(cfg, train.parse_args(argv))
    assert cfg.work_dir == work_dir and cfg.resume is True and cfg.load_from is None
    assert cfg.default_hooks.logger.interval == 7
    loader = cfg.get('train_dataloader') or cfg.test_dataloader  # generation configs only test
    assert ('collate_fn' in loader) == (scope == 'mmpretrain')
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks.count('FaultToleranceHook') == 1
    registry = importlib.import_module(f'{scope}.registry')
    import addp_mm  # noqa: F401  (what the configs' custom_imports and tools/train.py import)
    with DefaultScope.overwrite_default_scope(scope):
        for name in hooks:
            assert registry.HOOKS.get(name) is not None, name
        if trains:
            assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
            assert not {'loss_scale', 'use_fsdp'} & set(cfg.optim_wrapper)
            assert registry.OPTIM_WRAPPERS.get(cfg.optim_wrapper.type) is not None
    test = _load_tool('test')
    cfg = test.merge_args(Config.fromfile(str(ROOT / path), import_custom_modules=False),
                          test.parse_args([str(ROOT / path), 'ckpt.pth', '--work-dir', work_dir]))
    assert cfg.load_from == 'ckpt.pth' and cfg.resume is False


def test_launch_scripts_build_the_documented_commands(tmp_path):
    """dist_*.sh and slurm_*.sh with stand-ins for python and srun that print their arguments."""
    fake_python = tmp_path / 'python'
    fake_python.write_text('#!/bin/sh\necho "PY $*"\n')
    fake_python.chmod(0o755)
    (tmp_path / 'srun').write_text('#!/bin/sh\necho "SRUN $*"\n')
    (tmp_path / 'srun').chmod(0o755)
    env = _env()
    env.update(PYTHON=str(fake_python), PATH=f'{tmp_path}{os.pathsep}{env["PATH"]}', PORT='29999',
               GPUS='4', GPUS_PER_NODE='2', SRUN_ARGS='--qos=low')
    tools = ROOT / 'tools'

    def run(*args):
        proc = subprocess.run(['bash', *map(str, args)], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = run(tools / 'dist_train.sh', 'cfg.py', 2, '--resume', '--amp')
    assert (f'PY -m torch.distributed.run --nnodes=1 --node_rank=0 --master_addr=127.0.0.1 '
            f'--nproc_per_node=2 --master_port=29999 {tools}/train.py cfg.py --launcher pytorch '
            '--resume --amp') in out
    out = run(tools / 'dist_test.sh', 'cfg.py', 'ckpt.pth', 2, '--out', 'r.pkl')
    assert f'{tools}/test.py cfg.py ckpt.pth --launcher pytorch --out r.pkl' in out
    out = run(tools / 'slurm_train.sh', 'part', 'job', 'cfg.py', 'wd', '--resume')
    assert ('SRUN -p part --job-name=job --gres=gpu:2 --ntasks=4 --ntasks-per-node=2 '
            f'--cpus-per-task=5 --kill-on-bad-exit=1 --qos=low {fake_python} -u '
            f'{tools}/train.py cfg.py --work-dir=wd --launcher=slurm --resume') in out
    out = run(tools / 'slurm_test.sh', 'part', 'job', 'cfg.py', 'ckpt.pth')
    assert f'{fake_python} -u {tools}/test.py cfg.py ckpt.pth --launcher=slurm' in out
    for script in ('dist_train.sh', 'slurm_train.sh'):
        proc = subprocess.run(['bash', str(tools / script)], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2 and 'usage:' in proc.stderr
