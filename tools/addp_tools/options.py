"""What ``--cfg-options`` and ``--max-iters`` may change, checked before anything is built.

A config file is Python: its top-level helper variables (``max_iters = 300``,
``tokenizer_checkpoint = '...'``) are read once, while the file is loaded, and copied into the
fields mmengine reads (``train_cfg.max_iters``, ``model.target_generator.vqgan.checkpoint``).
Overriding such a variable afterwards changes nothing, and the run would silently do what the
file says; so it is refused, naming the field that holds the value.
"""
import difflib
import inspect
import re
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from mmengine.registry import LOOPS, DefaultScope
from mmengine.runner import Runner

from addp_mm.engine.stages import set_max_iters
from addp_mm.utils.errors import ConfigError

#: Top-level config keys that mmengine or the tools read although a config need not set them.
_KNOWN_TOP_LEVEL = ('default_scope', 'custom_imports', 'launcher', 'work_dir', 'load_from',
                    'resume', 'auto_scale_lr', 'model_wrapper_cfg', 'find_unused_parameters',
                    'experiment_name', 'runner_type', 'data_preprocessor', 'compile',
                    'cfg', 'log_level', 'randomness', 'env_cfg', 'default_hooks', 'custom_hooks')
#: Loop configs and the arguments their loop gets from the Runner, not from the config.
_LOOP_FIELDS = ('train_cfg', 'val_cfg', 'test_cfg')
_LOOP_RUNNER_ARGS = {'self', 'runner', 'dataloader', 'evaluator'}
_MISSING = object()
#: How to set the length of a run: train_cfg.max_iters alone would keep the schedule of the file.
_MAX_ITERS_HINT = ('to set the number of iterations pass --max-iters {} (it sets '
                   'train_cfg.max_iters and rescales the learning-rate schedule and the checkpoint '
                   'and validation intervals).')


def runner_fields() -> set:
    """Top-level keys that mmengine's Runner (or the tools) read at run time."""
    fields = set(_KNOWN_TOP_LEVEL)
    fields |= {p for p in inspect.signature(Runner.__init__).parameters if p != 'self'}
    return fields


def _lookup(node, dotted: str):
    node = node.to_dict() if hasattr(node, 'to_dict') else node
    for part in dotted.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _walk(node, prefix: str) -> Iterator[Tuple[str, Any]]:
    """(dotted path, value) of every node below ``prefix``, lists indexed by position."""
    if isinstance(node, dict):
        items: Iterable = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        path = f'{prefix}.{key}'
        yield path, value
        yield from _walk(value, path)


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _related(variable: str, field: str) -> bool:
    """Whether a field name and a variable name say the same thing (``max_iters`` /
    ``max_iters``, ``tokenizer_checkpoint`` / ``checkpoint``)."""
    return variable == field or variable.endswith(f'_{field}') or field.endswith(f'_{variable}')


def consumed_into(cfg, key: str) -> List[str]:
    """Fields read at run time that hold the value of the config variable ``key``.

    Args:
        cfg (Config): The config as read from the file.
        key (str): A ``--cfg-options`` key whose first part is a top-level variable of the file
            (not a field mmengine reads), e.g. ``max_iters`` or ``tokenizer.ch``.

    Returns:
        list[str]: Dotted paths under mmengine's fields with the same value: those whose name
        matches the variable's first (``train_cfg.max_iters`` for ``max_iters``), or, when none
        does, every such path. Empty when the value is used nowhere (or is None or a bool, which
        cannot be traced by value).
    """
    value = _lookup(cfg, key)
    if value is _MISSING or value is None or isinstance(value, bool):
        return []
    data = cfg.to_dict()
    fields = runner_fields()
    matches = [path for top in data if top in fields
               for path, v in _walk(data[top], top) if _same(v, value)]
    leaf = key.split('.')[-1]
    named = [p for p in matches if _related(leaf, p.split('.')[-1])]
    return named or matches


