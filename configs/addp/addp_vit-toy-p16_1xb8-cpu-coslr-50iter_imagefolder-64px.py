# A toy ADDP for CPUs: 64x64 images (4x4 tokens), a 2-block encoder/decoder of width 64, a small
# VQGAN (ch 32) and token predictor. For tests, debugging and the quick start; not a recipe.
# Train it on any folder of images:
#   python tools/train.py configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images
# The frozen VQGAN / token predictor start from random weights unless their `checkpoint` fields
# are set (e.g. to the checkpoints of configs/addp/from_scratch).
_base_ = [
    './_base_/models/addp_vit-base-p16.py',
    '../_base_/default_runtime.py',
]

img_size = 64
dim = 64
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=dim, num_layers=2, num_heads=4),
                  img_size=img_size),
    neck=dict(embed_dims=dim, decoder_depth=2, decoder_num_heads=4, num_tokens=16),
    head=dict(in_dims=dim, word_dims=dim),
    target_generator=dict(
        vqgan=dict(checkpoint=None, ch=32, resolution=img_size),
        predictor=dict(checkpoint=None, embed_dims=dim, depth=2, num_heads=4, decoder_depth=2,
                       decoder_num_heads=4, num_tokens=16)))

data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root='data/images',
        with_label=False,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0),
                 backend='pillow', interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs'),
        ]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05, fused=True),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', T_max=40, eta_min=0., by_epoch=False, begin=10, end=50),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=50)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=25, by_epoch=False, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# With 16 tokens the mask-ratio grid can mask every position (ceil(16 * r) = 16 for r > 15/16); no
# reliable token is appended then, so the token embedding gets no gradient in that step, which
# DistributedDataParallel only accepts with this flag (tools/dist_train.sh).
find_unused_parameters = True
resume = True
randomness = dict(seed=0, diff_rank_seed=True)
