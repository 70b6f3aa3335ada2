# Runtime of the mini-paper configs: addp_mm's CPU runtime (iteration-based, one checkpoint at the
# end), logging every 50 iterations. benchmarks/mini_paper.py sets work_dir, seed and data_root.
_base_ = ['../../from_scratch/_base_/cpu_runtime.py']

default_hooks = dict(logger=dict(interval=50))
