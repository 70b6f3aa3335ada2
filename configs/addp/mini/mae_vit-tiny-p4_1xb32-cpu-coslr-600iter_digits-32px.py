# Mini paper, baseline: mmpretrain's own MAE (MAE, MAEViT, MAEPretrainDecoder, MAEPretrainHead;
# configured, not re-implemented) with the ViT of the ADDP run (width 128, 4 blocks, 4 heads, 4x4
# patches at 32x32), a decoder of ADDP's token-decoder size (width 128, 2 blocks, 4 heads), mask
# ratio 0.75, normalised-pixel loss. Same data, pipeline, optimizer, schedule, batch and
# iterations as addp_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py (19,200 images seen).
_base_ = [
    './_base_/digits_32px.py',
    '../from_scratch/_base_/cpu_runtime.py',
]

max_iters = 600
dim = 128
# MAE normalises the input with the ImageNet mean/std (mmpretrain's MAE configs); ADDP's encoder
# does the same inside the model.
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True)
model = dict(
    type='MAE',
    backbone=dict(
        type='MAEViT',
        arch=dict(embed_dims=dim, num_layers=4, num_heads=4, feedforward_channels=4 * dim),
        img_size=32,
        patch_size=4,
        mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=64,
        patch_size=4,
        in_chans=3,
        embed_dim=dim,
        decoder_embed_dim=dim,
        decoder_depth=2,
        decoder_num_heads=4,
        mlp_ratio=4.),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=4,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])

train_dataloader = dict(batch_size=32)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=0., by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_iters))
