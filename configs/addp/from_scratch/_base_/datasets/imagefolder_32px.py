# Any folder of images (searched recursively, no labels) at 32x32 for the CPU configs:
# RandomResizedCrop (scale 0.5-1, bicubic) and horizontal flip; RGB in [0, 1]. Single-process
# loading and an infinite sampler (iteration-based schedules).
data_root = 'data/images'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        with_label=False,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
                 backend='pillow', interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs'),
        ]))
