# Mini paper, stage 1: a tiny VQGAN tokenizer (32x32 -> 8x8 tokens, 64 codes) trained on the
# digits train split. L1 reconstruction + codebook/commitment losses, codebook initialised from
# data, no dead-code restarts: restarts spread the codes over near-identical background patches
# (see _base_/models/vqgan_tiny-f4-c64-32px.py). No LPIPS/GAN: the digits are smooth upsampled
# 8x8 scans, and the run must fit minutes on 2 CPU cores.
_base_ = [
    './_base_/models/vqgan_tiny-f4-c64-32px.py',
    './_base_/digits_32px.py',
    '../from_scratch/_base_/cpu_runtime.py',
]

max_iters = 500
model = dict(
    type='VQGANTrainer',
    vqgan=dict(type='VQGAN', **_base_.tokenizer),
    rec_loss='l1',
    beta=0.25,
    usage_window=50,
    dead_code_steps=0,
    init_codebook_from_data=True)

train_dataloader = dict(batch_size=16)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.99)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', T_max=max_iters - 30, eta_min=1e-5, by_epoch=False, begin=30,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_iters))
