"""OfflineFID reuses cached reference statistics only for the inputs they were computed from
(issue 12): the real images (names, sizes, modification times), the Inception file and the
preprocessing are stored beside ``inception_pkl`` and compared on every run."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from addp_mm.utils.provenance import file_sha256

from .test_mmagic_loop import TinyInception, _runner_cfg, inception_file, run_test  # noqa: F401


def _images(folder, n, seed=0):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f'{i}.png')


def test_cached_statistics_are_refused_for_other_inputs(tmp_path, inception_file,  # noqa: F811
                                                        toy_checkpoint):
    real = tmp_path / 'real'
    _images(real, 4)
    pkl = tmp_path / 'stats' / 'real.pkl'
    key_file = tmp_path / 'stats' / 'real.pkl.key.json'

    def cfg(inception=inception_file, root=real, name='w'):
        c = _runner_cfg(tmp_path, inception, toy_checkpoint, root, pkl)
        c.work_dir = str(tmp_path / name)
        c.test_evaluator.metrics[0].fake_nums = 3
        c.test_evaluator.metrics[1].fake_nums = 3
        c.model.num_steps = 2
        return c

    run_test(cfg())
    key = json.loads(key_file.read_text())
    assert key['real_images']['count'] == 4
    assert key['inception_sha256'] == file_sha256(inception_file)
    assert 'LoadImageFromFile' in key['preprocessing']

    # another real image: the old statistics would be wrong
    _images(tmp_path / 'extra', 1, seed=1)
    os.replace(tmp_path / 'extra' / '0.png', real / '9.png')
    with pytest.raises(RuntimeError, match=r'real_images\.count: 4 -> 5') as err:
        run_test(cfg(name='w2'))
    assert 'Delete' in str(err.value) and str(pkl) in str(err.value)
    os.remove(real / '9.png')

    # another Inception network
    torch.manual_seed(1)
    other = tmp_path / 'other_inception.pt'
    torch.jit.script(TinyInception().eval().requires_grad_(False)).save(str(other))
    with pytest.raises(RuntimeError, match='inception_sha256'):
        run_test(cfg(inception=str(other), name='w3'))

    # statistics without a key, real images at hand: their origin is unknown
    os.remove(key_file)
    with pytest.raises(RuntimeError, match='no key file'):
        run_test(cfg(name='w4'))
