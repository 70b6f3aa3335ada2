"""tools/generate.py only resumes an output folder made with the same settings (issue 12), and the
image inputs of the inpainting modes fail or behave as documented."""
import json

import numpy as np
import pytest
from PIL import Image

from addp_mm import __version__
from addp_mm.generation.api import MASK_THRESHOLD, load_image, load_mask
from addp_mm.utils.provenance import file_sha256

from .test_generate import _read, _run, tool  # noqa: F401  (fixture)


def _manifest(out):
    return json.loads((out / 'addp_mm_manifest.json').read_text())


def test_folder_is_resumed_only_with_the_same_settings(tool, toy_checkpoint,  # noqa: F811
                                                       tmp_path):
    out = tmp_path / 'samples'
    _run(tool, toy_checkpoint, out, '--num', 2, '--batch-size', 2)
    settings = _manifest(out)['settings']
    assert settings['checkpoint_sha256'] == file_sha256(toy_checkpoint)
    assert settings['addp_mm_version'] == __version__
    assert settings['seed'] == 0 and settings['sampling']['num_steps'] == 3
    before = _read(out)

    # each of these would have mixed images of other settings into the folder
    cases = [(('--seed', 1), 'seed: 0 -> 1'),
             (('--steps', 4), 'sampling.num_steps: 3 -> 4'),
             (('--schedule', 'linear'), "sampling.schedule: 'cosine' -> 'linear'"),
             (('--temperature', 2.0), 'sampling.choice_temperature')]
    for extra, named in cases:
        with pytest.raises(tool.OutputFolderError) as err:
            _run(tool, toy_checkpoint, out, '--num', 3, *extra)
        assert named in str(err.value) and '--overwrite' in str(err.value), str(err.value)
    with pytest.raises(tool.OutputFolderError, match='checkpoint_sha256'):
        _run(tool, 'random', out, '--num', 3)
    assert _read(out).keys() == before.keys()  # nothing written by the refused runs

    # the same settings resume (a larger --num adds images)
    _run(tool, toy_checkpoint, out, '--num', 3)
    assert sorted(_read(out)) == ['00000.png', '00001.png', '00002.png']

    # --overwrite starts again with the new settings
    _run(tool, toy_checkpoint, out, '--num', 2, '--seed', 1, '--overwrite')
    assert sorted(_read(out)) == ['00000.png', '00001.png']
    assert _manifest(out)['settings']['seed'] == 1
    assert not np.array_equal(_read(out)['00000.png'], before['00000.png'])


def test_images_without_manifest_are_refused(tool, toy_checkpoint, tmp_path):  # noqa: F811
    out = tmp_path / 'old'
    out.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(out / '00000.png')
    with pytest.raises(tool.OutputFolderError, match='no addp_mm_manifest.json'):
        _run(tool, toy_checkpoint, out, '--num', 1)


def test_sharded_runs_share_one_manifest(tool, toy_checkpoint, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(tool, 'barrier', lambda launcher: None)
    out = tmp_path / 'sharded'
    for rank in (0, 1):
        monkeypatch.setattr(tool, 'init_distributed', lambda launcher, r=rank: (r, 2, 0))
        _run(tool, toy_checkpoint, out, '--num', 2)
        if rank == 0:
            first = (out / 'addp_mm_manifest.json').read_text()
    assert (out / 'addp_mm_manifest.json').read_text() == first  # rank 1 did not rewrite it
    assert _manifest(out)['info']['processes'] == 2
    # a rank started with another seed stops instead of adding its images
    monkeypatch.setattr(tool, 'init_distributed', lambda launcher: (1, 2, 0))
    with pytest.raises(tool.OutputFolderError, match='seed'):
        _run(tool, toy_checkpoint, out, '--num', 4, '--seed', 5)


def test_outpaint_keep_is_validated(tool, toy_checkpoint, tmp_path):  # noqa: F811
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / 'img.png')
    for keep in ('0', '-3'):
        with pytest.raises(SystemExit):
            tool.parse_args(['c', 'ckpt', '--out', 'o', '--num', '1', '--outpaint',
                             str(tmp_path / 'img.png'), '--keep', keep])
    with pytest.raises(SystemExit):  # --keep without --outpaint
        tool.parse_args(['c', 'ckpt', '--out', 'o', '--num', '1', '--keep', '8'])
    with pytest.raises(ValueError, match='must be smaller than the image'):
        _run(tool, toy_checkpoint, tmp_path / 'o', '--num', 1, '--outpaint',
             tmp_path / 'img.png', '--keep', 64)


def test_mask_threshold_and_empty_image(tmp_path):
    grey = np.full((32, 32), 127, np.uint8)
    grey[:, 16:] = MASK_THRESHOLD  # right half: white enough
    Image.fromarray(grey).save(tmp_path / 'mask.png')
    mask = load_mask(str(tmp_path / 'mask.png'), 32)
    assert not mask[:, :16].any() and mask[:, 16:].all()

    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ValueError, match='empty.png.*0 bytes'):
        load_image(str(tmp_path / 'empty.png'), 32)
    (tmp_path / 'text.jpg').write_text('not an image')
    with pytest.raises(ValueError, match='text.jpg.*cannot be read as an image'):
        load_mask(str(tmp_path / 'text.jpg'), 32)
