from .adversarial import PatchGANDiscriminator, hinge_d_loss, hinge_g_loss
from .perceptual import VGGPerceptualLoss

__all__ = ['PatchGANDiscriminator', 'VGGPerceptualLoss', 'hinge_d_loss', 'hinge_g_loss']
