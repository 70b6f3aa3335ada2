# Runtime shared by the mmpretrain-side addp_mm configs (pre-training, classification).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['addp_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)
# On SIGTERM (Slurm preemption / time limit, torchrun shutdown): checkpoint the current iteration
# and exit; on resume: same data order and position, skip incomplete checkpoints.
custom_hooks = [dict(type='FaultToleranceHook')]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
