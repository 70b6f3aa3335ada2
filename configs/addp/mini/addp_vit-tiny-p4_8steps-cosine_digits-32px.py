# Mini paper, generation: the tiny ADDP of addp_vit-tiny-p4_1xb32-600iter_digits-32px.py in
# 8 denoising steps (cosine schedule, choice temperature 6.0 annealed, categorical sampling) on
# its 8x8 token grid. Its pre-training checkpoint loads directly (the VQGAN is inside it).
_base_ = ['../from_scratch/addp_vit-tiny-p4_8steps-cosine_cpu-32px.py']
