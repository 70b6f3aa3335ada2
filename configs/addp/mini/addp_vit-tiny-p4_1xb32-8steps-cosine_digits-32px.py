# Mini paper, generation: the tiny ADDP of
# addp_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py in 8 denoising steps (cosine schedule,
# choice temperature 6.0 annealed, categorical sampling) on its 8x8 grid of 64 codes. Its
# pre-training checkpoint loads directly (the VQGAN is inside it).
_base_ = [
    './_base_/models/addp_vit-tiny-p4-c64-32px.py',
    '../generation/_base_/gen_runtime_in1k-256px.py',
]

model = dict(
    _delete_=True,
    type='ADDPGenerator',
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    head=_base_.model.head,
    vqgan=dict(type='VQGANTokenizer', checkpoint=None, **_base_.tokenizer),
    checkpoint=None,
    num_steps=8,
    schedule='cosine',
    choice_temperature=6.0,
    temperature_strategy='dynamic',
    sampling='categorical',
    precision='fp32',
    data_preprocessor=dict(type='DataPreprocessor'))
