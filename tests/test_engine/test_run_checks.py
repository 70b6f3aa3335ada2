"""Runs that would silently do the wrong thing stop before their first iteration (issue 12):
auto-resume of a run made with other data or model settings, and a ``load_from`` file that leaves
trainable backbone weights unloaded. Tiny Runners of a linear model, a few iterations each."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner

import addp_mm  # noqa: F401  (hooks, safe loader)
import tests.toy_modules  # noqa: F401  (ToyRegressionDataset)
from addp_mm.checkpoints import describe_layout
from tests.test_distributed.helpers import mmengine_globals_restored
from tests.tool_runs import load_tool


@MODELS.register_module(force=True)
class ToyBackboneModel(BaseModel):
    """A linear "backbone" and head with an MSE loss."""

    def __init__(self, hidden=3, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = nn.Linear(4, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        out = self.head(self.backbone(inputs))
        if mode == 'loss':
            if isinstance(data_samples, (list, tuple)):
                data_samples = torch.stack(list(data_samples))
            return dict(loss=((out - data_samples)**2).mean())
        return out


@pytest.fixture(autouse=True)
def _restore_globals():
    with mmengine_globals_restored():
        yield


def _cfg(work_dir, name, num=16, max_iters=4, resume=True, load_from=None, hidden=3):
    return Config(dict(
        model=dict(type='ToyBackboneModel', hidden=hidden),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(dataset=dict(type='ToyRegressionDataset', num=num), batch_size=4,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='CheckPretrainedKeysHook', require_pretrained=False)],
        resume=resume,
        load_from=load_from,
        randomness=dict(seed=0),
        default_scope='mmengine'))


def _log_text(runner) -> str:
    return '\n'.join(open(p).read() for p in glob.glob(osp.join(runner.log_dir, '*.log')))


def test_resume_refuses_other_data_but_allows_a_longer_schedule(tmp_path):
    work = tmp_path / 'work'
    first = Runner.from_cfg(_cfg(work, 'first'))
    first.train()
    assert first.iter == 4
    # a first run with resume=True and nothing to resume: a plain fresh start, said once
    log = _log_text(first)
    assert 'latest checkpoint None' not in log
    assert 'training starts from scratch' in log

    # the same command on other data: stops before training, naming the setting and the way out
    other = Runner.from_cfg(_cfg(work, 'other_data', num=12, max_iters=8))
    with pytest.raises(RuntimeError) as err:
        other.train()
    msg = str(err.value)
    assert 'train_dataloader.dataset.num: 16 -> 12' in msg
    assert '--work-dir' in msg and 'resume=False' in msg
    # the old weights fit this model: starting from them with load_from would work
    assert f'resume=False load_from={work / "iter_4.pth"}' in msg
    assert not (work / 'iter_6.pth').exists()  # nothing was trained

    # another model size: refused as well, and load_from (which would skip every resized
    # weight) is not suggested
    with pytest.raises(RuntimeError, match=r'model\.hidden: 3 -> 5') as err:
        Runner.from_cfg(_cfg(work, 'other_model', hidden=5, max_iters=8)).train()
    assert 'load_from=' not in str(err.value) and '--work-dir' in str(err.value)

    # extending the schedule of the same run is what resume is for
    longer = Runner.from_cfg(_cfg(work, 'longer', max_iters=6))
    longer.train()
    assert longer.iter == 6
    assert 'settings of' in _log_text(longer) and 'match this run' in _log_text(longer)


def _official_like(path, hidden=3):
    """A file laid out like the official ADDP release: {'model': {...}} with its own key names."""
    sd = {'tokenizer_norm.weight': torch.ones(hidden), 'decoder_pos_mask_embed': torch.zeros(1),
          'blocks.0.norm1.weight': torch.ones(hidden), 'patch_embed.proj.weight': torch.ones(1)}
    torch.save({'model': sd, 'epoch': 1}, path)
    return str(path)


def test_load_from_an_unconverted_file_stops_before_training(tmp_path):
    ckpt = _official_like(tmp_path / 'addp-vit-base-16.pth')
    runner = Runner.from_cfg(_cfg(tmp_path / 'work', 'load_official', resume=False,
                                  load_from=ckpt))
    with pytest.raises(RuntimeError) as err:
        runner.train()
    msg = str(err.value)
    assert ckpt in msg
    assert '2 of the 2 trainable backbone weights' in msg
    assert 'official ADDP release' in msg
    assert 'tools/model_converters/convert_addp.py SRC.pth DST.pth' in msg
    assert runner.iter == 0

    # a checkpoint that holds the backbone (the head may be new) is fine
    good = tmp_path / 'good.pth'
    model = ToyBackboneModel()
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()}},
               good)
    ok = Runner.from_cfg(_cfg(tmp_path / 'work2', 'load_good', resume=False, load_from=str(good),
                              max_iters=1))
    ok.train()
    assert ok.iter == 1


def test_layouts_are_recognised():
    w = torch.ones(1)
    assert 'MAGE' in describe_layout({'model': {'token_emb.word_embeddings.weight': w,
                                                'blocks.0.x': w, 'decoder_blocks.0.x': w}})[0]
    name, fix = describe_layout({'state_dict': {'encoder.conv_in.weight': w,
                                                'quantize.embedding.weight': w}})
    assert 'VQGAN' in name and 'vqgan.checkpoint' in fix
    name, fix = describe_layout({'state_dict': {'backbone.layers.0.x': w, 'neck.y': w}})
    assert 'addp_mm pre-training' in name and "prefix='backbone.'" in fix
    assert 'official ADDP' in describe_layout(
        {'model': {'tokenizer_norm.weight': w, 'decoder_pos_mask_embed': w}})[0]


def test_train_tool_adds_the_checks_to_every_config():
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    tool = load_tool('tools/train.py')
    config = osp.join(root, 'configs/addp/from_scratch/'
                      'vqgan_maskgit-tiny-f4-c256_1xb8-cpu-coslr-1000iter_imagefolder-32px.py')
    cfg = tool.merge_args(Config.fromfile(config), tool.parse_args([config]))
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'CheckPretrainedKeysHook']
    assert hooks == [dict(type='CheckPretrainedKeysHook', require_pretrained=False)]


def test_load_from_a_file_of_another_size_stops_before_training(tmp_path):
    """mmengine skips (and only logs) a tensor whose shape differs: it counts as missing."""
    other = ToyBackboneModel(hidden=5)
    path = tmp_path / 'hidden5.pth'
    torch.save({'state_dict': other.state_dict()}, path)
    runner = Runner.from_cfg(_cfg(tmp_path / 'work', 'load_other_size', resume=False,
                                  load_from=str(path)))
    with pytest.raises(RuntimeError) as err:
        runner.train()
    msg = str(err.value)
    assert '2 of the 2 trainable backbone weights' in msg and '2 of them with another shape' in msg
    assert 'backbone.weight (file (5, 4) vs model (3, 4))' in msg
    assert runner.iter == 0
