"""addp_mm: ADDP (Alternating Denoising Diffusion Process) for the OpenMMLab ecosystem.

``import addp_mm`` registers the mmpretrain-side modules (pre-training model, backbone, tokenizers)
and installs the few changes addp_mm makes to other packages, all listed with their reasons in
:mod:`addp_mm.compat`: mmengine's local checkpoint loading goes through a safe unpickler (so Runner
checkpoints and release files of any layout load under torch >= 2.6; objects of classes outside
tensors, containers, numpy and mmengine's own types load as inert ``LegacyObject`` placeholders,
and a file that would call code is refused), local writes are atomic, frozen parameters are
summarised in one log line, unreadable images are named, and albumentations does not ask PyPI for
updates. It does not import mmdet, mmseg or mmagic: their parts live in ``addp_mm.det`` and
``addp_mm.generation``, imported by the configs that need them (segmentation needs no new module:
the configs use mmpretrain's ``VisionTransformer`` and import ``addp_mm`` for the engine parts).
"""
# compat first: it keeps albumentations offline before anything below imports it.
from . import compat
from .version import __version__
from . import models  # noqa: F401  (registers into mmpretrain's MODELS)
from . import datasets  # noqa: F401  (registers into mmpretrain's DATASETS)
from . import engine  # noqa: F401

compat.install()

__all__ = ['__version__']
