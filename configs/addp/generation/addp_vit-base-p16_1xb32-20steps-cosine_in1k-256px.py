# ADDP ViT-B/16 unconditional generation on ImageNet 256x256: 20 steps, cosine mask schedule,
# choice temperature 6.0 (dynamic), categorical sampling (official settings; FID 8.9 / IS 95.3).
#   python tools/generate.py THIS_CONFIG addp-vit-base-16.pth --out work_dirs/samples --num 50000
#   python tools/test.py THIS_CONFIG addp-vit-base-16.pth        # FID-50k / IS-50k via mmagic
# The network sizes come from the pre-training config, so any ADDP ViT-B checkpoint (addp_mm
# pre-training, converted or official release) loads strictly.
_base_ = [
    '../_base_/models/addp_vit-base-p16.py',
    './_base_/gen_runtime_in1k-256px.py',
]

model = dict(
    _delete_=True,
    type='ADDPGenerator',
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    head={{_base_.model.head}},
    # The VQGAN weights are part of the ADDP checkpoint (`target_generator.vqgan.*`).
    vqgan=dict(type='VQGANTokenizer', checkpoint=None),
    checkpoint=None,  # set by tools/generate.py; tools/test.py loads it through `load_from`
    num_steps=20,
    schedule='cosine',
    choice_temperature=6.0,
    temperature_strategy='dynamic',
    sampling='categorical',
    precision='fp32',
    # same math, faster VQGAN convolutions on CPUs (oneDNN); 1e-5-level rounding differences
    channels_last=True,
    data_preprocessor=dict(type='DataPreprocessor'))
