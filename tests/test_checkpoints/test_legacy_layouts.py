"""Release files in every real layout load everywhere, without running code (issue 14, item 1/5).

Each layout is built from the fixture's own tensors (tests/test_checkpoints/legacy_layouts.py):
MAE-family ``save_model`` (``'args': Namespace``), Lightning (``DictConfig`` hyper-parameters,
callbacks), raw, ``{'state_dict'}``, ``{'model'}`` and safetensors. They must load through the safe
loader, through mmengine's loader (what ``load_from``/resume/``Pretrained`` use after
``import addp_mm``), in the converter and in the frozen VQGAN / token-predictor loaders, with
bit-equal tensors.
"""
import argparse
import pathlib
import pickle
import sys

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

import addp_mm  # noqa: F401  (routes mmengine's local loading through the safe loader)
from addp_mm.checkpoints.loading import LegacyObject, legacy_objects, load_checkpoint_file
from addp_mm.checkpoints.weights import extract_state_dict

from ..conftest import reference_model_cfg
from ..tool_runs import _run_converter
from .legacy_layouts import FOREIGN_CLASSES, LAYOUTS, mae_args, save_layout


def _sd(reference, name):
    return extract_state_dict(load_checkpoint_file(reference.path(name)))


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.mark.parametrize('layout', LAYOUTS)
def test_every_layout_loads_with_equal_tensors(reference, tmp_path, layout):
    sd = _sd(reference, 'mage.pth')
    ext = '.safetensors' if layout == 'safetensors' else '.pth'
    path = save_layout(sd, layout, tmp_path / f'mage_{layout}{ext}')
    for ckpt in (load_checkpoint_file(path),
                 CheckpointLoader.load_checkpoint(path, map_location='cpu')):
        _assert_same(extract_state_dict(ckpt, path), sd)
        found = {cls for _, cls in legacy_objects(ckpt)}
        assert found == FOREIGN_CLASSES.get(layout, set())


def test_placeholders_record_class_and_state(tmp_path):
    path = save_layout({'w': torch.ones(2)}, 'mae_save_model', tmp_path / 'm.pth')
    ckpt = load_checkpoint_file(path)
    args = ckpt['args']
    assert isinstance(args, LegacyObject) and not isinstance(args, argparse.Namespace)
    assert args.legacy_class == 'argparse.Namespace'
    expected = vars(mae_args())
    expected['output_dir'] = pathlib.PurePosixPath(expected['output_dir'])  # a pure path: inert
    assert args.legacy_state == expected
    assert ckpt['epoch'] == 1599 and ckpt['scaler']['scale'] == 65536.0
    with pytest.raises(AttributeError, match='placeholder for a argparse.Namespace'):
        args.lr  # noqa: B018
    # the placeholder classes were never imported
    lightning = load_checkpoint_file(save_layout({'w': torch.ones(2)}, 'lightning',
                                                 tmp_path / 'l.ckpt'))
    assert 'pytorch_lightning' not in sys.modules  # nothing of the file's classes was imported
    hp = lightning['hyper_parameters']
    assert hp.legacy_class == 'omegaconf.dictconfig.DictConfig'
    assert torch.equal(lightning['callback_object'].legacy_state['best_model_score'],
                       torch.tensor(0.25))


@pytest.mark.parametrize('protocol', [1, 2, 4])
def test_namespace_loads_as_placeholder_with_every_protocol(tmp_path, protocol):
    path = tmp_path / 'ns.pth'
    torch.save({'model': {'w': torch.ones(1)}, 'args': argparse.Namespace(lr=0.5)}, path,
               pickle_protocol=protocol)
    ckpt = load_checkpoint_file(path)
    assert ckpt['args'].legacy_class == 'argparse.Namespace'
    assert ckpt['args'].legacy_state == {'lr': 0.5}


