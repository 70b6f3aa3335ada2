"""tools/generate.py's conditioned modes beyond inpainting: outpainting keeps the kept region's
tokens exactly, and --reconstruct runs end to end (toy generator, CPU)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from addp_mm.generation.sampling import image_seeds

from ..test_generation.helpers import TOY_CONFIG
from ..tool_runs import load_tool


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/generate.py')


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    low = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    path = tmp_path / 'photo.png'
    Image.fromarray(low).resize((80, 72), Image.BICUBIC).save(path)
    return str(path)


def _args(**kw):
    base = dict(inpaint=None, mask=None, outpaint=None, reconstruct=None, keep=None,
                mask_ratio=0.5, seed=0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_outpainting_keeps_the_kept_tokens_exactly(tool, toy_generator, photo):
    grid = int(round(toy_generator.num_tokens**0.5))
    size = toy_generator.image_size
    image, token_mask = tool.conditioning(_args(outpaint=photo, keep=size // 2), toy_generator)
    # the kept center is the (size/2)^2 pixel square: whole tokens in the middle of the grid
    lo, hi = grid // 4, grid - grid // 4
    expected = torch.ones(grid, grid)
    expected[lo:hi, lo:hi] = 0
    assert torch.equal(token_mask, expected.flatten())
    with torch.no_grad():
        _, image_ids = toy_generator.vqgan.encode(image[None])
        out = toy_generator.inpaint(image[None].expand(2, -1, -1, -1),
                                    token_mask[None].expand(2, -1), image_seeds(0, [0, 1]),
                                    num_steps=3)
    kept = token_mask == 0
    assert torch.equal(out['ids'][:, kept], image_ids.expand(2, -1)[:, kept])
    # the border is generated: the two variations differ there and not in the center
    assert not torch.equal(out['ids'][0, ~kept], out['ids'][1, ~kept])
    assert bool((out['mask'][:, kept] == 0).all())


def test_reconstruct_runs_and_keeps_the_unmasked_tokens(tool, toy_generator, toy_checkpoint,
                                                        photo, tmp_path):
    image, token_mask = tool.conditioning(_args(reconstruct=photo, mask_ratio=0.5),
                                          toy_generator)
    L = toy_generator.num_tokens
    assert int(token_mask.sum()) == int(np.ceil(0.5 * L))
    with torch.no_grad():
        _, image_ids = toy_generator.vqgan.encode(image[None])
        out = toy_generator.inpaint(image[None], token_mask[None], image_seeds(0, [0]),
                                    num_steps=3)
    kept = token_mask == 0
    assert torch.equal(out['ids'][0, kept], image_ids[0, kept])

    # the command line: --reconstruct writes the variations as PNGs at the generator's size
    out_dir = tmp_path / 'reconstruct'
    tool.main([TOY_CONFIG, toy_checkpoint, '--out', str(out_dir), '--steps', '3',
               '--no-progress', '--num', '2', '--reconstruct', photo, '--mask-ratio', '0.5'])
    files = sorted(p.name for p in out_dir.glob('*.png'))
    assert files == ['00000.png', '00001.png']
    imgs = [np.asarray(Image.open(out_dir / f)) for f in files]
    assert all(i.shape == (toy_generator.image_size, ) * 2 + (3, ) for i in imgs)
    assert not np.array_equal(imgs[0], imgs[1])
