# Stage 2 at toy size (CPU): train a tiny MAGE token predictor on the tokens of the stage-1
# tokenizer (frozen, loaded from its checkpoint).
#   python tools/train.py THIS_CONFIG \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.target_generator.checkpoint=<stage-1 checkpoint>
# Output: work_dirs/<this config>/iter_300.pth, the `checkpoint` of the frozen predictor in stage 3.
_base_ = [
    './_base_/models/vqgan_tiny-f4-c256-32px.py',
    './_base_/models/mage_vit-tiny-32px.py',
    './_base_/datasets/imagefolder_32px.py',
    './_base_/cpu_runtime.py',
]

max_iters = 300
tokenizer_checkpoint = \
    'work_dirs/vqgan_maskgit-tiny-f4-c256_1xb8-cpu-coslr-1000iter_imagefolder-32px/iter_1000.pth'
model = dict(
    type='MAGE',
    backbone=dict(type='MAGEViT', **_base_.predictor),
    target_generator=dict(type='VQGANTokenizer', checkpoint=tokenizer_checkpoint,
                          **_base_.tokenizer),
    mask_ratio_range=(0.5, 1.0),
    mask_ratio_mu=0.55,
    mask_ratio_std=0.25,
    drop_ratio=0.5,
    label_smoothing=0.1)

train_dataloader = dict(batch_size=32)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=0., by_epoch=False, begin=20,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
