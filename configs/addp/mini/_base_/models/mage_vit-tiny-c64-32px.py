# The token predictor of the mini paper: the tiny from-scratch MAGE (width 128, 4 + 2 blocks, no
# dropout, width-aware embedding init; from_scratch/_base_/models/mage_vit-tiny-32px.py) on the 8x8
# grid of the 64-code tokenizer: vocabulary = 64 codes + class slot + mask id.
_base_ = ['../../../from_scratch/_base_/models/mage_vit-tiny-32px.py']

codes = 64
predictor = dict(codebook_size=codes, vocab_size=codes + 2, fake_class_label=codes,
                 mask_token_label=codes + 1)
