# Generation with the tiny from-scratch ADDP (32x32 images, 8x8 tokens): 8 steps, cosine schedule,
# choice temperature 6.0 (dynamic), categorical sampling. Its sizes are those of
# addp_vit-tiny-p4_1xb16-cpu-coslr-300iter_imagefolder-32px.py, whose checkpoints load here:
#   python tools/generate.py THIS_CONFIG \
#       work_dirs/addp_vit-tiny-p4_1xb16-cpu-coslr-300iter_imagefolder-32px/iter_300.pth \
#       --out work_dirs/samples --num 16 --grid work_dirs/samples/grid.png
_base_ = [
    './_base_/models/addp_vit-tiny-p4-32px.py',
    '../generation/_base_/gen_runtime_in1k-256px.py',
]

model = dict(
    _delete_=True,
    type='ADDPGenerator',
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    head=_base_.model.head,
    # The VQGAN weights are part of the ADDP checkpoint (`target_generator.vqgan.*`).
    vqgan=dict(type='VQGANTokenizer', checkpoint=None, **_base_.tokenizer),
    checkpoint=None,
    num_steps=8,
    schedule='cosine',
    choice_temperature=6.0,
    temperature_strategy='dynamic',
    sampling='categorical',
    precision='fp32',
    data_preprocessor=dict(type='DataPreprocessor'))
