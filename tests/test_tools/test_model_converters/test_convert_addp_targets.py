"""convert_addp.py --to TARGET, --img-size, --backbone-only as an alias, and its file handling."""
import os
import subprocess
import sys

import pytest
import torch

from addp_mm.checkpoints.loading import load_checkpoint_file
from addp_mm.checkpoints.convert import resize_pos_embed_grid

from ...tool_runs import TOOL, _run_converter


def _convert(reference, tmp_path, *args, name='out.pth'):
    dst = tmp_path / name
    code, out = _run_converter(reference.path('addp.pth'), dst, *args)
    assert code == 0, out
    return load_checkpoint_file(dst), out


def test_backbone_only_is_to_mmpretrain(reference, tmp_path):
    a, _ = _convert(reference, tmp_path, '--backbone-only', name='a.pth')
    b, out = _convert(reference, tmp_path, '--to', 'mmpretrain', name='b.pth')
    assert a['state_dict'].keys() == b['state_dict'].keys()
    assert all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in a['state_dict'])
    assert all(k.startswith('backbone.') for k in b['state_dict'])
    assert 'dropped pre_norm' in out and 'pos_embed kept at the pre-training grid 16x16' in out
    code = None
    with pytest.raises(SystemExit):
        code = _run_converter(reference.path('addp.pth'), tmp_path / 'c.pth', '--backbone-only',
                              '--to', 'timm')
    assert code is None and not (tmp_path / 'c.pth').exists()


def test_targets_hold_the_same_tensors_under_their_names(reference, tmp_path):
    c = reference.config
    mmp = _convert(reference, tmp_path, '--to', 'mmpretrain', name='mmp.pth')[0]['state_dict']
    mmp = {k[len('backbone.'):]: v for k, v in mmp.items()}
    seg, out = _convert(reference, tmp_path, '--to', 'mmseg-mae', '--num-heads', c['heads'],
                        name='seg.pth')
    seg = seg['state_dict']
    assert 'added layer scale gamma_1/gamma_2 = 1' in out
    assert not any(k.startswith('backbone.') for k in seg)
    for k, v in mmp.items():
        assert torch.equal(seg[k], v), k
    extra = set(seg) - set(mmp)
    assert extra == {f'layers.{i}.{n}' for i in range(c['depth'])
                     for n in ('gamma_1', 'gamma_2', 'attn.relative_position_bias_table')}
    assert all(torch.equal(seg[f'layers.{i}.gamma_1'], torch.ones(c['dim']))
               for i in range(c['depth']))
    table = seg['layers.0.attn.relative_position_bias_table']
    assert table.shape == ((2 * 32 - 1)**2 + 3, c['heads']) and not table.any()  # 512 px
    timm = _convert(reference, tmp_path, '--to', 'timm', name='timm.pth')[0]
    assert set(timm) == {'model'}
    last = c['depth'] - 1
    assert torch.equal(timm['model'][f'blocks.{last}.mlp.fc1.weight'],
                       mmp[f'layers.{last}.ffn.layers.0.0.weight'])
    assert torch.equal(timm['model']['patch_embed.proj.weight'],
                       mmp['patch_embed.projection.weight'])
    assert 'norm.weight' not in timm['model'] and 'cls_token' in timm['model']
    keep = _convert(reference, tmp_path, '--to', 'timm', '--keep-norms', name='keep.pth')[0]
    assert {'norm.weight', 'norm_pre.weight'} <= set(keep['model'])


def test_pos_embed_resized_only_when_asked(reference, tmp_path):
    plain = _convert(reference, tmp_path, '--to', 'mmpretrain', name='p.pth')[0]['state_dict']
    resized, out = _convert(reference, tmp_path, '--to', 'mmpretrain', '--img-size', '224',
                            name='r.pth')
    resized = resized['state_dict']
    assert 'pos_embed resized (bicubic, class entry kept) from 16x16 (256 px) to 14x14' in out
    pe = resized['backbone.pos_embed']
    assert pe.shape[1] == 1 + 14 * 14
    torch.testing.assert_close(pe, resize_pos_embed_grid(plain['backbone.pos_embed'], 14))
    assert torch.equal(pe[:, 0], plain['backbone.pos_embed'][:, 0])
    # the same as mmpretrain's own resize at load
    from mmpretrain.models.utils import resize_pos_embed
    torch.testing.assert_close(pe, resize_pos_embed(plain['backbone.pos_embed'], (16, 16),
                                                    (14, 14), 'bicubic', 1))
    with pytest.raises(SystemExit, match='multiple of the patch size'):
        _run_converter(reference.path('addp.pth'), tmp_path / 'bad.pth', '--img-size', '250')


def test_safetensors_output_for_timm(reference, tmp_path):
    dst = tmp_path / 'vit.safetensors'
    code, _ = _run_converter(reference.path('addp.pth'), dst, '--to', 'timm')
    assert code == 0
    from safetensors.torch import load_file
    sd = load_file(str(dst))
    timm = _convert(reference, tmp_path, '--to', 'timm', name='t.pth')[0]['model']
    assert sd.keys() == timm.keys() and all(torch.equal(sd[k], timm[k]) for k in sd)


def test_directory_as_output_fails_cleanly(reference, tmp_path):
    out_dir = tmp_path / 'checkpoints'
    out_dir.mkdir()
    with pytest.raises(SystemExit, match='is a directory; give a file path'):
        _run_converter(reference.path('addp.pth'), out_dir)
    assert os.listdir(out_dir) == [] and not any(p.name.endswith('.tmp') or '.tmp-' in p.name
                                                 for p in tmp_path.iterdir())


def test_done_in_reports_wall_time_including_imports(tmp_path):
    """The clock starts before the imports (issue 12: "done in 0.1 s" after 7 s). One run (the
    imports take most of it), on a small addp_mm backbone file, not once per fixture."""
    import time
    src = tmp_path / 'bb.pth'
    layers = {f'backbone.layers.0.{n}': torch.zeros(8) for n in ('ln1.weight', 'ln1.bias')}
    torch.save({'state_dict': {'backbone.patch_embed.projection.weight': torch.zeros(8, 3, 16, 16),
                               'backbone.pos_embed': torch.zeros(1, 5, 8),
                               'backbone.cls_token': torch.zeros(1, 1, 8), **layers}}, src)
    t0 = time.time()
    res = subprocess.run([sys.executable, TOOL, src, tmp_path / 'o.pth', '--to', 'mmpretrain'],
                         capture_output=True, text=True)
    wall = time.time() - t0
    assert res.returncode == 0, res.stderr
    reported = float(res.stdout.rsplit('done in ', 1)[1].split(' s')[0])
    assert 0.5 * wall <= reported <= wall + 0.1
