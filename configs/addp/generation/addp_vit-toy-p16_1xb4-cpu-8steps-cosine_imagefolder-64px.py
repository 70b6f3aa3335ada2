# A toy ADDP generator for CPUs: 64x64 images (4x4 tokens), a 2-block encoder/decoder of width 64,
# a small VQGAN (ch 32). Its sizes are those of the toy pre-training config
# (configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py), so that config's
# checkpoints load here; `tools/generate.py THIS_CONFIG random ...` samples from random weights
# (smoke tests).
# The images are noise-like unless the weights are trained; for tests, debugging and the docs.
_base_ = ['./_base_/gen_runtime_in1k-256px.py']

img_size = 64
dim = 64
model = dict(
    type='ADDPGenerator',
    backbone=dict(type='ADDPViT', arch=dict(embed_dims=dim, num_layers=2, num_heads=4),
                  img_size=img_size, patch_size=16),
    neck=dict(type='ADDPTokenDecoder', embed_dims=dim, decoder_depth=2, decoder_num_heads=4,
              num_tokens=16),
    head=dict(type='ADDPHead', in_dims=dim, word_dims=dim),
    vqgan=dict(type='VQGANTokenizer', checkpoint=None, ch=32, resolution=img_size),
    checkpoint=None,
    num_steps=8,
    schedule='cosine',
    choice_temperature=6.0,
    temperature_strategy='dynamic',
    sampling='categorical',
    channels_last=True,
    data_preprocessor=dict(type='DataPreprocessor'))

# A small evaluation: 16 images, FID against whatever images are in `real_data_root`.
real_data_root = 'data/toy_real_images'
test_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(data_root=real_data_root))
test_evaluator = dict(metrics=[
    dict(type='OfflineFID', prefix='FID-16', fake_nums=16, real_nums=-1,
         inception_path={{_base_.inception_path}},
         inception_pkl='work_dirs/toy_generation/inception_stylegan_toy-real.pkl',
         sample_model='orig', sample_kwargs=dict(seed=0)),
    dict(type='OfflineIS', prefix='IS-16', fake_nums=16, splits=2,
         inception_path={{_base_.inception_path}}, sample_model='orig',
         sample_kwargs=dict(seed=0)),
])
env_cfg = dict(dist_cfg=dict(backend='gloo'))
