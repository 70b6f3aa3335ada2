# ADDP ViT-B/16 with the frozen MaskGIT VQGAN and the MAGE ViT-B token predictor
# (docs/method.md §2, §3).
# Frozen weights are read from local files (nothing is downloaded); set the paths with
#   --cfg-options model.target_generator.vqgan.checkpoint=... \
#                 model.target_generator.predictor.checkpoint=...
# The VQGAN is `vqgan_jax_strongaug.ckpt` and the predictor `mage-vitb-1600.pth` of the MAGE
# release; the ADDP release file itself also contains both (see configs/addp/README.md).
vqgan_checkpoint = 'checkpoints/vqgan_jax_strongaug.ckpt'
predictor_checkpoint = 'checkpoints/mage-vitb-1600.pth'

model = dict(
    type='ADDP',
    backbone=dict(type='ADDPViT', arch='base', img_size=256, patch_size=16, drop_rate=0.1),
    neck=dict(type='ADDPTokenDecoder', embed_dims=768, decoder_depth=8, decoder_num_heads=16,
              num_tokens=256, drop_rate=0.1),
    head=dict(type='ADDPHead', in_dims=768, word_dims=768, label_smoothing=0.1),
    target_generator=dict(
        type='ADDPTargetGenerator',
        vqgan=dict(type='VQGANTokenizer', checkpoint=vqgan_checkpoint,
                   channels_last=True),  # same convolutions, oneDNN's faster layout
        predictor=dict(type='MAGETokenPredictor', checkpoint=predictor_checkpoint,
                       embed_dims=768, depth=12, num_heads=12, decoder_depth=8,
                       decoder_num_heads=16)),
)
