#!/usr/bin/env python
"""Time one full ADDP pre-training step (VQGAN, token predictor, encoder, decoder, backward, AdamW).

Random weights at the real sizes, 256x256 inputs. Prints one JSON line:
``{"arch", "batch", "precision", "device", "step_s", "img_per_s", "peak_rss_gib", ...}``.

    python benchmarks/bench_pretrain.py --arch base --batch 2 --precision fp32
    python benchmarks/bench_pretrain.py --arch base --batch 2 --precision bf16
"""
import argparse
import json
import os.path as osp
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def build_model(arch: str):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import addp_mm  # noqa: F401
    root = osp.join(osp.dirname(osp.abspath(__file__)), '..', 'configs', 'addp', '_base_', 'models')
    cfg = Config.fromfile(osp.join(root, f'addp_vit-{arch}-p16.py'))
    cfg.model.target_generator.vqgan.checkpoint = None
    cfg.model.target_generator.predictor.checkpoint = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--arch', choices=['base', 'large'], default='base')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--precision', choices=['fp32', 'bf16', 'fp16'], default='fp32')
    parser.add_argument('--steps', type=int, default=3, help='timed steps (after 1 warm-up)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(args.arch).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1.6e-3, betas=(0.9, 0.95), weight_decay=0.05,
                              fused=True)  # as the configs: one kernel for the whole update
    scaler = torch.amp.GradScaler(device.type, growth_interval=500) \
        if args.precision == 'fp16' else None
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(args.precision)
    images = torch.rand(args.batch, 3, 256, 256, device=device)

    def step() -> float:
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = model.loss([images], [])['loss']
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optim)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        if scaler is not None:
            scaler.step(optim)
            scaler.update()
        else:
            optim.step()
        optim.zero_grad(set_to_none=True)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def seeded_step(i: int) -> float:
        torch.manual_seed(i)  # the same mask ratios (so decoder lengths) in every run
        return step()

    seeded_step(0)  # warm-up
    times = [seeded_step(i + 1) for i in range(args.steps)]
    step_s = statistics.median(times)
    result = dict(arch=args.arch, batch=args.batch, precision=args.precision, device=str(device),
                  threads=torch.get_num_threads(), step_s=round(step_s, 3),
                  img_per_s=round(args.batch / step_s, 3),
                  peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3))
    if device.type == 'cuda':
        result['peak_cuda_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
