# Stage 1 at full size: train the MaskGIT-architecture VQGAN (256x256 -> 16x16 tokens, 1024 codes,
# the released model's architecture) from scratch on any image folder, with L1 reconstruction,
# codebook and commitment losses (beta 0.25), codebook-usage monitoring and dead-code restarts.
# Perceptual and adversarial losses need local weights: see the -lpips-gan variant.
#   tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images
# Output: work_dirs/<this config>/iter_200000.pth, the tokenizer `checkpoint` of stages 2 and 3.
# Recipe: ours (MaskGIT's tokenizer training code is not public); Adam (0.5, 0.9) as
# taming-transformers, lr 1e-4 at batch 256, cosine decay.
_base_ = [
    './_base_/models/vqgan_f16-c1024-256px.py',
    './_base_/datasets/imagefolder_256px.py',
    '../../_base_/default_runtime.py',
]

max_iters = 200000
model = dict(
    type='VQGANTrainer',
    vqgan=dict(type='VQGAN', **_base_.tokenizer),
    rec_loss='l1',
    beta=0.25,
    usage_window=1000,
    dead_code_steps=2000,
    init_codebook_from_data=True)

train_dataloader = dict(batch_size=32, sampler=dict(type='InfiniteSampler', shuffle=True))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9)),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=5000),
    dict(type='CosineAnnealingLR', T_max=max_iters - 5000, eta_min=1e-6, by_epoch=False,
         begin=5000, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=10000, by_epoch=False, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
resume = True
auto_scale_lr = dict(base_batch_size=256)
randomness = dict(seed=0, diff_rank_seed=True)
