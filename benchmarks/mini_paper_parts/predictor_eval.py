"""How good is the token predictor, before ADDP distils it? Masked top-1 and cross-entropy.

On the test digits' tokens, at mask ratios 0.5 and 0.75 (4 random masks per image, a fixed seed),
the predictor's top-1 and cross-entropy at the masked positions, beside two references that use
the train split's tokens only:

- ``prior_top1``: always the most frequent code of each grid position (a predictor that ignores
  the visible tokens scores this);
- ``nn_top1``: copy the masked tokens from the 10 train images whose visible tokens agree most
  (a majority vote per position; a non-parametric model of digits).
"""
from typing import Dict

import torch
import torch.nn.functional as F

RATIOS = (0.5, 0.75)
REPEATS = 4
NEIGHBOURS = 10
MASK_SEED = 0


def random_masks(num: int, length: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(num, length) bool masks with ``round(ratio * length)`` masked positions each."""
    rank = torch.rand(num, length, generator=generator).argsort(1).argsort(1)
    return rank < round(ratio * length)


def nearest_neighbour_copy(train_ids: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                           k: int = NEIGHBOURS) -> torch.Tensor:
    """Predicted ids at masked positions: majority vote of the k train images that agree most at
    the visible positions (ties: the lowest id). Returns (N, L); only masked entries matter."""
    out = ids.clone()
    for i in range(len(ids)):
        visible = ~mask[i]
        agree = (train_ids[:, visible] == ids[i, visible]).sum(1)
        nearest = train_ids[agree.topk(k).indices][:, mask[i]]  # (k, masked)
        out[i, mask[i]] = torch.mode(nearest, 0).values
    return out


@torch.no_grad()
def evaluate_predictor(predictor, train_ids: torch.Tensor, test_ids: torch.Tensor) -> Dict:
    """The report of ``results.json['predictor']``.

    Args:
        predictor: The frozen ``MAGETokenPredictor`` (``predictor(ids, mask)`` -> logits).
        train_ids (Tensor): (N, L) ids of the train images (references only).
        test_ids (Tensor): (M, L) ids of the test images.

    Returns:
        dict: for each ratio r, ``top1_r``, ``ce_r``, ``prior_top1_r``, ``nn_top1_r`` (percent /
        nats); and ``top1``... without suffix for the issue's keys at r = 0.5 (``top1_0.5``,
        ``top1_0.75``, ``ce`` (at 0.5), ``prior_top1``, ``nn_top1`` (at 0.5)).
    """
    L = test_ids.shape[1]
    num_codes = int(max(train_ids.max(), test_ids.max())) + 1
    mode = torch.stack([torch.bincount(train_ids[:, i], minlength=num_codes).argmax()
                        for i in range(L)])
    gen = torch.Generator().manual_seed(MASK_SEED)
    out = {}
    for ratio in RATIOS:
        mask = torch.cat([random_masks(len(test_ids), L, ratio, gen) for _ in range(REPEATS)])
        ids = test_ids.repeat(REPEATS, 1)
        logits = torch.cat([predictor(i, m.float()) for i, m in zip(ids.split(256),
                                                                    mask.split(256))]).float()
        target = ids[mask]
        out[f'top1_{ratio}'] = 100. * float((logits.argmax(-1)[mask] == target).float().mean())
        out[f'ce_{ratio}'] = float(F.cross_entropy(logits[mask], target))
        out[f'prior_top1_{ratio}'] = 100. * float((mode.expand_as(ids)[mask] == target)
                                                  .float().mean())
        copy = nearest_neighbour_copy(train_ids, ids, mask)
        out[f'nn_top1_{ratio}'] = 100. * float((copy[mask] == target).float().mean())
    out.update(ce=out['ce_0.5'], prior_top1=out['prior_top1_0.5'], nn_top1=out['nn_top1_0.5'])
    return out
