"""Fixtures of the generation tests: a toy generator and its checkpoint."""
import pytest
import torch

from .helpers import build_toy_generator


@pytest.fixture(scope='session')
def toy_generator():
    return build_toy_generator()


@pytest.fixture(scope='session')
def toy_checkpoint(toy_generator, tmp_path_factory):
    """The toy generator's weights saved in the addp_mm *pre-training* layout
    (``target_generator.vqgan.*`` plus a dummy token predictor), as tools/train.py writes them.
    The generator's own state dict has that layout: no key is renamed."""
    sd = {k: v.clone() for k, v in toy_generator.state_dict().items()}
    assert any(k.startswith('target_generator.vqgan.') for k in sd)
    # a token-predictor tensor, which the generator must ignore
    sd['target_generator.predictor.blocks.0.ln1.weight'] = torch.ones(64)
    path = tmp_path_factory.mktemp('toy_ckpt') / 'toy_addp.pth'
    torch.save(dict(state_dict=sd, meta=dict(note='toy')), path)
    return str(path)
