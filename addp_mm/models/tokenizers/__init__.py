from .vqgan import VQGAN, VQGANTokenizer

__all__ = ['VQGANTokenizer', 'VQGAN']
