# Stage 1 at toy size (CPU): train a tiny VQGAN tokenizer (32x32 -> 8x8 tokens, 256 codes) on any
# image folder. This is what `tools/demo.py` runs; it is for trying the pipeline, not a recipe.
#   python tools/train.py THIS_CONFIG \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images
# Output: work_dirs/<this config>/iter_1000.pth, the `checkpoint` of the frozen tokenizer in
# stage 2.
_base_ = [
    './_base_/models/vqgan_tiny-f4-c256-32px.py',
    './_base_/datasets/imagefolder_32px.py',
    './_base_/cpu_runtime.py',
]

max_iters = 1000
model = dict(
    type='VQGANTrainer',
    vqgan=dict(type='VQGAN', **_base_.tokenizer),
    rec_loss='l1',
    beta=0.25,
    usage_window=50,
    dead_code_steps=50,
    init_codebook_from_data=True)

train_dataloader = dict(batch_size=8)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.99)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
