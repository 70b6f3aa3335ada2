# Generate images with an ADDP generation config: N PNG files named by index (the folder layout
# torch-fidelity and the paper protocol expect), sharded over processes, resumable, deterministic.
#
#   python tools/generate.py CONFIG CHECKPOINT --out DIR --num N [--batch-size B] [--seed S]
#       [--steps S] [--schedule cosine|linear] [--temperature T]
#       [--temperature-strategy dynamic|static] [--sampling categorical|top_p|argmax] [--top-p P]
#       [--precision fp32|bf16|fp16]
#       [--grid grid.png] [--launcher none|pytorch|slurm]
#
# Image i (file {i:05d}.png) depends only on (seed, i) and the sampling options: the same whatever
# the batch size, the number of processes or a restart. With W processes, rank r makes the images
# r, r + W, ...; files that already exist are skipped, so an interrupted run is resumed by running
# the same command again.
#
# Inpainting / outpainting / reconstruction of a user image (N variations, one per index):
#   --inpaint IMAGE --mask MASK.png     regenerate every token touched by the white mask pixels
#   --outpaint IMAGE [--keep 128]       IMAGE is shrunk into the center; the border is generated
#   --reconstruct IMAGE --mask-ratio R  regenerate a random fraction R of the tokens
#
# Multi-GPU: torchrun --nproc_per_node=8 tools/generate.py CONFIG CKPT --out DIR --num-images N \
#     --launcher pytorch        (torchrun mistakes `--num` for its own --numa-binding)
# CHECKPOINT 'random' samples from randomly initialised weights (smoke tests only).
import argparse
import os
import os.path as osp

import torch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Generate PNG images with ADDP')
    p.add_argument('config', help='generation config (configs/addp/generation/*.py)')
    p.add_argument('checkpoint', help='ADDP checkpoint (local path), or "random"')
    p.add_argument('--out', required=True, help='output folder of {index:05d}.png files')
    # --num-images: under torchrun, whose parser takes `--num` for an abbreviation of its own
    # --numa-binding and stops with "ambiguous option".
    p.add_argument('--num', '--num-images', dest='num', type=int, required=True,
                   help='number of images N (spell it --num-images under torchrun)')
    p.add_argument('--batch-size', type=int, default=16, help='images per forward pass')
    p.add_argument('--seed', type=int, default=0, help='run seed; image i uses (seed, i)')
    p.add_argument('--steps', type=int, help='denoising steps (config default)')
    p.add_argument('--schedule', choices=['cosine', 'linear'], help='mask schedule')
    p.add_argument('--temperature', type=float, help='choice temperature (config default 6.0)')
    p.add_argument('--temperature-strategy', choices=['dynamic', 'static'])
    p.add_argument('--sampling', choices=['categorical', 'top_p', 'argmax'])
    p.add_argument('--top-p', type=float, help='nucleus mass; implies --sampling top_p')
    p.add_argument('--precision', choices=['fp32', 'bf16', 'fp16'], help='config default: fp32')
    p.add_argument('--device', help='default: cuda:LOCAL_RANK if available, else cpu')
    p.add_argument('--grid', help='also save the first images as one PNG grid here')
    p.add_argument('--grid-nrow', type=int, default=8, help='images per grid row (and rows)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--inpaint', metavar='IMAGE', help='inpaint IMAGE inside --mask')
    g.add_argument('--outpaint', metavar='IMAGE', help='generate around IMAGE')
    g.add_argument('--reconstruct', metavar='IMAGE', help='regenerate random tokens of IMAGE')
    p.add_argument('--mask', help='mask PNG for --inpaint (white = generate), same size as IMAGE')
    p.add_argument('--keep', type=int, help='--outpaint: side of the kept center (default: half)')
    p.add_argument('--mask-ratio', type=float, default=0.5, help='--reconstruct: token fraction')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if args.num < 1 or args.batch_size < 1:
        p.error('--num and --batch-size must be >= 1')
    if args.inpaint and not args.mask:
        p.error('--inpaint needs --mask MASK.png (white = region to generate)')
    if args.mask and not args.inpaint:
        p.error('--mask is only used with --inpaint')
    if args.top_p is not None:
        if args.sampling not in (None, 'top_p'):
            p.error('--top-p needs --sampling top_p')
        args.sampling = 'top_p'
    return args


