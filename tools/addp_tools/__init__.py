"""Tool-only code of ``tools/train.py`` and ``tools/test.py`` (not part of the ``addp_mm`` library):
config adjustments (:mod:`.runtime`), the checks of ``--cfg-options`` / ``--max-iters``
(:mod:`.options`) and of the paths a run needs before anything is built (:mod:`.preflight`).

The tools put ``tools/`` on ``sys.path`` (as a script's own folder already is), so this package is
imported as ``addp_tools``; it depends on ``addp_mm`` and never the other way round.
"""
