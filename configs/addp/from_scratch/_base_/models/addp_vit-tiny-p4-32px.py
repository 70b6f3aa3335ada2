# A tiny ADDP for CPUs on 32x32 images: encoder width 128, 4 blocks, 4x4 patches (= the tiny
# tokenizer's 8x8 token grid), 2-block decoder, a vocabulary of the 256 codes, no dropout (the
# runs are far too short to overfit); frozen tiny tokenizer and tiny MAGE predictor. Shared by the
# tiny pre-training config and its generation config.
_base_ = [
    '../../../_base_/models/addp_vit-base-p16.py',
    './vqgan_tiny-f4-c256-32px.py',
    './mage_vit-tiny-32px.py',
]

dim = 128
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=dim, num_layers=4, num_heads=4),
                  img_size=32, patch_size=4, drop_rate=0.),
    # embed_init_std: the width-aware init of the tied token embeddings, 0.02 * 768 / dim
    # (docs/method.md §3.9), as the token predictor's
    neck=dict(embed_dims=dim, decoder_depth=2, decoder_num_heads=4, num_tokens=64,
              vocab_size=256, drop_rate=0., embed_init_std=_base_.predictor.embed_init_std),
    head=dict(in_dims=dim, word_dims=dim, vocab_size=256),
    target_generator=dict(
        vqgan=dict(_delete_=True, type='VQGANTokenizer', checkpoint=None, **_base_.tokenizer),
        predictor=dict(_delete_=True, type='MAGETokenPredictor', checkpoint=None,
                       **_base_.predictor)))
