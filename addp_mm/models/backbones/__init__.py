from .addp_vit import ADDPViT
from .mage_vit import MAGEViT

__all__ = ['ADDPViT', 'MAGEViT']
