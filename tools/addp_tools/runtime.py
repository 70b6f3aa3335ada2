"""Config adjustments shared by ``tools/train.py`` and ``tools/test.py`` (tool code, not part of
the ``addp_mm`` library).

They only touch mmengine (never mmdet/mmseg/mmagic), so the tools work for configs of any scope:
each config imports what it needs through ``custom_imports`` and picks its registries through
``default_scope``.
"""
import datetime
import os
import os.path as osp
import warnings
from typing import List, Optional

import torch.distributed as torch_dist
from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                             is_npu_available)
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

from addp_mm.engine.hooks import CheckPretrainedKeysHook, FaultToleranceHook
from addp_mm.engine.optim_wrappers import AutocastOptimWrapper
from addp_mm.utils.device import EMULATED_BF16_HINT, cpu_has_native_bf16
from addp_mm.utils.errors import ConfigError

# Keys only AmpOptimWrapper understands (OptimWrapper would reject them; AutocastOptimWrapper takes
# `dtype` only, which setup_amp sets itself).
_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')
_LOADER_FIELDS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Registry names of what the tools add to configs, taken from the classes themselves so that the
# dependency is an import (visible to the layering check of
# tests/test_tools/test_train_and_test.py), not a string.
_PLAIN, _AMP, _AUTOCAST = OptimWrapper.__name__, AmpOptimWrapper.__name__, \
    AutocastOptimWrapper.__name__


def amp_device_available() -> bool:
    """Whether ``AmpOptimWrapper`` can be built here (it asserts a CUDA/NPU/MLU/MUSA device)."""
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
    """Apply ``--amp`` and make mixed-precision configs usable on every device.

    With a CUDA/NPU/MLU/MUSA device, ``--amp`` turns a plain ``OptimWrapper`` into
    ``AmpOptimWrapper`` (fp16 autocast with a dynamic loss scale; ``loss_scale='dynamic'`` unless
    the config sets one, e.g. the ADDP recipe's ``dict(growth_interval=500)``). A config that
    already asks for ``AmpOptimWrapper`` (fp16, or ``dtype='bfloat16'``) or for
    ``AutocastOptimWrapper`` (bf16) keeps it.

    Without such a device ``AmpOptimWrapper`` cannot be built (it asserts one), so both ``--amp``
    and an ``AmpOptimWrapper`` in the config become :class:`~addp_mm.engine.AutocastOptimWrapper`
    with bfloat16 (fp32 master weights, no loss scale needed), with a warning. To train in fp32
    instead, pass ``--cfg-options optim_wrapper.type=OptimWrapper``; the AMP-only keys the config
    carries (``loss_scale``, ...) are then dropped.

    Args:
        cfg (Config): The config; its ``optim_wrapper`` (or each sub-wrapper of an mmagic-style
            multi-optimizer config) is edited in place.
        enable (bool): Whether ``--amp`` was given.
    """
    wrappers = _optim_wrapper_cfgs(cfg.get('optim_wrapper', None))
    if enable and not wrappers:
        raise ConfigError('--amp needs an `optim_wrapper` in the config.')
    accelerator = amp_device_available()
    for wrapper in wrappers:
        kind = wrapper.get('type', _PLAIN)
        if kind not in (_PLAIN, _AMP, _AUTOCAST):
            if enable:
                raise ConfigError('--amp converts OptimWrapper to a mixed-precision wrapper, but '
                                  f'the config uses {kind!r}; set the wrapper type in the config '
                                  'instead of passing --amp.')
            continue
        if accelerator:
            if enable and kind in (_PLAIN, _AMP):
                wrapper['type'] = _AMP
                wrapper.setdefault('loss_scale', 'dynamic')
        elif kind == _AMP or (enable and kind == _PLAIN):
            what = '--amp was given' if kind == _PLAIN else \
                'the config uses AmpOptimWrapper'
            slow = '' if cpu_has_native_bf16() else f' Note: {EMULATED_BF16_HINT}.'
            warnings.warn(f'{what}, but AmpOptimWrapper (fp16 with loss scaling) needs a GPU and '
                          'none is available: training with bfloat16 autocast on the CPU '
                          '(AutocastOptimWrapper, fp32 master weights) instead. For fp32, pass '
                          f'--cfg-options optim_wrapper.type=OptimWrapper.{slow}')
            for key in _AMP_ONLY_KEYS:
                wrapper.pop(key, None)
            wrapper['type'] = _AUTOCAST
            wrapper['dtype'] = 'bfloat16'
        if wrapper.get('type', _PLAIN) == _PLAIN:
            # e.g. `--cfg-options optim_wrapper.type=OptimWrapper` on an AMP config:
            # OptimWrapper would reject the AMP-only keys.
            for key in _AMP_ONLY_KEYS:
                wrapper.pop(key, None)


