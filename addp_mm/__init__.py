"""addp_mm: ADDP (Alternating Denoising Diffusion Process) for the OpenMMLab ecosystem.

``import addp_mm`` registers the mmpretrain-side modules (pre-training model, backbone, tokenizers)
and routes mmengine's local checkpoint loading through a safe allow-list unpickler so Runner
checkpoints load under torch >= 2.6. It does not import mmdet, mmseg or mmagic: their parts live in
``addp_mm.det``, ``addp_mm.seg`` and ``addp_mm.generation``, imported by the configs that need them.
"""
import os

# albumentations (imported by mmpretrain transforms) checks PyPI for updates at import time.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from .version import __version__  # noqa: E402
from .utils.checkpoint import register_mmengine_loader  # noqa: E402
from . import models  # noqa: F401,E402  (registers into mmpretrain's MODELS)
from . import engine  # noqa

register_mmengine_loader()

__all__ = ['__version__']
