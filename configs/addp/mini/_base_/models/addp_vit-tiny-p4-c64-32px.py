# The ADDP of the mini paper: the tiny from-scratch ADDP (encoder width 128, 4 blocks, 4 heads,
# 4x4 patches = the 8x8 token grid; 2-block decoder; no dropout; width-aware embedding init;
# from_scratch/_base_/models/addp_vit-tiny-p4-32px.py) with the 64-code tokenizer and its
# predictor, frozen. Shared by the pre-training configs and the generation config.
_base_ = ['../../../from_scratch/_base_/models/addp_vit-tiny-p4-32px.py']

codes = 64
# the vocabulary and the codebook of the 64-code tokenizer (mage_vit-tiny-c64-32px.py and
# vqgan_tiny-f4-c64-32px.py beside this file give the same values to the stage-1 and 2 configs)
tokenizer = dict(n_embed=codes)
predictor = dict(codebook_size=codes, vocab_size=codes + 2, fake_class_label=codes,
                 mask_token_label=codes + 1)
model = dict(
    neck=dict(vocab_size=codes),
    head=dict(vocab_size=codes),
    target_generator=dict(vqgan=tokenizer, predictor=predictor))
