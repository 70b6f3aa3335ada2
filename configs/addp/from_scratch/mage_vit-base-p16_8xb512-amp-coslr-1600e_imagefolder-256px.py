# Stage 2 at full size: MAGE ViT-B token predictor (the official recipe: mask ratio ~ N(0.55, 0.25)
# truncated to [0.5, 1], half of the sequence dropped from the encoder, label smoothing 0.1; AdamW
# (0.9, 0.95), wd 0.05, lr 1.5e-4 x batch / 256, 40 warm-up epochs + cosine, 1600 epochs, clip 3.0)
# on the tokens of the stage-1 tokenizer (frozen, loaded from its checkpoint).
#   tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.target_generator.checkpoint=<stage-1 checkpoint>
# Output: work_dirs/<this config>/epoch_1600.pth, the predictor `checkpoint` of stage 3.
_base_ = [
    './_base_/models/vqgan_f16-c1024-256px.py',
    './_base_/models/mage_vit-base-p16.py',
    './_base_/datasets/imagefolder_256px.py',
    '../../_base_/default_runtime.py',
]

tokenizer_checkpoint = (
    'work_dirs/vqgan_maskgit-base-f16-c1024_8xb32-coslr-200000iter_imagefolder-256px'
    '/iter_200000.pth')
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

train_dataloader = dict(batch_size=512)

base_batch_size = 4096
warmup_epochs = 40
max_epochs = 1600
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4 * base_batch_size / 256, betas=(0.9, 0.95),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0., by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=20, max_keep_ckpts=3))
resume = True
auto_scale_lr = dict(base_batch_size=base_batch_size)
randomness = dict(seed=0, diff_rank_seed=True)
