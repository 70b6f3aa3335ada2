"""Running training stages in-process with the mmengine Runner (the demo, the mini paper,
``tools/train.py --max-iters``): one config, its options, its length, a fresh Runner."""
import copy
import glob
import json
import os.path as osp
import time
from typing import Callable, List, Optional

from mmengine.config import Config
from mmengine.optim.scheduler.param_scheduler import INF
from mmengine.runner import Runner

from ..utils.errors import ConfigError, RefusedError
from ..utils.provenance import canonical_sha256, write_json_atomic


def final_checkpoint(work_dir: str, max_iters: int) -> str:
    """Path of the checkpoint an iteration-based stage writes at its last iteration."""
    return osp.join(work_dir, f'iter_{max_iters}.pth')


def _scheduler_list(cfg: Config) -> List[dict]:
    scheds = cfg.get('param_scheduler', None) or []
    return list(scheds) if isinstance(scheds, (list, tuple)) else [scheds]


def set_max_iters(cfg: Config, max_iters: int, scale_intervals: bool = False) -> None:
    """Shorten or lengthen an iteration-based config, scaling its lr schedule and checkpointing.

    ``train_cfg.max_iters`` becomes ``max_iters`` and every iteration-based (``by_epoch=False``)
    ``param_scheduler`` is scaled by ``max_iters / old``: its ``begin``/``end`` (a scheduler that
    starts where the previous one ended keeps starting there; each keeps at least one iteration),
    ``T_max`` (``end - begin``) and ``milestones``.

    Args:
        cfg (Config): An iteration-based config (``train_cfg.max_iters``), edited in place.
        max_iters (int): The new number of iterations (>= 1).
        scale_intervals (bool): False (the stage runner of the demo and the mini paper): the
            checkpoint hook, and validation when the loop has a ``val_interval``, run at the end
            only. True (``tools/train.py --max-iters``): their intervals are scaled too (at least
            1, at most ``max_iters``).

    Raises:
        ConfigError: ``max_iters`` < 1, or the config is not iteration-based.
    """
    if int(max_iters) != max_iters or max_iters < 1:
        raise ConfigError(f'--max-iters must be a positive whole number, got {max_iters!r}.')
    max_iters = int(max_iters)
    loop = cfg.get('train_cfg', None) or {}
    if 'max_iters' not in loop:
        what = (f'train_cfg.max_epochs={loop["max_epochs"]}' if 'max_epochs' in loop else
                'no train_cfg.max_iters')
        raise ConfigError(f'--max-iters needs an iteration-based config (train_cfg.max_iters), '
                          f'but this one has {what}; set --cfg-options train_cfg.max_epochs=N '
                          'instead (and its param_scheduler if it ends later).')
    old = loop['max_iters']
    cfg.train_cfg.max_iters = max_iters
    scale = max_iters / old

    def scaled(value: int, lowest: int) -> int:
        return max(lowest, min(max_iters, round(value * scale)))

    previous = None  # (old end, new end) of the previous iteration-based scheduler
    for sched in _scheduler_list(cfg):
        if sched.get('by_epoch', True):
            continue  # counts epochs (mmengine's default), not iterations
        begin = sched.get('begin', 0)
        if previous is not None and begin == previous[0]:
            new_begin = previous[1]
        else:
            new_begin = scaled(begin, 0) if begin else 0
        sched['begin'] = new_begin
        if sched.get('end', INF) < INF:
            new_end = scaled(sched['end'], new_begin + 1)
            previous = (sched['end'], new_end)
            sched['end'] = new_end
            if 'T_max' in sched:
                sched['T_max'] = new_end - new_begin
        elif 'T_max' in sched:
            sched['T_max'] = max(1, round(sched['T_max'] * scale))
        if 'milestones' in sched:
            sched['milestones'] = [scaled(m, 1) for m in sched['milestones']]
    ckpt = (cfg.get('default_hooks', None) or {}).get('checkpoint', None)
    if ckpt is not None and not scale_intervals:
        ckpt['interval'] = max_iters
    elif ckpt is not None and not ckpt.get('by_epoch', True):  # an epoch interval stays
        ckpt['interval'] = scaled(ckpt.get('interval', old), 1)
    if 'val_interval' in loop:  # validate (if at all) at the end only, or as often as before
        cfg.train_cfg.val_interval = scaled(loop['val_interval'], 1) if scale_intervals \
            else max_iters


