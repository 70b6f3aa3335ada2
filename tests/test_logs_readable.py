"""Logs a person can read, and that say when something is off (issue 12): no warning per frozen
parameter, no ~1000 init lines for random generation weights, a loud warning for a frozen module
with random weights, and no checkpoint path in the config dump that the model does not load."""
import logging
from contextlib import contextmanager
from pathlib import Path

from mmengine.config import Config
from mmengine.logging import MMLogger

import addp_mm  # noqa: F401

from .tool_runs import load_tool

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')
TOY_GEN = str(ROOT / 'configs/addp/generation'
              / 'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py')


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def messages(self, level=logging.DEBUG):
        return [r.getMessage() for r in self.records if r.levelno >= level]


@contextmanager
def captured_log():
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _toy_addp():
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(TOY)
    return MODELS.build(dict(cfg.model.to_dict(), _scope_='mmpretrain'))


def test_frozen_modules_with_random_weights_are_announced_and_not_listed_per_parameter():
    from mmengine.optim import build_optim_wrapper
    model = _toy_addp()
    with captured_log() as log:
        model.init_weights()
        optim_wrapper = build_optim_wrapper(model, Config.fromfile(TOY).optim_wrapper)
    warnings = log.messages(logging.WARNING)
    assert any('frozen VQGAN tokenizer runs with RANDOM weights' in m for m in warnings)
    assert any('frozen MAGE token predictor runs with RANDOM weights' in m for m in warnings)
    assert not [m for m in log.messages() if 'is skipped since its requires_grad' in m]
    frozen = sum(p.numel() > 0 for p in model.parameters() if not p.requires_grad)
    summary = [m for m in log.messages() if 'frozen parameters (requires_grad=False)' in m]
    assert summary and summary[0].startswith(f'optimizer: {frozen} frozen parameters')
    assert 'target_generator.vqgan' in summary[0]
    assert len(optim_wrapper.optimizer.param_groups) > 0


def test_random_generation_weights_do_not_flood_the_log():
    from addp_mm.generation.api import build_generator
    with captured_log() as log:
        build_generator(TOY_GEN, 'random')
    shown = log.messages(logging.INFO)  # what the console shows
    assert len(shown) < 15, shown[:20]
    assert any('RANDOM weights' in m for m in log.messages(logging.WARNING))


def test_config_dump_shows_no_unused_checkpoint():
    train = load_tool('tools/train.py')
    cfg = train.merge_args(Config.fromfile(TOY), train.parse_args([TOY]))
    assert 'vqgan_jax_strongaug.ckpt' not in cfg.pretty_text
    assert 'mage-vitb-1600.pth' not in cfg.pretty_text
    base = str(ROOT / 'configs/addp/addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py')
    cfg = train.merge_args(Config.fromfile(base), train.parse_args(
        [base, '--cfg-options', 'model.target_generator.vqgan.checkpoint=mine.ckpt']))
    assert 'vqgan_jax_strongaug.ckpt' not in cfg.pretty_text and 'mine.ckpt' in cfg.pretty_text
    assert 'mage-vitb-1600.pth' in cfg.pretty_text  # still used


def test_paramwise_options_lines_are_debug():
    """mmengine logs one "paramwise_options -- NAME:KEY=VALUE" line per parameter that a
    paramwise_cfg changes (60 of the 383 lines of a tiny ADDP run): they go to DEBUG, so the
    console and the log file (INFO) do not show them, ``log_level='DEBUG'`` does."""
    from mmengine.optim import build_optim_wrapper
    model = _toy_addp()
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with captured_log() as log:
            build_optim_wrapper(model, Config.fromfile(TOY).optim_wrapper)
    finally:
        logger.setLevel(level)
    paramwise = [r for r in log.records if r.getMessage().startswith('paramwise_options -- ')]
    assert len(paramwise) > 10  # bias/norm/flat decay multipliers of the toy ADDP
    assert {r.levelno for r in paramwise} == {logging.DEBUG}
    assert not [m for m in log.messages(logging.INFO) if 'paramwise_options' in m]
