#!/usr/bin/env python
"""Check the usual suspects of a slow CPU generation one by one, at ViT-B / VQGAN sizes.

Each line times two ways of doing the same thing, side by side in this process (alternating,
best of ``--repeats``), so the ratio holds on any machine even when its absolute speed drifts:

- ``attention``: ``scaled_dot_product_attention`` against two matmuls and a softmax at the
  encoder's shape (B=2, 12 heads, 257 positions, 64 per head) and the decoder's longest one;
- ``group_norm``: GroupNorm(32) + SiLU on channels-last against contiguous (NCHW) tensors at the
  VQGAN decoder's largest and smallest feature maps;
- ``generators``: drawing a step's uniforms from one ``torch.Generator`` per image (as the sampling
  loop does, so an image depends only on its seed) against one batched draw, for 2 and 64 images;
- ``layout_copy``: converting the (B, 256, 16, 16) latent to channels-last and back, as a step
  would if the formats disagreed;
- ``threads``: torch's intra-op and inter-op thread counts against the cores this process may use;
- ``kernel_rates``: GFLOP/s of the matmul and convolution shapes the models actually run (ViT-B
  linear layers at 2 x 257 rows, the VQGAN decoder's 3x3 convolutions at each resolution,
  channels-last) next to the square 2048^3 matmul and the convolution that ``bench_peak.py`` uses
  for the floor: a shape slower than those cannot reach the floor, whatever the code around it.

Prints one JSON line (with the machine, as every benchmark).

    python benchmarks/bench_suspects.py
"""
import json
import os
import time

import torch
import torch.nn.functional as F

from _common import machine


def best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def side_by_side(a, b, repeats: int) -> dict:
    """Alternate a and b; best time of each in ms and b / a."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(best(a, 1))
        tb.append(best(b, 1))
    ta, tb = min(ta), min(tb)
    return dict(a_ms=round(ta * 1e3, 3), b_ms=round(tb * 1e3, 3), b_over_a=round(tb / ta, 3))


def explicit_attention(q, k, v):
    attn = (q @ k.transpose(-2, -1)) * q.shape[-1]**-0.5
    return attn.softmax(dim=-1) @ v


@torch.no_grad()
def main() -> None:
    repeats = int(os.environ.get('REPEATS', 5))
    torch.manual_seed(0)
    out = machine()
    res = {}
    for name, (B, H, N, D) in dict(encoder=(2, 12, 257, 64), decoder=(2, 16, 385, 48)).items():
        q, k, v = (torch.randn(B, H, N, D) for _ in range(3))
        res[f'attention_{name}'] = dict(
            a='sdpa', b='two matmuls + softmax',
            **side_by_side(lambda: F.scaled_dot_product_attention(q, k, v),
                           lambda: explicit_attention(q, k, v), repeats))
    for C, S in ((128, 256), (512, 16)):
        gn = torch.nn.GroupNorm(32, C, eps=1e-6)
        x = torch.randn(2, C, S, S)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        res[f'group_norm_silu_{C}x{S}'] = dict(
            a='contiguous', b='channels-last',
            **side_by_side(lambda: F.silu(gn(x)), lambda: F.silu(gn(x_cl)), repeats))
    for B in (2, 64):
        gens = [torch.Generator().manual_seed(i) for i in range(B)]
        res[f'generators_{B}'] = dict(
            a='one batched draw', b='one generator per image',
            **side_by_side(lambda: torch.rand(B, 2, 256),
                           lambda: torch.stack([torch.rand(2, 256, generator=g) for g in gens]),
                           repeats))
    z = torch.randn(2, 256, 16, 16)
    res['layout_copy'] = dict(
        a='no conversion', b='to channels-last and back',
        **side_by_side(lambda: z.clone(),
                       lambda: z.contiguous(memory_format=torch.channels_last).contiguous(),
                       repeats))
    rates = {}
    for M, K, N in ((2048, 2048, 2048), (514, 768, 768), (514, 768, 3072), (514, 3072, 768),
                    (770, 768, 2304)):
        a, b = torch.randn(M, K), torch.randn(K, N)
        rates[f'matmul_{M}x{K}x{N}'] = round(2 * M * K * N / best(lambda: a @ b, repeats) / 1e9, 1)
    for C, S in ((512, 16), (512, 32), (256, 64), (256, 128), (128, 256)):
        conv = torch.nn.Conv2d(C, C, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(2, C, S, S).contiguous(memory_format=torch.channels_last)
        flop = 2 * 2 * C * C * 9 * S * S
        rates[f'conv3x3_{C}ch_{S}px_cl'] = round(flop / best(lambda: conv(x), repeats) / 1e9, 1)
    res['kernel_rates'] = rates
    res['threads'] = dict(intra_op=torch.get_num_threads(),
                          inter_op=torch.get_num_interop_threads(),
                          cores_allowed=len(os.sched_getaffinity(0)))
    out.update(suspects=res)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
