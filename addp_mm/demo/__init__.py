"""The quick-start demo (``tools/demo.py``): the whole ADDP stack on photos bundled with
scikit-image, at toy size on CPUs. Not imported by ``import addp_mm``."""
