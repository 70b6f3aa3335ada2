from .addp import ADDP
from .mage import MAGE
from .vqgan_trainer import VQGANTrainer

__all__ = ['ADDP', 'MAGE', 'VQGANTrainer']
