"""One error style for every command-line tool: ``error: <one sentence that names the fix>``.

A tool's ``main`` runs through :func:`run_main`::

    from addp_mm.utils.errors import run_main

    if __name__ == '__main__':
        sys.exit(run_main(main))

and the mistakes a user can make end in one line on stderr and one exit status:

* 0 (:data:`EXIT_OK`): the work is done, or was done already;
* 1 (:data:`EXIT_CRASH`): an unexpected exception; its traceback shows;
* 2 (:data:`EXIT_USER_ERROR`): a user mistake, ``error: ...`` (argparse exits 2 on a bad option
  too, and a ``sys.exit('error: ...')`` inside ``main`` is given this status);
* 128 + N (:func:`signal_exit_code`; 130 for SIGINT, 143 for SIGTERM): stopped by signal N after
  saving its work; running the same command again continues.

User mistakes are :class:`UserError` (raise it, or one of its subclasses that also derive from the
builtin exception a caller may already catch, e.g. :class:`ConfigError` is a ``ValueError``) and
the predictable builtin ones: a missing path (``FileNotFoundError``, ``NotADirectoryError``,
``IsADirectoryError``) and a folder or file that cannot be written (``PermissionError``).
``--debug`` on the command line or ``ADDP_MM_DEBUG=1`` in the environment prints the traceback
above the ``error:`` line (the exit status stays 2). Every other exception keeps its traceback.
"""
import os
import re
import signal
import sys
import traceback
from typing import Callable, List, Optional, Sequence

#: The work is done.
EXIT_OK = 0
#: An unexpected exception (Python's own status for an uncaught exception; the traceback shows).
EXIT_CRASH = 1
#: A mistake the user can fix; the ``error:`` line says how. argparse exits 2 on a bad option too.
EXIT_USER_ERROR = 2
#: Command-line flag that shows the traceback of a user mistake (removed before ``main`` parses).
DEBUG_FLAG = '--debug'
#: Environment variable that does the same as :data:`DEBUG_FLAG` when set to ``1``.
DEBUG_ENV = 'ADDP_MM_DEBUG'


def signal_exit_code(signum: int) -> int:
    """Exit status of a run stopped by signal ``signum`` after saving its work: ``128 + signum``
    (130 for SIGINT, 143 for SIGTERM), the status a shell reports for a process that signal
    killed, so scripts and schedulers tell "stopped" from "finished" (0)."""
    return 128 + int(signum)


class UserError(Exception):
    """A mistake the user can fix; the message is one sentence that names the fix.

    :func:`run_main` prints it as ``error: <message>`` and exits with :data:`EXIT_USER_ERROR`.
    """


class ConfigError(UserError, ValueError):
    """A bad option or config value (a ``ValueError`` for callers that catch those)."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the run needs does not exist, or is empty."""


class UnwritableError(UserError, PermissionError):
    """A folder (or file) the run must write cannot be written."""


class RefusedError(UserError, RuntimeError):
    """The run stops because going on would mix, reuse or ignore something (a refused resume,
    a checkpoint that does not fit, an output folder made with other settings)."""


class CheckpointMismatchError(UserError, KeyError):
    """A checkpoint that lacks weights the model needs (a ``KeyError`` for callers that catch
    those, the exception a missing state-dict key raises)."""

    def __str__(self) -> str:
        # KeyError's own str() quotes its argument (it is meant for a key, not a sentence)
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


#: Builtin exceptions that are predictable user mistakes: a missing path or an unwritable one.
PREDICTABLE = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)

# mmengine's registry re-raises an exception from a constructor as
# ``type(e)(f'class `Name` in path/to/module.py: {e}')``; nested builds repeat the prefix.
_BUILD_PREFIX = re.compile(r'^(class `[^`]+` in [^:]+\.py: )+')

_OS_FIX = {
    FileNotFoundError: 'check the path',
    NotADirectoryError: 'a part of the path is a file, not a folder; check the path',
    IsADirectoryError: 'give a file, not a folder',
    PermissionError: 'choose a path you can write to (or change its permissions)',
}


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """Whether ``--debug`` is in ``argv`` (``sys.argv`` when None) or ``ADDP_MM_DEBUG=1``."""
    argv = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def add_debug_argument(parser) -> None:
    """List ``--debug`` in a tool's ``--help`` (:func:`run_main` removes it before parsing)."""
    parser.add_argument(DEBUG_FLAG, action='store_true',
                        help=f'show the traceback of an error (also: {DEBUG_ENV}=1)')


