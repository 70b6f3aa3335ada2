"""The command lines of the docs and of the tools' ``--help`` paste and run as written: each is
joined as bash joins its continuation lines, split as bash splits it, and given to the tool's own
argument parser; the configs it names exist, and tools/train.py / tools/test.py accept its
``--cfg-options`` (no refused variable, no unknown key)."""
import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from .tool_runs import load_tool

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {'tools/train.py': 'train', 'tools/test.py': 'test', 'tools/generate.py': 'generate',
         'tools/demo.py': 'demo', 'tools/model_converters/convert_addp.py': 'convert'}
#: Launcher scripts: (tool, number of the script's own leading arguments, their positions that
#: go on to the tool). dist_train.sh CONFIG GPUS ARGS -> train.py CONFIG ARGS, ...
LAUNCHERS = {'tools/dist_train.sh': ('train', 2, (0, )), 'tools/dist_test.sh': ('test', 3, (0, 1)),
             'tools/slurm_train.sh': ('train', 4, (2, )),
             'tools/slurm_test.sh': ('test', 4, (2, 3))}
_PLACEHOLDER = re.compile(r'^[A-Z][A-Z_]+$')
#: How a command line starts: environment assignments, then an interpreter, bash, torchrun or a
#: script under tools/.
_COMMAND = re.compile(r'^(\w+=\S+\s+)*([\w./-]*python[\d.]*|bash|torchrun|tools/\S+\.sh)\s')


def _load(tool):
    return load_tool(next(p for p, t in TOOLS.items() if t == tool))


def _commands(text):
    """Command lines of ``text``, continuation lines joined as bash joins them."""
    joined = re.sub(r'\\\n', '', text)
    for line in joined.splitlines():
        line = line.strip().lstrip('$ ').strip()
        if _COMMAND.match(line) and any(p in line for p in (*TOOLS, *LAUNCHERS)) \
                and '<' not in line:
            yield line


def _doc_examples():
    examples = []
    for md in sorted(ROOT.glob('**/*.md')):
        if any(part.startswith('.') or part in ('work_dirs', 'node_modules') for part in
               md.relative_to(ROOT).parts):
            continue
        text = md.read_text()
        for block in re.findall(r'```(?:bash|shell|sh|console)?\n(.*?)```', text, re.S):
            for command in _commands(block):
                examples.append((str(md.relative_to(ROOT)), command))
    return examples


def _help_examples():
    """The examples the tools print with --help, and the runnable lines of their headers."""
    examples = []
    convert = _load('convert')
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        convert.parse_args(['--help'])
    examples += [('convert_addp.py --help', c) for c in _commands(out.getvalue())]
    for path in TOOLS:
        header = ''.join(line[1:] + '\n' for line in (ROOT / path).read_text().splitlines()
                         if line.startswith('#'))
        examples += [(path, c) for c in _commands(header) if '[' not in c]
    return examples


EXAMPLES = _doc_examples() + _help_examples()


def test_the_examples_are_found():
    where = {w for w, _ in EXAMPLES}
    for doc in ('README.md', 'configs/addp/from_scratch/README.md', 'docs/training_at_scale.md',
                'convert_addp.py --help', 'tools/generate.py'):
        assert doc in where, doc
    assert len(EXAMPLES) > 30


def _tool_argv(tokens):
    """(tool, argv) of a command line split by shlex (None if it runs no tool)."""
    for i, token in enumerate(tokens):
        for path, tool in TOOLS.items():
            if token.endswith(path):
                return tool, tokens[i + 1:]
        for path, (tool, own, passed) in LAUNCHERS.items():
            if token.endswith(path):
                args = tokens[i + 1:]
                return tool, [args[k] for k in passed] + args[own:]
    return None


@pytest.mark.parametrize('where,command', EXAMPLES,
                         ids=[f'{w}:{c[:60]}' for w, c in EXAMPLES])
def test_example_parses(where, command):
    tokens = shlex.split(command, comments=True)
    found = _tool_argv(tokens)
    assert found is not None, command
    tool, argv = found
    module = _load(tool)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = module.parse_args(argv)
    except SystemExit:
        pytest.fail(f'{where}: `{command}` does not parse:\n{err.getvalue()}')
    for name in ('config', 'check'):
        path = getattr(args, name, None)
        if isinstance(path, str) and path.startswith('configs/'):
            assert (ROOT / path).is_file(), f'{where}: {path} does not exist'
    config = getattr(args, 'config', None)
    if tool in ('train', 'test') and config and not _PLACEHOLDER.match(config):
        # the --cfg-options are accepted by the config they are written for
        cfg = Config.fromfile(str(ROOT / config), import_custom_modules=False)
        sys.path.insert(0, str(ROOT / 'tools'))
        module.merge_args(cfg, args)


def test_a_broken_continuation_is_caught():
    """What the converter's --help printed before: the continuation of a path on an indented
    line is split into two words, which the parser refuses."""
    command = next(_commands('python tools/model_converters/convert_addp.py a.pth b.pth \\\n'
                             '    --check configs/addp/benchmarks/classification/\\\n'
                             '    cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-'
                             '256px.py\n'))
    with pytest.raises(pytest.fail.Exception, match='does not parse'):
        test_example_parses('test', command)
