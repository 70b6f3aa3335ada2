"""Training-engine parts of addp_mm: optimizer constructors and hooks.

Everything here registers into mmengine's root registries, which the registries of mmpretrain,
mmdet and mmseg fall back to, so the names resolve under any of those default scopes.
"""
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
from .fileio import register_atomic_local_backend

# Checkpoints (and anything else mmengine writes to local paths) are written atomically.
register_atomic_local_backend()
