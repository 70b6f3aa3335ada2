# A tiny VQGAN for CPUs: 32x32 -> 8x8 tokens (2 halvings), ch 32 (x1, 2, 2), one ResBlock per
# level, codebook 256 x 32, GroupNorm with 8 groups (4 channels per group, as the released ch-128
# model). Shared by the tiny tokenizer trainer and the frozen tokenizer of the tiny MAGE / ADDP.
tokenizer = dict(
    ch=32,
    ch_mult=[1, 2, 2],
    num_res_blocks=1,
    z_channels=32,
    embed_dim=32,
    n_embed=256,
    resolution=32,
    norm_groups=8)
