# The released MaskGIT VQGAN architecture (docs/method.md §2.1): 256x256 -> 16x16 tokens,
# codebook 1024 x 256.
# Shared by the tokenizer trainer (stage 1) and the frozen tokenizer of stages 2 and 3, so the sizes
# of a stage-1 checkpoint always match the configs that load it.
tokenizer = dict(
    ch=128,
    ch_mult=[1, 1, 2, 2, 4],
    num_res_blocks=2,
    z_channels=256,
    embed_dim=256,
    n_embed=1024,
    resolution=256)
