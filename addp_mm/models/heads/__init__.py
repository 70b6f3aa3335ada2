from .addp_head import ADDPHead

__all__ = ['ADDPHead']
