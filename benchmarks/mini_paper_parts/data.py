"""The mini paper's data: scikit-learn's bundled digits as 32x32 RGB in mmpretrain's format."""
import os
import os.path as osp
from typing import Dict

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

IMAGE_SIZE = 32
SHOTS = 10
TEST_FRACTION = 0.25
SPLIT_SEED = 0  # the train/test split is the same for every run


def write_digits(root: str, seed: int) -> Dict[str, str]:
    """Write the digits as 32x32 RGB PNGs with mmpretrain annotation files.

    Layout: ``train/<digit>/<index>.png``, ``test/<digit>/<index>.png`` (index = row of
    ``load_digits``), ``meta/train.txt``, ``meta/test.txt`` (``path label`` lines),
    ``meta/train_10shot.txt`` (10 per class, drawn with ``seed``) and ``meta/classes.txt``.

    Returns:
        dict: ``root``, ``train`` folder, ``test`` folder.
    """
    digits = load_digits()
    labels = digits.target.astype(int)
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(index, test_size=TEST_FRACTION, stratify=labels,
                                           random_state=SPLIT_SEED)
    meta = osp.join(root, 'meta')
    os.makedirs(meta, exist_ok=True)
    for split, rows in (('train', sorted(train_idx)), ('test', sorted(test_idx))):
        lines = []
        for i in rows:
            rel = f'{split}/{labels[i]}/{i:04d}.png'
            path = osp.join(root, rel)
            if not osp.isfile(path):
                os.makedirs(osp.dirname(path), exist_ok=True)
                # 17 grey levels 0..16 -> 0..255, bicubic upsampling, grey -> RGB
                grey = Image.fromarray(np.round(digits.images[i] * 255. / 16.).astype(np.uint8))
                grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC).convert('RGB').save(path)
            lines.append(f'{rel} {labels[i]}')
        with open(osp.join(meta, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    rng = np.random.default_rng(seed)
    few = []
    for c in range(10):
        rows = sorted(i for i in train_idx if labels[i] == c)
        few += [f'train/{c}/{i:04d}.png {c}' for i in sorted(rng.choice(rows, SHOTS,
                                                                        replace=False))]
    with open(osp.join(meta, 'train_10shot.txt'), 'w') as f:
        f.write('\n'.join(few) + '\n')
    with open(osp.join(meta, 'classes.txt'), 'w') as f:
        f.write('\n'.join(str(c) for c in range(10)) + '\n')
    return dict(root=root, train=osp.join(root, 'train'), test=osp.join(root, 'test'))


def read_split(root: str, split: str):
    """(N, 3, 32, 32) float images in [0, 1] and (N,) labels of ``meta/<split>.txt``."""
    with open(osp.join(root, 'meta', f'{split}.txt')) as f:
        rows = [line.split() for line in f if line.strip()]
    images = np.stack([np.asarray(Image.open(osp.join(root, p)).convert('RGB')) for p, _ in rows])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.
    return x, torch.tensor([int(c) for _, c in rows])
