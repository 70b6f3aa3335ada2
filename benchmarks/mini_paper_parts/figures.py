"""The mini paper's figures: sample grids, the scored sets side by side, inpainting, the curve."""
import os
import os.path as osp
from typing import Dict, Sequence

import matplotlib
import torch

from addp_mm.generation.api import inpaint
from addp_mm.utils.figures import save_grid

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

#: Order and labels of the scored image sets.
SET_LABELS = dict(addp='ADDP samples', mage='MAGE samples',
                  reconstruction='tokenizer\nrecon. (test)', real='real (test)',
                  random_tokens='random tokens')


def figures(fig_dir: str, sets: Dict[str, torch.Tensor], generator, test_x: torch.Tensor,
            test_y: torch.Tensor, seed: int) -> Dict[str, str]:
    """Sample grid, side-by-side overview of every scored set, inpainting of test digits."""
    os.makedirs(fig_dir, exist_ok=True)
    paths = {}
    cols = 10
    side = test_x.shape[-1]
    n = min(len(sets['addp']), 100) // cols * cols
    if n:
        paths['samples'] = save_grid(list(sets['addp'][:n].view(-1, cols, 3, side, side)),
                                     osp.join(fig_dir, 'addp_samples.png'), None,
                                     f'ADDP: {n} unconditional samples (seed {seed})')
    k = min(cols, *(len(v) for v in sets.values()))
    names = [r for r in SET_LABELS if r in sets]
    paths['overview'] = save_grid([sets[r][:k] for r in names], osp.join(fig_dir, 'overview.png'),
                                  [SET_LABELS[r] for r in names],
                                  'The scored image sets (first images of each)')
    # one test digit per class; the lower half of the token rows is regenerated twice
    first = [int((test_y == c).nonzero()[0]) for c in range(10) if bool((test_y == c).any())]
    images = test_x[first]
    hole = torch.zeros(side, side, dtype=torch.bool)
    hole[side // 2:] = True
    results = [inpaint(generator, img, pixel_mask=hole, seed=seed, indices=(0, 1))['images']
               for img in images]
    rows = [images, images * (~hole).float(), torch.stack([r[0] for r in results]),
            torch.stack([r[1] for r in results])]
    paths['inpainting'] = save_grid(rows, osp.join(fig_dir, 'inpainting.png'),
                                    ['test digit', 'input (lower\nhalf removed)',
                                     'inpainted #1', 'inpainted #2'],
                                    'ADDP inpainting on test digits: lower half regenerated')
    return paths


def plot_teacher_curve(points: Sequence[dict], random_init: dict, path: str) -> str:
    """ADDP's 10-shot probe and FID against its token predictor's masked top-1 (one point per
    predictor budget): does the student track its teacher?

    Args:
        points (Sequence[dict]): ``predictor_iters``, ``predictor_top1``, ``prior_top1``,
            ``linear_probe_10shot``, ``fid`` (ADDP samples), ``mage_fid``.
        random_init (dict): ``linear_probe_10shot`` of random init (a reference line).
        path (str): Output PNG.
    """
    pts = sorted(points, key=lambda p: p['predictor_top1'])
    x = [p['predictor_top1'] for p in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    ax1.plot(x, [p['linear_probe_10shot'] for p in pts], 'o-', label='ADDP')
    ax1.axhline(random_init['linear_probe_10shot'], color='grey', ls='--', label='random init')
    ax1.set_ylabel('10-shot linear probe, top-1 %')
    ax2.plot(x, [p['fid'] for p in pts], 'o-', label='ADDP samples')
    ax2.plot(x, [p['mage_fid'] for p in pts], 's--', label='MAGE samples (the teacher)')
    ax2.set_ylabel('FID (digit features) ↓')
    ax2.set_yscale('log')
    for ax in (ax1, ax2):
        ax.axvline(pts[0]['prior_top1'], color='lightgrey', ls=':', label='per-position prior')
        ax.set_xlabel("token predictor's masked top-1 % (ratio 0.5, test tokens)")
        ax.legend(fontsize=8)
        for p, xv in zip(pts, x):
            ax.annotate(f'{p["predictor_iters"]} it', (xv, ax.get_ylim()[0]), fontsize=7,
                        ha='center', va='bottom', color='grey')
    fig.suptitle('Does the student track its teacher? (seed 0, one point per predictor budget)')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
