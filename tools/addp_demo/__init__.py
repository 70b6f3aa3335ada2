"""The quick-start demo behind ``tools/demo.py``: the whole ADDP stack on photos bundled with
scikit-image, at toy size on CPUs.

Tool code, not part of the ``addp_mm`` library: it lives beside the tools that run it
(``tools/demo.py`` puts ``tools/`` on ``sys.path``, as a script's own folder is; the benchmarks
add it themselves) and takes the config folder as an argument (``--config-dir``).
"""
