# Runtime of the tiny CPU configs: the shared addp_mm runtime, iteration-based, logging every 10
# iterations, one checkpoint at the end (`iter_<max_iters>.pth`, the file the next stage loads),
# gloo for `--launcher pytorch`. Each config sets train_cfg.max_iters, the checkpoint interval and
# its param_scheduler.
_base_ = ['../../../_base_/default_runtime.py']

train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# AdamW of the MAGE/ADDP recipes (no weight decay on biases and 1-D parameters), a higher lr for
# the short runs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))
