"""Optimizer wrappers (registered in mmengine's root ``OPTIM_WRAPPERS``)."""
from .autocast_optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper']
