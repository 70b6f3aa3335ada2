# A tiny MAGE token predictor for CPUs (width 128, 4 + 2 blocks) on the 8x8 grid of the tiny
# tokenizer. Shared by the tiny MAGE trainer and the frozen predictor of the tiny ADDP config.
predictor = dict(
    embed_dims=128,
    depth=4,
    num_heads=4,
    decoder_depth=2,
    decoder_num_heads=4,
    codebook_size=256,
    num_tokens=64)
