# Mini paper, full fine-tuning on all training labels, the recipe of ADDP's fine-tuning at tiny
# scale: mean of the patch tokens -> new LayerNorm (ln2) -> linear head; pre-training norms
# dropped (as `convert_addp.py --backbone-only` does); AdamW with layer-wise lr decay 0.65
# (ADDPLayerDecayOptimWrapperConstructor), weight decay 0.05, drop path 0.1, label smoothing 0.1,
# 30 warm-up iterations then cosine. The same recipe for ADDP, MAE and random init.
_base_ = ['./_base_/digits_cls_32px.py', '../../_base_/default_runtime.py']

max_iters = 600
dim = 128
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=dim, num_layers=4, num_heads=4, feedforward_channels=4 * dim),
        img_size=32,
        patch_size=4,
        drop_path_rate=0.1,
        pre_norm=False,
        final_norm=False,
        out_type='avg_featmap',
        init_cfg=None),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=dim,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=max_iters - 30, eta_min=1e-6, by_epoch=False, begin=30,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# a pre-trained backbone must be loaded whole (no-op for random init)
custom_hooks = [
    dict(type='FaultToleranceHook'),
    dict(type='CheckPretrainedKeysHook', allowed_missing=[r'backbone\.ln2\..*'])
]
