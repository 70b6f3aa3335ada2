# Mini paper, stage 3: ADDP pre-training of a tiny ViT (width 128, 4 blocks, 4x4 patches = the
# tokenizer's 8x8 grid; 2-block token decoder) on the digits train split, with the stage-1
# tokenizer and the stage-2 token predictor frozen. benchmarks/mini_paper.py sets both
# checkpoints. Same ViT, batch and iterations as the MAE baseline
# (mae_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py): both see 19,200 images.
_base_ = [
    './_base_/models/addp_vit-tiny-p4-c64-32px.py',
    './_base_/digits_32px.py',
    '../from_scratch/_base_/cpu_runtime.py',
]

max_iters = 600
model = dict(
    target_generator=dict(
        vqgan=dict(checkpoint='work_dirs/mini_paper/tokenizer/iter_500.pth'),
        predictor=dict(checkpoint='work_dirs/mini_paper/predictor/iter_400.pth')))

train_dataloader = dict(batch_size=32)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=0., by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_iters))
