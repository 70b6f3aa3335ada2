from .addp_target import ADDPTargetGenerator

__all__ = ['ADDPTargetGenerator']
