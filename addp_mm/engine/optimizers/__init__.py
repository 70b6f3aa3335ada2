"""Optimizer wrapper constructors (registered in mmengine's root registry)."""
from .layer_decay import ADDPLayerDecayOptimWrapperConstructor
from .submodule import SubmoduleOptimWrapperConstructor

__all__ = ['ADDPLayerDecayOptimWrapperConstructor', 'SubmoduleOptimWrapperConstructor']
