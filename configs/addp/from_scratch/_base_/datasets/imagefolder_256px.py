# Any folder of images (searched recursively, no labels) at 256x256: RandomResizedCrop (scale
# 0.2-1, bicubic) and horizontal flip, as MAGE and ADDP pre-training; images reach the models as
# RGB in [0, 1] (the models normalise internally when they need to).
data_root = 'data/images'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.], to_rgb=True)
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        with_label=False,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=256, crop_ratio_range=(0.2, 1.0),
                 backend='pillow', interpolation='bicubic'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs'),
        ]))
