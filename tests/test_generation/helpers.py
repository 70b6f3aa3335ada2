"""Builders shared by the generation tests: the toy generator of the toy generation config."""
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
TOY_CONFIG = str(REPO_ROOT / 'configs/addp/generation'
                 / 'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py')
TOY_PRETRAIN_CONFIG = str(REPO_ROOT /
                          'configs/addp/addp_vit-toy-p16_1xb8-cpu-coslr-50iter_imagefolder-64px.py')


def toy_model_cfg(**overrides) -> dict:
    """The toy generation config's model (64x64 images, 4x4 tokens, width 64)."""
    from mmengine.config import Config
    cfg = Config.fromfile(TOY_CONFIG, import_custom_modules=False).model.to_dict()
    cfg.update(overrides)
    return cfg


def build_toy_generator(checkpoint=None, seed: int = 0, **overrides):
    """A toy ADDPGenerator; without a checkpoint, the official init drawn with ``seed``."""
    from mmagic.registry import MODELS
    import addp_mm.generation  # noqa: F401
    # The frozen VQGAN keeps PyTorch's construction-time init, so seed the build as well.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MODELS.build(dict(toy_model_cfg(checkpoint=checkpoint, **overrides),
                                  _scope_='mmagic'))
        if checkpoint is None:
            model.init_weights()
    return model.eval()
