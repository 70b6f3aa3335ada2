"""tools/generate.py end to end on the toy config (CPU, in-process)."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..test_generation.helpers import TOY_CONFIG
from ..tool_runs import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/generate.py')


def _run(tool, checkpoint, out, *extra):
    tool.main([TOY_CONFIG, checkpoint, '--out', str(out), '--steps', '3', '--no-progress',
               *map(str, extra)])


def _read(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(Path(folder).glob('*.png'))}


def assert_same_images(a: dict, b: dict) -> None:
    """Same files and pixels. Different batch compositions only change float rounding inside the
    convolutions (the tokens are identical, see test_generator.py), so a pixel may move by one
    uint8 level; anything more is a different image."""
    assert sorted(a) == sorted(b)
    for name in a:
        diff = np.abs(a[name].astype(int) - b[name].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01, name


def test_writes_n_pngs_and_a_grid(tool, toy_checkpoint, tmp_path):
    out = tmp_path / 'samples'
    _run(tool, toy_checkpoint, out, '--num', 5, '--batch-size', 2, '--grid', tmp_path / 'grid.png')
    images = _read(out)
    assert sorted(images) == [f'{i:05d}.png' for i in range(5)]
    assert all(img.shape == (64, 64, 3) and img.dtype == np.uint8 for img in images.values())
    assert len({img.tobytes() for img in images.values()}) == 5  # five different images
    grid = np.asarray(Image.open(tmp_path / 'grid.png'))
    assert grid.shape == (64, 5 * 64, 3)
    assert np.array_equal(grid[:, 2 * 64:3 * 64], images['00002.png'])


def test_rerun_skips_existing_files(tool, toy_checkpoint, tmp_path, capsys):
    out = tmp_path / 'samples'
    _run(tool, toy_checkpoint, out, '--num', 4, '--batch-size', 2)
    before = _read(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob('*.png')}
    os.remove(out / '00001.png')
    _run(tool, toy_checkpoint, out, '--num', 4, '--batch-size', 2)
    assert '3 of 4 images exist, skipped' in capsys.readouterr().out
    for p in out.glob('*.png'):
        if p.name != '00001.png':
            assert p.stat().st_mtime_ns == stamps[p.name], f'{p.name} was rewritten'
    assert_same_images(_read(out), before)  # the missing image is made again, the same


def test_images_do_not_depend_on_batch_size_or_sharding(tool, toy_checkpoint, tmp_path,
                                                        monkeypatch):
    _run(tool, toy_checkpoint, tmp_path / 'b1', '--num', 4, '--batch-size', 1)
    _run(tool, toy_checkpoint, tmp_path / 'b3', '--num', 4, '--batch-size', 3)
    single = _read(tmp_path / 'b1')
    assert_same_images(_read(tmp_path / 'b3'), single)
    # another seed gives other images
    _run(tool, toy_checkpoint, tmp_path / 'seed1', '--num', 1, '--seed', 1)
    assert not np.array_equal(_read(tmp_path / 'seed1')['00000.png'], single['00000.png'])
    # two "processes": rank r makes the images r, r + 2
    monkeypatch.setattr(tool, 'barrier', lambda launcher: None)
    for rank in (0, 1):
        monkeypatch.setattr(tool, 'init_distributed', lambda launcher, r=rank: (r, 2, 0))
        _run(tool, toy_checkpoint, tmp_path / 'sharded', '--num', 4, '--batch-size', 4)
        made = sorted(p.name for p in (tmp_path / 'sharded').glob('*.png'))
        assert made == [f'{i:05d}.png' for i in range(4) if i % 2 == 0 or rank == 1]
    assert_same_images(_read(tmp_path / 'sharded'), single)


def test_inpaint_and_outpaint_modes(tool, toy_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(tmp_path / 'img.png')
    mask = np.zeros((80, 96), dtype=np.uint8)
    mask[20:40, 30:60] = 255
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    _run(tool, toy_checkpoint, tmp_path / 'inpaint', '--num', 2, '--inpaint', tmp_path / 'img.png',
         '--mask', tmp_path / 'mask.png')
    _run(tool, toy_checkpoint, tmp_path / 'outpaint', '--num', 2, '--outpaint',
         tmp_path / 'img.png', '--keep', 32)
    for name in ('inpaint', 'outpaint'):
        images = _read(tmp_path / name)
        assert sorted(images) == ['00000.png', '00001.png']
        assert not np.array_equal(images['00000.png'], images['00001.png'])

    Image.fromarray(mask[:40]).save(tmp_path / 'small_mask.png')
    with pytest.raises(ValueError, match='draw the mask at the image size'):
        _run(tool, toy_checkpoint, tmp_path / 'bad', '--num', 1, '--inpaint',
             tmp_path / 'img.png', '--mask', tmp_path / 'small_mask.png')
    with pytest.raises(FileNotFoundError, match="missing.pth' does not exist"):
        _run(tool, str(tmp_path / 'missing.pth'), tmp_path / 'none', '--num', 1)
