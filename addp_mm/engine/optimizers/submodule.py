"""An optimizer wrapper per named sub-module (e.g. a GAN's generator and discriminator).

Registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``, which the registries of mmpretrain,
mmdet, mmseg and mmagic fall back to, so ``constructor='SubmoduleOptimWrapperConstructor'``
resolves under any of those default scopes.
"""
from typing import Optional

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SubmoduleOptimWrapperConstructor:
    """One optimizer wrapper per named sub-module, as an :class:`OptimWrapperDict`.

    ``optim_wrapper = dict(constructor='SubmoduleOptimWrapperConstructor',
    vqgan=dict(type='OptimWrapper', optimizer=...), discriminator=dict(...))``: each key names an
    attribute of the model, and its value is an ordinary optimizer-wrapper config (with an optional
    ``paramwise_cfg``) built by mmengine's default constructor for that sub-module.

    Args:
        optim_wrapper_cfg (dict): ``{submodule name: optimizer wrapper config}``.
        paramwise_cfg (dict, optional): Must be None (give it per sub-module).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('SubmoduleOptimWrapperConstructor: put paramwise_cfg inside each '
                             'sub-module entry of optim_wrapper.')
        self.cfgs = optim_wrapper_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = getattr(model, 'module', model)
        wrappers = {}
        for name, cfg in self.cfgs.items():
            sub = getattr(model, name, None)
            if not isinstance(sub, nn.Module):
                raise ValueError(f'optim_wrapper has an entry {name!r}, but the model has no '
                                 f'sub-module of that name.')
            cfg = dict(cfg)
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(sub)
        return OptimWrapperDict(**wrappers)
