"""addp_mm: ADDP (Alternating Denoising Diffusion Process) for the OpenMMLab ecosystem.

``import addp_mm`` registers the mmpretrain-side modules (pre-training model, backbone, tokenizers)
and routes mmengine's local checkpoint loading through a safe unpickler so Runner checkpoints and
release files of any layout load under torch >= 2.6 (``addp_mm.utils.checkpoint``). The one
difference from stock mmengine: objects of classes outside tensors, containers, numpy and mmengine's
own types load as inert ``LegacyObject`` placeholders, and a file that would call code is refused. It does not import mmdet, mmseg or mmagic: their parts live in
``addp_mm.det`` and ``addp_mm.generation``, imported by the configs that need them (segmentation
needs no new module: the configs use mmpretrain's ``VisionTransformer`` and import ``addp_mm``
for the engine parts).
"""
import os

# albumentations (imported by the mmpretrain / mmseg / mmdet / mmagic transforms) asks PyPI for a
# newer version at import time unless this is "1" or "true". Nothing in addp_mm may touch the
# network, so it is forced (an inherited "0" would turn the request back on). Every subpackage
# (addp_mm.det, addp_mm.generation) runs this first.
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"

from .version import __version__  # noqa: E402
from .checkpoints.loading import register_mmengine_loader  # noqa: E402
from .utils.image_loading import name_unreadable_images  # noqa: E402
from . import models  # noqa: F401,E402  (registers into mmpretrain's MODELS)
from . import engine  # noqa

register_mmengine_loader()
name_unreadable_images()

__all__ = ['__version__']
