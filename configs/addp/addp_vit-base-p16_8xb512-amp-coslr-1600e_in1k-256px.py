# ADDP ViT-B/16 pre-training, 1600 epochs, global batch 4096 (8 GPUs x 512), the official recipe
# (paper, docs/method.md §3.8; MAGE ViT-B token predictor).
_base_ = [
    './_base_/models/addp_vit-base-p16.py',
    './_base_/datasets/imagenet_bs512_addp.py',
    './_base_/schedules/adamw_coslr_addp.py',
    '../_base_/default_runtime.py',
]

# The official training mode: the frozen token predictor runs with its dropout active while the
# model trains (the official per-epoch model.train() re-enables it); False gives deterministic
# targets. See configs/addp/README.md, "Official training behaviours".
model = dict(target_generator=dict(predictor_dropout=True))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
# relaunching the same command continues from work_dir/last_checkpoint
resume = True
# When a batch masks every position (ratio grid point 0.9999 -> 256 of 256) no reliable token is
# appended, so the token embedding gets no gradient in that step; DDP needs this flag for it.
find_unused_parameters = True
randomness = dict(seed=0, diff_rank_seed=True)
