# Generate images with an ADDP generation config: N PNG files named by index (the folder layout
# torch-fidelity and the paper protocol expect), sharded over processes, resumable, deterministic.
#
#   python tools/generate.py CONFIG CHECKPOINT --out DIR --num N [--batch-size B] [--seed S]
#       [--steps S] [--schedule cosine|linear] [--temperature T]
#       [--temperature-strategy dynamic|static] [--sampling categorical|top_p|argmax] [--top-p P]
#       [--precision fp32|bf16|fp16]
#       [--grid grid.png] [--launcher none|pytorch|slurm] [--debug]
#
# Image i (file {i:05d}.png) depends only on (seed, i) and the sampling options: the same whatever
# the batch size, the number of processes or a restart. With W processes, rank r makes the images
# r, r + W, ...; files that already exist are skipped, so an interrupted run is resumed by running
# the same command again.
#
# The folder holds a manifest (addp_mm_manifest.json: the settings that decide the images, the
# checkpoint's SHA-256, the addp_mm version). A folder is only resumed when its manifest matches;
# another seed, checkpoint, step count, schedule, mode, ... stops with an error that lists what
# differs (pass --overwrite to delete the old images, or choose another --out).
#
# Inpainting / outpainting / reconstruction of a user image (N variations, one per index):
#   --inpaint IMAGE --mask MASK.png     regenerate every token touched by a white mask pixel
#                                       (grey level >= 128; darker pixels are kept)
#   --outpaint IMAGE [--keep 128]       IMAGE is shrunk into the center; the border is generated
#   --reconstruct IMAGE --mask-ratio R  regenerate a random fraction R of the tokens
#
# Multi-GPU (torchrun mistakes `--num` for its own --numa-binding):
#   torchrun --nproc_per_node=8 tools/generate.py CONFIG CKPT --out DIR --num-images 50000 \
#       --launcher pytorch
# CHECKPOINT 'random' samples from randomly initialised weights (smoke tests only).
# It ends with "N images in DIR (M new, K kept)". Exit status: 0 done, 2 a mistake (one `error:`
# line), 130 stopped by Ctrl-C (the images written are kept: run the same command to continue),
# 1 an unexpected error (traceback).
import argparse
import json
import os
import os.path as osp
import re
import sys

# addp_tools (tool code beside this script) also when this file is loaded by importlib
TOOLS_DIR = osp.dirname(osp.abspath(__file__))
if TOOLS_DIR not in sys.path:
    sys.path.insert(0, TOOLS_DIR)

from addp_tools.runtime import quiet_third_party_warnings  # noqa: E402

quiet_third_party_warnings()  # before mmagic (diffusers) is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dist import init_dist  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from addp_mm import __version__  # noqa: E402
from addp_mm.generation.api import (RANDOM_WEIGHTS, build_generator, load_image,  # noqa: E402
                                    load_mask, outpaint_mask, random_token_mask, save_png,
                                    to_uint8)
from addp_mm.generation.sampling import image_seeds, pixel_mask_to_tokens  # noqa: E402
from addp_mm.utils.errors import (ConfigError, RefusedError, add_debug_argument,  # noqa: E402
                                  run_main)
from addp_mm.utils.figures import save_grid  # noqa: E402
from addp_mm.utils.grid import grid_side  # noqa: E402
from addp_mm.utils.provenance import (canonical_sha256, differences, file_sha256,  # noqa: E402
                                      write_json_atomic)
from addp_tools.preflight import check_file, check_image, check_writable_dir  # noqa: E402

MANIFEST = 'addp_mm_manifest.json'
_IMAGE_NAME = re.compile(r'^\d+\.png$')


class OutputFolderError(RefusedError):
    """The --out folder holds images made with other settings (or of unknown origin)."""


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
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the network and the VQGAN decoder (off by default: slower '
                   'than eager on the CPUs measured, minutes of compilation on the first batch; '
                   'see benchmarks/README.md)')
    p.add_argument('--device', help='default: cuda:LOCAL_RANK if available, else cpu')
    p.add_argument('--grid', help='also save the first images as one PNG grid here')
    p.add_argument('--grid-nrow', type=int, default=8, help='images per grid row (and rows)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--inpaint', metavar='IMAGE', help='inpaint IMAGE inside --mask')
    g.add_argument('--outpaint', metavar='IMAGE', help='generate around IMAGE')
    g.add_argument('--reconstruct', metavar='IMAGE', help='regenerate random tokens of IMAGE')
    p.add_argument('--mask', help='mask image for --inpaint, same size as IMAGE: pixels with a '
                   'grey level >= 128 (white) are generated, darker ones kept')
    p.add_argument('--keep', type=int, help='--outpaint: side in pixels of the kept center, '
                   '1 .. image size - 1 (default: half the image)')
    p.add_argument('--overwrite', action='store_true',
                   help='delete the numbered PNGs (and manifest) already in --out that were made '
                   'with other settings, instead of stopping')
    p.add_argument('--mask-ratio', type=float, default=0.5, help='--reconstruct: token fraction')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(p)
    args = p.parse_args(argv)
    if args.num < 1 or args.batch_size < 1:
        p.error('--num and --batch-size must be >= 1')
    if args.inpaint and not args.mask:
        p.error('--inpaint needs --mask MASK.png (white = region to generate)')
    if args.mask and not args.inpaint:
        p.error('--mask is only used with --inpaint')
    if args.keep is not None:
        if not args.outpaint:
            p.error('--keep is only used with --outpaint')
        if args.keep < 1:
            p.error(f'--keep must be >= 1 (the side of the kept center in pixels), got {args.keep}')
    if args.top_p is not None:
        if args.sampling not in (None, 'top_p'):
            p.error('--top-p needs --sampling top_p')
        args.sampling = 'top_p'
    return args


