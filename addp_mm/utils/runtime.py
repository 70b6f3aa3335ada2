"""Config adjustments shared by ``tools/train.py`` and ``tools/test.py``.

They only touch mmengine (never mmdet/mmseg/mmagic), so the tools work for configs of any scope:
each config imports what it needs through ``custom_imports`` and picks its registries through
``default_scope``.
"""
import datetime
import os
import os.path as osp
import warnings
from typing import List, Optional

# Keys only AmpOptimWrapper understands (OptimWrapper would reject them).
_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')
_LOADER_FIELDS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def amp_device_available() -> bool:
    """Whether ``AmpOptimWrapper`` can be built here (it asserts a CUDA/NPU/MLU/MUSA device)."""
    from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                                 is_npu_available)
    return (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available())


def set_default_work_dir(cfg, config_path: str, work_dir: Optional[str] = None) -> None:
    """``--work-dir`` > ``work_dir`` in the config > ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def _optim_wrapper_cfgs(optim_wrapper) -> List[dict]:
    """The single-optimizer wrapper configs inside ``optim_wrapper``.

    Either the config itself, or, for mmagic-style multi-optimizer configs
    (``constructor='MultiOptimWrapperConstructor'``, ``generator=dict(optimizer=...)``, ...), each
    sub-config that holds an ``optimizer``.
    """
    if optim_wrapper is None:
        return []
    if 'optimizer' in optim_wrapper or 'type' in optim_wrapper:
        return [optim_wrapper]
    return [v for v in optim_wrapper.values() if isinstance(v, dict) and 'optimizer' in v]


def setup_amp(cfg, enable: bool) -> None:
    """Apply ``--amp`` and make AMP configs usable on a CPU-only machine.

    With an accelerator, ``--amp`` switches every optimizer wrapper to ``AmpOptimWrapper`` with a
    dynamic loss scale (fp16 autocast on CUDA). ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA
    device, so without one ``--amp`` and any ``AmpOptimWrapper`` already in the config fall back to
    a plain fp32 ``OptimWrapper``, with a warning.
    """
    wrappers = _optim_wrapper_cfgs(cfg.get('optim_wrapper', None))
    if enable and not wrappers:
        raise ValueError('--amp needs an `optim_wrapper` in the config.')
    if amp_device_available():
        if enable:
            for wrapper in wrappers:
                if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
                    wrapper.setdefault('loss_scale', 'dynamic')
                    continue
                if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
                    raise ValueError('--amp only converts OptimWrapper to AmpOptimWrapper, but the '
                                     f'config uses {wrapper["type"]!r}.')
                wrapper['type'] = 'AmpOptimWrapper'
                wrapper.setdefault('loss_scale', 'dynamic')
        return
    amp_in_cfg = any(w.get('type') == 'AmpOptimWrapper' for w in wrappers)
    if enable or amp_in_cfg:
        what = '--amp was given' if enable else 'the config uses AmpOptimWrapper'
        warnings.warn(f'{what}, but mixed-precision training needs a GPU (AmpOptimWrapper asserts '
                      'a CUDA/NPU/MLU/MUSA device) and none is available: training in fp32 with '
                      'OptimWrapper instead.')
        for wrapper in wrappers:
            if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
                wrapper['type'] = 'OptimWrapper'
                for key in _AMP_ONLY_KEYS:
                    wrapper.pop(key, None)


def set_default_collate(cfg, fields=_LOADER_FIELDS) -> None:
    """Use ``default_collate`` for loaders that name no ``collate_fn`` in mmpretrain configs.

    mmengine's default is ``pseudo_collate`` (lists of tensors); mmpretrain's models, including
    ``SelfSupDataPreprocessor``, expect stacked batches, and mmpretrain's own tools set this too.
    Configs of other scopes (mmdet, mmseg, mmagic use ``pseudo_collate``) are left alone.
    """
    if cfg.get('default_scope', 'mmengine') != 'mmpretrain':
        return
    for field in fields:
        loader = cfg.get(field, None)
        if loader is not None and loader.get('collate_fn', None) is None:
            loader['collate_fn'] = dict(type='default_collate')


def setup_cpu_distributed(cfg) -> None:
    """Make ``--launcher pytorch`` work without GPUs (gloo, CPU DDP).

    mmengine 0.10.7 cannot do this by itself: ``_init_dist_pytorch`` calls
    ``torch.cuda.set_device(LOCAL_RANK)``, which raises without an NVIDIA driver, and
    ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP, which DDP refuses for CPU
    modules. So, when no accelerator is present, this initialises the process group itself (the
    Runner then skips ``init_dist``), switches ``nccl`` to ``gloo``, and builds DDP with
    ``device_ids=None``. Does nothing with an accelerator or without a launcher.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or amp_device_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} needs GPUs (mmengine calls '
                           'torch.cuda.set_device); for a CPU-only run use --launcher pytorch '
                           '(tools/dist_train.sh / tools/dist_test.sh).')
    env_cfg = cfg.setdefault('env_cfg', dict())
    dist_cfg = env_cfg.setdefault('dist_cfg', dict())
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        warnings.warn('no GPU: using the gloo backend instead of '
                      f'{dist_cfg.get("backend", "nccl")!r}.')
        dist_cfg['backend'] = 'gloo'

    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        # What Runner.wrap_model builds by default, minus the GPU device ids.
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False), device_ids=None)
    else:
        wrapper_cls = MODEL_WRAPPERS.get(wrapper_cfg.get('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_cls, type) and issubclass(wrapper_cls, DistributedDataParallel):
            wrapper_cfg.setdefault('device_ids', None)

    import torch.distributed as torch_dist
    if not torch_dist.is_initialized():
        kwargs = {}
        if dist_cfg.get('timeout', None) is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
        # torchrun sets MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE for the env:// rendezvous.
        torch_dist.init_process_group(backend='gloo', **kwargs)
    os.environ.setdefault('LOCAL_RANK', '0')
