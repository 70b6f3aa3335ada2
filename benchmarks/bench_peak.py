#!/usr/bin/env python
"""Measure what this machine can do at best: fp32 GFLOP/s of a large matmul and a 3x3 convolution.

The ADDP benchmarks are dominated by matmuls (transformers) and 3x3 convolutions (the VQGAN); with
``--flops`` they report the operations of a step, so ``operations / these rates`` is a floor for the
same math with PyTorch's CPU kernels on this machine. Prints one JSON line.

    python benchmarks/bench_peak.py
"""
import json
import time

import torch


def gflops(fn, flop: float, repeats: int = 10) -> float:
    fn()
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return flop * repeats / (time.perf_counter() - t0) / 1e9


@torch.no_grad()
def main() -> None:
    torch.manual_seed(0)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    result = dict(threads=torch.get_num_threads(), matmul_gflop_per_s=round(
        gflops(lambda: a @ b, 2 * n**3), 1))
    # a VQGAN decoder convolution: 128 -> 128 channels, 3x3, at 128x128, batch 2
    x = torch.randn(2, 128, 128, 128)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False)
    flop = 2 * x.numel() * 128 * 9
    result['conv3x3_gflop_per_s'] = round(gflops(lambda: conv(x), flop, 5), 1)
    x, conv = x.to(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)
    result['conv3x3_channels_last_gflop_per_s'] = round(gflops(lambda: conv(x), flop, 5), 1)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
