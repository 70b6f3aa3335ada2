"""``tools/model_converters/convert_addp.py`` run in this process, for the tests of the converter
(tests/test_tools/test_model_converters) and of what it writes (tests/test_checkpoints,
tests/test_stock_configs.py)."""
import contextlib
import importlib.util
import io
import os.path as osp

from .conftest import REPO_ROOT

#: The converter script.
TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters', 'convert_addp.py')


def _run_converter(*args, refusals: bool = False):
    """``convert_addp.py ARGS`` in-process: ``(exit code, stdout)``. A refusal (``sys.exit(msg)``)
    raises ``SystemExit``, or with ``refusals=True`` gives its message as the code, as the CLI
    prints it."""
    spec = importlib.util.spec_from_file_location('convert_addp_legacy', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = tool.main([str(a) for a in args])
        except SystemExit as e:
            if not refusals:
                raise
            code = e.code
    return code, out.getvalue()
