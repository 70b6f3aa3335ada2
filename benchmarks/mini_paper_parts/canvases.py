"""The mini paper's detection and segmentation data: its real digits composed onto black canvases.

Nothing is downloaded: every canvas is made of the digit scans that ``data.write_digits`` wrote
(scikit-learn's digits, 32x32 grey PNGs), and the canvases of a split use only the digits of that
split (train canvases: ``meta/train.txt``; test canvases: ``meta/test.txt``), so no test digit is
ever seen in training.

The choices, and why:

* **Canvas**: ``CANVAS`` x ``CANVAS`` = 64 x 64 black (a 16 x 16 token grid for the mini paper's
  patch-4 ViT, 4x the pre-training grid in area), grey PNGs (the loaders read them as 3-channel
  images, as the 32 px digits are grey in RGB).
* **Digits per canvas**: 1 to 4, uniformly (``MAX_DIGITS``). Each is drawn uniformly from the
  split's digit images, so the classes are as balanced as the split (stratified).
* **Scales**: each digit is pasted as a square of side 16, 24 or 32 px (``SCALES``: 0.5, 0.75 and
  1x the 32 px scan, chosen uniformly; downscaling with PIL's antialiased bicubic filter), so the
  pyramid levels of the detector all get objects.
* **No overlap**: the squares of two digits never intersect (so neither do their boxes and
  masks). Placement is rejection sampling: up to ``TRIES`` uniform positions per digit; a digit
  that fits nowhere is dropped (the count then falls short of the drawn 1-4: 2.1 digits per canvas
  on average instead of 2.5; every canvas keeps at least one digit).
* **Instances**: the mask of a digit is its stroke, the pixels of the pasted square with grey value
  >= ``STROKE_THRESHOLD`` (128 of 255: the dark-ink half of the 17 grey levels of the scans after
  upsampling); the box is the mask's extent (COCO ``[x, y, w, h]``, pixel-edge coordinates:
  ``w = x_max - x_min + 1``); the label is the digit class. The faint rims below the threshold stay
  on the canvas and belong to the background.
* **Formats**: COCO instance JSON (``annotations/instances_{split}.json``; categories ``'0'`` ..
  ``'9'`` with ids 1-10; masks as compressed RLE, so holes of 0, 6, 8, 9 are exact; ``area`` is the
  mask's pixel count) for mmdet's ``CocoDataset`` and ``CocoMetric``; label maps
  (``seg_maps/{split}/NNNNNN.png``, uint8: 0 background, 1 + digit for stroke pixels) for mmseg's
  ``BaseSegDataset`` and ``IoUMetric`` (11 classes, background included as in Pascal VOC). Every
  annotation also names its source scan (``source``, the digit's path under the digits folder),
  which mmdet ignores.
* **Determinism**: the canvases of a split depend only on ``(seed, split)`` and the digits folder
  (one NumPy generator per split, so the test canvases do not change when ``num_train`` does).
  ``meta.json`` records the settings; a folder written with the same settings is reused.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

CANVAS = 64
SCALES = (16, 24, 32)
MAX_DIGITS = 4
STROKE_THRESHOLD = 128
TRIES = 50
#: mmdet's class names (category ids 1-10) and mmseg's (label 0 is the background).
DIGIT_CLASSES = tuple(str(c) for c in range(10))
SEG_CLASSES = ('background', ) + DIGIT_CLASSES
SPLITS = ('train', 'test')
_SPLIT_STREAM = dict(train=0, test=1)  # separate random streams per split


def read_digit_list(digits_root: str, split: str) -> List[Tuple[str, int]]:
    """``(relative path, class)`` of the digit scans of ``meta/<split>.txt``."""
    path = osp.join(digits_root, 'meta', f'{split}.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist; write the digits first with '
                                'mini_paper_parts.data.write_digits(root, seed).')
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    return [(p, int(c)) for p, c in rows]


def _place(rng: np.random.Generator, taken: List[Tuple[int, int, int]], side: int):
    """A top-left corner for a ``side`` square that intersects no square in ``taken``."""
    for _ in range(TRIES):
        x, y = (int(v) for v in rng.integers(0, CANVAS - side + 1, 2))
        if all(x + side <= tx or tx + ts <= x or y + side <= ty or ty + ts <= y
               for tx, ty, ts in taken):
            return x, y
    return None


def _digit_pixels(digits_root: str, rel: str, side: int, cache: dict) -> np.ndarray:
    """(side, side) uint8 grey scan of a digit, downscaled from 32 px when ``side`` < 32."""
    key = (rel, side)
    if key not in cache:
        with Image.open(osp.join(digits_root, rel)) as img:
            grey = img.convert('L')
            if grey.size != (side, side):
                grey = grey.resize((side, side), Image.BICUBIC)
            cache[key] = np.asarray(grey, dtype=np.uint8)
    return cache[key]


def compose_canvas(rng: np.random.Generator, digits_root: str,
                   digits: Sequence[Tuple[str, int]], cache: dict):
    """One canvas: (64, 64) uint8 image, (64, 64) uint8 label map and its instances.

    Returns:
        tuple: ``image``, ``label_map`` and a list of instances, each a dict with ``mask``
        ((64, 64) bool), ``label`` (digit), ``source`` (relative path of the scan) and ``square``
        ((x, y, side) where it was pasted).
    """
    image = np.zeros((CANVAS, CANVAS), np.uint8)
    label_map = np.zeros((CANVAS, CANVAS), np.uint8)
    instances, taken = [], []
    want = int(rng.integers(1, MAX_DIGITS + 1))
    for _ in range(want):
        rel, label = digits[int(rng.integers(len(digits)))]
        side = int(SCALES[int(rng.integers(len(SCALES)))])
        where = _place(rng, taken, side)
        if where is None:
            continue
        x, y = where
        pixels = _digit_pixels(digits_root, rel, side, cache)
        stroke = pixels >= STROKE_THRESHOLD
        if not stroke.any():  # never seen with these scans; a box needs a pixel
            continue
        taken.append((x, y, side))
        image[y:y + side, x:x + side] = pixels
        label_map[y:y + side, x:x + side][stroke] = label + 1
        mask = np.zeros((CANVAS, CANVAS), bool)
        mask[y:y + side, x:x + side] = stroke
        instances.append(dict(mask=mask, label=label, source=rel, square=(x, y, side)))
    if not instances:  # the first digit always fits an empty canvas; kept as a guard
        raise RuntimeError('a canvas got no digit; the digit list is empty or unreadable.')
    return image, label_map, instances


def coco_annotation(mask: np.ndarray, ann_id: int, image_id: int, label: int,
                    source: str) -> dict:
    """COCO annotation of one instance mask (compressed RLE, box = the mask's extent)."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return dict(id=ann_id, image_id=image_id, category_id=label + 1, iscrowd=0,
                bbox=[x0, y0, x1 - x0 + 1, y1 - y0 + 1], area=int(mask.sum()),
                segmentation=rle, source=source)


