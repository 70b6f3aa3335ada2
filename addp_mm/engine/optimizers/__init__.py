"""Optimizer wrapper constructors (registered in mmengine's root registry)."""
from .layer_decay import ADDPLayerDecayOptimWrapperConstructor

__all__ = ['ADDPLayerDecayOptimWrapperConstructor']
