# Stage 3 at toy size (CPU): ADDP pre-training from the stage-1 tokenizer and the stage-2 token
# predictor (both frozen, loaded from their checkpoints).
#   python tools/train.py configs/addp/from_scratch/addp_vit-tiny-p8_1xb16-cpu-200iter_imagefolder-64px.py \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.target_generator.vqgan.checkpoint=<stage-1 checkpoint> \
#                     model.target_generator.predictor.checkpoint=<stage-2 checkpoint>
# Generate from the result with addp_vit-tiny-p8_8steps-cosine_cpu-64px.py (tools/generate.py).
_base_ = [
    './_base_/models/addp_vit-tiny-p8-64px.py',
    './_base_/datasets/imagefolder_64px.py',
    '../../_base_/default_runtime.py',
]

max_iters = 200
tokenizer_checkpoint = \
    'work_dirs/vqgan_tiny-f8-c256_1xb8-cpu-400iter_imagefolder-64px/iter_400.pth'
predictor_checkpoint = 'work_dirs/mage_vit-tiny-p8_1xb32-cpu-300iter_imagefolder-64px/iter_300.pth'
model = dict(
    target_generator=dict(
        vqgan=dict(checkpoint=tokenizer_checkpoint),
        predictor=dict(checkpoint=predictor_checkpoint)))

train_dataloader = dict(batch_size=16)

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
