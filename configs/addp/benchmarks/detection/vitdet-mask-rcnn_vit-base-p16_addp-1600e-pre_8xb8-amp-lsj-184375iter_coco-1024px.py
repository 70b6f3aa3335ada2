# Mask R-CNN with the ADDP ViT-B/16 encoder, ViTDet style, COCO, large-scale jitter, 100 epochs.
# Recipe: ViTDet (Li et al., ECCV 2022), as in mmdet's
# projects/ViTDet/configs/vitdet_mask-rcnn_vit-b-mae_lsj-100e.py and detectron2's
# projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py. The ADDP paper reports
# 51.7 AP^box for ViT-B but does not release its detection recipe (docs/method.md §6); this is the
# recipe its numbers are comparable with. Differences from ViTDet, all forced by the ADDP backbone:
#   - window 16 instead of 14: ViTDet's window is the pre-training grid (224 / 16 = 14); ADDP
#     pre-trains at 256 px, a 16 x 16 grid. 1024 / 16 = 64 tokens = 4 x 4 windows, no padding.
#   - absolute position embedding interpolated from the 16 x 16 pre-training grid (ViTDet: 14 x 14);
#   - no relative position bias (ViTDet adds zero-initialised decomposed rel-pos to every block;
#     addp_mm's attention, shared with pre-training, has none).
# Before training, convert the release (see README.md):
#   python tools/model_converters/convert_addp.py addp-vit-base-16.pth \
#       checkpoints/addp-vit-base-16_backbone.pth --backbone-only
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/lsj-100e_coco-instance.py',
]
custom_imports = dict(imports=['addp_mm.det'], allow_failed_imports=False)

image_size = (1024, 1024)
# ViTDet normalises the pyramid and the RoI heads with LayerNorm (channels first)
norm_cfg = dict(type='LN2d', eps=1e-6, requires_grad=True)

model = dict(
    data_preprocessor=dict(
        # ImageNet mean/std in RGB, as the ADDP fine-tuning (inherited from mask-rcnn_r50_fpn).
        # Training batches are 1024 x 1024 already (LSJ crop + pad); test images have a long side
        # of 1024 and are padded to 1024 x 1024 here, keeping img_shape the real image's.
        pad_size_divisor=1024,
        batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='ADDPViTDet',
        arch='base',
        patch_size=16,
        pretrain_img_size=256,
        drop_path_rate=0.1,
        window_size=16,
        global_attn_indexes=(2, 5, 8, 11),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/addp-vit-base-16_backbone.pth',
                      prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

# mmengine's Pretrained init only logs missing keys; fail before training if any backbone tensor is
# not in the checkpoint (e.g. an unconverted release, or a ViT-B file for the ViT-L config)
custom_hooks = [dict(type='CheckPretrainedKeysHook')]

# ViTDet ViT-B: layer decay 0.7 over 12 blocks (num_layers is checked against the backbone)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.7, num_layers=12))
