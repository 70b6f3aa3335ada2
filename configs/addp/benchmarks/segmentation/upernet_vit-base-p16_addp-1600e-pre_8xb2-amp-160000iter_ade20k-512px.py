# UperNet with the ADDP ViT-B/16 encoder, ADE20k, 512 x 512 crops, 160k iterations at batch 16.
# Recipe: the MAE/BEiT UperNet fine-tuning, as mmseg's
# configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py: AdamW lr 1e-4, wd 0.05, layer
# decay 0.65, 1500 warm-up iterations then poly decay, 8 GPUs x 2, Feature2Pyramid on blocks 4, 6,
# 8, 12, slide inference. The ADDP paper reports 48.1 mIoU for
# ViT-B but does not release its segmentation recipe (docs/method.md §6). Differences from mmseg's
# MAE config:
#   - the backbone is mmpretrain's VisionTransformer (the ADDP fine-tuning ViT, docs/method.md §6),
#     without MAE's layer scale and relative position bias, which ADDP does not pre-train;
#   - the run really uses AMP (AmpOptimWrapper); mmseg's MAE config names it but its `fp16` key is
#     ignored by mmseg 1.x.
# Before training, convert the release (see README.md):
#   python tools/model_converters/convert_addp.py addp-vit-base-16.pth \
#       checkpoints/addp-vit-base-16_backbone.pth --backbone-only
_base_ = [
    'mmseg::_base_/models/upernet_mae.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['addp_mm'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    # EncoderDecoder would hand `pretrained` to the backbone; the weights come from init_cfg instead
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=512,  # the 16 x 16 pre-training pos_embed is resized to 32 x 32 when loading
        patch_size=16,
        drop_path_rate=0.1,
        out_indices=[3, 5, 7, 11],
        out_type='featmap',
        with_cls_token=True,  # kept in the sequence, as in the official fine-tuning
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/addp-vit-base-16_backbone.pth',
                      prefix='backbone.')),
    neck=dict(embed_dim=768, rescales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[768, 768, 768, 768], num_classes=150, channels=768),
    auxiliary_head=dict(in_channels=768, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))

# mmengine's Pretrained init only logs missing keys; fail before training if any backbone tensor is
# not in the checkpoint (e.g. an unconverted release, or a ViT-B file for the ViT-L config)
custom_hooks = [dict(type='CheckPretrainedKeysHook')]

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ADDPLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=12))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]

# 8 GPUs x 2 images
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
