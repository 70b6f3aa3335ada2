# ADDP pre-training schedule (docs/method.md §3.8): AdamW (0.9, 0.95), wd 0.05 except biases and
# 1-D parameters, lr 1e-4 x batch / 256, linear warm-up then half-cycle cosine to 0, clip 3.0,
# fp16 AMP with dynamic loss scaling (growth interval 500).
base_batch_size = 4096
warmup_epochs = 40
max_epochs = 1600

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale=dict(growth_interval=500),
    # fused=True: the same AdamW update in one kernel (5-8x faster than torch's per-tensor loop
    # on CPU; also supported with the AMP grad scaler on CUDA)
    optimizer=dict(type='AdamW', lr=1e-4 * base_batch_size / 256, betas=(0.9, 0.95),
                   weight_decay=0.05, fused=True),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(bias_decay_mult=0., norm_decay_mult=0., flat_decay_mult=0.))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0., by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=base_batch_size)
