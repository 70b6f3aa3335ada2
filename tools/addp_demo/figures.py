"""PNG figures of the demo: loss curves and labelled image grids (matplotlib, fixed pixel sizes)."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
import numpy as np
import torch

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

DPI = 100
#: Pixel size of one image cell of :func:`save_grid` (the images are upscaled to fill it).
CELL_PX = 128
#: Extra pixels around a grid for titles.
TITLE_PX = 28
LABEL_PX = 120
#: Smallest width of a grid figure (room for its title).
MIN_WIDTH_PX = 560
#: Pixel size of :func:`plot_losses`.
LOSS_FIG_PX = (1600, 400)


def read_scalars(path: Optional[str]) -> Dict[str, Tuple[List[int], List[float]]]:
    """Read an mmengine ``scalars.json`` into ``{key: (steps, values)}`` (training lines only)."""
    series: Dict[str, Tuple[List[int], List[float]]] = {}
    if path is None or not osp.isfile(path):
        return series
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            step = rec.get('iter', rec.get('step'))
            for k, v in rec.items():
                if k in ('iter', 'step', 'epoch', 'lr', 'time', 'data_time', 'memory', 'eta'):
                    continue
                if isinstance(v, (int, float)):
                    steps, values = series.setdefault(k, ([], []))
                    steps.append(step)
                    values.append(float(v))
    return series


def plot_losses(stages: Dict[str, Optional[str]], path: str) -> str:
    """Training curves of the three stages, read from their ``scalars.json``.

    Panels: tokenizer losses; codebook usage and perplexity; MAGE loss; ADDP loss.

    Args:
        stages (dict): ``{'tokenizer': json, 'predictor': json, 'addp': json}`` paths.
        path (str): Output PNG (``LOSS_FIG_PX`` pixels).

    Returns:
        str: ``path``.
    """
    w, h = LOSS_FIG_PX
    fig, axes = plt.subplots(1, 4, figsize=(w / DPI, h / DPI), dpi=DPI)
    tok = read_scalars(stages.get('tokenizer'))
    for key in ('loss_rec', 'loss_codebook', 'loss_commit', 'loss_perceptual', 'loss_g_adv'):
        if key in tok:
            axes[0].plot(*tok[key], label=key)
    axes[0].set_yscale('log')
    axes[0].set_title('1. VQGAN tokenizer')
    ax = axes[1]
    if 'codebook_usage' in tok:
        ax.plot(*tok['codebook_usage'], color='tab:green', label='usage (window)')
    ax.set_ylim(0, 1.05)
    ax.set_ylabel('fraction of codes used')
    ax.set_title('1. codebook health')
    if 'codebook_perplexity' in tok:
        ax2 = ax.twinx()
        ax2.plot(*tok['codebook_perplexity'], color='tab:purple', label='perplexity')
        ax2.set_ylabel('perplexity')
        ax2.legend(loc='lower right', fontsize=7)
    for i, (stage, title) in enumerate((('predictor', '2. MAGE token predictor'),
                                        ('addp', '3. ADDP pre-training')), start=2):
        s = read_scalars(stages.get(stage))
        if 'loss' in s:
            axes[i].plot(*s['loss'], color='tab:red', label='loss')
        axes[i].set_title(title)
    for ax in axes:
        ax.set_xlabel('iteration')
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc='upper right', fontsize=7)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def grid_size(rows: int, cols: int) -> Tuple[int, int]:
    """(width, height) in pixels of a :func:`save_grid` figure."""
    return max(cols * CELL_PX + LABEL_PX, MIN_WIDTH_PX), rows * CELL_PX + TITLE_PX * 2


def save_grid(rows: Sequence[torch.Tensor],
              path: str,
              row_labels: Optional[Sequence[str]] = None,
              title: str = '') -> str:
    """Save images as a labelled grid, one row per tensor.

    Args:
        rows (Sequence[Tensor]): Each (N, 3, H, W) RGB in [0, 1] (clamped); all rows the same N.
        path (str): Output PNG, :func:`grid_size` pixels.
        row_labels (Sequence[str], optional): One label per row, left of it.
        title (str): Figure title.

    Returns:
        str: ``path``.
    """
    n_rows, n_cols = len(rows), len(rows[0])
    w, h = grid_size(n_rows, n_cols)
    fig = plt.figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    for r, row in enumerate(rows):
        if len(row) != n_cols:
            raise ValueError('every row of a grid needs the same number of images.')
        imgs = row.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        for c, img in enumerate(imgs):
            # axes in figure fractions: label column on the left, title band on top
            left = (LABEL_PX + c * CELL_PX) / w
            bottom = 1 - (2 * TITLE_PX + (r + 1) * CELL_PX) / h + TITLE_PX / h
            ax = fig.add_axes([left, bottom, CELL_PX / w, CELL_PX / h])
            ax.imshow(np.ascontiguousarray(img), interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
        if row_labels is not None:
            fig.text(4 / w, 1 - (2 * TITLE_PX + (r + 0.5) * CELL_PX) / h + TITLE_PX / h,
                     row_labels[r], fontsize=9, va='center', ha='left')
    if title:
        fig.text(0.5, 1 - (TITLE_PX * 0.6) / h, title, fontsize=11, ha='center', va='center')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
