#!/usr/bin/env python
"""Time ADDP unconditional generation (the whole denoising loop) with random weights.

Real model sizes (ViT-B or ViT-L encoder, 8-block decoder, MaskGIT VQGAN), 256x256 images, the
official sampling settings (cosine schedule, choice temperature 6.0 dynamic, categorical
sampling). A warm-up run of one step comes first; then ``--repeats`` full runs are timed and the
median is reported. Prints one JSON line:
``{"arch", "batch", "steps", "precision", "device", "threads", "seconds", "img_per_s",
"cpu_seconds", "peak_rss_gib", ...}`` (``peak_cuda_gib`` too on a GPU). ``seconds`` is wall time;
``cpu_seconds`` is the process's CPU time, which other processes sharing the cores do not inflate
(compare it with ``threads x seconds`` to see how much of the machine the run actually got).

    python benchmarks/bench_generate.py --arch base --batch 2 --steps 20 --precision fp32
    python benchmarks/bench_generate.py --arch base --batch 2 --steps 20 --precision bf16
"""
import argparse
import json
import os.path as osp
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import (GENERATION_CONFIGS, REPO, flop_report, machine, peak_rates, peak_rss_gib,
                     sync)
from addp_mm.generation.api import build_generator
from addp_mm.generation.sampling import (generate, image_seeds, make_generators,
                                         start_unconditional)


class NaiveSampler:
    """The official loop's amount of work, with the same modules: a baseline on the same machine.

    ``ADDPGenerator`` skips the pixel encoder at the first step and runs the token decoder once for
    the batch there (its input is the same for every image), and scores only the grid positions.
    This sampler's logits function undoes those savings (the network's defaults: every position,
    every image, the whole vocabulary, then sliced), and it adds the VQGAN encode of the input
    batch that the official loop performs before its first step.
    """

    def __init__(self, model) -> None:
        self.model = model

    def token_logits(self, x, ids, mask):
        m = self.model
        B, L = mask.shape
        if x is None:  # the official loop feeds the input images at the first step
            x = torch.zeros(B, 3, m.image_size, m.image_size, device=mask.device)
        return m.forward_logits(x, ids, mask)[:, 1:L + 1, :m.vqgan.n_embed].float()

    @torch.no_grad()
    def sample(self, seeds, num_steps, schedule):
        m = self.model
        B, L = len(seeds), m.num_tokens
        device = m.data_preprocessor.device
        options = m.sampling_defaults.replace(num_steps=num_steps, schedule=schedule)
        with m.autocast():
            m.vqgan.encode(torch.rand(B, 3, m.image_size, m.image_size, device=device))
            return generate(self.token_logits, m.vqgan, start_unconditional(B, L, device),
                            options, generators=make_generators(seeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', choices=sorted(GENERATION_CONFIGS), default='base')
    parser.add_argument('--batch', type=int, default=2, help='images generated together')
    parser.add_argument('--steps', type=int, default=20, help='denoising steps')
    parser.add_argument('--schedule', choices=['cosine', 'linear'], default='cosine')
    parser.add_argument('--precision', choices=['fp32', 'bf16', 'fp16'], default='fp32')
    parser.add_argument('--channels-last', type=int, choices=[0, 1], default=1,
                        help='VQGAN decoder in channels-last memory format (same math)')
    parser.add_argument('--repeats', type=int, default=1, help='timed runs (median reported)')
    parser.add_argument('--naive', action='store_true',
                        help='time the official computation order instead (same modules and '
                        'math): pixel encoder and token decoder at every step for every image, '
                        'the head on every position, the VQGAN encode of the input batch the '
                        'official loop starts with (the VQGAN blocks keep their in-place '
                        'activations: same values); combine with --channels-last 0')
    parser.add_argument('--flops', action='store_true',
                        help='also count the floating-point operations of one more run '
                        '(torch.utils.flop_counter: matmuls and convolutions) and report tflop '
                        'and the achieved gflop_per_s, the matmul / convolution split, this '
                        'machine\'s peak rates (bench_peak.py) and the floor: floor_s and '
                        'seconds / floor_s')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the network and the VQGAN decoder (compile=True); '
                        'the warm-up is then a whole run (every sequence length compiled), '
                        'reported as warmup_s')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()

    device = torch.device(args.device)
    model = build_generator(osp.join(REPO, GENERATION_CONFIGS[args.arch]), 'random', device=device,
                            precision=args.precision, channels_last=bool(args.channels_last),
                            compile=args.compile)
    seeds = image_seeds(0, range(args.batch))
    sample = NaiveSampler(model).sample if args.naive else model.sample

    def run(steps: int):
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        sample(seeds, num_steps=steps, schedule=args.schedule)
        sync(device)
        return time.perf_counter() - t0, time.process_time() - c0

    # warm-up: the first (shared, encoder-free) step and one full step; compiled, a whole run
    warmup_s = run(args.steps if args.compile else 2)[0]
    runs = sorted(run(args.steps) for _ in range(args.repeats))
    seconds, cpu_seconds = runs[len(runs) // 2]
    result = machine(device)
    result.update(arch=args.arch, batch=args.batch, steps=args.steps, schedule=args.schedule,
                  precision=args.precision, channels_last=bool(args.channels_last),
                  naive=args.naive, compile=args.compile, warmup_s=round(warmup_s, 1),
                  device=str(device), threads=torch.get_num_threads(),
                  seconds=round(seconds, 3), img_per_s=round(args.batch / seconds, 4),
                  cpu_seconds=round(cpu_seconds, 3),
                  peak_rss_gib=peak_rss_gib())
    if device.type == 'cuda':
        result['peak_cuda_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if args.flops:
        counter = FlopCounterMode(display=False)
        with counter:
            sample(seeds, num_steps=args.steps, schedule=args.schedule)
        result.update(tflop=round(counter.get_total_flops() / 1e12, 3),
                      **flop_report(counter, seconds, peak_rates(device)))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
