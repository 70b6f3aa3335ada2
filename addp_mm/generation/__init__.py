"""ADDP image generation in mmagic: the generator model, offline FID/IS and the sampling API.

Imported by generation configs (``custom_imports=dict(imports=['addp_mm.generation'])``) and by
``tools/generate.py``; ``import addp_mm`` alone never imports mmagic.
"""
from .evaluation import OfflineFID, OfflineIS, RealImageFolder
from .generator import ADDPGenerator
from .sampling import SamplingOptions, generate, image_seeds, pixel_mask_to_tokens

__all__ = [
    'ADDPGenerator', 'OfflineFID', 'OfflineIS', 'RealImageFolder', 'SamplingOptions', 'generate',
    'image_seeds', 'pixel_mask_to_tokens'
]
