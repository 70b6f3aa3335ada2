# ADDP ViT-L/16 pre-training, 800 epochs, global batch 4096 (8 GPUs x 512), the official recipe
# (paper, docs/method.md §3.8; MAGE ViT-L token predictor).
_base_ = [
    './_base_/models/addp_vit-large-p16.py',
    './_base_/datasets/imagenet_bs512_addp.py',
    './_base_/schedules/adamw_coslr_addp.py',
    '../_base_/default_runtime.py',
]

max_epochs = 800
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 40, eta_min=0., by_epoch=True, begin=40,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)

# The official training mode: the frozen token predictor runs with its dropout active while the
# model trains (the official per-epoch model.train() re-enables it); False gives deterministic
# targets. See configs/addp/README.md, "Official training behaviours".
model = dict(target_generator=dict(predictor_dropout=True))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
resume = True
# When a batch masks every position (ratio grid point 0.9999 -> 256 of 256) no reliable token is
# appended, so the token embedding gets no gradient in that step; DDP needs this flag for it.
find_unused_parameters = True
randomness = dict(seed=0, diff_rank_seed=True)
