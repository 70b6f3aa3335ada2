# Mask R-CNN with the ADDP ViT-L/16 encoder, ViTDet style, COCO, large-scale jitter, 100 epochs.
# Recipe: ViTDet ViT-L (detectron2 projects/ViTDet/configs/COCO/mask_rcnn_vitdet_l_100ep.py): the
# ViT-B recipe with 24 blocks, global attention in blocks 5, 11, 17, 23, drop path 0.4 and layer
# decay 0.8. The ADDP paper reports 51.7 (B) / 54.6 (L) AP^box but does not release the recipe
# (docs/method.md §6). See the ViT-B config for the differences from ViTDet. Convert the release
# first:
#   python tools/model_converters/convert_addp.py addp-vit-large-16.pth \
#       checkpoints/addp-vit-large-16_backbone.pth --backbone-only
_base_ = './vitdet-mask-rcnn_vit-base-p16_addp-1600e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py'

model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.4,
        global_attn_indexes=(5, 11, 17, 23),
        init_cfg=dict(checkpoint='checkpoints/addp-vit-large-16_backbone.pth')),
    neck=dict(in_channels=1024))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8, num_layers=24))
