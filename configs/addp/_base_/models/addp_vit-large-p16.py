# ADDP ViT-L/16 with the frozen MaskGIT VQGAN and the MAGE ViT-L token predictor
# (docs/method.md §2, §3).
_base_ = './addp_vit-base-p16.py'

predictor_checkpoint = 'checkpoints/mage-vitl-1600.pth'
model = dict(
    backbone=dict(arch='large'),
    neck=dict(embed_dims=1024),
    head=dict(in_dims=1024, word_dims=1024),
    target_generator=dict(
        predictor=dict(checkpoint=predictor_checkpoint, embed_dims=1024, depth=24,
                       num_heads=16)),
)
