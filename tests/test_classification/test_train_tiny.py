"""Each shipped classification config, shrunk to the fixture's tiny ViT, trains 2 iterations and
validates through the real mmengine Runner on a tiny ImageNet-layout dataset.

Only sizes and loader settings are changed: the pipelines, mixup/cutmix, losses, optimizer
constructor, schedulers and the CheckPretrainedKeysHook of the shipped config run as they are. The
weights come from the fixture's official ``addp.pth`` through the real converter.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import addp_mm  # noqa: F401
from addp_mm.checkpoints.loading import load_checkpoint_file
from .conftest import ALL_CONFIGS, LINEAR_B, NUM_CLASSES


def tiny_cfg(path: str, config: dict, checkpoint: str, data_root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(path)
    D = config['dim']
    backbone = cfg.model.backbone
    backbone.arch = dict(embed_dims=D, num_layers=config['depth'], num_heads=config['heads'],
                         feedforward_channels=4 * D)
    # the ViT's patch grid is the VQGAN's token grid: image side / 2^(levels - 1)
    backbone.patch_size = 2**(len(config['vqgan']['ddconfig']['ch_mult']) - 1)
    if 'frozen_stages' in backbone:
        backbone.frozen_stages = config['depth']
    backbone.init_cfg.checkpoint = checkpoint
    cfg.model.head.update(in_channels=D, num_classes=NUM_CLASSES)
    if cfg.model.get('neck'):
        cfg.model.neck[-1].input_features = D
    cfg.data_preprocessor.num_classes = NUM_CLASSES
    for name, batch in (('train_dataloader', 4), ('val_dataloader', 3), ('test_dataloader', 3)):
        loader = cfg[name]
        loader.update(batch_size=batch, num_workers=0, persistent_workers=False, pin_memory=False)
        loader.dataset.data_root = data_root
    # 3 classes: top-5 is undefined
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    cfg.train_cfg.update(max_epochs=1, val_interval=1)  # 8 images / batch 4 = 2 iterations
    # AmpOptimWrapper asserts a GPU; the rest of the optimizer config stays as shipped
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    cfg.experiment_name = osp.basename(work_dir)
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_tiny_config_trains_and_validates(path, reference, converted, tiny_imagenet, tmp_path):
    linear = path == LINEAR_B
    checkpoint = converted['linear' if linear else 'finetune']
    cfg = tiny_cfg(path, reference.config, checkpoint, tiny_imagenet, str(tmp_path / 'work'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2 and runner.epoch == 1

    # the hook checked the pretrained keys: nothing missing, only the new fc_norm (ln2) allowed
    hook = next(h for h in runner.hooks if type(h).__name__ == 'CheckPretrainedKeysHook')
    report = hook.reports['backbone']
    assert report['missing'] == []
    assert report['allowed_missing'] == ([] if linear else ['backbone.ln2.bias',
                                                             'backbone.ln2.weight'])

    model = runner.model
    ckpt = load_checkpoint_file(checkpoint)['state_dict']
    qkv = model.backbone.layers[0].attn.qkv.weight.detach()
    if linear:  # frozen: still exactly the pre-trained weights after training
        assert torch.equal(qkv, ckpt['backbone.layers.0.attn.qkv.weight'])
    else:  # fine-tuned: loaded, then moved by the (layer-decayed) updates
        assert not torch.equal(qkv, ckpt['backbone.layers.0.attn.qkv.weight'])
        groups = runner.optim_wrapper.optimizer.param_groups
        lr = {g['layer_id']: g['lr'] for g in groups}
        rate, L = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate, reference.config['depth']
        # the schedulers scale every group alike, so the layer ratios survive warm-up
        assert lr[0] / lr[L + 1] == pytest.approx(rate**(L + 1), rel=1e-6)

    # validation accuracy, recomputed by hand from the model's predictions on the val loader
    metrics = runner.val()
    correct = total = 0
    for data in runner.val_dataloader:
        for sample in model.val_step(data):
            correct += int(sample.pred_label.item() == sample.gt_label.item())
            total += 1
    assert total == 6
    assert metrics['accuracy/top1'] == pytest.approx(100. * correct / total)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))


def test_training_stops_when_backbone_weights_are_missing(reference, converted, tiny_imagenet,
                                                          tmp_path):
    """The linear probe given the fine-tuning file (no pre_norm/ln1) fails before iteration 1."""
    cfg = tiny_cfg(LINEAR_B, reference.config, converted['finetune'], tiny_imagenet,
                   str(tmp_path / 'work'))
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match=r'(?s)backbone\.ln1\.bias.*--keep-norms'):
        runner.train()
    assert runner.iter == 0
