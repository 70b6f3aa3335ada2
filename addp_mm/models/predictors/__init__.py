from .mage_predictor import MAGETokenPredictor

__all__ = ['MAGETokenPredictor']