def test_placeholders_survive_a_save_and_load(tmp_path):
    path = save_layout({'w': torch.ones(2)}, 'lightning', tmp_path / 'l.ckpt')
    ckpt = load_checkpoint_file(path)
    torch.save(ckpt, tmp_path / 'again.pth')
    again = load_checkpoint_file(tmp_path / 'again.pth')
    assert {c for _, c in legacy_objects(again)} == FOREIGN_CLASSES['lightning']
    assert torch.equal(again['callback_object'].legacy_state['best_model_score'],
                       torch.tensor(0.25))


def test_frozen_loaders_take_lightning_vqgan_and_mae_style_mage(reference, tmp_path):
    """The VQGAN from a Lightning checkpoint, the MAGE predictor from a ``save_model`` file."""
    from mmpretrain.registry import MODELS
    cfg = reference_model_cfg(reference.config)['target_generator']
    vq_sd, mage_sd = _sd(reference, 'vqgan.ckpt'), _sd(reference, 'mage.pth')
    vq_cfg = dict(cfg['vqgan'], checkpoint=save_layout(vq_sd, 'lightning', tmp_path / 'vq.ckpt'))
    pred_cfg = dict(cfg['predictor'],
                    checkpoint=save_layout(mage_sd, 'mae_save_model', tmp_path / 'mage.pth'))
    for module_cfg, sd in ((vq_cfg, vq_sd), (pred_cfg, mage_sd)):
        module = MODELS.build(module_cfg)
        module.init_weights()
        own = module.state_dict()
        # the encoder's first conv / the predictor's first block: straight from the file
        key = next(k for k in own if k in sd and sd[k].dim() > 1)
        assert torch.equal(own[key], sd[key]), key


@pytest.mark.parametrize('layout', LAYOUTS)
def test_converter_reads_every_layout(reference, tmp_path, layout):
    sd = _sd(reference, 'addp.pth')
    ext = '.safetensors' if layout == 'safetensors' else '.pth'
    src = save_layout(sd, layout, tmp_path / f'addp_{layout}{ext}')
    code, out = _run_converter(src, tmp_path / 'bb.pth', '--to', 'mmpretrain')
    assert code == 0
    direct = tmp_path / 'direct.pth'
    assert _run_converter(reference.path('addp.pth'), direct, '--to', 'mmpretrain')[0] == 0
    _assert_same(load_checkpoint_file(tmp_path / 'bb.pth')['state_dict'],
                 load_checkpoint_file(direct)['state_dict'])
    for cls in FOREIGN_CLASSES.get(layout, ()):
        assert f'ignored {cls} object' in out
    if layout == 'mae_save_model':
        assert 'not used: args, epoch, optimizer, scaler' in out


def test_load_from_and_pretrained_take_legacy_files(tmp_path):
    """``load_from`` (mmengine ``load_checkpoint``) and ``init_cfg=Pretrained`` read files that hold
    foreign objects."""
    from mmengine.runner.checkpoint import load_checkpoint

    from ..toy_modules import ToyLinearModel
    src = ToyLinearModel()
    torch.nn.init.normal_(src.linear.weight)
    for layout in ('state_dict', 'lightning', 'safetensors'):
        ext = '.safetensors' if layout == 'safetensors' else '.pth'
        path = save_layout(src.state_dict(), layout, tmp_path / f'toy_{layout}{ext}')
        dst = ToyLinearModel()
        load_checkpoint(dst, path, map_location='cpu', strict=True)
        assert torch.equal(dst.linear.weight, src.linear.weight), layout
        dst = ToyLinearModel(init_cfg=dict(type='Pretrained', checkpoint=path))
        dst.init_weights()
        assert torch.equal(dst.linear.weight, src.linear.weight), layout


class _CallsOnLoad:

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _evil_payloads(marker):
    import os
    import subprocess
    cmd = f'touch {marker}'
    return {
        'os.system': _CallsOnLoad(os.system, cmd),
        'eval': _CallsOnLoad(eval, f'__import__("os").system({cmd!r})'),
        'subprocess.Popen': _CallsOnLoad(subprocess.Popen, ['touch', str(marker)]),
        # hidden inside an object that would itself load as a placeholder
        'nested in Namespace': argparse.Namespace(model='x', hook=_CallsOnLoad(os.system, cmd)),
    }