def init_distributed(launcher: str):
    """(rank, world size, local rank) of this process; no communication is needed to shard."""
    if launcher == 'none':
        return 0, 1, 0
    if launcher == 'slurm':
        if not torch.cuda.is_available():
            raise ConfigError('--launcher slurm needs GPUs; on CPUs use torchrun with '
                              '--launcher pytorch.')
        init_dist('slurm', backend='nccl')
    elif not dist.is_initialized():
        dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get('LOCAL_RANK', 0))


def barrier(launcher: str) -> None:
    if launcher != 'none':
        dist.barrier()


def image_path(out_dir: str, index: int, digits: int) -> str:
    return osp.join(out_dir, f'{index:0{digits}d}.png')


def sampling_overrides(args) -> dict:
    return dict(num_steps=args.steps, schedule=args.schedule,
                choice_temperature=args.temperature,
                temperature_strategy=args.temperature_strategy, sampling=args.sampling,
                top_p=args.top_p)


def conditioning(args, model):
    """For --inpaint/--outpaint/--reconstruct: (image (3, S, S), token mask (L,)), else None.

    Raises:
        ConfigError: An image or mask that cannot be used (unreadable, a mask of another size
            than its image, a mask that covers no token, ...): every input here is the user's.
    """
    try:
        return _conditioning(args, model)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e


def _conditioning(args, model):
    size, grid = model.image_size, grid_side(model.num_tokens)
    if args.inpaint:
        image = load_image(args.inpaint, size)
        pixel_mask = load_mask(args.mask, size, image_path=args.inpaint)
    elif args.outpaint:
        keep = size // 2 if args.keep is None else args.keep
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
        raise ConfigError(f'the mask {args.mask!r} covers no token, so there is nothing to '
                          'generate; paint the region to generate white (grey level >= 128).')
    return image, token_mask


def save_image_grid(paths, grid_path: str, nrow: int) -> str:
    """The PNG files ``paths`` as one plain mosaic, ``nrow`` per row (:func:`save_grid`)."""
    images = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert('RGB')).copy())
                          for p in paths]).permute(0, 3, 1, 2)
    return save_grid(list(images.split(nrow)), grid_path, plain=True)


def _input_sha256(path):
    return None if path is None else file_sha256(path)


