"""``convert_addp.py --check CONFIG`` looks at the whole model, and ``--img-size`` resizes every
position table (issue 23, item 2): the toy 64 px pre-training config against the 256 px fixture
release."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import addp_mm  # noqa: F401
from addp_mm.checkpoints import load_checkpoint_file
from addp_mm.checkpoints.convert import (ADDP_POSITION_TABLES, convert_official_addp,
                                         resize_position_tables)
from addp_mm.checkpoints.model_check import check_weights
from addp_mm.checkpoints.weights import extract_state_dict

from ..conftest import REPO_ROOT
from ..tool_runs import _run_converter as run_converter

TOY = osp.join(REPO_ROOT, 'configs', 'addp',
               'addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')


def toy_config(reference, tmp_path) -> str:
    """The toy 64 px config with the fixture's widths and depths (as --cfg-options would set
    them); its input size, 64 px, stays."""
    c = reference.config
    cfg = Config.fromfile(TOY)
    cfg.merge_from_dict({
        'model.backbone.arch': dict(embed_dims=c['dim'], num_layers=c['depth'],
                                    num_heads=c['heads']),
        'model.neck.embed_dims': c['dim'], 'model.neck.decoder_depth': c['dec_depth'],
        'model.neck.decoder_num_heads': c['dec_heads'],
        'model.head.in_dims': c['dim'], 'model.head.word_dims': c['dim'],
        'model.target_generator.predictor.embed_dims': c['tp_dim'],
        'model.target_generator.predictor.depth': c['tp_depth'],
        'model.target_generator.predictor.num_heads': c['tp_heads'],
        'model.target_generator.predictor.decoder_depth': c.get('tp_dec_depth', c['tp_depth']),
        'model.target_generator.predictor.decoder_num_heads': c.get('tp_dec_heads',
                                                                    c['tp_heads']),
    })
    assert cfg.model.backbone.img_size == 64 and cfg.load_from is None
    path = tmp_path / 'toy64.py'
    cfg.dump(str(path))
    return str(path)


def test_a_256px_file_fails_the_64px_check_naming_every_table_and_img_size(reference, tmp_path):
    toy = toy_config(reference, tmp_path)
    code, out = run_converter(reference.path('addp.pth'), tmp_path / 'addp256.pth', '--check',
                              toy)
    assert code == 1, out
    report = check_weights(Config.fromfile(toy), str(tmp_path / 'addp256.pth'), verbose=False)
    assert not report.ok and report.mechanism == 'load_from'
    # every position table of the model, not only the encoder's
    assert sorted(m.split(':')[0] for m in report.size_mismatch) == sorted(ADDP_POSITION_TABLES)
    assert 'neck.decoder_pos_mask_embed: file (1, 257' in '\n'.join(report.size_mismatch)
    assert any('--img-size 64' in h and '256 px' in h for h in report.hints)
    # the other parts were looked at too: everything else came from the file
    assert set(report.parts) == {'neck', 'head', 'target_generator.vqgan',
                                 'target_generator.predictor'}
    assert report.parts['head']['from_file'] == report.parts['head']['total'] > 0
    assert report.parts['neck']['from_file'] == report.parts['neck']['total'] - 3
    assert 'SIZE MISMATCH' in out and 'check FAILED' in out and '--img-size 64' in out


def test_img_size_resizes_every_table_and_the_check_passes(reference, tmp_path):
    toy = toy_config(reference, tmp_path)
    dst = tmp_path / 'addp64.pth'
    code, out = run_converter(reference.path('addp.pth'), dst, '--img-size', '64', '--check', toy)
    assert code == 0, out
    assert '6 position tables (encoder, decoder, token predictor) resized' in out
    assert 'check passed' in out
    sd = load_checkpoint_file(dst)['state_dict']
    for k in ADDP_POSITION_TABLES:
        assert sd[k].shape[-2] == 1 + 4 * 4, k
    full, _, _ = convert_official_addp(extract_state_dict(load_checkpoint_file(
        reference.path('addp.pth'))))
    for k in ADDP_POSITION_TABLES:  # the class entry is kept as it is
        assert torch.equal(sd[k][..., :1, :], full[k][..., :1, :]), k
    report = check_weights(Config.fromfile(toy), str(dst), verbose=False)
    assert report.ok and report.size_mismatch == [] and report.missing == []
    assert report.transformed == [] and len(report.loaded) > 0
    assert all(c['from_file'] == c['total'] for c in report.parts.values())


def test_frozen_modules_from_nowhere_fail_naming_their_field(reference, tmp_path):
    """A backbone-only file as the toy config's load_from: the frozen VQGAN and token predictor
    would run with random weights."""
    toy = toy_config(reference, tmp_path)
    dst = tmp_path / 'bb64.pth'
    assert run_converter(reference.path('addp.pth'), dst, '--to', 'mmpretrain', '--img-size',
                         '64', '--keep-norms')[0] == 0
    report = check_weights(Config.fromfile(toy), str(dst), verbose=False)
    assert not report.ok and report.missing == [] and report.size_mismatch == []
    assert {n.split('.')[1] for n in report.frozen_random} == {'vqgan', 'predictor'}
    hints = '\n'.join(report.hints)
    assert 'model.target_generator.predictor.checkpoint' in hints
    assert 'model.target_generator.vqgan.checkpoint' in hints
    # a neck the file does not have at all is a new part, not a failure of its own
    assert report.not_loaded == [] and report.parts['neck']['from_file'] == 0


def test_a_part_loaded_only_in_part_fails(reference, tmp_path):
    toy = toy_config(reference, tmp_path)
    dst = tmp_path / 'addp64.pth'
    assert run_converter(reference.path('addp.pth'), dst, '--img-size', '64')[0] == 0
    ckpt = load_checkpoint_file(dst)
    del ckpt['state_dict']['neck.decoder_norm.weight']
    torch.save(ckpt, dst)
    report = check_weights(Config.fromfile(toy), str(dst), verbose=False)
    assert not report.ok and report.not_loaded == ['neck.decoder_norm.weight']
    assert any('neck only in part' in h for h in report.hints)


def test_resizing_refuses_what_it_cannot_resize(reference):
    full, _, _ = convert_official_addp(extract_state_dict(load_checkpoint_file(
        reference.path('addp.pth'))))
    with pytest.raises(ValueError, match='not a multiple of the patch size 16'):
        resize_position_tables(full, 72)
    odd = dict(full, **{'neck.extra_table': torch.zeros(1, 257, 8)})
    with pytest.raises(ValueError, match=r"cannot resize \['neck.extra_table'\]"):
        resize_position_tables(odd, 64)
    same, note = resize_position_tables(full, 256)
    assert same is full and 'already fit' in note
