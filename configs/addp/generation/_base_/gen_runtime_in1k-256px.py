# Runtime of the ADDP generation configs: mmagic scope, mmagic's multi-metric test loop, FID-50k and
# IS-50k against ImageNet val (256x256 PNG) with local files only (nothing is downloaded).
#
# Local files (override with --cfg-options, e.g.
#   test_evaluator.metrics.0.inception_path=... test_evaluator.metrics.1.inception_path=...):
#   inception_path: NVIDIA's TorchScript Inception `inception-2015-12-05.pt` (TF-FID weights).
#   inception_pkl:  FID reference statistics; computed once from `real_data_root` when missing.
#   real_data_root: ImageNet val as 256x256 PNG files (only read to compute inception_pkl).
# See configs/addp/generation/README.md for how to produce each of them.
default_scope = 'mmagic'
custom_imports = dict(imports=['addp_mm.generation'], allow_failed_imports=False)

inception_path = 'checkpoints/inception-2015-12-05.pt'
inception_pkl = 'data/imagenet/inception_stylegan_imagenet-val-256-png.pkl'
real_data_root = 'data/imagenet/val_256_png'
num_fake = 50000
# FID and IS share the same generated images (mmagic groups metrics by sampler); `seed` makes the
# run reproducible: with W processes, rank r generates images r, r + W, ... of that seed, exactly
# the images `tools/generate.py --seed 0` writes.
sample_kwargs = dict(seed=0)

test_dataloader = dict(
    batch_size=32,  # images per GPU and generation call
    num_workers=4,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='RealImageFolder',
        data_root=real_data_root,
        pipeline=[dict(type='LoadImageFromFile', key='gt'),
                  dict(type='PackInputs')]))
test_evaluator = dict(
    type='Evaluator',
    metrics=[
        dict(type='OfflineFID', prefix='FID-50k', fake_nums=num_fake, real_nums=-1,
             inception_path=inception_path, inception_pkl=inception_pkl,
             sample_model='orig', sample_kwargs=sample_kwargs),
        dict(type='OfflineIS', prefix='IS-50k', fake_nums=num_fake, splits=10,
             inception_path=inception_path, sample_model='orig', sample_kwargs=sample_kwargs),
    ])
test_cfg = dict(type='MultiTestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='VisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(type='LogProcessor', by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
