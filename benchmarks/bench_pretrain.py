#!/usr/bin/env python
"""Time one full ADDP pre-training step (VQGAN, token predictor, encoder, decoder, backward, AdamW).

Random weights at the real sizes, 256x256 inputs. Prints one JSON line:
``{"arch", "batch", "precision", "device", "step_s", "img_per_s", "peak_rss_gib", ...}``.

    python benchmarks/bench_pretrain.py --arch base --batch 2 --precision fp32
    python benchmarks/bench_pretrain.py --arch base --batch 2 --precision bf16

The baseline is the official implementation itself, measured side by side (benchmarks/README.md);
the former ``--naive`` reconstruction of it is gone (it had to patch addp_mm's modules).
"""
import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import (build_pretrain_model, flop_report, machine, make_train_step, peak_rates,
                     peak_rss_gib, sync)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', choices=['base', 'large'], default='base')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--precision', choices=['fp32', 'bf16', 'fp16'], default='fp32')
    parser.add_argument('--steps', type=int, default=3, help='timed steps (after 1 warm-up)')
    parser.add_argument('--flops', action='store_true',
                        help='also count the floating-point operations of one more step '
                        '(torch.utils.flop_counter: matmuls and convolutions, forward + backward) '
                        'and report tflop_per_step and the achieved gflop_per_s, the matmul / '
                        'convolution split, this machine\'s peak rates (bench_peak.py) and the '
                        'floor: floor_s and step_s / floor_s')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the trainable network (ADDP compile=True); the '
                        'warm-up then runs every timed step\'s masks once (their sequence '
                        'lengths compiled), reported as warmup_s')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_pretrain_model(args.arch).to(device).train()
    model.compile_network(args.compile)
    train_step = make_train_step(model, args.precision, device)
    images = torch.rand(args.batch, 3, 256, 256, device=device)

    def step() -> float:
        sync(device)
        t0 = time.perf_counter()
        train_step(images)
        sync(device)
        return time.perf_counter() - t0

    def seeded_step(i: int) -> float:
        torch.manual_seed(i)  # the same mask ratios (so decoder lengths) in every run
        return step()

    t0 = time.perf_counter()
    for i in (range(args.steps + 1) if args.compile else [0]):  # warm-up
        seeded_step(i)
    warmup_s = time.perf_counter() - t0
    times = [seeded_step(i + 1) for i in range(args.steps)]
    step_s = statistics.median(times)
    result = machine(device)
    result.update(arch=args.arch, batch=args.batch, precision=args.precision,
                  compile=args.compile, warmup_s=round(warmup_s, 1), device=str(device),
                  threads=torch.get_num_threads(), step_s=round(step_s, 3),
                  img_per_s=round(args.batch / step_s, 3),
                  peak_rss_gib=peak_rss_gib())
    if device.type == 'cuda':
        result['peak_cuda_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if args.flops:
        counter = FlopCounterMode(display=False)
        with counter:
            seeded_step(1)  # the masks of the first timed step
        result.update(tflop_per_step=round(counter.get_total_flops() / 1e12, 3),
                      **flop_report(counter, step_s, peak_rates(device)))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
