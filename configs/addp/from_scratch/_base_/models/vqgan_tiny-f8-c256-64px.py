# A tiny VQGAN for CPUs: 64x64 -> 8x8 tokens (3 halvings), ch 32 (x1, 1, 2, 4), one ResBlock per level,
# codebook 256 x 32. Shared by the tiny tokenizer trainer and the frozen tokenizer of the tiny
# MAGE / ADDP configs.
tokenizer = dict(
    ch=32,
    ch_mult=[1, 1, 2, 4],
    num_res_blocks=1,
    z_channels=32,
    embed_dim=32,
    n_embed=256,
    resolution=64)