def _loop_arguments(cfg, field: str) -> Optional[List[str]]:
    """The arguments the loop class of ``cfg[field]`` accepts, or None if unknown / open."""
    loop = cfg.get(field, None)
    if not isinstance(loop, dict):
        return None
    kind = loop.get('type', None)
    if kind is None:
        if field != 'train_cfg':
            return None
        kind = 'EpochBasedTrainLoop' if loop.get('by_epoch', 'max_epochs' in loop) else \
            'IterBasedTrainLoop'
    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', None)):
            cls = LOOPS.get(kind) if isinstance(kind, str) else kind
    except Exception:  # noqa: BLE001  (a scope whose library is not installed: no check)
        return None
    if not isinstance(cls, type):
        return None
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    names = [p.name for p in params if p.name not in _LOOP_RUNNER_ARGS]
    if field == 'train_cfg' and 'type' not in loop:
        names.append('by_epoch')  # read by the Runner to choose the loop
    return names + ['type']


def check_cfg_options(cfg, options: Optional[dict], shortcuts: Sequence[str] = (),
                      trains: bool = True) -> None:
    """Check ``--cfg-options`` before they are merged into ``cfg``.

    * A key that sets a top-level *variable* of the config file (not a field mmengine reads)
      whose value the file already copied into fields is refused, naming those fields:
      ``max_iters=3`` -> ``train_cfg.max_iters`` (or ``--max-iters``),
      ``tokenizer_checkpoint=P`` -> ``model.target_generator.vqgan.checkpoint``.
    * A key inside a loop config that its loop does not take (``train_cfg.max_iter``) is refused
      with the closest argument.
    * A value that replaces a number (or a bool) of the config must be one too:
      ``optim_wrapper.optimizer.lr=abc`` stops here with the key named.
    * A top-level key that neither the config nor mmengine's Runner knows (``resum=False``,
      ``max_iters=3`` for a config without that variable) would be ignored: it is refused, with
      the closest key that has an effect (for a variable: its field; for the name of a field
      inside one: its full path, ``train_cfg.max_iters``).

    Args:
        cfg (Config): The config as read from the file.
        options (dict | None): The parsed ``--cfg-options``.
        shortcuts (Sequence[str]): Top-level variables the tool itself passes on to their fields
            (``tools/test.py``: ``inception_path``, ...), allowed.
        trains (bool): The tool trains (the refusal of ``max_iters`` names ``--max-iters``).

    Raises:
        ConfigError: For an unknown top-level key, a consumed variable, an unknown loop argument
            or a value of the wrong type.
    """
    if not options:
        return
    fields = runner_fields() | set(shortcuts)
    variables = {k: consumed_into(cfg, k) for k in cfg.keys() if k not in fields}
    for key, value in options.items():
        top = key.split('.')[0]
        if top in variables:
            _refuse_variable(cfg, key, value, trains)
        if top not in fields and top not in variables:
            hint = _suggestion(cfg, top, fields, variables)
            if trains and hint == "did you mean 'train_cfg.max_iters'?":
                hint = _MAX_ITERS_HINT.format(shell_value(value))
            raise ConfigError(f'--cfg-options {key}: {top!r} is not a key of this config nor one '
                              f'mmengine reads, so it would have no effect; {hint}')
        if top in _LOOP_FIELDS and key.count('.') == 1:
            _check_loop_argument(cfg, key, value, trains)
        _check_type(cfg, key, value)


def shell_value(value) -> str:
    """``value`` as it is written after ``KEY=`` on a command line."""
    text = str(value) if isinstance(value, (int, float, bool)) else repr(value)
    if isinstance(value, str) and re.fullmatch(r'[\w./:@+-]+', value):
        text = value
    return text


def _refuse_variable(cfg, key: str, value, trains: bool) -> None:
    into = consumed_into(cfg, key)
    if not into:
        return  # used by no field: nothing to tell apart (and maybe read by a hook)
    shown = ', '.join(into[:4]) + (f' and {len(into) - 4} more' if len(into) > 4 else '')
    leaf = key.split('.')[-1]
    if _related(leaf, into[0].split('.')[-1]):
        where = f'copied into {shown} when the file was read'
    else:
        where = f'read when the file was loaded (fields with its value: {shown})'
    if trains and into[0] == 'train_cfg.max_iters':
        fix = (f'pass --max-iters {shell_value(value)} (it rescales the learning-rate schedule and '
               'the checkpoint and validation intervals too)')
    elif len(into) == 1:
        fix = f'set --cfg-options {into[0]}={shell_value(value)}'
    else:
        fix = f'set the fields you mean instead, e.g. --cfg-options {into[0]}={shell_value(value)}'
    raise ConfigError(f'--cfg-options {key}={shell_value(value)}: {key.split(".")[0]!r} is a '
                      f'variable of the config file, {where}, so overriding it changes nothing; '
                      f'{fix}.')


