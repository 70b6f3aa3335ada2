# ImageNet-1k at 256x256 for fine-tuning ADDP (mmpretrain `ImageNet` layout in data/imagenet:
# train/, val/, meta/train.txt, meta/val.txt), batch 128 per GPU (x 8 = 1024, the official batch).
# Train: timm create_transform(is_training=True, auto_augment='rand-m9-mstd0.5-inc1', interpolation
# 'bicubic', re_prob=0.25, re_mode='pixel') as in the official util/datasets.py (ADDP @7c2c034).
# Eval: for input_size > 224 the official build_transform uses crop_pct = 1.0, i.e.
# Resize(256, bicubic) on the short side, then CenterCrop(256).
img_size = 256
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],  # ImageNet mean/std (timm IMAGENET_DEFAULT_*), RGB
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',  # timm 'pixel': per-pixel normal noise in normalized space
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,  # x 8 GPUs = 1024, the official global batch
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,  # official DataLoader(drop_last=True)
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
