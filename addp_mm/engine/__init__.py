"""Training-engine parts of addp_mm: optimizer constructors and hooks.

Everything here registers into mmengine's root registries, which the registries of mmpretrain,
mmdet and mmseg fall back to, so the names resolve under any of those default scopes.
"""
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
from .fileio import register_atomic_local_backend
from .quiet_logs import summarize_frozen_parameter_logs

# Checkpoints (and anything else mmengine writes to local paths) are written atomically.
register_atomic_local_backend()
# One line about frozen parameters instead of one warning each when an optimizer is built.
summarize_frozen_parameter_logs()
