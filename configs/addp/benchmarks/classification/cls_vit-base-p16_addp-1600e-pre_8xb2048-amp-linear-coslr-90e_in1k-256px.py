# Linear probe of the frozen ADDP ViT-B/16 encoder (1600-epoch pre-training) on ImageNet-1k at
# 256x256. The official ADDP code has no linear-probe script (github.com/ChangyaoTian/ADDP @7c2c034
# ships only fine-tuning), and the paper reports no linear-probe number. The recipe is MAE's
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
_base_ = ['./_base_/imagenet_bs128_addp_256px.py', '../../../_base_/default_runtime.py']

pretrained = 'checkpoints/addp-vit-base-16_backbone-norms.pth'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=256,
        patch_size=16,
        pre_norm=True,  # ADDP's tokenizer_norm
        # mmpretrain drops the patch-embed bias when pre_norm (a CLIP quirk); ADDP has one
        patch_cfg=dict(bias=True),
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

# the evaluation data of the fine-tuning configs; training sees only RandomResizedCrop + flip (MAE)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=2048,  # x 8 GPUs = 16384 (MAE)
    dataset=dict(pipeline=train_pipeline))

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
