# Labelled digits (see digits_32px.py) for the recognition runs of the mini paper: train on
# meta/train.txt (or meta/train_10shot.txt), test on meta/test.txt with mmpretrain's Accuracy.
# Images are normalised with the ImageNet mean/std, as ADDP's and MAE's encoders were trained.
data_root = 'work_dirs/mini_paper/data'
data_preprocessor = dict(
    num_classes=10, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0),
         aspect_ratio_range=(0.85, 1.15), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/train.txt',
                 data_prefix='', pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=150,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/test.txt',
                 data_prefix='', pipeline=test_pipeline))
test_evaluator = dict(type='Accuracy', topk=(1, ))
test_cfg = dict()
# the test split is only read once, after training (no model selection on it)
val_dataloader = None
val_evaluator = None
val_cfg = None