def _suggestion(cfg, top: str, fields: set, variables: Dict[str, List[str]]) -> str:
    """"did you mean X?" with the closest key that has an effect, or how to find one."""
    names = sorted(fields | set(variables))
    close = difflib.get_close_matches(top, names, n=1)
    name = close[0] if close else None
    if name in variables:  # never a variable: the field it was copied into
        name = variables[name][0] if variables[name] else None
    if name is None:  # the name of a field inside one mmengine reads: its full path
        data = cfg.to_dict()
        inner = {path.split('.')[-1]: path for field in sorted(data) if field in fields
                 for path, _ in _walk(data[field], field) if not path.split('.')[-1].isdigit()}
        close = difflib.get_close_matches(top, sorted(inner), n=1)
        name = inner[close[0]] if close else None
    if name is None:
        return 'check the key against the config dump at the start of the log.'
    return f'did you mean {name!r}?'


def _check_loop_argument(cfg, key: str, value, trains: bool) -> None:
    field, name = key.split('.')
    if name in (cfg.get(field, None) or {}):
        return
    accepted = _loop_arguments(cfg, field)
    if accepted is None or name in accepted:
        return
    close = difflib.get_close_matches(name, accepted, n=1)
    hint = f'did you mean {field}.{close[0]}?' if close else \
        f'it takes {", ".join(a for a in accepted if a != "type")}.'
    if trains and close and f'{field}.{close[0]}' == 'train_cfg.max_iters':
        hint = _MAX_ITERS_HINT.format(shell_value(value))
    loop = cfg[field].get('type', 'its loop')
    raise ConfigError(f'--cfg-options {key}: {loop} has no argument {name!r}; {hint}')


def _check_type(cfg, key: str, value) -> None:
    old = _lookup(cfg, key)
    if old is _MISSING or old is None or value is None:  # None: "unset", always allowed
        return
    if isinstance(old, bool):
        ok = isinstance(value, bool)
        want = 'True or False'
    elif isinstance(old, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = 'a number'
    else:
        return
    if not ok:
        raise ConfigError(f'--cfg-options {key}={value!r}: expected {want} (the config has '
                          f'{old!r}), got {type(value).__name__} {value!r}.')


def _last_iteration_of_schedule(cfg) -> Optional[int]:
    scheds = cfg.get('param_scheduler', None) or []
    scheds = scheds if isinstance(scheds, (list, tuple)) else [scheds]
    ends = [s['end'] for s in scheds
            if not s.get('by_epoch', True) and isinstance(s.get('end', None), int)]
    return max(ends) if ends else None


def apply_max_iters(cfg, max_iters: Optional[int], options: Optional[dict],
                    configured_max_iters: Optional[int]) -> None:
    """``--max-iters N``, and the check that ``train_cfg.max_iters`` alone keeps its schedule.

    Args:
        cfg (Config): The config after ``--cfg-options`` were merged.
        max_iters (int | None): ``--max-iters``.
        options (dict | None): The ``--cfg-options``.
        configured_max_iters (int | None): ``train_cfg.max_iters`` of the file.

    Raises:
        ConfigError: ``--max-iters`` together with ``train_cfg.max_iters``, ``--max-iters`` on
            an epoch-based config, or a run shortened by ``train_cfg.max_iters`` whose
            ``param_scheduler`` still ends later.
    """
    overridden = 'train_cfg.max_iters' in (options or {})
    if max_iters is not None:
        if overridden:
            raise ConfigError('give the length once: --max-iters N (which rescales the schedule) '
                              'or --cfg-options train_cfg.max_iters=N, not both.')
        set_max_iters(cfg, max_iters, scale_intervals=True)
        return
    if not overridden or configured_max_iters is None:
        return
    new = cfg.train_cfg.max_iters
    last = _last_iteration_of_schedule(cfg)
    if new < configured_max_iters and last is not None and last > new:
        raise ConfigError(
            f'--cfg-options train_cfg.max_iters={new} shortens the run from '
            f'{configured_max_iters} iterations, but param_scheduler still runs to iteration '
            f'{last}, so the learning rate would never finish its schedule; pass --max-iters '
            f'{new} instead (it rescales the schedule and the checkpoint and validation '
            'intervals).')
