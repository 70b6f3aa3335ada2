# Stage 1 at toy size (CPU): train a tiny VQGAN tokenizer (64x64 -> 8x8 tokens, 256 codes) on any
# image folder. This is what `tools/demo.py` runs; it is for trying the pipeline, not a recipe.
#   python tools/train.py configs/addp/from_scratch/vqgan_tiny-f8-c256_1xb8-cpu-400iter_imagefolder-64px.py \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images
# Output: work_dirs/<this config>/iter_400.pth, the `checkpoint` of the frozen tokenizer in stage 2.
_base_ = [
    './_base_/models/vqgan_tiny-f8-c256-64px.py',
    './_base_/datasets/imagefolder_64px.py',
    '../../_base_/default_runtime.py',
]

max_iters = 400
model = dict(
    type='VQGANTrainer',
    vqgan=dict(type='VQGAN', **_base_.tokenizer),
    rec_loss='l1',
    beta=0.25,
    usage_window=50,
    dead_code_steps=50,
    init_codebook_from_data=True)

train_dataloader = dict(batch_size=8)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9)),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=1e-5, by_epoch=False, begin=20,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
