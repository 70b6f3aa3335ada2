"""Shared builders for the generation tests: a toy generator and its checkpoints."""
import pytest
import torch

TOY_CONFIG = 'configs/addp/generation/addp_vit-toy-p16_8steps-cosine_cpu-64px.py'


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
        model = MODELS.build(toy_model_cfg(checkpoint=checkpoint, **overrides))
        if checkpoint is None:
            model.init_weights()
    return model.eval()


@pytest.fixture(scope='session')
def toy_generator():
    return build_toy_generator()


@pytest.fixture(scope='session')
def toy_checkpoint(toy_generator, tmp_path_factory):
    """The toy generator's weights saved in the addp_mm *pre-training* layout
    (``target_generator.vqgan.*`` plus a dummy token predictor), as tools/train.py writes them."""
    sd = {}
    for k, v in toy_generator.state_dict().items():
        sd[('target_generator.' + k) if k.startswith('vqgan.') else k] = v.clone()
    sd['target_generator.predictor.blocks.0.ln1.weight'] = torch.ones(64)  # ignored by the generator
    path = tmp_path_factory.mktemp('toy_ckpt') / 'toy_addp.pth'
    torch.save(dict(state_dict=sd, meta=dict(note='toy')), path)
    return str(path)
