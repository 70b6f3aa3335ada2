"""The one error style of the command-line tools (addp_mm/utils/errors.py): ``error: <sentence>``,
one exit status per kind of ending, ``--debug`` / ``ADDP_MM_DEBUG=1`` for the traceback. (Each tool
on each mistake: tests/test_tools/test_cli_errors.py.)"""
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from addp_mm.utils import errors
from addp_mm.utils.errors import (EXIT_USER_ERROR, CheckpointMismatchError, ConfigError,
                                  MissingPathError, RefusedError, UnwritableError, UserError,
                                  run_main, user_error_message)

ROOT = Path(__file__).resolve().parents[2]


def test_user_errors_are_also_the_builtin_a_caller_catches():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, UserError)
    assert issubclass(MissingPathError, FileNotFoundError)
    assert issubclass(UnwritableError, PermissionError)
    assert issubclass(RefusedError, RuntimeError)
    assert issubclass(CheckpointMismatchError, KeyError)


def test_a_checkpoint_mismatch_reads_as_a_sentence():
    """A KeyError's str() quotes its argument; the checkpoint refusal prints as written, also after
    mmengine's registry rebuilt it with the class prefix."""
    exc = CheckpointMismatchError('x.pth does not hold the weights of the tokenizer.')
    assert str(exc) == 'x.pth does not hold the weights of the tokenizer.'
    rebuilt = type(exc)(f'class `VQGANTokenizer` in addp_mm/models/tokenizers/vqgan.py: {exc}')
    assert user_error_message(rebuilt) == 'x.pth does not hold the weights of the tokenizer.'
    assert str(KeyError('k')) == "'k'"  # what the override is for


def test_messages_of_predictable_mistakes():
    assert user_error_message(ConfigError('set x=1.')) == 'set x=1.'
    # os.makedirs / open: the path, what went wrong and what to do
    exc = PermissionError(errno.EACCES, 'Permission denied', '/data/out')
    assert user_error_message(exc) == ("'/data/out': permission denied; choose a path you can "
                                       'write to (or change its permissions).')
    exc = FileNotFoundError(errno.ENOENT, 'No such file or directory', 'x.pth')
    assert user_error_message(exc) == "'x.pth': no such file or directory; check the path."
    # mmengine's registry rebuilds an exception from its message, prefixed by the class
    exc = FileNotFoundError('class `CustomDataset` in mmpretrain/datasets/custom.py: '
                            'class `X` in a/b.py: data/images is missing.')
    assert user_error_message(exc) == 'data/images is missing (check the path).'
    # unexpected exceptions are not user mistakes
    assert user_error_message(KeyError('x')) is None
    assert user_error_message(ValueError('x')) is None


def _main_raising(exc):

    def main(argv=None):
        print('working', flush=True)
        raise exc

    return main


def test_run_main_prints_one_line_and_the_code(capsys, monkeypatch):
    monkeypatch.delenv(errors.DEBUG_ENV, raising=False)
    assert run_main(_main_raising(ConfigError('set lr to a number.')), []) == EXIT_USER_ERROR
    out = capsys.readouterr()
    assert out.err == 'error: set lr to a number.\n' and 'Traceback' not in out.err
    # --debug: the traceback above the same line, same status; the flag is not passed on
    seen = []

    def main(argv):
        seen.append(argv)
        raise MissingPathError('x is missing; give an existing file.')

    assert run_main(main, ['a', '--debug']) == EXIT_USER_ERROR
    out = capsys.readouterr()
    assert seen == [['a']]
    assert 'Traceback' in out.err and out.err.endswith('error: x is missing; give an existing '
                                                       'file.\n')
    monkeypatch.setenv(errors.DEBUG_ENV, '1')
    assert run_main(_main_raising(ConfigError('bad.')), []) == EXIT_USER_ERROR
    assert 'Traceback' in capsys.readouterr().err
    monkeypatch.delenv(errors.DEBUG_ENV)
    # unexpected exceptions propagate (traceback, status 1)
    with pytest.raises(KeyError):
        run_main(_main_raising(KeyError('bug')), [])
    # sys.exit('error: ...') inside main gets the status of every user mistake
    assert run_main(_main_raising(SystemExit('error: no.')), []) == EXIT_USER_ERROR
    assert capsys.readouterr().err == 'error: no.\n'
    # other SystemExits (argparse, a stopped training run) keep theirs
    with pytest.raises(SystemExit) as stop:
        run_main(_main_raising(SystemExit(143)), [])
    assert stop.value.code == 143
    assert run_main(lambda argv: None, []) == 0 and run_main(lambda argv: 3, []) == 3
    # Ctrl-C outside a training loop: one line, 128 + SIGINT
    assert run_main(_main_raising(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err == 'stopped by Ctrl-C (SIGINT).\n'


def test_run_main_reads_sys_argv_without_the_debug_flag(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['tool', 'cfg.py', '--debug'])
    assert run_main(lambda: len(sys.argv)) == 2


def test_a_script_gets_the_status_and_no_traceback(tmp_path):
    script = tmp_path / 'tool.py'
    script.write_text('import sys\nfrom addp_mm.utils.errors import run_main, UnwritableError\n'
                      'def main():\n    raise UnwritableError("cannot write to /x; choose '
                      'another --out.")\nsys.exit(run_main(main))\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(errors.DEBUG_ENV, None)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == EXIT_USER_ERROR
    assert proc.stderr == 'error: cannot write to /x; choose another --out.\n'
