from .addp_vit import ADDPViT

__all__ = ['ADDPViT']
