# Train a model from an OpenMMLab config (mmpretrain, mmdet, mmseg or mmagic scope).
#
#   python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|CKPT]] [--max-iters N] [--amp]
#                         [--auto-scale-lr] [--cfg-options k=v ...]
#                         [--launcher none|pytorch|slurm|mpi] [--no-fault-tolerance] [--debug]
#
# Multi-GPU: tools/dist_train.sh CONFIG GPUS [args]; Slurm: tools/slurm_train.sh.
# On a cluster, always pass --resume: a relaunched (requeued) job then continues from the newest
# complete checkpoint, and a fresh work directory simply starts from scratch.
# Exit status: 0 done (or finished already), 2 a mistake (one `error:` line), 130 / 143 stopped by
# Ctrl-C / SIGTERM after saving the current iteration (run the same command with --resume to
# continue), 1 an unexpected error (traceback).
import argparse
import os
import os.path as osp
import sys

# addp_tools (tool code beside this script) also when this file is loaded by importlib
TOOLS_DIR = osp.dirname(osp.abspath(__file__))
if TOOLS_DIR not in sys.path:
    sys.path.insert(0, TOOLS_DIR)

import addp_mm  # noqa: F401,E402  (mmengine's checkpoint loading through addp_mm's safe loader)
from addp_mm.engine.resume_checks import resolve_auto_resume  # noqa: E402
from addp_mm.utils.errors import ConfigError, add_debug_argument, run_main  # noqa: E402
from addp_tools.options import apply_max_iters, check_cfg_options  # noqa: E402
from addp_tools.preflight import (check_data_roots, check_file, check_model_checkpoints,  # noqa
                                  check_writable_dir, is_local, load_config)
from addp_tools.runtime import (add_fault_tolerance_hook, add_load_check_hook,  # noqa: E402
                                drop_unused_checkpoint_variables, quiet_third_party_warnings,
                                set_default_collate, set_default_work_dir, setup_amp,
                                setup_cpu_distributed)
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model with an OpenMMLab config')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the directory to save logs and checkpoints '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume training: with a checkpoint path, from that checkpoint; bare --resume or '
        '"--resume auto", from the latest complete checkpoint in the work directory '
        '(last_checkpoint; starts from scratch if there is none)')
    parser.add_argument(
        '--max-iters', type=int, metavar='N',
        help='train N iterations instead of the config\'s train_cfg.max_iters, with the '
        'param_scheduler, checkpoint and validation intervals rescaled to match '
        '(iteration-based configs)')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed-precision training: on a GPU, fp16 AmpOptimWrapper with a dynamic loss scale '
        '(a config asking for bf16 keeps it); without a GPU, bf16 autocast '
        '(AutocastOptimWrapper)')
    parser.add_argument(
        '--compile', action='store_true',
        help='torch.compile: ADDP pre-training compiles its trainable network (model.compile); '
        'other models use mmengine\'s own switch (cfg.compile, the whole train_step). Off by '
        'default: slower than eager on the CPUs measured (benchmarks/README.md)')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by actual batch size / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=10 '
        'optim_wrapper.optimizer.lr=1e-4; lists as key="[a,b]" (no spaces)')
    parser.add_argument(
        '--no-fault-tolerance', action='store_true',
        help='do not add FaultToleranceHook (by default Ctrl-C (SIGINT) or SIGTERM, e.g. Slurm '
        'preemption, saves a checkpoint of the current iteration and exits with 130 / 143; '
        'resume keeps the data order)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Merge the command-line arguments into the config (``--cfg-options`` last, so it wins)."""
    cfg.launcher = args.launcher
    set_default_work_dir(cfg, args.config, args.work_dir)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.compile:
        if cfg.model.get('type') in ('ADDP', 'mmpretrain.ADDP'):
            cfg.model.compile = True
        else:
            cfg.compile = True

    set_default_collate(cfg)
    if not args.no_fault_tolerance:
        add_fault_tolerance_hook(cfg)
    # load_from / Pretrained / resume must load what the model needs (every config family)
    add_load_check_hook(cfg)

    configured_max_iters = (cfg.get('train_cfg', None) or {}).get('max_iters', None)
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options, trains=True)
        cfg.merge_from_dict(args.cfg_options)
    apply_max_iters(cfg, args.max_iters, args.cfg_options, configured_max_iters)
    if args.auto_scale_lr:
        if cfg.get('auto_scale_lr', None) is None or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ConfigError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=N)` '
                              '(N: the total batch size the lr was tuned for) in the config or '
                              'as --cfg-options auto_scale_lr.base_batch_size=N.')
        cfg.auto_scale_lr.enable = True

    # After --cfg-options, so overrides of optim_wrapper / env_cfg / work_dir are honoured.
    setup_amp(cfg, args.amp)
    resolve_auto_resume(cfg)
    # the config dump must not show checkpoint paths the model does not load
    drop_unused_checkpoint_variables(cfg)
    return cfg


def check_paths(cfg, args) -> None:
    """The work directory, the data and the checkpoints the run names, before anything is built
    (each problem stops the tool with one ``error:`` line)."""
    check_writable_dir(cfg.work_dir, '--work-dir')
    check_data_roots(cfg, ('train_dataloader', ))
    check_model_checkpoints(cfg)
    load_from = cfg.get('load_from', None)
    if isinstance(load_from, str) and is_local(load_from):
        if args.resume not in (None, 'auto'):
            check_file(load_from, 'the checkpoint to resume from',
                       'give an existing checkpoint to --resume, or a bare --resume to continue '
                       'from the newest one in the work directory')
        else:
            check_file(load_from, 'load_from', 'set --cfg-options load_from=PATH to an existing '
                       'checkpoint (or load_from=None to start from the initial weights)')


def main(argv=None):
    args = parse_args(argv)
    quiet_third_party_warnings()
    cfg = load_config(args.config)  # runs the config's custom_imports
    cfg = merge_args(cfg, args)
    check_paths(cfg, args)
    setup_cpu_distributed(cfg)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    sys.exit(run_main(main))
