# The tokenizer of the mini paper: the tiny from-scratch VQGAN (32x32 -> 8x8 tokens, ch 32 x (1, 2,
# 2), one ResBlock per level, 32-d codes; from_scratch/_base_/models/vqgan_tiny-f4-c256-32px.py)
# with 64 codes instead of 256. The upsampled 8x8 digits need few codes: with 256 codes (and
# dead-code restarts) the black background alone was split over 19 near-identical codes at one
# position, which made the token targets of MAGE and ADDP mostly noise
# (benchmarks/mini_paper/README.md, "Investigation").
_base_ = ['../../../from_scratch/_base_/models/vqgan_tiny-f4-c256-32px.py']

tokenizer = dict(n_embed=64)
