"""Running training stages in-process with the mmengine Runner (the demo, the mini paper,
``tools/train.py --max-iters``): one config, its options, its length, a fresh Runner."""
import copy
import glob
import os.path as osp
import time
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner


def final_checkpoint(work_dir: str, max_iters: int) -> str:
    """Path of the checkpoint an iteration-based stage writes at its last iteration."""
    return osp.join(work_dir, f'iter_{max_iters}.pth')


def set_max_iters(cfg: Config, max_iters: int) -> None:
    """Shorten or lengthen an iteration-based config, scaling its lr schedule and checkpointing.

    Every ``begin``/``end``/``T_max`` of ``param_scheduler`` is scaled by ``max_iters / old``
    (each scheduler keeps at least one iteration), and the checkpoint hook (and validation, when the
    loop has a ``val_interval``) runs at the end.
    """
    old = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = max_iters
    scale = max_iters / old
    begin = 0
    for sched in cfg.param_scheduler:
        sched['begin'] = begin
        end = max(begin + 1, min(max_iters, round(sched['end'] * scale)))
        sched['end'] = end
        if 'T_max' in sched:
            sched['T_max'] = end - begin
        begin = end
    cfg.default_hooks.checkpoint.interval = max_iters
    if 'val_interval' in cfg.train_cfg:  # validate (if at all) at the end only
        cfg.train_cfg.val_interval = max_iters


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


def run_stage(name: str,
              config: str,
              work_dir: str,
              max_iters: int,
              options: Optional[dict] = None,
              log_interval: Optional[int] = None,
              seed: int = 0) -> str:
    """Train one stage unless its final checkpoint exists.

    Args:
        name (str): Short stage name (used for the experiment name and messages).
        config (str): Config path.
        work_dir (str): Work directory of the stage.
        max_iters (int): Iterations (the config's schedule is rescaled to it).
        options (dict, optional): ``--cfg-options``-style overrides (dotted keys).
        log_interval (int, optional): Logger interval (iterations).
        seed (int): Runner seed.

    Returns:
        str: Path of the final checkpoint.
    """
    ckpt = final_checkpoint(work_dir, max_iters)
    if osp.isfile(ckpt):
        print(f'[demo] {name}: {ckpt} exists, skipping training', flush=True)
        return ckpt
    # A partly trained stage restarts from scratch: the stages only checkpoint at their end.
    cfg = stage_config(name, config, work_dir, max_iters, options, log_interval, seed)
    start = time.time()
    print(f'[demo] {name}: training {max_iters} iterations -> {work_dir}', flush=True)
    Runner.from_cfg(cfg).train()
    if not osp.isfile(ckpt):
        raise RuntimeError(f'{name}: training finished but {ckpt} was not written.')
    print(f'[demo] {name}: done in {time.time() - start:.0f} s', flush=True)
    return ckpt


def latest_scalars(work_dir: str) -> Optional[str]:
    """The newest ``vis_data/scalars.json`` under a stage's work directory (None if none)."""
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    return max(files, key=osp.getmtime) if files else None
