# Stage 2 at toy size (CPU): train a tiny MAGE token predictor on the tokens of the stage-1
# tokenizer (frozen, loaded from its checkpoint).
#   python tools/train.py configs/addp/from_scratch/mage_vit-tiny-p8_1xb32-cpu-300iter_imagefolder-64px.py \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.target_generator.checkpoint=<stage-1 checkpoint>
# Output: work_dirs/<this config>/iter_300.pth, the `checkpoint` of the frozen predictor in stage 3.
_base_ = [
    './_base_/models/vqgan_tiny-f8-c256-64px.py',
    './_base_/models/mage_vit-tiny-64px.py',
    './_base_/datasets/imagefolder_64px.py',
    '../../_base_/default_runtime.py',
]

max_iters = 300
tokenizer_checkpoint = \
    'work_dirs/vqgan_tiny-f8-c256_1xb8-cpu-400iter_imagefolder-64px/iter_400.pth'
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

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=0., by_epoch=False, begin=20,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