def _settings(digits_root: str, seed: int, num_train: int, num_test: int) -> dict:
    return dict(digits_root=osp.abspath(digits_root), seed=seed, num_train=num_train,
                num_test=num_test, canvas=CANVAS, scales=list(SCALES), max_digits=MAX_DIGITS,
                stroke_threshold=STROKE_THRESHOLD, tries=TRIES)


def canvas_paths(out_root: str) -> Dict[str, str]:
    """Where :func:`write_canvases` puts things (also what the det/seg configs are told).

    Absolute paths: mmdet and mmseg join a relative ``ann_file`` or image folder to
    ``data_root``, so relative ones would name ``root/root/...``."""
    out_root = osp.abspath(out_root)
    out = dict(root=out_root, meta=osp.join(out_root, 'meta.json'))
    for split in SPLITS:
        out[f'{split}_json'] = osp.join(out_root, 'annotations', f'instances_{split}.json')
        out[f'{split}_images'] = osp.join(out_root, 'images', split)
        out[f'{split}_seg_maps'] = osp.join(out_root, 'seg_maps', split)
    return out


def write_canvases(digits_root: str, out_root: str, seed: int, num_train: int = 3000,
                   num_test: int = 300) -> Dict[str, object]:
    """Compose the digit canvases of both splits (reused when written with the same settings).

    Layout under ``out_root``: ``images/{train,test}/NNNNNN.png`` (64 x 64 grey),
    ``seg_maps/{train,test}/NNNNNN.png`` (uint8 labels 0-10),
    ``annotations/instances_{train,test}.json`` (COCO) and ``meta.json`` (settings and counts).

    Args:
        digits_root (str): The mini paper's digits folder (``data.write_digits``).
        out_root (str): Output folder.
        seed (int): Seed of the composition (each split has its own stream).
        num_train (int): Train canvases. Defaults to 3000.
        num_test (int): Test canvases. Defaults to 300.

    Returns:
        dict: the paths of :func:`canvas_paths` plus ``classes`` (mmdet), ``seg_classes``
        (mmseg), ``num_train``, ``num_test`` and ``instances`` (per split).
    """
    if num_train < 1 or num_test < 1:
        raise ValueError(f'num_train and num_test must be >= 1, got {num_train} and {num_test}.')
    paths = canvas_paths(out_root)
    settings = _settings(digits_root, seed, num_train, num_test)
    if osp.isfile(paths['meta']):
        with open(paths['meta']) as f:
            meta = json.load(f)
        if meta.get('settings') == settings:
            return dict(paths, **meta['result'])
    counts = dict(train=num_train, test=num_test)
    result = dict(classes=list(DIGIT_CLASSES), seg_classes=list(SEG_CLASSES),
                  num_train=num_train, num_test=num_test, instances={})
    cache: dict = {}
    categories = [dict(id=c + 1, name=name, supercategory='digit')
                  for c, name in enumerate(DIGIT_CLASSES)]
    for split in SPLITS:
        digits = read_digit_list(digits_root, split)
        rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
        os.makedirs(paths[f'{split}_images'], exist_ok=True)
        os.makedirs(paths[f'{split}_seg_maps'], exist_ok=True)
        images, annotations = [], []
        for i in range(counts[split]):
            image, label_map, instances = compose_canvas(rng, digits_root, digits, cache)
            name = f'{i:06d}.png'
            Image.fromarray(image).save(osp.join(paths[f'{split}_images'], name))
            Image.fromarray(label_map).save(osp.join(paths[f'{split}_seg_maps'], name))
            images.append(dict(id=i + 1, file_name=name, height=CANVAS, width=CANVAS))
            for inst in instances:
                annotations.append(coco_annotation(inst['mask'], len(annotations) + 1, i + 1,
                                                   inst['label'], inst['source']))
        os.makedirs(osp.dirname(paths[f'{split}_json']), exist_ok=True)
        with open(paths[f'{split}_json'], 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        result['instances'][split] = len(annotations)
    with open(paths['meta'], 'w') as f:
        json.dump(dict(settings=settings, result=result), f, indent=1)
    return dict(paths, **result)
