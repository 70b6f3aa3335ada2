# Linear probe of the frozen ADDP ViT-B/16 encoder (1600-epoch pre-training) on ImageNet-1k, 256x256.
# The official ADDP code has no linear-probe script (github.com/ChangyaoTian/ADDP @7c2c034 ships only
# fine-tuning), and the paper reports no linear-probe number. The recipe is MAE's
# (facebookresearch/mae main_linprobe.py / LINPROBE, as in mmpretrain's
# configs/mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py): global batch 16384, LARS
# (momentum 0.9, weight decay 0), lr = blr 0.1 x 16384 / 256, 10 warm-up epochs then cosine to 0,
# 90 epochs, RandomResizedCrop + flip only, BatchNorm without affine before the linear head, AMP.
# Two choices are ours and ADDP-specific: the input is 256x256 (ADDP's resolution; the eval
# transform is ADDP's, Resize(256) + CenterCrop(256)), and the feature is the mean of the patch
# tokens of the *whole pre-trained encoder* (tokenizer_norm = pre_norm and the final norm ln1 kept,
# i.e. exactly the pre-training encoder output), the representation ADDP's fine-tuning also pools.
#
# The backbone keeps the pre-training norms, so convert with --keep-norms:
#   python tools/model_converters/convert_addp.py addp-vit-base-16.pth \
#       checkpoints/addp-vit-base-16_backbone-norms.pth --backbone-only --keep-norms
_base_ = ['../../../_base_/default_runtime.py']

pretrained = 'checkpoints/addp-vit-base-16_backbone-norms.pth'
img_size = 256

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=img_size,
        patch_size=16,
        pre_norm=True,  # ADDP's tokenizer_norm
        patch_cfg=dict(bias=True),  # mmpretrain drops the patch bias when pre_norm (CLIP); ADDP has it
        final_norm=True,
        out_type='featmap',  # patch tokens only (B, C, H, W) -> averaged by the neck
        frozen_stages=12,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=[
        dict(type='GlobalAveragePooling'),
        dict(type='ClsBatchNormNeck', input_features=768),  # MAE: BatchNorm1d(affine=False)
    ],
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))  # MAE linprobe head init

dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
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
    batch_size=2048,  # x 8 GPUs = 16384 (MAE)
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
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

max_epochs = 90
warmup_epochs = 10
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0., by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16384)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3, save_best='auto'))
# every backbone weight, including pre_norm and ln1, must come from the checkpoint
custom_hooks = [dict(type='CheckPretrainedKeysHook')]
randomness = dict(seed=0, diff_rank_seed=True)
