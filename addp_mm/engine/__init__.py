"""Training-engine parts of addp_mm: optimizer constructors and hooks.

Everything here registers into mmengine's root registries, which the registries of mmpretrain,
mmdet and mmseg fall back to, so the names resolve under any of those default scopes. The changes
addp_mm makes to mmengine itself (atomic local writes, one line about frozen parameters) are
installed by :mod:`addp_mm.compat`.
"""
from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
