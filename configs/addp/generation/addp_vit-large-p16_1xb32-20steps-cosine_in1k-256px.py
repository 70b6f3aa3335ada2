# ADDP ViT-L/16 unconditional generation on ImageNet 256x256: 20 steps, cosine mask schedule,
# choice temperature 6.0 (dynamic), categorical sampling (official generate_addp_large_steps20.sh).
#   python tools/generate.py THIS_CONFIG addp-vit-large-16.pth --out work_dirs/samples --num 50000
#   python tools/test.py THIS_CONFIG addp-vit-large-16.pth       # FID-50k / IS-50k via mmagic
_base_ = [
    '../_base_/models/addp_vit-large-p16.py',
    './_base_/gen_runtime_in1k-256px.py',
]

model = dict(
    _delete_=True,
    type='ADDPGenerator',
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    head={{_base_.model.head}},
    vqgan=dict(type='VQGANTokenizer', checkpoint=None),
    checkpoint=None,
    num_steps=20,
    schedule='cosine',
    choice_temperature=6.0,
    temperature_strategy='dynamic',
    sampling='categorical',
    precision='fp32',
    # same math, faster VQGAN convolutions on CPUs (oneDNN); 1e-5-level rounding differences
    channels_last=True,
    data_preprocessor=dict(type='DataPreprocessor'))
