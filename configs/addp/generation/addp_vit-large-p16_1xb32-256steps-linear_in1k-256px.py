# ADDP ViT-L/16 unconditional generation on ImageNet 256x256: 256 steps, linear mask schedule (one
# token decided per step), as the official `generate_addp_large_steps256_linear.sh`. The official
# README reports ViT-L FID 7.6 / IS 105.1 without saying which of the two ViT-L settings produced
# them. About 13x the cost of the 20-step config.
_base_ = ['./addp_vit-large-p16_1xb32-20steps-cosine_in1k-256px.py']

model = dict(num_steps=256, schedule='linear')
