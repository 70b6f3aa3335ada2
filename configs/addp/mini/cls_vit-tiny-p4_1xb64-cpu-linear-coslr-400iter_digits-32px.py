# Mini paper, linear probe on all training labels: the pre-trained tiny ViT frozen (every block
# and the final norm), the mean of its patch tokens after the final norm -> BatchNorm without
# affine (MAE's linear-probe neck) -> linear head. SGD with momentum, 20 warm-up iterations then
# cosine; the same recipe for ADDP, MAE and random init. benchmarks/mini_paper.py sets
# model.backbone.init_cfg (none for random init) and, for ADDP, pre_norm=True (its encoder's
# tokenizer norm, kept by `convert_addp.py --backbone-only --keep-norms`).
_base_ = ['./_base_/digits_cls_32px.py', '../../_base_/default_runtime.py']

max_iters = 400
dim = 128
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=dim, num_layers=4, num_heads=4, feedforward_channels=4 * dim),
        img_size=32,
        patch_size=4,
        pre_norm=False,
        patch_cfg=dict(bias=True),
        final_norm=True,
        out_type='featmap',
        frozen_stages=4,
        init_cfg=None),
    neck=[dict(type='GlobalAveragePooling'), dict(type='ClsBatchNormNeck', input_features=dim)],
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=dim,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=0., by_epoch=False, begin=20,
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
custom_hooks = [dict(type='FaultToleranceHook'), dict(type='CheckPretrainedKeysHook')]
