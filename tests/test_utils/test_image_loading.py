"""Unreadable images (addp_mm/utils/image_loading.py): the error names the file and gives a fix,
and following the fix works: with ``ignore_empty=True`` a training dataset skips the file."""
import re

import numpy as np
import pytest
from mmpretrain.datasets import CustomDataset
from PIL import Image

import addp_mm  # noqa: F401  (installs the patch)
from addp_mm.utils.image_loading import IGNORE_EMPTY_HINT, UnreadableImageError


@pytest.fixture
def folder(tmp_path):
    """Two good images, an empty file and a file that decodes to nothing."""
    rng = np.random.default_rng(0)
    for name in ('a_good.png', 'b_good.png'):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / 'c_empty.jpg').write_bytes(b'')
    (tmp_path / 'd_garbage.jpg').write_bytes(b'not an image' * 20)
    return tmp_path


def _dataset(folder, **load_kwargs):
    return CustomDataset(data_root=str(folder), with_label=False,
                         pipeline=[dict(type='LoadImageFromFile', **load_kwargs)])


@pytest.mark.parametrize('broken', ['c_empty.jpg', 'd_garbage.jpg'])
def test_following_the_hint_skips_the_unreadable_image(folder, broken):
    dataset = _dataset(folder)
    index = [i for i in range(len(dataset)) if dataset.get_data_info(i)['img_path']
             .endswith(broken)][0]
    with pytest.raises(UnreadableImageError) as info:
        dataset[index]
    message = str(info.value)
    assert broken in message and IGNORE_EMPTY_HINT in message
    # the hint, as a user reads it: "set ignore_empty=True in LoadImageFromFile"
    key, value = re.search(r'set (\w+)=(\w+) in LoadImageFromFile', message).groups()
    assert (key, value) == ('ignore_empty', 'True')

    skipping = _dataset(folder, **{key: value == 'True'})
    sample = skipping[index]  # a training dataset draws another image instead
    assert sample['img'].shape == (8, 8, 3)
    assert not sample['img_path'].endswith(('c_empty.jpg', 'd_garbage.jpg'))


def test_readable_images_load_as_before(folder):
    sample = _dataset(folder, ignore_empty=True)[0]
    assert sample['img_path'].endswith('a_good.png')
    assert sample['img'].shape == (8, 8, 3)
