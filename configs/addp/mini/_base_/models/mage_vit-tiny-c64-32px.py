# The token predictor of the mini paper: the tiny from-scratch MAGE (width 128, 4 + 2 blocks, no
# dropout) on the 8x8 grid of the 64-code tokenizer: vocabulary = 64 codes + class slot + mask id.
predictor = dict(
    embed_dims=128,
    depth=4,
    num_heads=4,
    decoder_depth=2,
    decoder_num_heads=4,
    codebook_size=64,
    num_tokens=64,
    vocab_size=66,
    fake_class_label=64,
    mask_token_label=65,
    drop_rate=0.)
