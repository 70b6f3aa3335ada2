from .token_predictor import MAGETokenPredictor
from .vqgan import VQGAN, VQGANTokenizer

__all__ = ['VQGANTokenizer', 'MAGETokenPredictor', 'VQGAN']
