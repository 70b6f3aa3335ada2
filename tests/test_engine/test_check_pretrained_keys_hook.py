"""check_pretrained_keys / CheckPretrainedKeysHook on small modules and checkpoints in tmp_path."""
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import HOOKS, DefaultScope

import addp_mm  # noqa: F401
from addp_mm.engine import CheckPretrainedKeysHook, check_pretrained_keys


class Backbone(BaseModule):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self.stem = nn.Linear(2, 3)
        self.norm = nn.LayerNorm(3)


class Model(BaseModule):

    def __init__(self, backbone_init_cfg):
        super().__init__()
        self.backbone = Backbone(backbone_init_cfg)
        self.head = nn.Linear(3, 1)


def save(path, keys):
    torch.save(dict(state_dict={k: torch.zeros(1) for k in keys}), path)
    return str(path)


def pretrained(path, prefix=None):
    cfg = dict(type='Pretrained', checkpoint=path)
    if prefix is not None:
        cfg['prefix'] = prefix
    return cfg


def test_complete_checkpoint_with_prefix(tmp_path):
    ckpt = save(tmp_path / 'a.pth', ['backbone.stem.weight', 'backbone.stem.bias',
                                     'backbone.norm.weight', 'backbone.norm.bias', 'neck.x'])
    report = check_pretrained_keys(Model(pretrained(ckpt, 'backbone.')))
    assert report == {'backbone': dict(checkpoint=ckpt, missing=[], unexpected=[],
                                       allowed_missing=[])}


def test_missing_keys_raise_and_allowance(tmp_path):
    ckpt = save(tmp_path / 'a.pth', ['backbone.stem.weight', 'backbone.stem.bias', 'other.norm'])
    model = Model(pretrained(ckpt, 'backbone'))  # prefix without the dot, as PretrainedInit allows
    listed = re.escape("['backbone.norm.bias', 'backbone.norm.weight']")
    with pytest.raises(RuntimeError, match=listed):
        check_pretrained_keys(model)
    report = check_pretrained_keys(model, allowed_missing=[r'backbone\.norm\..*'])['backbone']
    assert report['missing'] == []
    assert report['allowed_missing'] == ['backbone.norm.bias', 'backbone.norm.weight']


def test_no_prefix_strips_module_and_reports_unexpected(tmp_path):
    ckpt = save(tmp_path / 'a.pth', ['module.stem.weight', 'module.stem.bias', 'norm.weight',
                                     'norm.bias', 'extra'])
    model = Model(pretrained(ckpt))
    assert check_pretrained_keys(model)['backbone']['unexpected'] == ['backbone.extra']
    with pytest.raises(RuntimeError, match='checkpoint keys are not in the model'):
        check_pretrained_keys(model, allow_unexpected=False)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
        check_pretrained_keys(Model(pretrained(str(tmp_path / 'nope.pth'), 'backbone.')))


def test_hook_before_train(tmp_path):
    ckpt = save(tmp_path / 'a.pth', ['backbone.stem.weight', 'backbone.stem.bias'])
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # root registry, found from any scope
        hook = HOOKS.build(dict(type='CheckPretrainedKeysHook'))
    assert isinstance(hook, CheckPretrainedKeysHook)
    with pytest.raises(RuntimeError, match='backbone.norm.weight'):
        hook.before_train(SimpleNamespace(model=Model(pretrained(ckpt, 'backbone.'))))
    with pytest.raises(RuntimeError, match='no module of the model has'):
        hook.before_train(SimpleNamespace(model=Model(None)))
    CheckPretrainedKeysHook(require_pretrained=False).before_train(
        SimpleNamespace(model=Model(None)))


def test_pretrained_reads_keys_as_mmengine_and_names_the_layout(tmp_path):
    """An official ``{'model': ...}`` release file loads nothing through PretrainedInit (mmengine
    reads ``state_dict`` or the whole dict), even where its key names would match; the error says
    what the file is and how to convert it."""
    keys = ['stem.weight', 'stem.bias', 'norm.weight', 'norm.bias', 'tokenizer_norm.weight',
            'decoder_pos_mask_embed']
    path = tmp_path / 'addp-vit-base-16.pth'
    torch.save({'model': {k: torch.zeros(1) for k in keys}}, path)
    with pytest.raises(RuntimeError) as err:
        check_pretrained_keys(Model(pretrained(str(path))))
    msg = str(err.value)
    assert '4 of 4 weights are not in the checkpoint' in msg
    assert 'official ADDP release' in msg
    assert 'convert_addp.py SRC.pth DST.pth --backbone-only' in msg


def test_each_check_is_a_hook_of_its_own():
    """CheckPretrainedKeysHook (the name configs and tools use) runs the three one-job hooks."""
    from addp_mm.engine.hooks import CheckLoadFromHook, CheckPretrainedInitHook, CheckResumeHook
    with DefaultScope.overwrite_default_scope('mmdet'):
        built = {name: HOOKS.build(dict(type=name)) for name in (
            'CheckPretrainedInitHook', 'CheckLoadFromHook', 'CheckResumeHook',
            'CheckPretrainedKeysHook')}
    assert type(built['CheckLoadFromHook']) is CheckLoadFromHook
    assert [type(h) for h in built['CheckPretrainedKeysHook'].checks] == [
        CheckPretrainedInitHook, CheckLoadFromHook, CheckResumeHook]
    only = CheckPretrainedKeysHook(allowed_missing=[r'x'], check_load_from=False,
                                   check_resume=False)
    assert [type(h) for h in only.checks] == [CheckPretrainedInitHook]
    assert only.pretrained.allowed_missing == ('x', )
    # each hook acts only in its own Runner step
    for name, steps in (('CheckPretrainedInitHook', {'before_train'}),
                        ('CheckLoadFromHook', {'after_load_checkpoint'}),
                        ('CheckResumeHook', {'before_run', 'after_load_checkpoint'})):
        own = {s for s in ('before_run', 'after_load_checkpoint', 'before_train')
               if s in type(built[name]).__dict__}
        assert own == steps, name


def test_the_bundle_reports_what_the_pretrained_check_found(tmp_path):
    ckpt = save(tmp_path / 'a.pth', ['backbone.stem.weight', 'backbone.stem.bias',
                                     'backbone.norm.weight', 'backbone.norm.bias'])
    hook = CheckPretrainedKeysHook()
    assert hook.reports is None
    hook.before_train(SimpleNamespace(model=Model(pretrained(ckpt, 'backbone.'))))
    assert hook.reports['backbone']['missing'] == []
