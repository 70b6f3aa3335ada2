"""Every change addp_mm makes to other packages, in one place.

``import addp_mm`` imports this module first and calls :func:`install`. Each patch below fixes one
upstream behaviour of the versions in ``requirements/constraints.txt``; the tests in
``tests/test_compat.py`` check, for each, that stock upstream still behaves so (a failing
"upstream" test after an upgrade says the patch may go) and that the patched behaviour holds, and
that ``import addp_mm`` changes no other third-party global.

The patches (function: upstream version that needs it: what it fixes):

* :func:`keep_albumentations_offline`: albumentations 1.4.24: it asks PyPI for a newer version
  when it is imported;
* :func:`register_mmengine_loader`: torch >= 2.6 with mmengine 0.10.7: Runner checkpoints do not
  load (torch's weights-only default);
* :func:`register_atomic_local_backend`: mmengine 0.10.7: a kill while saving leaves a torn
  ``iter_N.pth``;
* :func:`summarize_frozen_parameter_logs`: mmengine 0.10.7: one warning per frozen parameter
  (hundreds of lines);
* :func:`name_unreadable_images`: mmcv 2.1.0: an empty image fails without its path, and
  ``ignore_empty=True`` does not skip a file that decodes to nothing.

The machinery each patch installs lives with its subject (``addp_mm.checkpoints.loading``,
``addp_mm.engine.fileio``, ``addp_mm.engine.quiet_logs``, ``addp_mm.utils.image_loading``); only
the installers are here. All of them are idempotent.
"""
import os

#: The environment variable albumentations reads before its update check.
ALBUMENTATIONS_UPDATE_VAR = 'NO_ALBUMENTATIONS_UPDATE'


def keep_albumentations_offline() -> None:
    """Stop albumentations from asking PyPI for a newer version when it is imported.

    Fixes: albumentations 1.4.24 (``albumentations/__init__.py``) calls ``check_for_updates()``
    at import, a network request, unless ``NO_ALBUMENTATIONS_UPDATE`` is ``"1"`` or ``"true"``;
    the mmpretrain, mmdet, mmseg and mmagic transforms import it. Nothing in addp_mm may touch the
    network, so the variable is forced (an inherited ``"0"`` would turn the request back on).
    Test: ``tests/test_compat.py::test_albumentations_*`` (and ``tests/test_run_safety.py``).
    """
    os.environ[ALBUMENTATIONS_UPDATE_VAR] = '1'


# Before the imports below: addp_mm.engine and addp_mm.models import mmpretrain.models, which
# imports albumentations.
keep_albumentations_offline()

from mmcv.transforms import LoadImageFromFile  # noqa: E402
from mmengine.fileio import LocalBackend, register_backend  # noqa: E402
from mmengine.fileio import io as mm_io  # noqa: E402
from mmengine.optim.optimizer import default_constructor as mm_constructor  # noqa: E402
from mmengine.runner.checkpoint import CheckpointLoader  # noqa: E402

from .engine.fileio import AtomicLocalBackend  # noqa: E402
from .engine.quiet_logs import with_frozen_summary, without_frozen_warnings  # noqa: E402
from .checkpoints.loading import load_from_local_safe  # noqa: E402
from .utils.image_loading import named_unreadable  # noqa: E402


def register_mmengine_loader() -> None:
    """Route mmengine's local checkpoint loading through addp_mm's safe unpickler.

    Fixes: torch >= 2.6 loads with ``weights_only=True`` by default and mmengine 0.10.7 does not
    pass the flag, so Runner checkpoints (``HistoryBuffer``, numpy scalars in ``message_hub`` and
    ``meta``) fail to load for ``resume``, ``load_from`` and ``init_cfg=Pretrained``.
    :func:`~addp_mm.checkpoints.loading.load_from_local_safe` loads them without running code from
    the file (``addp_mm/checkpoints/loading.py``).

    mmengine resolves a path with ``CheckpointLoader._get_checkpoint_loader``: the registered
    prefixes are tried longest first, and the empty prefix (local files) matches whatever no URL
    scheme claimed. Replacing that entry (``force=True``) covers ``Runner.resume`` /
    ``load_from``, ``init_cfg=dict(type='Pretrained')``, ``CheckpointHook(published_keys=...)``
    and ``mmengine.runner.load_checkpoint``; URL schemes keep mmengine's loaders.
    Test: ``tests/test_compat.py::test_runner_checkpoints_*``.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)


def register_atomic_local_backend() -> None:
    """Make :class:`~addp_mm.engine.fileio.AtomicLocalBackend` mmengine's local file backend.

    Fixes: mmengine 0.10.7's ``LocalBackend.put`` truncates the target and then writes it, so a
    process killed while saving leaves a torn checkpoint (``addp_mm/engine/fileio.py``).
    ``get_file_backend(path)`` resolves a path without a URI scheme through the ``''`` prefix and
    ``backend_args=dict(backend='local')`` through the name; both are replaced. Cached singleton
    instances of the old class are dropped so that they are rebuilt with the new one.
    Test: ``tests/test_compat.py::test_local_writes_*``.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, backend in list(mm_io.backend_instances.items()):
        if type(backend) is LocalBackend:
            del mm_io.backend_instances[key]


def summarize_frozen_parameter_logs() -> None:
    """One log line about frozen parameters instead of one warning each.

    Fixes: mmengine 0.10.7's ``DefaultOptimWrapperConstructor`` prints "... is skipped since its
    requires_grad=False" for every frozen parameter: hundreds of lines with ADDP's frozen VQGAN
    and token predictor (``addp_mm/engine/quiet_logs.py``).
    Test: ``tests/test_compat.py::test_frozen_parameter_logs_*``.
    """
    if getattr(mm_constructor, '_addp_mm_frozen_summary', False):
        return
    mm_constructor.print_log = without_frozen_warnings(mm_constructor.print_log)
    constructor = mm_constructor.DefaultOptimWrapperConstructor
    constructor.__call__ = with_frozen_summary(constructor.__call__)
    mm_constructor._addp_mm_frozen_summary = True


def name_unreadable_images() -> None:
    """Name the file when ``LoadImageFromFile`` cannot read an image; skip it with
    ``ignore_empty=True``.

    Fixes: mmcv 2.1.0 raises OpenCV's ``!buf.empty()`` assertion without the path for an empty
    file, and its ``ignore_empty=True`` does not skip a file that decodes to nothing
    (``addp_mm/utils/image_loading.py``).
    Test: ``tests/test_compat.py::test_unreadable_images_*`` and
    ``tests/test_utils/test_image_loading.py``.
    """
    if not getattr(LoadImageFromFile.transform, '_addp_mm_named', False):
        LoadImageFromFile.transform = named_unreadable(LoadImageFromFile.transform)


#: The installers, in the order :func:`install` runs them.
PATCHES = (keep_albumentations_offline, register_mmengine_loader, register_atomic_local_backend,
           summarize_frozen_parameter_logs, name_unreadable_images)


def install() -> None:
    """Install every patch of :data:`PATCHES` (idempotent; ``import addp_mm`` calls it)."""
    for patch in PATCHES:
        patch()
