#!/usr/bin/env python
"""Where the time goes: per-part and per-operator profile of generation or a pre-training step.

Runs the same workload as ``bench_generate.py`` / ``bench_pretrain.py`` (random weights, real
sizes, 256x256) once under ``torch.profiler`` and once under ``torch.utils.flop_counter``, and
splits the wall time into the network's parts (forward hooks put a profiler range around each):

- generation: ``vqgan_decode`` (VQGAN decoder), ``encoder`` (pixel ViT), ``token_decoder``,
  ``head``, and ``sampling+other`` (the loop's own tensor work and Python: the rest of the run);
- pre-training: ``vqgan_encode``, ``token_predictor``, ``vqgan_decode``, ``encoder``,
  ``token_decoder``, ``head`` (all forward), ``backward``, ``optimizer`` and ``other``.

For each part it reports the wall time, the part's matmul and convolution operations, its floor
(operations / this machine's peak rates from ``_common.peak_rates``, as ``--flops`` of the
bench scripts), the ratio time / floor, the time of the operators that are neither matmul nor
convolution (normalisations, activations, softmax, copies...), the Python/dispatch time between
operators, and the slowest operators. Prints one JSON line (with the machine, as every benchmark)
and, with ``--markdown``, the tables for ``benchmarks/README.md``.

    python benchmarks/profile_ops.py generate --arch base --batch 2 --steps 20 --markdown
    python benchmarks/profile_ops.py pretrain --arch base --batch 2 --markdown
"""
import argparse
import collections
import contextlib
import json
import os.path as osp
import time
from typing import Dict, List

import torch
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import FlopCounterMode

from _common import (GENERATION_CONFIGS, REPO, build_pretrain_model, floor, machine,
                     make_train_step, peak_rates)
from addp_mm.generation.api import build_generator
from addp_mm.generation.sampling import image_seeds

PREFIX = 'part:'
MATMUL_OPS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm', 'aten::matmul',
              'aten::linear', 'aten::_scaled_dot_product', 'aten::scaled_dot_product')
CONV_OPS = ('aten::conv', 'aten::_convolution', 'aten::mkldnn_convolution',
            'aten::convolution', 'aten::_conv')


class PartTracker:
    """Profiler ranges and flop deltas around modules (forward hooks) and code blocks."""

    def __init__(self, counter: FlopCounterMode = None) -> None:
        self.counter = counter
        self.flops = collections.defaultdict(lambda: dict(matmul=0, conv=0))
        self._open: List = []
        self._handles = []

    def _snapshot(self) -> Dict[str, int]:
        if self.counter is None:
            return dict(matmul=0, conv=0)
        counts = self.counter.get_flop_counts().get('Global', {})
        conv = sum(v for k, v in counts.items() if 'convolution' in str(k))
        return dict(matmul=sum(counts.values()) - conv, conv=conv)

    def enter(self, name: str) -> None:
        rf = record_function(PREFIX + name)
        rf.__enter__()
        self._open.append((name, rf, self._snapshot()))

    def exit(self) -> None:
        name, rf, before = self._open.pop()
        rf.__exit__(None, None, None)
        after = self._snapshot()
        for k in ('matmul', 'conv'):
            self.flops[name][k] += after[k] - before[k]

    def hook(self, module: torch.nn.Module, name: str) -> None:
        self._handles.append(module.register_forward_pre_hook(lambda *a: self.enter(name)))
        self._handles.append(module.register_forward_hook(lambda *a: self.exit()))

    @contextlib.contextmanager
    def block(self, name: str):
        """A part around a code block (``with tracker.block('backward'): ...``)."""
        self.enter(name)
        try:
            yield
        finally:
            self.exit()


def _kind(op: str) -> str:
    """'conv', 'matmul' or 'other' for a top-level operator (forward op or autograd node)."""
    if op.startswith(CONV_OPS) or 'ConvolutionBackward' in op:
        return 'conv'
    if op.startswith(MATMUL_OPS) or any(
            f'{n}Backward' in op for n in ('Mm', 'Bmm', 'Addmm', 'ScaledDotProduct', 'Linear')):
        return 'matmul'
    return 'other'


def attribute(events) -> Dict[str, Dict]:
    """Per part: wall time (its ranges), self time of its operators by name and kind."""
    parts = collections.defaultdict(lambda: dict(wall_us=0., ops=collections.Counter(),
                                                 kind_us=collections.Counter()))
    for evt in events:
        if evt.name.startswith(PREFIX):
            parent = evt.cpu_parent
            while parent is not None and not parent.name.startswith(PREFIX):
                parent = parent.cpu_parent
            if parent is None or parent.name == PREFIX + 'run':  # outermost ranges only
                parts[evt.name[len(PREFIX):]]['wall_us'] += evt.cpu_time_total
            continue
        if evt.cpu_parent is not None and not evt.cpu_parent.name.startswith(PREFIX):
            continue  # self times add up over the operator tree: count each op's own time
        owner = evt.cpu_parent
        name = owner.name[len(PREFIX):] if owner is not None else 'run'
        # the operator and everything under it, attributed to the operator's top-level name
        parts[name]['ops'][evt.name] += evt.cpu_time_total
        parts[name]['kind_us'][_kind(evt.name)] += evt.cpu_time_total
    return parts


