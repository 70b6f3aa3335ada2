"""Image grids as PNG files: labelled grids (matplotlib, fixed pixel sizes) for the figures of the
demo and the mini paper, and plain mosaics at the images' own resolution for
``tools/generate.py --grid``."""
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import matplotlib
import numpy as np
import torch
from PIL import Image

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
              title: str = '',
              plain: bool = False) -> str:
    """Save images as a labelled grid, one row per tensor (or, ``plain``, as a mosaic).

    Args:
        rows (Sequence[Tensor]): Each (N, 3, H, W) RGB in [0, 1] (clamped), or uint8 in
            [0, 255] for ``plain``; all rows the same N (``plain``: the last row may be shorter).
        path (str): Output PNG, :func:`grid_size` pixels; ``plain``: the images at their own
            resolution side by side, ``N * W`` x ``len(rows) * H`` pixels, black where the last
            row is short.
        row_labels (Sequence[str], optional): One label per row, left of it (not ``plain``).
        title (str): Figure title (not ``plain``).
        plain (bool): Write the pixels as they are (8-bit, truncated like
            :func:`addp_mm.generation.api.to_uint8`), without labels, title or upscaling.

    Returns:
        str: ``path``.
    """
    if plain:
        return _save_mosaic(rows, path)
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


def _save_mosaic(rows: Sequence[torch.Tensor], path: str) -> str:
    n_cols = len(rows[0])
    _, _, h, w = rows[0].shape
    canvas = np.zeros((len(rows) * h, n_cols * w, 3), dtype=np.uint8)
    for r, row in enumerate(rows):
        if len(row) > n_cols:
            raise ValueError('a mosaic row may not be longer than the first.')
        pixels = row.detach() if row.dtype == torch.uint8 else \
            (row.detach().float() * 255.).clamp(0, 255).to(torch.uint8)
        for c, img in enumerate(pixels.permute(0, 2, 3, 1).cpu().numpy()):
            canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    Image.fromarray(canvas).save(path, format='PNG')
    return path
