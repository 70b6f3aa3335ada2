"""The image sets the mini paper scores: ADDP and MAGE samples, reconstructions, random tokens.

Every set is saved once it is made (``sets/<name>.pt``, written atomically), so a rerun after an
interruption scores the same images instead of drawing them again.
"""
import os
import os.path as osp
from typing import Callable, Dict

import torch

from addp_mm.generation.sampling import image_seeds
from .stages import log


def generate_images(sampler, n: int, batch: int, seed: int, what: str) -> torch.Tensor:
    """``n`` unconditional samples of ``sampler`` (``ADDPGenerator`` or ``MAGESampler``: both
    have ``sample(seeds)``); image i is drawn with the seed of (seed, i)."""
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            b = min(batch, n - i)
            out.append(sampler.sample(image_seeds(seed, range(i, i + b)))['images'].float().cpu())
            log(f'{what}: {i + b}/{n} samples')
    return torch.cat(out)


@torch.no_grad()
def reconstructions(vqgan, images: torch.Tensor) -> torch.Tensor:
    """The tokenizer's reconstructions of ``images`` (the ceiling of any generator of its
    tokens)."""
    return torch.cat([vqgan.decode_ids(vqgan.encode(b)[1]).clamp(0, 1) for b in images.split(150)])


@torch.no_grad()
def random_token_images(vqgan, n: int, seed: int) -> torch.Tensor:
    """Decodes of uniformly random tokens (the worst case)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vqgan.n_embed, (n, vqgan.token_grid**2), generator=gen)
    return torch.cat([vqgan.decode_ids(b).clamp(0, 1) for b in ids.split(150)])


def cached_set(folder: str, name: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``folder/name.pt`` if it exists, else ``make()``, saved there atomically."""
    path = osp.join(folder, f'{name}.pt')
    if osp.isfile(path):
        log(f'{name}: {path} made before, reusing it')
        return torch.load(path)
    images = make()
    os.makedirs(folder, exist_ok=True)
    tmp = path + '.tmp'
    torch.save(images, tmp)
    os.replace(tmp, path)
    return images


def image_sets(folder: str,
               makers: Dict[str, Callable[[], torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Every set of ``makers``, each made once (:func:`cached_set`)."""
    return {name: cached_set(folder, name, make) for name, make in makers.items()}
