# A tiny ADDP for CPUs on 64x64 images: encoder width 128, 4 blocks, 8x8 patches (= the tiny
# tokenizer's 8x8 token grid), 2-block decoder; frozen tiny tokenizer and tiny MAGE predictor.
# Shared by the tiny pre-training config and its generation config.
_base_ = [
    '../../../_base_/models/addp_vit-base-p16.py',
    './vqgan_tiny-f8-c256-64px.py',
    './mage_vit-tiny-64px.py',
]

dim = 128
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=dim, num_layers=4, num_heads=4),
                  img_size=64, patch_size=8),
    neck=dict(embed_dims=dim, decoder_depth=2, decoder_num_heads=4, num_tokens=64),
    head=dict(in_dims=dim, word_dims=dim),
    target_generator=dict(
        vqgan=dict(_delete_=True, type='VQGANTokenizer', checkpoint=None, **_base_.tokenizer),
        predictor=dict(_delete_=True, type='MAGETokenPredictor', checkpoint=None,
                       **_base_.predictor)))
