"""The mini paper's stages: the demo's stage runner (``addp_mm.engine.stages.run_stage``) with the
mini paper's log prefix. A finished stage is reused; one made with other settings is refused."""
import functools
import time
from typing import Optional

from addp_mm.engine import stages


def log(msg: str) -> None:
    print(f'[mini-paper {time.strftime("%H:%M:%S")}] {msg}', flush=True)


read_done = functools.partial(stages.read_done, log=log)


def run(name: str, config: str, work_dir: str, seed: int, options: Optional[dict] = None,
        max_iters: Optional[int] = None, test: bool = False) -> dict:
    """Train one config with the mmengine Runner (reused when already done): see
    :func:`addp_mm.engine.stages.run_stage`, whose record it returns."""
    return stages.run_stage(name, config, work_dir, max_iters, options, seed=seed, test=test,
                            log=log)
