# The mini paper's digit canvases for mmseg (see digit_canvases_instance_64px.py): the same 64 x 64
# images with label maps <data_root>/seg_maps/{train,test}/NNNNNN.png (uint8: 0 background, 1 + d
# for the stroke pixels of digit d), mmseg's BaseSegDataset and IoUMetric (mIoU over the 11
# classes, background included as in Pascal VOC). benchmarks/mini_paper_parts/detseg.py sets
# data_root. No resizing, no flips; the test split is read once, after training.
_base_ = 'mmseg::_base_/datasets/pascal_voc12.py'

data_root = 'work_dirs/mini_paper/seed0/canvases/'
crop_size = (64, 64)
metainfo = dict(
    classes=('background', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'),
    palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
             [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60],
             [250, 190, 190]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='images/train', seg_map_path='seg_maps/train'),
        img_suffix='.png',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        pipeline=train_pipeline))
test_dataloader = dict(
    _delete_=True,
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path='images/test', seg_map_path='seg_maps/test'),
        img_suffix='.png',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        test_mode=True,
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
val_dataloader = None
val_evaluator = None
val_cfg = None
test_cfg = dict(type='TestLoop')
tta_pipeline = None
