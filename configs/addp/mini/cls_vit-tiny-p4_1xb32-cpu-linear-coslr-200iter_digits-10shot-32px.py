# Mini paper, linear probe with 10 labels per class (meta/train_10shot.txt, 100 images drawn by
# benchmarks/mini_paper.py with the run's seed): the recipe of
# cls_vit-tiny-p4_1xb64-cpu-linear-coslr-400iter_digits-32px.py at batch 32 for 200 iterations
# (64 epochs).
_base_ = ['./cls_vit-tiny-p4_1xb64-cpu-linear-coslr-400iter_digits-32px.py']

max_iters = 200
train_dataloader = dict(batch_size=32, dataset=dict(ann_file='meta/train_10shot.txt'))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=0., by_epoch=False, begin=20,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
