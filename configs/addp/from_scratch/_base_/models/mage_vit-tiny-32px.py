# A tiny MAGE token predictor for CPUs (width 128, 4 + 2 blocks, no dropout) on the 8x8 grid of
# the tiny tokenizer. The vocabulary is the 256 codes + class slot + mask id (the release's 2025
# entries only matter to load the released weights). Shared by the tiny MAGE trainer and the
# frozen predictor of the tiny ADDP config.
predictor = dict(
    embed_dims=128,
    depth=4,
    num_heads=4,
    decoder_depth=2,
    decoder_num_heads=4,
    codebook_size=256,
    num_tokens=64,
    vocab_size=258,
    fake_class_label=256,
    mask_token_label=257,
    drop_rate=0.,
    # width-aware init of the tied token embeddings, 0.02 * 768 / 128: the logit range of a ViT-B
    # (docs/method.md §3.9)
    embed_init_std=0.12)
