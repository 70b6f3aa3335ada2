# The tokenizer of the mini paper: the tiny from-scratch VQGAN (32x32 -> 8x8 tokens, ch 32 x (1, 2,
# 2), one ResBlock per level, 32-d codes) with 64 codes instead of 256. The upsampled 8x8 digits
# need few codes: with 256 codes (and dead-code restarts) the black background alone was split
# over 19 near-identical codes at one position, which made the token targets of MAGE and ADDP
# mostly noise (benchmarks/mini_paper/README.md, "Investigation").
tokenizer = dict(
    ch=32,
    ch_mult=[1, 2, 2],
    num_res_blocks=1,
    z_channels=32,
    embed_dim=32,
    n_embed=64,
    resolution=32,
    norm_groups=8)
