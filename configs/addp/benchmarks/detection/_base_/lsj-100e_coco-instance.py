# COCO instance segmentation with large-scale jitter, 100 epochs (184375 iterations at batch 64).
# Recipe: ViTDet (Li et al., ECCV 2022), as in mmdet's
# projects/ViTDet/configs/lsj-100e_coco-instance.py and detectron2's
# projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py. ADDP's own detection recipe is not
# released (docs/method.md §6). Per-GPU batch: 8 GPUs x 8 images (ViTDet: 16 x 4); the total batch
# (64), and so the schedule, is the same.
_base_ = 'mmdet::_base_/default_runtime.py'

dataset_type = 'CocoDataset'
data_root = 'data/coco/'
image_size = (1024, 1024)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    # large-scale jitter: resize to 0.1-2.0 x 1024 keeping the ratio, then crop/pad to 1024
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs'),
]
# Test images are resized to a long side of 1024 and padded to 1024 x 1024 by the model's data
# preprocessor (pad_size_divisor=1024 in the model config), as detectron2's ViTDet (square_pad).
# Padding here, as mmdet's ViTDet project does, would make img_shape the padded size, so boxes
# would be clipped to the padding instead of the image.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# AdamW, lr 1e-4, wd 0.1, layer-wise lr decay (rate and depth set by the model config), AMP
optim_wrapper = dict(
    type='AmpOptimWrapper',
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7),
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1))

# 100 epochs of COCO train2017 (118k images) at batch 64 = 184375 iterations; lr x0.1 at 88.9% and
# 96.3% of the schedule; 250 warm-up iterations
max_iters = 184375
interval = 5000
dynamic_intervals = [(max_iters // interval * interval + 1, max_iters)]
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval,
                 dynamic_intervals=dynamic_intervals)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval, save_last=True,
                    max_keep_ckpts=3))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

# The lr above is for a total batch of 64; `--auto-scale-lr` rescales it for other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=64)