@pytest.mark.parametrize('case', ['os.system', 'eval', 'subprocess.Popen', 'nested in Namespace'])
@pytest.mark.parametrize('protocol', [1, 2, 4])  # 1: copyreg._reconstructor objects
def test_code_in_a_legacy_file_is_refused(tmp_path, case, protocol):
    marker = tmp_path / 'pwned'
    payload = {'model': {'w': torch.zeros(1)}, 'args': _evil_payloads(marker)[case]}
    path = tmp_path / 'evil.pth'
    torch.save(payload, path, pickle_protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match='never runs code'):
        load_checkpoint_file(path)
    with pytest.raises(pickle.UnpicklingError, match='nothing was called'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    code = None
    with pytest.raises(pickle.UnpicklingError):
        code = _run_converter(path, tmp_path / 'out.pth')
    assert code is None and not (tmp_path / 'out.pth').exists()
    assert not marker.exists()


def _stock_files(tmp_path):
    """Files of many kinds: weights-only ones, Runner-style meta with numpy, a legacy-format file,
    foreign objects, a safetensors file."""
    import numpy as np
    sd = {'w': torch.randn(3, 2), 'b': torch.zeros(3, dtype=torch.float16)}
    files = {layout: save_layout(sd, layout, tmp_path / (
        f'{layout}.' + ('safetensors' if layout == 'safetensors' else 'pth')))
             for layout in LAYOUTS}
    files['numpy_meta'] = str(tmp_path / 'np.pth')
    torch.save({'state_dict': sd, 'meta': {'arr': np.arange(3), 'seed': np.int64(3)}},
               files['numpy_meta'])
    files['legacy_format'] = str(tmp_path / 'legacy.pth')
    torch.save({'state_dict': sd, 'args': argparse.Namespace(lr=1.)}, files['legacy_format'],
               _use_new_zipfile_serialization=False)
    files['namespace_proto4'] = str(tmp_path / 'ns4.pth')
    torch.save({'model': sd, 'args': argparse.Namespace(lr=1.), 'path': pathlib.PurePath('a')},
               files['namespace_proto4'], pickle_protocol=4)
    return files


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


@pytest.mark.parametrize('no_weights_only', ['0', '1'])
def test_after_import_every_file_stock_mmengine_loads_still_loads(tmp_path, monkeypatch,
                                                                  no_weights_only):
    """Stock mmengine's local loader (``torch.load`` with torch's default, or with
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which loads any pickle) against the one ``import
    addp_mm`` installs: whatever stock loads, ours loads with the same tensors; objects of foreign
    classes come back as placeholders with the same class name and state (the one difference,
    besides refusing files that call code, which is tested above)."""
    from mmengine.runner.checkpoint import load_from_local
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', no_weights_only)
    loaded_by_stock = 0
    for kind, path in _stock_files(tmp_path).items():
        try:
            stock = load_from_local(path, map_location='cpu')
        except Exception:  # noqa: BLE001 - stock cannot read it: nothing to keep
            continue
        loaded_by_stock += 1
        ours = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        a, b = _tensors(stock), _tensors(ours)
        assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b)), kind
        if isinstance(stock, dict) and 'args' in stock:
            assert isinstance(stock['args'], argparse.Namespace)
            assert ours['args'].legacy_class == 'argparse.Namespace'
            assert ours['args'].legacy_state == vars(stock['args'])
    # with torch's default, stock reads the plain layouts; with the override, the foreign ones too
    assert loaded_by_stock >= (4 if no_weights_only == '0' else 7)


def test_a_whole_pickled_module_is_named_not_rebuilt(tmp_path):
    path = tmp_path / 'module.pth'
    torch.save({'model': torch.nn.Linear(2, 2)}, path)
    ckpt = load_checkpoint_file(path)  # loads: the module is an inert placeholder
    assert ckpt['model'].legacy_class == 'torch.nn.modules.linear.Linear'
    with pytest.raises(ValueError, match='whole pickled torch.nn.modules.linear.Linear object'):
        extract_state_dict(ckpt, str(path))
