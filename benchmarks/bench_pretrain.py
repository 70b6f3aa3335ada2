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
import contextlib
import json
import os.path as osp
import resource
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from machine_info import flop_split, floor, machine, peak_rates  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import addp_mm  # noqa: F401,E402


def build_model(arch: str):
    """The ADDP pre-training model of ``arch`` with random weights (random frozen modules)."""
    root = osp.join(osp.dirname(osp.abspath(__file__)), '..', 'configs', 'addp', '_base_', 'models')
    cfg = Config.fromfile(osp.join(root, f'addp_vit-{arch}-p16.py'))
    cfg.model.target_generator.vqgan.checkpoint = None
    cfg.model.target_generator.predictor.checkpoint = None
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs one line per parameter
    model.init_weights()
    logger.setLevel(level)
    return model


def make_train_step(model, precision: str, device: torch.device,
                    forward_context=contextlib.nullcontext, phase=None):
    """One full pre-training step as the configs run it, shared by the benchmarks.

    Autocast in ``precision`` (fp32: none), fused AdamW (lr 1.6e-3, betas (0.9, 0.95), wd 0.05),
    gradient clipping at 3.0, and for fp16 a GradScaler with the official growth interval 500.

    Args:
        model: An ADDP pre-training model in train mode.
        precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device (torch.device): Where it runs (autocast's device type).
        forward_context (callable): Makes a context entered around the forward pass (e.g. an
            SDPA kernel restriction).
        phase (callable, optional): ``phase(name)`` makes a context around the ``'backward'``
            and ``'optimizer'`` phases (e.g. a profiler range).

    Returns:
        callable: ``step(images) -> loss``: one step on (B, 3, H, W) images, its loss tensor.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1.6e-3, betas=(0.9, 0.95), weight_decay=0.05,
                              fused=True)
    scaler = torch.amp.GradScaler(device.type, growth_interval=500) \
        if precision == 'fp16' else None
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(precision)
    phase = phase or (lambda name: contextlib.nullcontext())

    def step(images: torch.Tensor) -> torch.Tensor:
        with forward_context(), torch.autocast(device.type, dtype=dtype,
                                               enabled=dtype is not None):
            loss = model.loss([images], [])['loss']
        with phase('backward'):
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optim)
            else:
                loss.backward()
        with phase('optimizer'):
            torch.nn.utils.clip_grad_norm_(params, 3.0)
            if scaler is not None:
                scaler.step(optim)
                scaler.update()
            else:
                optim.step()
            optim.zero_grad(set_to_none=True)
        return loss

    return step


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
    model = build_model(args.arch).to(device).train()
    model.compile_network(args.compile)
    train_step = make_train_step(model, args.precision, device)
    images = torch.rand(args.batch, 3, 256, 256, device=device)

    def step() -> float:
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(images)
        if device.type == 'cuda':
            torch.cuda.synchronize()
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
                  peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3))
    if device.type == 'cuda':
        result['peak_cuda_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if args.flops:
        counter = FlopCounterMode(display=False)
        with counter:
            seeded_step(1)  # the masks of the first timed step
        flops = counter.get_total_flops()
        result.update(tflop_per_step=round(flops / 1e12, 3),
                      gflop_per_s=round(flops / 1e9 / step_s, 1), **flop_split(counter))
        result.update(floor(result, peak_rates(device)))
        result['over_floor'] = round(step_s / result['floor_s'], 3)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
