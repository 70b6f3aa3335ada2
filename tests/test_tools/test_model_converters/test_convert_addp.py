"""tools/model_converters/convert_addp.py on the official-format fixture."""
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmpretrain.models import VisionTransformer

from addp_mm.checkpoints.loading import load_checkpoint_file

from ...conftest import REPO_ROOT as REPO
from ...tool_runs import TOOL, load_tool


convert_addp = load_tool(TOOL)


def run(*args):
    """Run the converter's main() in-process (like the CLI: SystemExit(message) on errors)."""
    import contextlib
    import io
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = convert_addp.main([str(a) for a in args])
        err = ''
    except SystemExit as e:
        code, err = (1, str(e.code)) if isinstance(e.code, str) else (e.code, '')
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err)


def test_cli_entry_point(tmp_path):
    """The script runs as a command and reports its steps.

    One folder is enough here (a subprocess start costs ~10 s on the CI machine): the command
    line runs the same ``main`` as the in-process tests below, which convert every fixture
    folder."""
    from ...conftest import reference_dirs
    source = osp.join(reference_dirs()[0], 'addp.pth')
    if not osp.isfile(source):
        from ...conftest import _missing_fixture
        _missing_fixture(osp.dirname(source))
    res = subprocess.run([sys.executable, TOOL, source, tmp_path / 'o.pth',
                          '--backbone-only'], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert '[3/3] saving' in res.stdout and (tmp_path / 'o.pth').is_file()


def test_convert_full_and_backbone(reference, tmp_path):
    src = reference.path('addp.pth')
    mtime = os.stat(src).st_mtime
    full = tmp_path / 'full.pth'
    res = run(src, full)
    assert res.returncode == 0, res.stderr
    assert 'dropped' in res.stdout
    sd = load_checkpoint_file(full)['state_dict']
    assert {k.split('.')[0] for k in sd} == {'backbone', 'neck', 'head', 'target_generator'}
    assert not any('decoder_pred' in k or 'pos_mask_embed' == k.split('.')[-1] for k in sd)

    # backbone-only from the release and from our own checkpoint give the same tensors
    bb1, bb2 = tmp_path / 'bb1.pth', tmp_path / 'bb2.pth'
    assert run(src, bb1, '--backbone-only').returncode == 0
    assert run(full, bb2, '--backbone-only').returncode == 0
    sd1 = load_checkpoint_file(bb1)['state_dict']
    sd2 = load_checkpoint_file(bb2)['state_dict']
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)

    # the backbone file drops into mmpretrain's VisionTransformer with nothing missing
    cfg = reference.config
    vit = VisionTransformer(
        arch=dict(embed_dims=cfg['dim'], num_layers=cfg['depth'], num_heads=cfg['heads'],
                  feedforward_channels=4 * cfg['dim']),
        img_size=reference.img_size, patch_size=reference.patch_size, out_type='avg_featmap',
        final_norm=False, pre_norm=False)
    stripped = {k[len('backbone.'):]: v for k, v in sd1.items()}
    missing, unexpected = vit.load_state_dict(stripped, strict=False)
    assert set(missing) <= {'ln2.weight', 'ln2.bias'}  # at most the new fc_norm
    assert unexpected == []
    # the loaded tensors are the release's, block by block
    last = cfg['depth'] - 1
    assert torch.equal(vit.layers[last].attn.qkv.weight,
                       sd1[f'backbone.layers.{last}.attn.qkv.weight'])
    assert os.stat(src).st_mtime == mtime


def test_refuses_to_overwrite(reference, tmp_path):
    out = tmp_path / 'out.pth'
    out.write_bytes(b'keep me')
    res = run(reference.path('addp.pth'), out)
    assert res.returncode != 0 and '--overwrite' in res.stderr
    assert out.read_bytes() == b'keep me'
    assert run(reference.path('addp.pth'), out, '--overwrite').returncode == 0
    assert 'state_dict' in load_checkpoint_file(out)


def test_refuses_its_input_as_output(reference, tmp_path):
    src = tmp_path / 'addp.pth'
    src.write_bytes(open(reference.path('addp.pth'), 'rb').read())
    before = src.read_bytes()
    res = run(src, src, '--overwrite')
    assert res.returncode != 0 and 'input' in res.stderr
    assert src.read_bytes() == before


@pytest.mark.parametrize('name', ['mage.pth', 'vqgan.ckpt'])
def test_wrong_file_fails_loudly(reference, tmp_path, name):
    res = run(reference.path(name), tmp_path / 'x.pth')
    assert res.returncode != 0
    assert 'neither an official ADDP release' in res.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_missing_input(tmp_path):
    res = run(tmp_path / 'nope.pth', tmp_path / 'x.pth')
    assert res.returncode != 0 and 'does not exist' in res.stderr
