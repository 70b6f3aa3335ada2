# Test (and evaluate) a checkpoint with an OpenMMLab config (mmpretrain, mmdet, mmseg or mmagic
# scope).
#
#   python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR]
#                        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi] [--debug]
#
# Multi-GPU: tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]; Slurm: tools/slurm_test.sh.
# The checkpoint is loaded (and checked against the model) before the metrics are built.
# Exit status: 0 done, 2 a mistake (one `error:` line), 1 an unexpected error (traceback).
import argparse
import os
import os.path as osp
import sys

# addp_tools (tool code beside this script) also when this file is loaded by importlib
TOOLS_DIR = osp.dirname(osp.abspath(__file__))
if TOOLS_DIR not in sys.path:
    sys.path.insert(0, TOOLS_DIR)

import addp_mm  # noqa: F401,E402  (mmengine's checkpoint loading through addp_mm's safe loader)
from addp_mm.utils.device import set_tf32  # noqa: E402
from addp_mm.utils.errors import ConfigError, add_debug_argument, run_main  # noqa: E402
from addp_tools.options import check_cfg_options  # noqa: E402
from addp_tools.preflight import check_file, check_writable_dir, load_config  # noqa: E402
from addp_tools.runtime import (add_load_check_hook, drop_unused_checkpoint_variables,  # noqa
                                quiet_third_party_warnings, set_default_collate,
                                set_default_work_dir, setup_cpu_distributed)
from mmengine.config import DictAction  # noqa: E402
from mmengine.evaluator import DumpResults  # noqa: E402
from mmengine.registry import METRICS, RUNNERS  # noqa: E402
from mmengine import runner as mmengine_runner  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

# Library-specific result dumpers (built from the registry, so this file imports no library).
_DUMPERS = {'mmdet': 'mmdet.DumpDetResults'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save logs and metrics '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--out', help='dump the predictions of every test sample to this pickle '
                        'file (.pkl)')
    parser.add_argument('--show-dir', help='save visualised predictions in this directory '
                        '(needs a visualization hook in default_hooks)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=1; lists as '
        'key="[a,b]" (no spaces)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must name a .pkl/.pickle file')
    return args


def enable_visualization(cfg, show_dir: str) -> None:
    """Turn on the config's visualization hook and send its images to ``show_dir``.

    Each library names the switches differently (as in its own tools/test.py).
    """
    hook = cfg.get('default_hooks', {}).get('visualization', None)
    if hook is None:
        raise ConfigError('--show-dir needs a visualization hook: add '
                          '`default_hooks.visualization` to the config.')
    scope = cfg.get('default_scope', 'mmengine')
    if scope == 'mmpretrain':  # VisualizationHook(enable, out_dir)
        hook['enable'] = True
        hook['out_dir'] = show_dir
    elif scope == 'mmdet':  # DetVisualizationHook(draw, test_out_dir): relative to the log dir
        hook['draw'] = True
        hook['test_out_dir'] = show_dir
    elif scope == 'mmseg':  # SegVisualizationHook(draw) writes through the visualizer's save_dir
        hook['draw'] = True
        cfg.visualizer['save_dir'] = show_dir
    else:
        raise ConfigError(f'--show-dir is not supported for configs of scope {scope!r}; run '
                          'without it.')


#: Top-level helper variables of the generation configs that --cfg-options can set directly:
#: the config only copies them into the metrics / dataloader when it is read, so tools/test.py
#: passes an override on to every place that uses it.
_GENERATION_SHORTCUTS = ('inception_path', 'inception_pkl', 'real_data_root')


def apply_generation_shortcuts(cfg, options: dict) -> None:
    """``--cfg-options inception_path=P`` (or ``inception_pkl``, ``real_data_root``) on a generation
    config: set it in every test/val metric that has the field (and, for ``real_data_root``, the
    real-image dataset), not only in the unused top-level variable."""
    for key in _GENERATION_SHORTCUTS:
        if key not in options:
            continue
        value = options[key]
        for field in ('test_evaluator', 'val_evaluator'):
            evaluator = cfg.get(field, None)
            if not evaluator:
                continue
            metrics = evaluator.get('metrics', evaluator) if isinstance(evaluator, dict) \
                else evaluator
            metrics = metrics if isinstance(metrics, (list, tuple)) else [metrics]
            for metric in metrics:
                if isinstance(metric, dict) and key in metric:
                    metric[key] = value
        if key == 'real_data_root':
            for field in ('test_dataloader', 'val_dataloader'):
                dataset = (cfg.get(field, None) or {}).get('dataset', None)
                if isinstance(dataset, dict) and 'data_root' in dataset:
                    dataset['data_root'] = value


def merge_args(cfg, args):
    """Merge the command-line arguments into the config (``--cfg-options`` last, so it wins)."""
    cfg.launcher = args.launcher
    set_default_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    set_default_collate(cfg, fields=('test_dataloader', ))
    add_load_check_hook(cfg)  # the checkpoint must hold the model's weights
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options, shortcuts=_GENERATION_SHORTCUTS, trains=False)
        cfg.merge_from_dict(args.cfg_options)
        apply_generation_shortcuts(cfg, args.cfg_options)
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    # the config dump must not show checkpoint paths the model does not load
    drop_unused_checkpoint_variables(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    quiet_third_party_warnings()
    check_file(args.checkpoint, 'the checkpoint', 'give the path of the checkpoint to test')
    cfg = load_config(args.config)  # runs the config's custom_imports
    cfg = merge_args(cfg, args)
    check_writable_dir(cfg.work_dir, '--work-dir')
    setup_cpu_distributed(cfg)
    if not cfg.get('test_cfg', {}).get('fp16', False):
        # fp32 evaluation is true fp32 on CUDA, as the official entry points (no TF32)
        set_tf32(False)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    if not isinstance(runner, mmengine_runner.Runner):  # a runner_type of its own
        runner.test()
        return
    if runner._test_loop is None:  # (the property would build the loop)
        raise ConfigError(f'{args.config} has no test_dataloader, test_cfg and test_evaluator; '
                          'give tools/test.py a config that defines them.')
    # Runner.test() in another order: the checkpoint is loaded, and checked against the model by
    # CheckPretrainedKeysHook, before the test loop builds the metrics (an FID metric loads its
    # Inception network), so a missing or wrong checkpoint is named first.
    runner.call_hook('before_run')
    runner.load_or_resume()
    if args.out is not None:
        dumper = _DUMPERS.get(cfg.get('default_scope', 'mmengine'))
        if dumper is None:
            metric = DumpResults(out_file_path=args.out)
        else:
            metric = METRICS.build(dict(type=dumper, out_file_path=args.out))
        runner.test_evaluator.metrics.append(metric)
    runner.test_loop.run()
    runner.call_hook('after_run')


if __name__ == '__main__':
    sys.exit(run_main(main))
