# UperNet with the ADDP ViT-L/16 encoder, ADE20k, 512 x 512 crops, 160k iterations at batch 16.
# Recipe: the ViT-B config (MAE/BEiT UperNet) with 24 blocks, features of blocks 8, 12, 16, 24 (as
# mmseg's BEiT-L config) and drop path 0.2 (ADDP's own ViT-L fine-tuning value, docs/method.md
# §6). The layer decay stays at the recipe's 0.65; the ADDP paper reports 54.3 mIoU for ViT-L but
# does not release the recipe. Convert the release first:
#   python tools/model_converters/convert_addp.py addp-vit-large-16.pth \
#       checkpoints/addp-vit-large-16_backbone.pth --backbone-only
_base_ = './upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512px.py'

model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.2,
        out_indices=[7, 11, 15, 23],
        init_cfg=dict(checkpoint='checkpoints/addp-vit-large-16_backbone.pth')),
    neck=dict(embed_dim=1024),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024], channels=1024),
    auxiliary_head=dict(in_channels=1024))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=24))
