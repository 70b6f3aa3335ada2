"""The scripts of ``tools/`` loaded and run in this process (the tools are scripts, not modules of
a package): :func:`load_tool` for any of them, :func:`_run_converter` for
``tools/model_converters/convert_addp.py`` (the converter's tests, tests/test_checkpoints and
tests/test_stock_configs.py)."""
import contextlib
import importlib.util
import io
import os.path as osp
import re

from .conftest import REPO_ROOT

#: The converter script.
TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters', 'convert_addp.py')


def load_tool(path):
    """The module of a tool script, executed afresh (its module-level state is new each time).

    Args:
        path (str | Path): The script, e.g. ``'tools/train.py'``, relative to the repository (or
            absolute).
    """
    path = osp.join(REPO_ROOT, path)
    name = 'addp_tool_' + re.sub(r'\W', '_', osp.relpath(path, REPO_ROOT))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_converter(*args, refusals: bool = False):
    """``convert_addp.py ARGS`` in-process: ``(exit code, stdout)``. A refusal (``sys.exit(msg)``)
    raises ``SystemExit``, or with ``refusals=True`` gives its message as the code, as the CLI
    prints it."""
    tool = load_tool(TOOL)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = tool.main([str(a) for a in args])
        except SystemExit as e:
            if not refusals:
                raise
            code = e.code
    return code, out.getvalue()
