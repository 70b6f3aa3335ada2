from .addp import ADDP
from .mage import MAGE
from .vqgan_trainer import SubmoduleOptimWrapperConstructor, VQGANTrainer

__all__ = ['ADDP', 'MAGE', 'VQGANTrainer', 'SubmoduleOptimWrapperConstructor']
