# Stage 3 at toy size (CPU): ADDP pre-training from the stage-1 tokenizer and the stage-2 token
# predictor (both frozen, loaded from their checkpoints).
#   python tools/train.py THIS_CONFIG \
#       --cfg-options train_dataloader.dataset.data_root=path/to/images \
#                     model.target_generator.vqgan.checkpoint=<stage-1 checkpoint> \
#                     model.target_generator.predictor.checkpoint=<stage-2 checkpoint>
# Generate from the result with addp_vit-tiny-p4_1xb32-8steps-cosine_imagefolder-32px.py
# (tools/generate.py).
_base_ = [
    './_base_/models/addp_vit-tiny-p4-32px.py',
    './_base_/datasets/imagefolder_32px.py',
    './_base_/cpu_runtime.py',
]

max_iters = 300
tokenizer_checkpoint = \
    'work_dirs/vqgan_maskgit-tiny-f4-c256_1xb8-cpu-coslr-1000iter_imagefolder-32px/iter_1000.pth'
predictor_checkpoint = \
    'work_dirs/mage_vit-tiny-p4_1xb32-cpu-coslr-300iter_imagefolder-32px/iter_300.pth'
model = dict(
    target_generator=dict(
        vqgan=dict(checkpoint=tokenizer_checkpoint),
        predictor=dict(checkpoint=predictor_checkpoint)))

train_dataloader = dict(batch_size=16)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, eta_min=0., by_epoch=False, begin=20,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
