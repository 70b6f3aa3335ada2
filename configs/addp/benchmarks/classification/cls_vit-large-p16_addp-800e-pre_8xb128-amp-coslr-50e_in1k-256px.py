# Fine-tune the ADDP ViT-L/16 encoder (800-epoch pre-training) on ImageNet-1k at 256x256.
# Recipe: the official ADDP release, configs/release/large/finetune_addp_large_50ep.sh
# (github.com/ChangyaoTian/ADDP @7c2c034), docs/method.md §6: as ViT-B except 50 epochs, blr 2.5e-4
# (lr 1e-3 at batch 1024), layer decay 0.8, drop path 0.2, 5 warm-up epochs. Paper: 85.9 top-1.
#
#   python tools/model_converters/convert_addp.py addp-vit-large-16.pth \
#       checkpoints/addp-vit-large-16_backbone.pth --backbone-only
_base_ = ['./cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py']

pretrained = 'checkpoints/addp-vit-large-16_backbone.pth'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=1024))

base_lr = 2.5e-4 * 1024 / 256
min_lr = 1e-6
warmup_epochs = 5
max_epochs = 50
optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    # lr of layer id i (0 = stem, i = block i-1, 25 = ln2 + head): base_lr * 0.8 ** (25 - i)
    paramwise_cfg=dict(layer_decay_rate=0.8))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=min_lr / base_lr,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
