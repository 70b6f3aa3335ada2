"""Lightning checkpoints with omegaconf hyper-parameters, written by the real classes, load inertly
(issue 23, item 1).

``real_pickles/`` holds ``last.ckpt`` files that ``Trainer.fit`` wrote with omegaconf 2.0-2.3 and
PyTorch-Lightning 1.0-2.4 (``make_real_pickles.py`` says how to remake them). Neither package is
installed here, so nothing of them can be imported or run while the files load: every omegaconf
and Lightning object comes back as a placeholder, and only ``collections.defaultdict`` with a
harmless factory, the builtin types and ``typing.Any`` load as themselves.
"""
import argparse
import collections
import glob
import io
import json
import os.path as osp
import pickle
import pickletools
import sys
import typing
import zipfile

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401  (routes mmengine's local loading through the safe loader)
from addp_mm.checkpoints import extract_state_dict, legacy_objects, load_checkpoint_file

from ..tool_runs import _run_converter

HERE = osp.join(osp.dirname(osp.abspath(__file__)), 'real_pickles')
FILES = sorted(glob.glob(osp.join(HERE, '*.ckpt')))
with open(osp.join(HERE, 'manifest.json')) as _f:
    MANIFEST = json.load(_f)


def _ids(path):
    return osp.basename(path)


def _scanned_globals(path):
    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith('/data.pkl')))
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ('SHORT_BINUNICODE', 'BINUNICODE'):
            strings.append(arg)
        elif op.name == 'STACK_GLOBAL':
            found.add(f'{strings[-2]}.{strings[-1]}')
        elif op.name == 'GLOBAL':
            found.add(arg.replace(' ', '.'))
    return sorted(found)


def test_the_fixture_is_what_the_manifest_says():
    """Four files, one per omegaconf minor version, from Lightning 1.0 to 2.4, each naming
    ``collections.defaultdict`` (the call omegaconf's metadata needs) and omegaconf's classes."""
    assert [_ids(p) for p in FILES] == sorted(MANIFEST['files'])
    assert {v['omegaconf'][:3] for v in MANIFEST['files'].values()} == {'2.0', '2.1', '2.2',
                                                                        '2.3'}
    assert {v['pytorch_lightning'][0] for v in MANIFEST['files'].values()} == {'1', '2'}
    for path in FILES:
        names = _scanned_globals(path)
        assert names == MANIFEST['files'][_ids(path)]['globals']
        assert 'collections.defaultdict' in names and 'typing.Any' in names
        assert 'omegaconf.dictconfig.DictConfig' in names


@pytest.mark.parametrize('path', FILES, ids=_ids)
def test_lightning_omegaconf_files_load_inertly(path):
    for ckpt in (load_checkpoint_file(path), CheckpointLoader.load_checkpoint(path, 'cpu')):
        sd = extract_state_dict(ckpt, path)
        assert {k: pytest.approx(float(v.double().sum()), rel=1e-6, abs=1e-6)
                for k, v in sd.items()} == MANIFEST['tensor_sums']
        hp = ckpt['hyper_parameters']
        assert hp['n_embed'] == MANIFEST['vqgan']['n_embed']
        dd = hp['ddconfig']
        assert dd.legacy_class == 'omegaconf.dictconfig.DictConfig'
        meta = dd.legacy_state['_metadata'].legacy_state
        assert meta['ref_type'] is typing.Any  # typing.Any loads as itself
        assert type(meta['resolver_cache']) is collections.defaultdict
        assert meta['resolver_cache'].default_factory is dict
        found = {cls for _, cls in legacy_objects(ckpt)}
        assert 'omegaconf.dictconfig.DictConfig' in found
        assert all(cls.startswith(('omegaconf.', 'pytorch_lightning.')) for cls in found), found
    # nothing of the file's code base was imported to load it
    assert not any(m.split('.')[0] in ('omegaconf', 'pytorch_lightning') for m in sys.modules)


