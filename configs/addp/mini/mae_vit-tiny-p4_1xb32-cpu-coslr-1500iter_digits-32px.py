# Mini paper, baseline (issue #20): mmpretrain's own MAE with the ViT of the ADDP run, on the same
# images, pipeline, optimizer, schedule, batch and iterations as
# addp_vit-tiny-p4_1xb32-cpu-tokenbank-coslr-1500iter_digits-32px.py: both see 48,000 crops
# (MAE's crops are drawn afresh: it reads pixels).
_base_ = ['./mae_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py']

max_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=125),
    dict(type='CosineAnnealingLR', T_max=max_iters - 125, eta_min=0., by_epoch=False, begin=125,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=max_iters))
