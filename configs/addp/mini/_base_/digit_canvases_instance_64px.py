# The mini paper's digit canvases for mmdet: 64 x 64 black canvases with 1-4 real digits each (16,
# 24 or 32 px, never overlapping), written by benchmarks/mini_paper_parts/canvases.py from the
# digits' own train/test split (train canvases: train digits only). COCO instance format:
#   <data_root>/images/{train,test}/NNNNNN.png, <data_root>/annotations/instances_{train,test}.json
# (classes '0'..'9', masks = the stroke pixels, boxes = their extent). mmdet's COCO instance
# dataset (CocoDataset, CocoMetric with bbox and segm AP); benchmarks/mini_paper_parts/detseg.py
# sets data_root and the evaluator's ann_file. No resizing (the canvases are the model's input
# size) and no flips (a mirrored digit is another glyph). The test split is read once, after
# training (no validation loop, no model selection).
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

data_root = 'work_dirs/mini_paper/seed0/canvases/'
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
image_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # a no-op at the canvas size that records the scale factor (1) the mask head reads
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='images/test/'),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=test_pipeline))
test_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_test.json',
    metric=['bbox', 'segm'],
    format_only=False)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_cfg = dict(type='TestLoop')
