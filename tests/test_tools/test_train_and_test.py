"""tools/train.py and tools/test.py end to end on a toy config (CPU), their option handling on real
configs of every family, and the torchrun/Slurm launch scripts. (tools/dist_train.sh with real
processes: tests/test_distributed/test_dist_train.py.)"""
import os
import os.path as osp
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ..tool_runs import load_tool

ROOT = Path(__file__).resolve().parents[2]
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
    return load_tool(f'tools/{name}.py')


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


# ----------------------------------------------------------------------------------------------
# Every "set X" / "pass X" in an error message of the tools, followed: it then works.

TOY_ADDP = str(ROOT / 'configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')
TINY_ADDP = str(ROOT / 'configs/addp/from_scratch/'
                'addp_vit-tiny-p4_1xb16-cpu-coslr-300iter_imagefolder-32px.py')
EPOCH_ADDP = str(ROOT / 'configs/addp/addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py')


def _merged(path, *argv):
    from mmengine.config import Config
    train = _load_tool('train')
    return train.merge_args(Config.fromfile(path), train.parse_args([path, *map(str, argv)]))


def _refusal(path, *argv):
    from addp_mm.utils.errors import ConfigError
    with pytest.raises(ConfigError) as refused:
        _merged(path, *argv)
    return str(refused.value)


def test_cfg_option_hints_work():
    # a consumed variable: the field it names
    hint = _refusal(TINY_ADDP, '--cfg-options', 'tokenizer_checkpoint=mine.pth')
    assert 'set --cfg-options model.target_generator.vqgan.checkpoint=mine.pth' in hint
    cfg = _merged(TINY_ADDP, '--cfg-options', 'model.target_generator.vqgan.checkpoint=mine.pth')
    assert cfg.model.target_generator.vqgan.checkpoint == 'mine.pth'
    # the length of a run, whichever way it was asked: --max-iters, which rescales the schedule
    for argv in (['max_iters=30'], ['train_cfg.max_iters=30'], ['train_cfg.max_iter=30']):
        assert 'pass --max-iters 30' in _refusal(TINY_ADDP, '--cfg-options', *argv), argv
    cfg = _merged(TINY_ADDP, '--max-iters', 30)
    assert cfg.train_cfg.max_iters == 30
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 2), (2, 30)]
    assert cfg.param_scheduler[1].T_max == 28 and cfg.default_hooks.checkpoint.interval == 30
    # an unknown key: the key it suggests
    assert "did you mean 'optim_wrapper.optimizer.lr'?" in _refusal(TOY_ADDP, '--cfg-options',
                                                                     'lr=0.1')
    assert _merged(TOY_ADDP, '--cfg-options', 'optim_wrapper.optimizer.lr=0.1') \
        .optim_wrapper.optimizer.lr == 0.1
    assert "did you mean 'resume'?" in _refusal(TOY_ADDP, '--cfg-options', 'resum=False')
    assert _merged(TOY_ADDP, '--cfg-options', 'resume=False').resume is False
    # --auto-scale-lr without a base batch size
    hint = _refusal(TOY_ADDP, '--auto-scale-lr')
    assert '--cfg-options auto_scale_lr.base_batch_size=N' in hint
    cfg = _merged(TOY_ADDP, '--auto-scale-lr', '--cfg-options', 'auto_scale_lr.base_batch_size=8')
    assert cfg.auto_scale_lr == dict(base_batch_size=8, enable=True)
    # --max-iters on an epoch-based config: train_cfg.max_epochs
    assert 'set --cfg-options train_cfg.max_epochs=N' in _refusal(EPOCH_ADDP, '--max-iters', 5)
    assert _merged(EPOCH_ADDP, '--cfg-options', 'train_cfg.max_epochs=2').train_cfg.max_epochs == 2


def test_max_iters_rescales_schedule_and_intervals():
    """--max-iters on the toy config (checkpoints every 25 of 50 iterations): the warm-up, the
    cosine phase and the checkpoint interval shrink by the same factor; lengthening stretches."""
    cfg = _merged(TOY_ADDP, '--max-iters', 10)
    assert cfg.train_cfg.max_iters == 10
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 2), (2, 10)]
    assert cfg.param_scheduler[1].T_max == 8
    assert cfg.default_hooks.checkpoint.interval == 5
    cfg = _merged(TOY_ADDP, '--max-iters', 100)
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 20), (20, 100)]
    assert cfg.default_hooks.checkpoint.interval == 50
    # train_cfg.max_iters that keeps the schedule inside the run is fine (e.g. to extend it)
    assert _merged(TOY_ADDP, '--cfg-options', 'train_cfg.max_iters=60').train_cfg.max_iters == 60


