"""Labelled image grids as PNG files (matplotlib, fixed pixel sizes): the figures of the demo, the
mini paper and ``tools/generate.py --grid``."""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

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
