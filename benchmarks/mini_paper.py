#!/usr/bin/env python
"""The ADDP paper's table in miniature, on real images, on 2 CPU cores.

    python benchmarks/mini_paper.py --seed 0 --threads 2 --out work_dirs/mini_paper/seed0
    python benchmarks/mini_paper.py --seed 0 --tasks cls,gen --out ...     # a subset of columns
    python benchmarks/mini_paper.py --summarize work_dirs/mini_paper/seed*  # mean ± std table
    python benchmarks/mini_paper.py --curve 1000 3000 --seed 0 --out work_dirs/mini_paper/seed0
    make mini-paper                                                          # seeds 0, 1, 2

Data: scikit-learn's handwritten digits (1,797 real 8x8 scans, 10 classes) upsampled to 32x32 RGB,
a fixed stratified split (1,347 train / 450 test); for detection and segmentation, canvases of
1-4 digits composed from the same split. One seed trains, with the project's configs
(``configs/addp/mini``) and the ordinary mmengine Runner: the tokenizer, a token bank of train
crops, the MAGE token predictor, ADDP, and mmpretrain's MAE on the same images; then the rows
ADDP, MAE, MAGE and random init under a linear probe, a 10-shot probe and fine-tuning, ADDP and
MAGE samples under FID/IS, and Mask R-CNN and UperNet on the canvases. Everything lands in
``OUT/results.json`` (figures in ``OUT/figures``). A finished stage is never trained again, so a
killed run continues where it stopped when the same command is run again. The parts live in
``benchmarks/mini_paper_parts`` (one job per module); results and analysis in
``benchmarks/mini_paper/README.md``.
"""
import argparse
import os
import sys

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402

import addp_mm  # noqa: F401,E402  (registers the models)
from addp_mm.utils.errors import ConfigError, add_debug_argument, run_main  # noqa: E402
from mini_paper_parts.pipeline import SIZES, TASKS, parse_tasks, run_seed, teacher_curve  # noqa
from mini_paper_parts.summary import summarize  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seed', type=int, default=0, help='seed of training and sampling')
    parser.add_argument('--out', default=None,
                        help='output folder (default work_dirs/mini_paper/seed<SEED>)')
    parser.add_argument('--size', choices=list(SIZES), default='full',
                        help='full: the benchmark; ci: a few iterations per stage (tests)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1; results are deterministic for a '
                        'seed and a thread count)')
    parser.add_argument('--tasks', default=','.join(TASKS),
                        help=f'columns to run, a comma-separated subset of {",".join(TASKS)} '
                        '(default: all)')
    parser.add_argument('--iters', nargs='+', default=[], metavar='STAGE=N',
                        help='iterations of pre-training stages instead of the configs\' '
                        '(tokenizer, predictor, addp, mae), e.g. --iters predictor=2000')
    parser.add_argument('--curve', nargs='+', type=int, metavar='N',
                        help='the teacher curve: ADDP trained on predictors of N iterations '
                        '(and the run\'s own), 10-shot probe and FID of each; reuses --out')
    parser.add_argument('--summarize', nargs='+', metavar='DIR',
                        help='print the mean ± std table of these finished runs and exit')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.summarize:
        missing = [d for d in args.summarize
                   if not os.path.isfile(os.path.join(d, 'results.json'))
                   and not os.path.isfile(d)]
        if missing:
            raise ConfigError(f'--summarize: no results.json in {missing}; run '
                              'benchmarks/mini_paper.py --out DIR for each first.')
        print(summarize(args.summarize))
        return 0
    torch.set_num_threads(args.threads)
    out = args.out or os.path.join('work_dirs', 'mini_paper', f'seed{args.seed}')
    try:
        stage_iters = {k: int(v) for k, v in (item.split('=') for item in args.iters)}
    except ValueError:
        raise ConfigError(f'--iters takes STAGE=N items, e.g. --iters predictor=2000; got '
                          f'{args.iters}.')
    tasks = parse_tasks(args.tasks)
    if args.curve:
        teacher_curve(args.seed, out, args.curve, args.size)
        return 0
    run_seed(args.seed, out, args.size, stage_iters, tasks)
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main))