def user_error_message(exc: BaseException) -> Optional[str]:
    """The ``error:`` sentence for a user mistake, or None for an unexpected exception.

    Args:
        exc (BaseException): The exception a tool's ``main`` raised.

    Returns:
        str | None: The message (without ``error:``) for a :class:`UserError` or a
        :data:`PREDICTABLE` builtin exception; None otherwise.
    """
    if not isinstance(exc, (UserError, ) + PREDICTABLE):
        return None
    if isinstance(exc, OSError) and not isinstance(exc, UserError) and exc.strerror:
        # e.g. open(path) / os.makedirs(path): "[Errno 13] Permission denied: 'path'"
        fix = next(fix for cls, fix in _OS_FIX.items() if isinstance(exc, cls))
        where = f'{exc.filename!r}: ' if exc.filename is not None else ''
        return f'{where}{exc.strerror.lower()}; {fix}.'
    message = _BUILD_PREFIX.sub('', str(exc).strip())
    if isinstance(exc, OSError) and not isinstance(exc, UserError):
        # rebuilt from a message only (mmengine's registry): name the kind of mistake
        fix = next(fix for cls, fix in _OS_FIX.items() if isinstance(exc, cls))
        message = f'{message.rstrip(".")} ({fix}).'
    return message or type(exc).__name__


def _without_debug_flag(argv: Optional[List[str]]) -> Optional[List[str]]:
    if argv is None:
        sys.argv[1:] = [a for a in sys.argv[1:] if a != DEBUG_FLAG]
        return None
    return [a for a in argv if a != DEBUG_FLAG]


def run_main(main: Callable[..., Optional[int]], argv: Optional[List[str]] = None) -> int:
    """Run a tool's ``main`` with the project's error style; returns the exit status.

    ``main`` is called as ``main()`` (it reads ``sys.argv``) or, when ``argv`` is given,
    ``main(argv)``; :data:`DEBUG_FLAG` is removed from the arguments first. A ``SystemExit``
    raised inside (argparse's usage errors, a stopped training run) keeps its status.

    Args:
        main (Callable): The tool's entry point; returns None (success) or an exit status.
        argv (list[str], optional): Arguments for ``main``; None: ``sys.argv[1:]``.

    Returns:
        int: :data:`EXIT_OK`, ``main``'s own status, or :data:`EXIT_USER_ERROR` after printing
        ``error: <message>`` to stderr. Unexpected exceptions propagate (traceback, status 1).
    """
    debug = debug_requested(argv)
    argv = _without_debug_flag(argv)
    try:
        code = main() if argv is None else main(argv)
    except KeyboardInterrupt:
        # Ctrl-C outside a training loop (which saves and exits by itself): no traceback
        if debug:
            traceback.print_exc()
        print('stopped by Ctrl-C (SIGINT).', file=sys.stderr, flush=True)
        return signal_exit_code(signal.SIGINT)
    except SystemExit as exc:
        if isinstance(exc.code, str) and exc.code.startswith('error:'):
            # sys.exit('error: ...'): the message, with the status of every user mistake
            sys.stdout.flush()
            print(exc.code, file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        raise
    except Exception as exc:  # noqa: BLE001  (classified below; the rest is re-raised)
        message = user_error_message(exc)
        if message is None:
            raise
        if debug:
            traceback.print_exc()
        sys.stdout.flush()
        print(f'error: {message}', file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    return EXIT_OK if code is None else int(code)


__all__ = ['EXIT_OK', 'EXIT_CRASH', 'EXIT_USER_ERROR', 'DEBUG_FLAG', 'DEBUG_ENV',
           'signal_exit_code', 'UserError', 'ConfigError', 'MissingPathError', 'UnwritableError',
           'RefusedError', 'CheckpointMismatchError', 'PREDICTABLE', 'debug_requested',
           'add_debug_argument', 'user_error_message', 'run_main']
