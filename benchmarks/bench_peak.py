#!/usr/bin/env python
"""Measure what this machine can do at best: fp32 GFLOP/s of a large matmul and a 3x3 convolution.

The ADDP benchmarks are dominated by matmuls (transformers) and 3x3 convolutions (the VQGAN); with
``--flops`` they report the operations of a step and the floor ``operations / these rates`` for the
same math with PyTorch's kernels on this machine (``_common.floor``). Prints one JSON line,
with the processor (``_common.machine``): compare figures only within one processor.

    python benchmarks/bench_peak.py
"""
import json

import torch

from _common import machine, peak_rates


def main() -> None:
    torch.manual_seed(0)
    result = machine()
    result.update(peak_rates())
    print(json.dumps(result))


if __name__ == '__main__':
    main()
