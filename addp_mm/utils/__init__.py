"""Utilities of addp_mm (no mmdet/mmseg/mmagic imports here)."""
from .checkpoint import load_checkpoint_file

__all__ = ['load_checkpoint_file']
