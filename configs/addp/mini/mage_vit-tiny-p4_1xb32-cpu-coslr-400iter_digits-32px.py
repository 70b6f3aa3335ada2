# Mini paper, stage 2: a tiny MAGE token predictor (the from-scratch tiny model: width 128, 4 + 2
# blocks, 64 codes) on the tokens of the stage-1 tokenizer (frozen), digits train split.
# benchmarks/mini_paper.py sets model.target_generator.checkpoint to the stage-1 checkpoint.
_base_ = [
    './_base_/models/vqgan_tiny-f4-c64-32px.py',
    './_base_/models/mage_vit-tiny-c64-32px.py',
    './_base_/digits_32px.py',
    '../from_scratch/_base_/cpu_runtime.py',
]

max_iters = 400
tokenizer_checkpoint = 'work_dirs/mini_paper/tokenizer/iter_500.pth'
model = dict(
    type='MAGE',
    backbone=dict(type='MAGEViT', **_base_.predictor),
    target_generator=dict(type='VQGANTokenizer', checkpoint=tokenizer_checkpoint,
                          **_base_.tokenizer),
    mask_ratio_range=(0.5, 1.0),
    mask_ratio_mu=0.55,
    mask_ratio_std=0.25,
    drop_ratio=0.5,
    label_smoothing=0.1)

train_dataloader = dict(batch_size=32)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='CosineAnnealingLR', T_max=max_iters - 40, eta_min=0., by_epoch=False, begin=40,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_iters))