def init_distributed(launcher: str):
    """(rank, world size, local rank) of this process; no communication is needed to shard."""
    if launcher == 'none':
        return 0, 1, 0
    import torch.distributed as dist
    if launcher == 'slurm':
        if not torch.cuda.is_available():
            raise RuntimeError('--launcher slurm needs GPUs; on CPUs use torchrun with '
                               '--launcher pytorch.')
        from mmengine.dist import init_dist
        init_dist('slurm', backend='nccl')
    elif not dist.is_initialized():
        dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get('LOCAL_RANK', 0))


def barrier(launcher: str) -> None:
    if launcher != 'none':
        import torch.distributed as dist
        dist.barrier()


def image_path(out_dir: str, index: int, digits: int) -> str:
    return osp.join(out_dir, f'{index:0{digits}d}.png')


def sampling_overrides(args) -> dict:
    return dict(num_steps=args.steps, schedule=args.schedule,
                choice_temperature=args.temperature,
                temperature_strategy=args.temperature_strategy, sampling=args.sampling,
                top_p=args.top_p)


def conditioning(args, model):
    """For --inpaint/--outpaint/--reconstruct: (image (3, S, S), token mask (L,)), else None."""
    from addp_mm.generation.api import (load_image, load_mask, outpaint_mask,
                                        random_token_mask)
    from addp_mm.generation.sampling import pixel_mask_to_tokens
    size, grid = model.image_size, int(round(model.num_tokens**0.5))
    if args.inpaint:
        image = load_image(args.inpaint, size)
        pixel_mask = load_mask(args.mask, size, image_path=args.inpaint)
    elif args.outpaint:
        keep = args.keep or size // 2
        pixel_mask = outpaint_mask(size, keep)
        small = load_image(args.outpaint, keep)
        image = torch.zeros(3, size, size)
        lo = (size - keep) // 2
        image[:, lo:lo + keep, lo:lo + keep] = small
    elif args.reconstruct:
        image = load_image(args.reconstruct, size)
        return image, random_token_mask(model.num_tokens, args.mask_ratio, args.seed)
    else:
        return None
    token_mask = pixel_mask_to_tokens(pixel_mask[None].float(), grid)[0]
    if token_mask.sum() == 0:
        raise ValueError('the mask covers no token: nothing to generate.')
    return image, token_mask


def save_grid(paths, grid_path: str, nrow: int) -> None:
    import numpy as np
    from PIL import Image
    from addp_mm.generation.api import save_png
    imgs = [np.asarray(Image.open(p).convert('RGB')) for p in paths]
    h, w, _ = imgs[0].shape
    rows = (len(imgs) + nrow - 1) // nrow
    canvas = np.zeros((rows * h, min(nrow, len(imgs)) * w, 3), dtype=np.uint8)
    for k, img in enumerate(imgs):
        r, c = divmod(k, nrow)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    save_png(canvas, grid_path)


def main(argv=None):
    args = parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    rank, world, local_rank = init_distributed(args.launcher)
    device = args.device or (f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu')

    from tqdm import tqdm
    from addp_mm.generation.api import build_generator, save_png, to_uint8
    from addp_mm.generation.sampling import image_seeds

    overrides = {} if args.precision is None else dict(precision=args.precision)
    model = build_generator(args.config, args.checkpoint, device=device, **overrides)
    options = sampling_overrides(args)
    cond = conditioning(args, model)

    digits = max(5, len(str(args.num - 1)))
    os.makedirs(args.out, exist_ok=True)
    mine = range(rank, args.num, world)
    todo = [i for i in mine if not osp.isfile(image_path(args.out, i, digits))]
    if len(todo) < len(mine):
        print(f'[rank {rank}] {len(mine) - len(todo)} of {len(mine)} images exist, skipped')
    bar = tqdm(total=len(todo), desc=f'generate (rank {rank}/{world})', unit='img',
               disable=args.no_progress, position=rank)
    for start in range(0, len(todo), args.batch_size):
        indices = todo[start:start + args.batch_size]
        seeds = image_seeds(args.seed, indices)
        if cond is None:
            out = model.sample(seeds, **options)
        else:
            image, token_mask = cond
            B = len(indices)
            out = model.inpaint(image[None].expand(B, -1, -1, -1),
                                token_mask[None].expand(B, -1), seeds, **options)
        for i, img in zip(indices, to_uint8(out['images'])):
            save_png(img, image_path(args.out, i, digits))
        bar.update(len(indices))
    bar.close()

    barrier(args.launcher)
    if args.grid and rank == 0:
        n = min(args.num, args.grid_nrow * args.grid_nrow)
        save_grid([image_path(args.out, i, digits) for i in range(n)], args.grid, args.grid_nrow)
        print(f'grid of {n} images saved to {args.grid}')
    if args.launcher != 'none':
        import torch.distributed as dist
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
