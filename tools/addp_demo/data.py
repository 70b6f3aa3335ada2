"""A small image folder of random crops of the photos bundled with scikit-image."""
import os
import os.path as osp
from typing import Callable, Dict, List

import numpy as np
import skimage.data as data
from PIL import Image

# Colour photos shipped inside the scikit-image wheel (no download). Function name -> how to get
# an RGB uint8 array from it.
PHOTOS: Dict[str, Callable] = {
    'astronaut': lambda d: d.astronaut(),
    'coffee': lambda d: d.coffee(),
    'chelsea': lambda d: d.chelsea(),
    'rocket': lambda d: d.rocket(),
    'hubble_deep_field': lambda d: d.hubble_deep_field(),
    'immunohistochemistry': lambda d: d.immunohistochemistry(),
    'retina': lambda d: d.retina(),
    'motorcycle': lambda d: d.stereo_motorcycle()[0],
}


def load_photos() -> Dict[str, np.ndarray]:
    """The bundled photos as (H, W, 3) uint8 RGB arrays.

    Raises:
        RuntimeError: if one of scikit-image's bundled photos cannot be read.
    """
    photos = {}
    for name, get in PHOTOS.items():
        try:
            img = np.asarray(get(data))
        except Exception as e:  # a fetch error: the photo is not in this scikit-image build
            raise RuntimeError(f'could not load skimage.data photo {name!r} ({e}); this demo '
                               'needs the photos bundled with scikit-image >= 0.21.') from e
        photos[name] = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
    return photos


def write_crops(out_dir: str, size: int, crops_per_photo: int, seed: int = 0,
                min_frac: float = 0.2, max_frac: float = 0.6) -> List[str]:
    """Write random square crops of the bundled photos, resized to ``size``, as PNG files.

    Each crop's side is a uniform fraction [min_frac, max_frac] of the photo's shorter side.
    Existing files are kept (the folder is only written when it holds no PNG yet).

    Args:
        out_dir (str): Folder to fill (created if needed).
        size (int): Output side in pixels.
        crops_per_photo (int): Crops per photo.
        seed (int): Seed of the crop positions.
        min_frac (float): Smallest crop side, as a fraction of the short side.
        max_frac (float): Largest crop side.

    Returns:
        list[str]: Paths of the PNG files in the folder, sorted.
    """
    existing = sorted(f for f in os.listdir(out_dir) if f.endswith('.png')) \
        if osp.isdir(out_dir) else []
    if not existing:
        os.makedirs(out_dir, exist_ok=True)
        rng = np.random.default_rng(seed)
        for name, img in load_photos().items():
            h, w = img.shape[:2]
            for i in range(crops_per_photo):
                side = int(min(h, w) * rng.uniform(min_frac, max_frac))
                y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
                crop = Image.fromarray(img[y:y + side, x:x + side])
                crop.resize((size, size), Image.BICUBIC).save(
                    osp.join(out_dir, f'{name}_{i:03d}.png'))
        existing = sorted(f for f in os.listdir(out_dir) if f.endswith('.png'))
    return [osp.join(out_dir, f) for f in existing]
