"""PNG figures of the demo: loss curves (matplotlib, fixed pixel sizes); the labelled image grids
are :func:`addp_mm.utils.figures.save_grid`."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
import numpy as np
import torch

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from addp_mm.utils.figures import DPI  # noqa: E402

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