def summarize(parts, tracker: PartTracker, rates: Dict, total_s: float) -> List[Dict]:
    rows = []
    run = parts.pop('run', None)
    named = sorted(parts.items(), key=lambda kv: -kv[1]['wall_us'])
    accounted = 0.
    for name, p in named:
        fl = tracker.flops.get(name, dict(matmul=0, conv=0))
        fl_floor = floor(dict(tflop_matmul=fl['matmul'] / 1e12, tflop_conv=fl['conv'] / 1e12),
                         rates)['floor_s']
        wall = p['wall_us'] / 1e6
        accounted += wall
        op_s = sum(p['kind_us'].values()) / 1e6
        rows.append(dict(
            part=name, seconds=round(wall, 3), share=round(wall / total_s, 3),
            gflop_matmul=round(fl['matmul'] / 1e9, 3), gflop_conv=round(fl['conv'] / 1e9, 3),
            floor_s=round(fl_floor, 3),
            over_floor=round(wall / fl_floor, 2) if fl_floor > 0 else None,
            matmul_s=round(p['kind_us']['matmul'] / 1e6, 3),
            conv_s=round(p['kind_us']['conv'] / 1e6, 3),
            other_ops_s=round(p['kind_us']['other'] / 1e6, 3),
            between_ops_s=round(max(wall - op_s, 0.), 3),
            top_ops=[(op, round(us / 1e6, 3)) for op, us in p['ops'].most_common(6)]))
    rest = max(total_s - accounted, 0.)
    top = [(op, round(us / 1e6, 3)) for op, us in run['ops'].most_common(6)] if run else []
    rows.append(dict(part='rest (sampling, Python, glue)', seconds=round(rest, 3),
                     share=round(rest / total_s, 3), top_ops=top))
    return rows


def generation_workload(args, tracker: PartTracker):
    config = osp.join(REPO, args.config)
    model = build_generator(config, 'random', device='cpu', precision=args.precision,
                            channels_last=True)
    tracker.hook(model.vqgan.decoder, 'vqgan_decode')
    tracker.hook(model.backbone, 'encoder')
    tracker.hook(model.neck, 'token_decoder')
    tracker.hook(model.head, 'head')
    seeds = image_seeds(0, range(args.batch))
    model.sample(seeds, num_steps=2)  # warm-up

    def run():
        model.sample(seeds, num_steps=args.steps)

    return run


def pretrain_workload(args, tracker: PartTracker):
    torch.manual_seed(0)
    model = build_pretrain_model(args.arch).train()
    tg = model.target_generator
    tracker.hook(tg.vqgan.encoder, 'vqgan_encode')
    tracker.hook(tg.vqgan.decoder, 'vqgan_decode')
    tracker.hook(tg.predictor, 'token_predictor')
    tracker.hook(model.backbone, 'encoder')
    tracker.hook(model.neck, 'token_decoder')
    tracker.hook(model.head, 'head')
    train_step = make_train_step(model, args.precision, torch.device('cpu'),
                                 phase=tracker.block)
    images = torch.rand(args.batch, 3, 256, 256)

    def run():
        torch.manual_seed(1)  # bench_pretrain's first timed step: the same masks
        train_step(images)

    run()  # warm-up
    return run


def markdown(result: Dict) -> str:
    lines = [f"{result['workload']}: {result['seconds']} s in all (profiled run; "
             f"floor {result['floor_s']} s, {result['over_floor']}x)", '',
             '| part | s | share | GFLOP mm / conv | floor s | x floor | mm s | conv s | '
             'other ops s | between ops s | slowest operators (s) |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in result['parts']:
        ops = ', '.join(f'{op.replace("aten::", "")} {s}' for op, s in r['top_ops'][:4])
        if 'floor_s' in r:
            lines.append(f"| {r['part']} | {r['seconds']} | {r['share']:.0%} | "
                         f"{r['gflop_matmul']:.0f} / {r['gflop_conv']:.0f} | {r['floor_s']} | "
                         f"{r['over_floor'] or '-'} | {r['matmul_s']} | {r['conv_s']} | "
                         f"{r['other_ops_s']} | {r['between_ops_s']} | {ops} |")
        else:
            lines.append(f"| {r['part']} | {r['seconds']} | {r['share']:.0%} | | | | | | | | "
                         f"{ops} |")
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('workload', choices=['generate', 'pretrain'])
    parser.add_argument('--arch', choices=['base', 'large'], default='base')
    parser.add_argument('--config', default=None,
                        help='generation config (default: the ViT-B/L 20-step in1k config)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=20, help='generation steps')
    parser.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    parser.add_argument('--markdown', action='store_true', help='also print the tables')
    args = parser.parse_args()
    if args.config is None:
        args.config = GENERATION_CONFIGS[args.arch]

    counter = FlopCounterMode(display=False)
    tracker = PartTracker()
    build = generation_workload if args.workload == 'generate' else pretrain_workload
    run = build(args, tracker)

    # 1) the operations of each part (a separate run: counting slows the operators down)
    tracker.counter = counter
    with counter:
        run()
    flops = {k: dict(v) for k, v in tracker.flops.items()}
    tracker.counter = None

    # 2) the times, under the profiler
    tracker.flops = collections.defaultdict(lambda: dict(matmul=0, conv=0), flops)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        with record_function(PREFIX + 'run'):
            run()
        total_s = time.perf_counter() - t0
    rates = peak_rates('cpu')
    parts = attribute(prof.events())
    rows = summarize(parts, tracker, rates, total_s)
    mm = sum(v['matmul'] for v in flops.values())
    conv = sum(v['conv'] for v in flops.values())
    total_floor = floor(dict(tflop_matmul=mm / 1e12, tflop_conv=conv / 1e12), rates)['floor_s']
    result = machine()
    result.update(workload=args.workload, arch=args.arch, batch=args.batch,
                  steps=args.steps if args.workload == 'generate' else None,
                  precision=args.precision, threads=torch.get_num_threads(),
                  seconds=round(total_s, 3), floor_s=round(total_floor, 3),
                  over_floor=round(total_s / total_floor, 3), peak=rates, parts=rows)
    print(json.dumps(result))
    if args.markdown:
        print(markdown(result))


if __name__ == '__main__':
    main()
