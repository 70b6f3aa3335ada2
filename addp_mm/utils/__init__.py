"""Utilities of addp_mm (no mmdet/mmseg/mmagic imports here). Checkpoint files are handled by
``addp_mm.checkpoints``."""
