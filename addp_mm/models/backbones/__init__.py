from .addp_vit import ADDPViT
from .mage_encoder import MAGETokenEncoder
from .mage_vit import MAGEViT

__all__ = ['ADDPViT', 'MAGETokenEncoder', 'MAGEViT']
