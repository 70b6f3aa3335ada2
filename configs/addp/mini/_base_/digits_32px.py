# scikit-learn's handwritten digits (1,797 real 8x8 scans, 17 grey levels) upsampled to 32x32 RGB,
# written by benchmarks/mini_paper.py in mmpretrain's on-disk format:
#   <data_root>/train/<digit>/<index>.png, <data_root>/test/<digit>/<index>.png,
#   <data_root>/meta/{train,test,train_10shot}.txt ("train/3/0042.png 3" per line), classes.txt.
# The split is stratified and fixed (25% test). Pre-training reads the train folder without labels.
# No flips anywhere (a mirrored digit is another glyph); light random-resized crops for training.
data_root = 'work_dirs/mini_paper/data'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True)
pretrain_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0),
         aspect_ratio_range=(0.85, 1.15), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=pretrain_pipeline))