@pytest.mark.parametrize('path', FILES, ids=_ids)
def test_frozen_loaders_take_a_real_lightning_file(path):
    """A taming-style ``last.ckpt`` gives a loaded tokenizer (``encoder.*`` at the top level), and
    the same file a loaded token predictor (``backbone.*``)."""
    sums = MANIFEST['tensor_sums']
    for cfg, prefix in ((dict(type='VQGANTokenizer', **MANIFEST['vqgan']), ''),
                        (dict(type='MAGETokenPredictor', **MANIFEST['predictor']), 'backbone.')):
        module = MODELS.build(dict(cfg, checkpoint=path))
        module.init_weights()
        own = module.state_dict()
        assert len(own) > 10
        for k, v in own.items():
            assert float(v.double().sum()) == pytest.approx(sums[prefix + k], rel=1e-6,
                                                            abs=1e-6), k


@pytest.mark.parametrize('path', FILES[:1] + FILES[-1:], ids=_ids)
def test_converter_reads_a_real_lightning_file_and_names_its_use(path, tmp_path):
    code, out = _run_converter(path, tmp_path / 'out.pth', refusals=True)
    assert "ignored omegaconf.dictconfig.DictConfig object at ['hyper_parameters']" in out
    assert 'not used: callbacks, epoch, global_step' in out
    # a token predictor with its tokenizer: no conversion, and where it goes instead
    assert isinstance(code, str) and 'MAGE' in code and 'needs no conversion' in code
    assert 'model.target_generator.predictor.checkpoint' in code
    assert not (tmp_path / 'out.pth').exists()


def _pickled(obj_bytes: bytes, path) -> str:
    """A torch zip file whose data.pkl is ``obj_bytes``."""
    buf = io.BytesIO()
    torch.save({'w': torch.ones(1)}, buf)
    buf.seek(0)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, 'w') as dst:
        for name in src.namelist():
            dst.writestr(name, obj_bytes if name.endswith('/data.pkl') else src.read(name))
    return str(path)


class _Reduce:

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize('factory', [dict, list, set, int, None])
def test_defaultdict_with_a_harmless_factory_loads(tmp_path, factory):
    d = collections.defaultdict(factory, {'a': 1})
    path = _pickled(pickle.dumps({'cache': d}, protocol=2), tmp_path / 'dd.pth')
    cache = load_checkpoint_file(path)['cache']
    assert type(cache) is collections.defaultdict and cache.default_factory is factory
    assert cache == {'a': 1}


@pytest.mark.parametrize('factory', ['os.system', 'eval', 'placeholder'])
def test_defaultdict_with_any_other_factory_is_refused(tmp_path, factory):
    import os
    marker = tmp_path / 'pwned'
    if factory == 'placeholder':  # a class of the file's code base
        factory_obj = argparse.Namespace
    else:
        factory_obj = {'os.system': os.system, 'eval': eval}[factory]
    d = collections.defaultdict(factory_obj)
    # the missing key would call the factory: with os.system, `touch marker`
    path = _pickled(pickle.dumps({'cache': d, 'x': _Reduce(collections.defaultdict, factory_obj)},
                                 protocol=2), tmp_path / 'dd.pth')
    with pytest.raises(pickle.UnpicklingError, match='only dict, list, set and int'):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_placeholders_saved_by_the_old_module_path_stay_inert(tmp_path):
    """Files re-saved by an addp_mm from before addp_mm.checkpoints name the placeholder
    functions of ``addp_mm.utils.checkpoint``; they still load as placeholders."""
    from addp_mm.checkpoints import loading
    path = str(FILES[0])
    ckpt = load_checkpoint_file(path)
    old = type(sys)('addp_mm.utils.checkpoint')
    old._rebuild_legacy, old._legacy_class = loading._rebuild_legacy, loading._legacy_class
    saved = (loading._rebuild_legacy.__module__, loading._legacy_class.__module__)
    sys.modules[old.__name__] = old
    try:  # pickle names a function by its __module__
        loading._rebuild_legacy.__module__ = loading._legacy_class.__module__ = old.__name__
        torch.save(ckpt, tmp_path / 'resaved.pth')
    finally:
        loading._rebuild_legacy.__module__, loading._legacy_class.__module__ = saved
        del sys.modules[old.__name__]
    assert 'addp_mm.utils.checkpoint._rebuild_legacy' in _scanned_globals(tmp_path /
                                                                         'resaved.pth')
    again = load_checkpoint_file(tmp_path / 'resaved.pth')
    assert again['hyper_parameters']['ddconfig'].legacy_class == 'omegaconf.dictconfig.DictConfig'