def stage_config(name: str,
                 config: str,
                 work_dir: str,
                 max_iters: Optional[int] = None,
                 options: Optional[dict] = None,
                 log_interval: Optional[int] = None,
                 seed: int = 0) -> Config:
    """The config of one stage run in-process, several Runners after one another.

    Loads ``config``, applies ``--cfg-options``-style ``options``, rescales it to ``max_iters``
    (:func:`set_max_iters`; None keeps the config's), sets the work directory and seed, and makes
    the run a fresh single-process one (no resume, no ``load_from``) with a unique experiment
    name (mmengine keys loggers and visualizers by it).
    """
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(copy.deepcopy(options))
    if max_iters is not None:
        set_max_iters(cfg, max_iters)
    if log_interval is not None:
        cfg.default_hooks.logger.interval = log_interval
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    cfg.launcher = 'none'
    cfg.resume = False
    cfg.load_from = None
    cfg.experiment_name = f'{name}_{time.strftime("%Y%m%d_%H%M%S")}'
    return cfg


def _plain(obj):
    """JSON's view of ``obj`` (tuples become lists), so a record compares with its file."""
    return json.loads(json.dumps(obj, sort_keys=True))


def read_done(name: str, work_dir: str, settings: dict,
              log: Callable[[str], None] = print) -> Optional[dict]:
    """The record of a finished stage (``work_dir/done.json``), if it was made with ``settings``.

    Returns:
        dict | None: The record; None when the stage has not finished.

    Raises:
        RefusedError: The folder holds a finished stage made with other settings.
    """
    done = osp.join(work_dir, 'done.json')
    if not osp.isfile(done):
        return None
    with open(done) as f:
        rec = json.load(f)
    if rec.get('settings') != _plain(settings):
        raise RefusedError(
            f'{name}: {work_dir} holds a finished run made with other settings '
            f'({rec.get("settings")} != {_plain(settings)}); choose another output folder, or '
            'delete that one to train again.')
    log(f'{name}: done before ({rec.get("seconds", 0):.0f} s), reusing {work_dir}')
    return rec


def stage_settings(cfg: Config, config: str, seed: int, options: Optional[dict]) -> dict:
    """What makes a stage (the record :func:`run_stage` reuses only when it is the same): the
    config file's name and a hash of the whole config after ``options`` (so an edited config
    file does not reuse the old stage), the iterations, the seed and the options."""
    content = {k: v for k, v in cfg.to_dict().items() if k not in ('work_dir', 'experiment_name')}
    return dict(config=osp.basename(config), iters=cfg.train_cfg.max_iters, seed=seed,
                options=options or {}, config_sha256=canonical_sha256(content))


def run_stage(name: str,
              config: str,
              work_dir: str,
              max_iters: Optional[int] = None,
              options: Optional[dict] = None,
              log_interval: Optional[int] = None,
              seed: int = 0,
              test: bool = False,
              log: Callable[[str], None] = print) -> dict:
    """Train one stage with a fresh Runner, unless it finished before with the same settings.

    A finished stage leaves ``work_dir/done.json`` (written atomically, after its final
    checkpoint): its settings (config file and a hash of its content, iterations, seed,
    options), its seconds and, with
    ``test``, its test metrics. A rerun with the same settings returns that record without
    training; other settings are refused (:func:`read_done`). A stage that did not finish (no
    ``done.json``) starts again from scratch: the stages checkpoint only at their end.

    Args:
        name (str): Short stage name (experiment name and messages).
        config (str): Config path.
        work_dir (str): Work directory of the stage.
        max_iters (int, optional): Iterations (the config's schedule is rescaled to it); None
            keeps the config's.
        options (dict, optional): ``--cfg-options``-style overrides (dotted keys).
        log_interval (int, optional): Logger interval (iterations).
        seed (int): Runner seed.
        test (bool): Run the test loop after training and record its metrics.
        log (callable): Where the stage's one-line messages go.

    Returns:
        dict: ``checkpoint`` (the final one), ``iters``, ``seconds``, ``settings`` and, with
        ``test``, ``metrics``.
    """
    cfg = stage_config(name, config, work_dir, max_iters, options, log_interval, seed)
    iters = cfg.train_cfg.max_iters
    settings = stage_settings(cfg, config, seed, options)
    rec = read_done(name, work_dir, settings, log)
    if rec is not None:
        return rec
    log(f'{name}: training {iters} iterations ({osp.basename(config)}) -> {work_dir}')
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    rec = dict(checkpoint=final_checkpoint(work_dir, iters), iters=iters,
               settings=_plain(settings))
    if not osp.isfile(rec['checkpoint']):
        raise RuntimeError(f'{name}: training finished but {rec["checkpoint"]} was not written.')
    if test:
        rec['metrics'] = {k: float(v) for k, v in runner.test().items()}
        log(f'{name}: test {rec["metrics"]}')
    rec['seconds'] = time.time() - start
    log(f'{name}: done in {rec["seconds"]:.0f} s')
    write_json_atomic(osp.join(work_dir, 'done.json'), rec)
    return rec


def latest_scalars(work_dir: str) -> Optional[str]:
    """The newest ``vis_data/scalars.json`` under a stage's work directory (None if none)."""
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    return max(files, key=osp.getmtime) if files else None