def output_settings(args, model, options: dict, digits: int) -> dict:
    """Everything that decides the pixels of image i, for the folder's manifest.

    Batch size, process count and device do not change the images (beyond float rounding), so
    they are not part of it; neither is --num (more images can be added to a folder later).
    """
    cfg = Config.fromfile(args.config).model.to_dict()
    sampling = model.sampling_defaults.replace(**options).to_dict()
    for key in ('checkpoint', 'precision', *sampling):
        cfg.pop(key, None)  # recorded below with their effective values
    cfg.pop('compile', None)  # the same images (beyond float rounding), like the device
    mode = ('inpaint' if args.inpaint else 'outpaint' if args.outpaint else
            'reconstruct' if args.reconstruct else 'sample')
    cond = dict(mode=mode)
    if args.inpaint:
        cond.update(image_sha256=_input_sha256(args.inpaint), mask_sha256=_input_sha256(args.mask))
    elif args.outpaint:
        cond.update(image_sha256=_input_sha256(args.outpaint),
                    keep=model.image_size // 2 if args.keep is None else args.keep)
    elif args.reconstruct:
        cond.update(image_sha256=_input_sha256(args.reconstruct), mask_ratio=args.mask_ratio)
    checkpoint = (RANDOM_WEIGHTS if args.checkpoint == RANDOM_WEIGHTS else
                  file_sha256(args.checkpoint))
    return dict(addp_mm_version=__version__, checkpoint_sha256=checkpoint,
                model_config_sha256=canonical_sha256(cfg), image_size=model.image_size,
                precision=model.precision, seed=args.seed, sampling=sampling,
                conditioning=cond, file_name_digits=digits)


def _numbered_images(out_dir: str):
    if not osp.isdir(out_dir):
        return []
    return sorted(f for f in os.listdir(out_dir) if _IMAGE_NAME.match(f))


def prepare_output_folder(args, settings: dict, rank: int, world: int) -> set:
    """Check the --out folder's manifest against ``settings``; write it for a new folder.

    Every process reads the folder before any process changes it, so all of them take the same
    decision (and raise together); rank 0 then writes (or, with --overwrite, clears) it.

    Returns:
        set: The names of the numbered PNGs kept from an earlier run (none after --overwrite).

    Raises:
        OutputFolderError: The manifest differs (the message lists the differing settings), or
            the folder holds numbered PNGs but no manifest.
    """
    path = osp.join(args.out, MANIFEST)
    existing = _numbered_images(args.out)
    old = None
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
    fix = ('Pass --overwrite to delete the images in it and start again with these settings, or '
           'choose another --out folder.')
    if not args.overwrite:
        if old is not None:
            diffs = differences(old.get('settings', {}), settings)
            if diffs:
                raise OutputFolderError(
                    f'{args.out!r} holds images made with other settings ({len(existing)} '
                    f'numbered PNGs; {path}):\n  ' + '\n  '.join(diffs) + f'\n{fix}')
        elif existing:
            raise OutputFolderError(
                f'{args.out!r} holds {len(existing)} numbered PNGs but no {MANIFEST}, so it is '
                f'unknown which model and settings made them. {fix}')
    barrier(args.launcher)
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        if args.overwrite and (existing or old is not None):
            for name in existing:
                os.remove(osp.join(args.out, name))
            print(f'--overwrite: deleted {len(existing)} images in {args.out}')
        if args.overwrite or old is None:
            write_json_atomic(path, dict(settings=settings, info=dict(
                config=args.config, checkpoint=args.checkpoint, num_images=args.num,
                processes=world)))
    barrier(args.launcher)
    os.makedirs(args.out, exist_ok=True)
    return set() if args.overwrite else set(existing)


def _generate(args, model, options: dict, cond, todo, digits: int, bar) -> None:
    """Make and save the images ``todo`` in batches (each file written atomically)."""
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


def check_inputs(args) -> None:
    """The files the command line names, before the model is built."""
    check_file(args.config, 'the config', 'give the path of a generation config (e.g. one under '
               'configs/addp/generation/)')
    if args.checkpoint != RANDOM_WEIGHTS:
        check_file(args.checkpoint, 'the checkpoint', 'give the path of an ADDP checkpoint '
                   '(or "random" for a smoke test with random weights)')
    for option in ('inpaint', 'outpaint', 'reconstruct', 'mask'):
        path = getattr(args, option)
        if path is not None:
            check_image(path, f'--{option}')
    check_writable_dir(args.out, '--out')


def main(argv=None):
    args = parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    check_inputs(args)
    rank, world, local_rank = init_distributed(args.launcher)
    device = args.device or (f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu')

    overrides = {} if args.precision is None else dict(precision=args.precision)
    if args.compile:
        overrides['compile'] = True
    model = build_generator(args.config, args.checkpoint, device=device, **overrides)
    options = sampling_overrides(args)
    cond = conditioning(args, model)

    digits = max(5, len(str(args.num - 1)))
    settings = output_settings(args, model, options, digits)
    kept_names = prepare_output_folder(args, settings, rank, world)
    mine = range(rank, args.num, world)
    todo = [i for i in mine if not osp.isfile(image_path(args.out, i, digits))]
    if len(todo) < len(mine):
        print(f'[rank {rank}] {len(mine) - len(todo)} of {len(mine)} images exist, skipped')
    bar = tqdm(total=len(todo), desc=f'generate (rank {rank}/{world})', unit='img',
               disable=args.no_progress, position=rank)
    try:
        _generate(args, model, options, cond, todo, digits, bar)
    except KeyboardInterrupt:
        written = sum(osp.isfile(image_path(args.out, i, digits)) for i in todo)
        print(f'[rank {rank}] {written} of {len(todo)} new images written before Ctrl-C; they are '
              'kept: run the same command again to make the rest.', file=sys.stderr, flush=True)
        raise
    bar.close()

    barrier(args.launcher)
    if args.grid and rank == 0:
        n = min(args.num, args.grid_nrow * args.grid_nrow)
        save_image_grid([image_path(args.out, i, digits) for i in range(n)], args.grid,
                        args.grid_nrow)
        print(f'grid of {n} images saved to {args.grid}')
    if rank == 0:
        kept = sum(osp.basename(image_path(args.out, i, digits)) in kept_names
                   for i in range(args.num))
        print(f'{args.num} images in {args.out} ({args.num - kept} new, {kept} kept)', flush=True)
    if args.launcher != 'none':
        dist.destroy_process_group()


if __name__ == '__main__':
    sys.exit(run_main(main))
