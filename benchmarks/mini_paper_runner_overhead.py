#!/usr/bin/env python
"""What the mmengine Runner adds per iteration to the mini paper's detection and segmentation steps.

    python benchmarks/mini_paper_runner_overhead.py --task det --iters 20
    python benchmarks/mini_paper_runner_overhead.py --task seg --iters 20 --threads 2

The same config (``configs/addp/mini``, random init, as ``mini_paper_parts.detseg`` trains it),
the same data (a small set of digit canvases written to ``--out``), the same model, optimizer
wrapper and dataloader, timed two ways:

* **bare loop**: ``batch = next(loader); model.train_step(batch, optim_wrapper)``;
* **Runner**: ``Runner.train()`` with every hook of the config (logger, timer, scheduler,
  checkpoint, visualization, sampler seed, ``FaultToleranceHook``); a last hook reads the clocks
  after all others at the end of every iteration.

Per iteration it reports the median wall and CPU (process) seconds over the iterations after
``--warmup``, in both ways, the first measured again after the second (the load of a shared
machine drifts), and the Runner's fixed cost (building, weight init, the final checkpoint and the
test loop are not per iteration). CPU seconds of one thread are what the step costs when it has a
core to itself; wall seconds on a loaded machine are not. The load average is printed with each.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import addp_mm  # noqa: F401,E402
from _common import machine  # noqa: E402
from addp_mm.engine.stages import stage_config  # noqa: E402
from mini_paper_parts import detseg  # noqa: E402
from mini_paper_parts.canvases import write_canvases  # noqa: E402
from mini_paper_parts.data import write_digits  # noqa: E402


class Clock(Hook):
    """Reads the clocks before training and after every iteration (the last hook to run)."""
    priority = 'LOWEST'

    def __init__(self):
        self.stamps = []

    def before_train(self, runner):
        self.stamps.append(_clocks())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.stamps.append(_clocks())


def _clocks():
    return time.perf_counter(), time.process_time()


def _per_iter(stamps, warmup):
    wall = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])][warmup:]
    cpu = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])][warmup:]
    return dict(wall=statistics.median(wall), cpu=statistics.median(cpu), n=len(wall),
                load=os.getloadavg()[0])


def stage_cfg(task: str, canvases: dict, work_dir: str, iters: int):
    """The config ``detseg`` trains for random init, ``iters`` long."""
    config = detseg.DET_CONFIG if task == 'det' else detseg.SEG_CONFIG
    options = detseg.det_options(canvases) if task == 'det' else detseg.seg_options(canvases)
    options['custom_hooks'] = [dict(type='FaultToleranceHook')]
    # one experiment name per run: mmengine keys loggers and visualizers by it
    return stage_config(f'overhead-{task}-{osp.basename(work_dir)}', config, work_dir, iters,
                        options)


def bare_loop(task: str, canvases: dict, work_dir: str, iters: int, warmup: int) -> dict:
    """The training step without the Runner's loop and hooks (the Runner only builds parts)."""
    cfg = stage_cfg(task, canvases, work_dir, iters)
    runner = Runner.from_cfg(cfg)  # builds model, registers scopes; train() is not called
    model = runner.model
    model.init_weights()
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    loader = runner.build_dataloader(cfg.train_dataloader, seed=cfg.randomness.seed)
    model.train()
    batches = iter(loader)
    stamps = [_clocks()]
    for _ in range(iters):
        model.train_step(next(batches), optim_wrapper)
        stamps.append(_clocks())
    return _per_iter(stamps, warmup)


def with_runner(task: str, canvases: dict, work_dir: str, iters: int, warmup: int) -> dict:
    """``Runner.train()`` of the same config; clocks read by the last hook of every iteration."""
    cfg = stage_cfg(task, canvases, work_dir, iters)
    start = _clocks()
    runner = Runner.from_cfg(cfg)
    clock = Clock()
    runner.register_hook(clock)
    runner.train()
    end = _clocks()
    out = _per_iter(clock.stamps, warmup)
    # building, weight init, hooks before the first iteration and after the last (the final
    # checkpoint): paid once per stage
    for i, name in enumerate(('wall', 'cpu')):
        loop = clock.stamps[-1][i] - clock.stamps[0][i]
        out[f'fixed_{name}'] = end[i] - start[i] - loop
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', choices=('det', 'seg'), default='det')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default='work_dirs/runner_overhead')
    args = parser.parse_args(argv)
    if args.iters <= args.warmup + 1:
        parser.error('--iters must exceed --warmup + 1')
    torch.set_num_threads(args.threads)
    digits = write_digits(osp.join(args.out, 'digits'), 0)
    canvases = write_canvases(digits['root'], osp.join(args.out, 'canvases'), 0, 400, 10)
    work = osp.join(args.out, args.task)
    res = dict(task=args.task, threads=args.threads, iters=args.iters, warmup=args.warmup,
               machine=machine())
    res['bare'] = bare_loop(args.task, canvases, osp.join(work, 'bare'), args.iters, args.warmup)
    res['runner'] = with_runner(args.task, canvases, osp.join(work, 'runner'), args.iters,
                                args.warmup)
    res['bare_again'] = bare_loop(args.task, canvases, osp.join(work, 'bare2'), args.iters,
                                  args.warmup)
    bare_cpu = min(res['bare']['cpu'], res['bare_again']['cpu'])
    res['runner_overhead_cpu_per_iter'] = res['runner']['cpu'] - bare_cpu
    res['runner_overhead_cpu_percent'] = 100. * res['runner_overhead_cpu_per_iter'] / bare_cpu
    print(json.dumps(res, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