def add_fault_tolerance_hook(cfg) -> bool:
    """Add :class:`~addp_mm.engine.hooks.FaultToleranceHook` to ``custom_hooks`` if it is missing.

    It makes a SIGTERM (Slurm preemption or time limit, torchrun shutdown) or a Ctrl-C (SIGINT)
    save a checkpoint of the current iteration before the process exits (status 143 / 130), and a
    resumed run continue with the same data order; configs of every scope get it this way
    (mmengine's root HOOKS registry, which every library's registry falls back to, holds it once
    ``addp_mm`` is imported).

    Args:
        cfg (Config): The config (edited in place).

    Returns:
        bool: True if the hook was added, False if the config already had it.
    """
    return _add_hook(cfg, FaultToleranceHook)


def _add_hook(cfg, hook: type, **kwargs) -> bool:
    """Append ``dict(type=hook.__name__, **kwargs)`` to ``custom_hooks`` unless a hook of that
    type (with or without a scope prefix, or given as the class) is there already."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    name = hook.__name__
    for h in hooks:
        kind = h.get('type', '')
        if kind is hook or str(getattr(kind, '__name__', kind)).split('.')[-1] == name:
            return False
    hooks.append(dict(type=name, **kwargs))
    cfg.custom_hooks = hooks
    return True


def add_load_check_hook(cfg) -> bool:
    """Add :class:`~addp_mm.engine.hooks.CheckPretrainedKeysHook` (``require_pretrained=False``) to
    ``custom_hooks`` if the config has none.

    With it, a ``load_from`` or ``Pretrained`` checkpoint that leaves trainable backbone weights
    unloaded, or a resume from a run with other data/model settings, stops before the first
    iteration in every config family.

    Returns:
        bool: True if the hook was added.
    """
    return _add_hook(cfg, CheckPretrainedKeysHook, require_pretrained=False)


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
        raise ConfigError(f'--launcher {launcher} needs GPUs (mmengine calls '
                           'torch.cuda.set_device); for a CPU-only run use --launcher pytorch '
                           '(tools/dist_train.sh / tools/dist_test.sh).')
    env_cfg = cfg.setdefault('env_cfg', dict())
    dist_cfg = env_cfg.setdefault('dist_cfg', dict())
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        warnings.warn('no GPU: using the gloo backend instead of '
                      f'{dist_cfg.get("backend", "nccl")!r}.')
        dist_cfg['backend'] = 'gloo'

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

    if not torch_dist.is_initialized():
        kwargs = {}
        if dist_cfg.get('timeout', None) is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
        # torchrun sets MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE for the env:// rendezvous.
        torch_dist.init_process_group(backend='gloo', **kwargs)
    os.environ.setdefault('LOCAL_RANK', '0')


def _checkpoint_values(node, out: set) -> set:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ('checkpoint', 'load_from', 'pretrained') and isinstance(v, str):
                out.add(v)
            _checkpoint_values(v, out)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _checkpoint_values(v, out)
    return out


def drop_unused_checkpoint_variables(cfg) -> List[str]:
    """Remove top-level ``*_checkpoint`` helper variables whose path nothing in the config uses.

    Base configs name the frozen modules' files in helper variables (``vqgan_checkpoint = ...``);
    a config or ``--cfg-options`` that sets ``model...checkpoint`` to something else leaves the
    variable behind, and the config dump at the start of the log then shows a checkpoint the
    model does not load. Call it after the config is final.

    Returns:
        list[str]: The removed keys.
    """
    used = _checkpoint_values(cfg.to_dict(), set())
    if isinstance(cfg.get('load_from', None), str):
        used.add(cfg.load_from)
    removed = [k for k in list(cfg.keys()) if k.endswith('_checkpoint')
               and isinstance(cfg[k], str) and cfg[k] not in used]
    for key in removed:
        cfg._cfg_dict.pop(key)
    return removed


#: Third-party warnings that the user of a tool cannot act on: (category, module regex).
QUIET_WARNINGS = (
    (FutureWarning, r'diffusers(\.|$)'),  # deprecations inside diffusers, imported by mmagic
    (FutureWarning, r'torch\.jit(\.|$)'),  # "torch.jit.script is deprecated", used by libraries
)


def quiet_third_party_warnings() -> None:
    """Hide :data:`QUIET_WARNINGS` in this process (the tools call it; the library does not)."""
    for category, module in QUIET_WARNINGS:
        warnings.filterwarnings('ignore', category=category, module=module)
