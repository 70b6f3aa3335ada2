from .token_predictor import MAGETokenPredictor, MAGEViT
from .vqgan import VQGAN, VQGANTokenizer

__all__ = ['VQGANTokenizer', 'MAGETokenPredictor', 'VQGAN', 'MAGEViT']
