"""The layout guesser tells the files a user may have apart (issue 23, item 4): the fixture's
official ADDP, MAGE and VQGAN files, an MAE pre-training file, each converter output, and the
real Lightning files (the demo's Runner stage files: tests/test_engine/test_diagnoses.py)."""
import glob
import os.path as osp

import pytest
import torch

from addp_mm.checkpoints import guess_layout, is_official_addp, load_checkpoint_file
from addp_mm.checkpoints.convert import convert_official_addp
from addp_mm.checkpoints.weights import extract_state_dict

from ..tool_runs import _run_converter as run_converter

REAL_PICKLES = sorted(glob.glob(osp.join(osp.dirname(osp.abspath(__file__)), 'real_pickles',
                                         '*.ckpt')))


def _kind(path):
    return guess_layout(load_checkpoint_file(path)).kind


def test_release_files(reference):
    assert _kind(reference.path('addp.pth')) == 'addp-official'
    assert _kind(reference.path('mage.pth')) == 'mage-official'
    assert _kind(reference.path('vqgan.ckpt')) == 'vqgan'
    sd = extract_state_dict(load_checkpoint_file(reference.path('addp.pth')))
    assert is_official_addp(sd)
    # what the official code drops from ADDP to get MAE: encoder + pixel decoder, timm names
    mae = {k: v for k, v in sd.items()
           if not k.startswith(('tokenizer_norm', 'token_emb', 'token_predictor.', 'vqgan.',
                                'mlm_layer', 'decoder_pos_mask', 'decoder_pos_token',
                                'pos_mask', 'pos_token'))}
    assert guess_layout({'model': mae}).kind == 'mae-pretrain'
    encoder = {k: v for k, v in mae.items() if not k.startswith(('decoder', 'mask_token'))}
    assert guess_layout({'model': encoder}).kind == 'timm-vit'


@pytest.mark.parametrize('target,kind', [('addp_mm', 'addp_mm'), ('mmpretrain', 'backbone'),
                                         ('mmseg-mae', 'mmseg-mae'), ('timm', 'timm-vit'),
                                         ('vitdet', 'timm-vit')])
def test_converter_outputs(reference, tmp_path, target, kind):
    dst = tmp_path / f'out_{target}.pth'
    args = ['--to', target] + (['--num-heads', reference.config['heads']]
                               if target == 'mmseg-mae' else [])
    code, out = run_converter(reference.path('addp.pth'), dst, *args)
    assert code == 0, out
    assert _kind(dst) == kind


def test_converted_addp_is_not_official(reference):
    sd = extract_state_dict(load_checkpoint_file(reference.path('addp.pth')))
    converted, _, _ = convert_official_addp(sd)
    assert not is_official_addp(converted)
    assert guess_layout({'state_dict': converted}).kind == 'addp_mm'


@pytest.mark.parametrize('path', REAL_PICKLES, ids=osp.basename)
def test_real_lightning_files(path):
    """taming's layout at the top level plus a predictor under backbone.*: a token predictor."""
    layout = guess_layout(load_checkpoint_file(path))
    assert layout.kind == 'mage' and 'model.target_generator.predictor.checkpoint' in layout.advice
    tokenizer_only = {k: v for k, v in load_checkpoint_file(path)['state_dict'].items()
                      if not k.startswith('backbone.')}
    assert guess_layout({'state_dict': tokenizer_only}).kind == 'vqgan'


def test_unknown_and_empty():
    assert guess_layout({'state_dict': {'w': torch.ones(1)}}).kind == 'unknown'
    assert guess_layout(torch.ones(1)).kind == 'unknown'


def test_one_official_layout_test_and_one_grid_side():
    from addp_mm.checkpoints import convert, layouts
    from addp_mm.generation import generator
    from addp_mm.utils import grid
    assert convert.is_official_addp is layouts.is_official_addp
    assert generator.is_official_addp is layouts.is_official_addp
    assert convert.grid_side is grid.grid_side  # tested in tests/test_utils/test_grid.py
    assert convert.grid_side(256) == 16 and convert.grid_side(1) == 1
    with pytest.raises(ValueError, match='not form a square grid'):
        convert.grid_side(17)