def test_path_hints_work(tmp_path, monkeypatch):
    """data_root, load_from, --resume and a frozen module's checkpoint: the command the error
    names starts the run."""
    from addp_mm.utils.errors import MissingPathError
    from tests.conftest import write_smooth_images
    monkeypatch.chdir(tmp_path)
    train = _load_tool('train')
    (tmp_path / 'images').mkdir()
    write_smooth_images(tmp_path / 'images', 2, 72)
    (tmp_path / 'vqgan.pth').write_bytes(b'x')  # only its existence is checked before building

    def paths_checked(*argv):
        args = train.parse_args([TINY_ADDP, '--work-dir', str(tmp_path / 'w'), *argv])
        from mmengine.config import Config
        cfg = train.merge_args(Config.fromfile(TINY_ADDP), args)
        train.check_paths(cfg, args)
        return cfg

    frozen = ['model.target_generator.vqgan.checkpoint=vqgan.pth',
              'model.target_generator.predictor.checkpoint=vqgan.pth']
    with pytest.raises(MissingPathError, match='set --cfg-options train_dataloader.dataset.'
                       'data_root=PATH'):
        paths_checked('--cfg-options', *frozen)
    with pytest.raises(MissingPathError, match='set --cfg-options model.target_generator.vqgan.'
                       'checkpoint=PATH'):
        paths_checked('--cfg-options', 'train_dataloader.dataset.data_root=images')
    data = ['train_dataloader.dataset.data_root=images', *frozen]
    with pytest.raises(MissingPathError, match=r'or load_from=None'):
        paths_checked('--cfg-options', *data, 'load_from=nope.pth')
    cfg = paths_checked('--cfg-options', *data, 'load_from=None')
    assert cfg.load_from is None and cfg.model.target_generator.vqgan.checkpoint == 'vqgan.pth'
    with pytest.raises(MissingPathError, match='or a bare --resume'):
        paths_checked('--resume', 'nope.pth', '--cfg-options', *data)
    assert paths_checked('--resume', '--cfg-options', *data).resume is True


def test_the_data_root_hint_trains(tmp_path):
    """The data_root the error asks for, as a user would type it: the toy run trains (one
    iteration) and ends with status 0."""
    from tests.conftest import write_smooth_images
    (tmp_path / 'images').mkdir()
    write_smooth_images(tmp_path / 'images', 2, 72)
    command = [sys.executable, str(ROOT / 'tools' / 'train.py'), TOY_ADDP, '--work-dir', 'w',
               '--max-iters', '1']
    proc = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and 'train_dataloader.dataset.data_root=PATH' in proc.stderr
    _run(command + ['--cfg-options', 'train_dataloader.dataset.data_root=images',
                    'train_dataloader.batch_size=2'], cwd=tmp_path)
    assert (tmp_path / 'w' / 'iter_1.pth').is_file()


TOY_GEN = str(ROOT / 'configs/addp/generation/'
              'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py')


def test_generate_says_what_it_wrote_and_its_hints_work(tmp_path, capsys):
    """'N images in DIR (M new, K kept)'; the manifest refusal's --overwrite and the empty mask's
    'paint the region white' work; the grid is the plain mosaic of the files."""
    import numpy as np
    from PIL import Image
    from addp_mm.utils.errors import run_main
    from tests.test_distributed.helpers import mmengine_globals_restored
    generate = _load_tool('generate')
    out = tmp_path / 'g'

    def gen(*argv):
        with mmengine_globals_restored():
            code = run_main(generate.main, [TOY_GEN, 'random', '--out', str(out),
                                            '--no-progress', *map(str, argv)])
        return code, capsys.readouterr()

    code, io = gen('--num', 2, '--grid', tmp_path / 'grid.png', '--grid-nrow', 2)
    assert code == 0 and io.out.splitlines()[-1] == f'2 images in {out} (2 new, 0 kept)'
    grid = np.asarray(Image.open(tmp_path / 'grid.png'))
    first = np.asarray(Image.open(out / '00000.png'))
    second = np.asarray(Image.open(out / '00001.png'))
    assert np.array_equal(grid, np.concatenate([first, second], axis=1))
    code, io = gen('--num', 3)
    assert code == 0 and io.out.splitlines()[-1] == f'3 images in {out} (1 new, 2 kept)'
    code, io = gen('--num', 3, '--seed', 1)
    assert code == 2 and 'seed: 0 -> 1' in io.err and 'Pass --overwrite' in io.err
    code, io = gen('--num', 3, '--seed', 1, '--overwrite')
    assert code == 0 and io.out.splitlines()[-1] == f'3 images in {out} (3 new, 0 kept)'

    Image.new('RGB', (64, 64), (10, 200, 10)).save(tmp_path / 'img.png')
    Image.new('L', (64, 64), 0).save(tmp_path / 'mask.png')
    out = tmp_path / 'inpainted'
    code, io = gen('--num', 1, '--inpaint', tmp_path / 'img.png', '--mask', tmp_path / 'mask.png')
    assert code == 2 and 'paint the region to generate white' in io.err
    white = np.zeros((64, 64), np.uint8)
    white[:32] = 255
    Image.fromarray(white).save(tmp_path / 'mask.png')
    code, io = gen('--num', 1, '--inpaint', tmp_path / 'img.png', '--mask', tmp_path / 'mask.png')
    assert code == 0 and io.out.splitlines()[-1] == f'1 images in {out} (1 new, 0 kept)'


