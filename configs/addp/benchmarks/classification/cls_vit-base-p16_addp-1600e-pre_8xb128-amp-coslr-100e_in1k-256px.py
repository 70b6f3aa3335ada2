# Fine-tune the ADDP ViT-B/16 encoder (1600-epoch pre-training) on ImageNet-1k at 256x256.
# Recipe: the official ADDP release, configs/release/base/finetune_addp_base_100ep.sh with the
# defaults of main_finetune.py (github.com/ChangyaoTian/ADDP @7c2c034), docs/method.md §6: global
# batch 1024, AdamW (0.9, 0.999), lr = blr 1e-3 x 1024 / 256, weight decay 0.05, layer decay 0.65,
# drop path 0.1, 20 warm-up epochs then cosine to min_lr 1e-6, RandAugment rand-m9-mstd0.5-inc1,
# random erasing 0.25 (pixel mode), mixup 0.8 / cutmix 1.0 (switch prob 0.5), label smoothing 0.1,
# AMP. Paper: 83.9 top-1.
# The features are the mean of the 256 patch tokens after the last block (no final norm, no
# pre-training tokenizer_norm) -> a new LayerNorm (fc_norm; mmpretrain's `ln2`) -> linear head.
#
# Make the backbone checkpoint from the official release first (see README.md):
#   python tools/model_converters/convert_addp.py addp-vit-base-16.pth \
#       checkpoints/addp-vit-base-16_backbone.pth --backbone-only
_base_ = ['./_base_/imagenet_bs128_addp_256px.py', '../../../_base_/default_runtime.py']

pretrained = 'checkpoints/addp-vit-base-16_backbone.pth'

# ---------------------------------------------------------------- model
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=256,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',  # ln2(mean of patch tokens) = official global_pool='avg' + fc_norm
        final_norm=False,  # official fine-tuning deletes the final norm
        pre_norm=False,  # ... and has no tokenizer_norm
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        # mixup/cutmix give soft targets; 'original' smooths them like timm's Mixup(label_smoothing)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),  # official trunc_normal_
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

# ---------------------------------------------------------------- schedule
base_lr = 1e-3 * 1024 / 256  # official blr x global batch / 256
min_lr = 1e-6  # official --min_lr
warmup_epochs = 20
max_epochs = 100
optim_wrapper = dict(
    type='AmpOptimWrapper',  # official NativeScaler + autocast; tools/train.py falls back on CPU
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.05),
    # lr of layer id i (0 = patch embed / cls / pos, i = block i-1, 13 = ln2 + head):
    # base_lr * 0.65 ** (13 - i); no weight decay for 1-D params, pos_embed and cls_token
    # (official util/lr_decay.py param_groups_lrd with timm's no_weight_decay()).
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))
# Official util/lr_sched.py: per-iteration linear warm-up from 0, then half-cycle cosine from lr to
# min_lr, each group scaled by its lr_scale; eta_min_ratio keeps that scaling of min_lr per group.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / base_lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# --auto-scale-lr rescales base_lr linearly when the real batch is not 1024
auto_scale_lr = dict(base_batch_size=1024)

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
# PretrainedInit only logs missing keys; fail instead. ln2 (the official fc_norm) is the only new
# backbone layer, as in the official loader's missing keys (fc_norm, head).
custom_hooks = [dict(type='CheckPretrainedKeysHook', allowed_missing=[r'backbone\.ln2\..*'])]
randomness = dict(seed=0, diff_rank_seed=True)
