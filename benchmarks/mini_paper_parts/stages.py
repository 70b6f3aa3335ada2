"""One training stage of the mini paper with the mmengine Runner, reused when already done."""
import json
import os.path as osp
import time
from typing import Optional

from mmengine.runner import Runner

from addp_mm.engine.stages import stage_config


def log(msg: str) -> None:
    print(f'[mini-paper {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run(name: str, config: str, work_dir: str, seed: int, options: Optional[dict] = None,
        max_iters: Optional[int] = None, test: bool = False) -> dict:
    """Train one config with the mmengine Runner (skipped when already done).

    Args:
        name (str): Stage name (messages, experiment name).
        config (str): Config path.
        work_dir (str): Work directory; ``done.json`` there records a finished run.
        seed (int): Runner seed.
        options (dict, optional): ``--cfg-options``-style overrides.
        max_iters (int, optional): Length (the schedule is rescaled); None keeps the config's.
        test (bool): Also run the test loop and record its metrics.

    Returns:
        dict: ``checkpoint`` (final), ``seconds`` and, with ``test``, ``metrics`` of the test
        split (mmpretrain's Accuracy).
    """
    # a stage that did not finish starts again (they take minutes)
    cfg = stage_config(name, config, work_dir, max_iters, options,
                       seed=seed)
    iters = cfg.train_cfg.max_iters
    # what makes this run: reused only when it matches exactly
    settings = dict(config=osp.basename(config), iters=iters, seed=seed,
                    options=json.loads(json.dumps(options or {}, sort_keys=True)))
    done = osp.join(work_dir, 'done.json')
    if osp.isfile(done):
        with open(done) as f:
            rec = json.load(f)
        if rec.get('settings') != settings:
            raise RuntimeError(
                f'{name}: {work_dir} holds a finished run with other settings '
                f'({rec.get("settings")} != {settings}); choose another --out or delete that '
                'folder to train again.')
        log(f'{name}: done before ({rec["seconds"]:.0f} s), reusing {work_dir}')
        return rec
    log(f'{name}: {iters} iterations ({osp.basename(config)}) -> {work_dir}')
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    rec = dict(checkpoint=osp.join(work_dir, f'iter_{iters}.pth'), iters=iters,
               settings=settings)
    if not osp.isfile(rec['checkpoint']):
        raise RuntimeError(f'{name}: training finished but {rec["checkpoint"]} was not written.')
    if test:
        rec['metrics'] = {k: float(v) for k, v in runner.test().items()}
        log(f'{name}: test {rec["metrics"]}')
    rec['seconds'] = time.time() - start
    with open(done, 'w') as f:
        json.dump(rec, f)
    return rec
