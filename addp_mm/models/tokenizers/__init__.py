from .token_predictor import MAGETokenPredictor
from .vqgan import VQGANTokenizer

__all__ = ['VQGANTokenizer', 'MAGETokenPredictor']
