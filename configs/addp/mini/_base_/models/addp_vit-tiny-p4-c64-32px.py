# The ADDP of the mini paper: the tiny from-scratch ADDP (encoder width 128, 4 blocks, 4 heads,
# 4x4 patches = the 8x8 token grid; 2-block decoder; no dropout) with the 64-code tokenizer and its
# predictor, frozen. Shared by the pre-training config and the generation config.
_base_ = [
    '../../../_base_/models/addp_vit-base-p16.py',
    './vqgan_tiny-f4-c64-32px.py',
    './mage_vit-tiny-c64-32px.py',
]

dim = 128
codes = 64
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=dim, num_layers=4, num_heads=4),
                  img_size=32, patch_size=4, drop_rate=0.),
    neck=dict(embed_dims=dim, decoder_depth=2, decoder_num_heads=4, num_tokens=64,
              vocab_size=codes, drop_rate=0.),
    head=dict(in_dims=dim, word_dims=dim, vocab_size=codes),
    target_generator=dict(
        vqgan=dict(_delete_=True, type='VQGANTokenizer', checkpoint=None, **_base_.tokenizer),
        predictor=dict(_delete_=True, type='MAGETokenPredictor', checkpoint=None,
                       **_base_.predictor)))
