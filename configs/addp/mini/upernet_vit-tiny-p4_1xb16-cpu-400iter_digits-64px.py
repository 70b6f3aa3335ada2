# Mini paper, segmentation column: mmseg's UperNet on its own MAE backbone (the stock
# mmseg::_base_/models/upernet_mae.py), scaled down to the mini paper's tiny ViT (width 128, 4
# blocks, 4 heads, 4x4 patches) on the 64 x 64 digit canvases, 11 classes (background + 10
# digits). One recipe for ADDP, MAE and random init; benchmarks/mini_paper_parts/detseg.py sets
# model.pretrained to the converter's documented file for this backbone (`convert_addp.py --to
# mmseg-mae --img-size 64 --num-heads 4`; none for random init) and the data folder.
# Scaled from the MAE/BEiT UperNet recipe (configs/addp/benchmarks/segmentation):
#   - features of every block (the end of each quarter of the depth), no final norm, class token
#     in the sequence; layer scale initialised to 1 (the converted files hold gamma = 1, so the
#     random init starts from the same block) and zero relative position bias (mmseg's MAE);
#   - Feature2Pyramid with rescales (2, 1, 0.5, 0.25) of the stride-4 map: strides 2, 4, 8, 16
#     (the stock x4 level would be a stride-1 64 x 64 map; see the detection config);
#   - 64 head channels (stock 768 for width 768 and 512 in the base), 32 in the FCN auxiliary
#     head (loss weight 0.4), whole-image inference (the canvases are the crop size);
#   - AdamW, weight decay 0.05, layer decay 0.65, drop path 0.1, lr 2e-4 at batch 16, linear
#     warm-up then poly decay (the recipe's), fp32 on CPU.
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
    './_base_/digit_canvases_semantic_64px.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['addp_mm'], allow_failed_imports=False)

max_iters = 400
dim = 128
channels = 64
data_preprocessor = dict(size=(64, 64))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        img_size=64,
        patch_size=4,
        embed_dims=dim,
        num_layers=4,
        num_heads=4,
        mlp_ratio=4,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_values=1.0),
    neck=dict(embed_dim=dim, rescales=[2, 1, 0.5, 0.25]),
    decode_head=dict(in_channels=[dim] * 4, channels=channels, num_classes=11),
    auxiliary_head=dict(in_channels=dim, channels=channels // 2, num_classes=11),
    test_cfg=dict(mode='whole'))

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=4),
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# a pre-trained backbone must be loaded whole (detseg.py drops this hook for random init)
custom_hooks = [dict(type='FaultToleranceHook'), dict(type='CheckPretrainedKeysHook')]
