# MAGE ViT-B token predictor (docs/method.md §2.2) on a 16x16 token grid with a 1024-code
# tokenizer. Shared by the MAGE trainer (stage 2) and the frozen predictor of ADDP pre-training
# (stage 3).
predictor = dict(
    embed_dims=768,
    depth=12,
    num_heads=12,
    decoder_depth=8,
    decoder_num_heads=16,
    codebook_size=1024,
    num_tokens=256)