def test_third_party_future_warnings_are_quiet_in_the_tools_only(tmp_path):
    """``import`` of the generation stack (mmagic -> diffusers) warns about diffusers' own
    deprecations; the tools hide them, the library leaves the filters alone."""
    script = ('import warnings, sys\n'
              "sys.path.insert(0, sys.argv[1])\n"
              "if sys.argv[2] == 'tool':\n"
              '    from addp_tools.runtime import quiet_third_party_warnings\n'
              '    quiet_third_party_warnings()\n'
              'with warnings.catch_warnings(record=True) as seen:\n'
              "    warnings.simplefilter('default')\n"
              '    if sys.argv[2] == "tool":\n'
              '        quiet_third_party_warnings()\n'
              '    import addp_mm.generation  # noqa\n'
              "print('FUTURE', sum(issubclass(w.category, FutureWarning) and 'diffusers' in "
              'w.filename for w in seen))\n')
    counts = {}
    for mode in ('library', 'tool'):
        proc = subprocess.run([sys.executable, '-c', script, str(ROOT / 'tools'), mode],
                              cwd=tmp_path, env=_env(), capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts[mode] = int(proc.stdout.split('FUTURE')[-1])
    assert counts['library'] > 0 and counts['tool'] == 0, counts


def test_the_tools_name_engine_parts_through_imports(monkeypatch):
    """Issue 22: the tool-only helpers live beside the tools (tools/addp_tools), and what they
    add to configs (FaultToleranceHook, CheckPretrainedKeysHook, AutocastOptimWrapper) is named
    through an import of the class, which an import/layering check sees, never by a string
    literal of its registry name. addp_mm never imports the tools' package."""
    import ast
    from mmengine.config import ConfigDict
    import addp_mm.engine.hooks as hooks
    import addp_mm.engine.optim_wrappers as wrappers
    import addp_mm.engine.optimizers as optimizers
    from addp_tools import runtime
    assert not (ROOT / 'addp_mm' / 'utils' / 'runtime.py').exists()
    registered = {name for module in (hooks, wrappers, optimizers) for name in module.__all__
                  if isinstance(getattr(module, name), type)}
    assert {'FaultToleranceHook', 'CheckPretrainedKeysHook', 'AutocastOptimWrapper'} <= registered
    files = sorted((ROOT / 'tools').glob('*.py')) + sorted((ROOT / 'tools').glob('addp_*/*.py'))
    for path in files:
        tree = ast.parse(path.read_text())
        literals = {node.value for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not literals & registered, (path, literals & registered)
    for path in (ROOT / 'addp_mm').rglob('*.py'):
        assert 'addp_tools' not in path.read_text(), path
    # what the runtime adds is the imported class's name
    cfg = ConfigDict(custom_hooks=[], optim_wrapper=dict(type='AmpOptimWrapper',
                                                         optimizer=dict(type='SGD', lr=0.1)))
    runtime.add_fault_tolerance_hook(cfg)
    runtime.add_load_check_hook(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == [hooks.FaultToleranceHook.__name__,
                                                     hooks.CheckPretrainedKeysHook.__name__]
    assert runtime.FaultToleranceHook is hooks.FaultToleranceHook
    assert runtime.AutocastOptimWrapper is wrappers.AutocastOptimWrapper
    monkeypatch.setattr(runtime, 'amp_device_available', lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        runtime.setup_amp(cfg, enable=False)
    assert cfg.optim_wrapper.type == wrappers.AutocastOptimWrapper.__name__
