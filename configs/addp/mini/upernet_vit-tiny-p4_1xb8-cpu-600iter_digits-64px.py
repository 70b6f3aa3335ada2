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
#   - 32 head channels (stock 768 for width 768), 16 in the FCN auxiliary head (loss weight
#     0.4), whole-image inference (the canvases are the crop size);
#   - the classifiers (conv_seg) start from N(0, 0.1) instead of mmseg's N(0, 0.01): with
#     N(0, 0.01) the features get almost no gradient until Adam, moving each weight by about lr
#     per step, has grown the classifier, and a few hundred steps end before that (the model
#     could not even fit one batch of 16 canvases in 300 steps, and predicted background
#     everywhere on held-out canvases made of train digits);
#   - AdamW, weight decay 0.05, layer decay 0.65, drop path 0.1, lr 3e-3 at batch 8 (stock: 1e-4
#     at batch 16 for 160k iterations; chosen among 1e-3 and 3e-3 on canvases of train digits,
#     never on the test canvases), linear warm-up then poly decay (the recipe's), fp32 on CPU.
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
    './_base_/digit_canvases_semantic_64px.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['addp_mm'], allow_failed_imports=False)

max_iters = 600
dim = 128
channels = 32
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
    decode_head=dict(in_channels=[dim] * 4, channels=channels, num_classes=11,
                     init_cfg=dict(type='Normal', std=0.1, override=dict(name='conv_seg'))),
    auxiliary_head=dict(in_channels=dim, channels=channels // 2, num_classes=11,
                        init_cfg=dict(type='Normal', std=0.1, override=dict(name='conv_seg'))),
    test_cfg=dict(mode='whole'))

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=4),
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=max_iters, by_epoch=False),
]
train_dataloader = dict(batch_size=8)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# no fixed visualizer name (the stock runtime's 'visualizer'): the Runner then names it after the
# experiment, so the stages of one process (ADDP, MAE, random) each log to their own work_dir
visualizer = dict(
    _delete_=True, type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# a pre-trained backbone must be loaded whole (detseg.py drops this hook for random init);
# relative_position_index is a buffer mmseg's MAE computes from the patch grid (mmseg drops it
# from checkpoints when loading), not a weight
custom_hooks = [
    dict(type='FaultToleranceHook'),
    dict(type='CheckPretrainedKeysHook',
         allowed_missing=[r'backbone\.layers\.\d+\.attn\.relative_position_index'])
]
