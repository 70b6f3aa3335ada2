"""mmdet parts of addp_mm (ViTDet-style detection with the ADDP encoder).

Imported only by the detection configs (``custom_imports=dict(imports=['addp_mm.det'])``), so that
``import addp_mm`` never pulls in mmdet. Registers into mmdet's MODELS: ``ADDPViTDet`` (backbone),
``SimpleFeaturePyramid`` (neck) and ``LN2d`` (norm, unless already registered).
"""
from .simple_fpn import SimpleFeaturePyramid
from .vit_det import ADDPViTDet, WindowTransformerBlock, window_partition, window_unpartition

__all__ = [
    'ADDPViTDet', 'SimpleFeaturePyramid', 'WindowTransformerBlock', 'window_partition',
    'window_unpartition'
]
