# Mini paper, detection column: mmdet's Mask R-CNN with the ADDP encoder run ViTDet's way
# (ADDPViTDet + SimpleFeaturePyramid, as configs/addp/benchmarks/detection), scaled down to the
# mini paper's tiny ViT (width 128, 4 blocks, 4 heads, 4x4 patches, pre-trained at 32 px) on the
# 64 x 64 digit canvases (16 x 16 tokens). One recipe for ADDP, MAE and random init;
# benchmarks/mini_paper_parts/detseg.py sets the backbone's init_cfg (a `--to mmpretrain`
# conversion of the pre-training checkpoint; none for random init) and the data folder.
# Scaled from the ViTDet ViT-B recipe:
#   - 4 blocks, all attending globally: ViTDet's rule (the last block of each quarter of the
#     depth) names every block of a 4-block ViT; 16 x 16 tokens are cheap to attend over.
#   - the pyramid from the stride-4 map with scale factors (2, 1, 0.5): strides 2, 4, 8, plus 16
#     for the RPN. ViTDet's extra x4 level would be a stride-1 64 x 64 map, the most expensive
#     part of the model on CPU and finer than the digits (8-32 px) need.
#   - 32 pyramid channels (ViTDet: 256 for width 768), anchors of 8, 16, 32, 64 px (scale 4 at
#     strides 2-16; the digits' boxes are 5-32 px), fewer sampled anchors and RoIs per image.
#   - AdamW, weight decay 0.1, layer decay 0.7, drop path 0.1 (ViTDet ViT-B), lr 1.2e-3 at batch
#     8 (ViTDet: 1e-4 at batch 64 for 184k iterations; chosen among 2e-4, 6e-4, 1.2e-3 and 2.4e-3
#     on canvases made of train digits, never on the test canvases: 1.2e-3 was best for random
#     init and for MAE alike), a short warm-up and a cosine decay (the stage runner rescales a
#     cosine schedule to any length; ViTDet's step milestones it would not), fp32 on CPU.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/digit_canvases_instance_64px.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['addp_mm.det'], allow_failed_imports=False)

max_iters = 450
dim = 128
channels = 32
norm_cfg = dict(type='LN2d', eps=1e-6, requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(
        _delete_=True,
        type='ADDPViTDet',
        arch=dict(embed_dims=dim, num_layers=4, num_heads=4),
        patch_size=4,
        pretrain_img_size=32,
        drop_path_rate=0.1,
        window_size=8,
        global_attn_indexes=None,
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=dim,
        out_channels=channels,
        scale_factors=(2.0, 1.0, 0.5),
        num_outs=4,
        norm_cfg=norm_cfg),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        num_convs=2,
        anchor_generator=dict(scales=[4], strides=[2, 4, 8, 16])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels, featmap_strides=[2, 4, 8]),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256,
            norm_cfg=norm_cfg,
            num_classes=10),
        mask_roi_extractor=dict(out_channels=channels, featmap_strides=[2, 4, 8]),
        mask_head=dict(
            in_channels=channels, conv_out_channels=channels, norm_cfg=norm_cfg,
            num_classes=10)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(max_per_img=20)))

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7, num_layers=4),
    optimizer=dict(type='AdamW', lr=1.2e-3, betas=(0.9, 0.999), weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=0., by_epoch=False, begin=20,
         end=max_iters),
]
train_dataloader = dict(batch_size=8)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
# no fixed visualizer name (the stock runtime's 'visualizer'): the Runner then names it after the
# experiment, so the stages of one process (ADDP, MAE, random) each log to their own work_dir
visualizer = dict(
    _delete_=True, type='DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# a pre-trained backbone must be loaded whole (detseg.py drops this hook for random init)
custom_hooks = [dict(type='FaultToleranceHook'), dict(type='CheckPretrainedKeysHook')]
