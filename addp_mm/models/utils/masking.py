"""Mask-ratio schedules of ADDP training and generation (docs/method.md §3.2, §3.3, §4.2)."""
import math
from typing import Tuple

import torch


def training_ratio_grid(num_steps: int = 100,
                        low: float = 0.5,
                        high: float = 1.0,
                        mu: float = 0.55,
                        std: float = 0.25) -> Tuple[torch.Tensor, torch.Tensor]:
    """Grid of mask ratios and their sampling probabilities.

    ``r_k = cos(pi/2 * k/num_steps)``, k = 0..num_steps, restricted to ``low <= r < high`` and
    sorted ascending; each point's probability is proportional to the normal pdf (mu, std) at r_k
    (the truncation to [low, high] only rescales, so it cancels in the normalisation).

    Returns:
        tuple: ratios (M,) float64 ascending, probabilities (M,) float64 summing to 1.
    """
    k = torch.arange(num_steps + 1, dtype=torch.float64)
    r = torch.cos(math.pi / 2 * k / num_steps)
    r = r[(r >= low) & (r < high)].sort().values
    pdf = torch.exp(-0.5 * ((r - mu) / std)**2)
    return r, pdf / pdf.sum()


def num_masked(ratio: float, num_tokens: int) -> int:
    """``ceil(num_tokens * ratio)`` masked positions."""
    return int(math.ceil(num_tokens * ratio))


def nested_masks(noise: torch.Tensor, n_t: int, n_next: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Two nested masks from per-sample noise: the n smallest-noise positions are masked.

    Args:
        noise (Tensor): (B, L) uniform noise.
        n_t (int): Masked count of mask_t.
        n_next (int): Masked count of mask_next (>= n_t).

    Returns:
        tuple: mask_t, mask_next, both (B, L) float with 1 = masked; mask_t is a subset of
        mask_next.
    """
    order = noise.argsort(dim=1)
    rank = order.argsort(dim=1)  # rank of each position's noise
    return (rank < n_t).float(), (rank < n_next).float()


def generation_ratio(step: int, num_steps: int, schedule: str = 'cosine') -> float:
    """Fraction of positions still masked after ``step`` (0-based) of ``num_steps``.

    Args:
        step (int): Step index s.
        num_steps (int): N.
        schedule (str): ``'cosine'``: cos(pi/2 (s+1)/N); ``'linear'``: 1 - (s+1)/N.
    """
    t = (step + 1) / num_steps
    if schedule == 'cosine':
        return math.cos(math.pi / 2 * t)
    if schedule == 'linear':
        return 1. - t
    raise ValueError(f"unknown mask schedule {schedule!r}: use 'cosine' or 'linear'.")
