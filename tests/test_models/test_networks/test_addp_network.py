"""The one ADDP network (addp_mm/models/networks/addp_network.py), shared by pre-training and
generation: its parts, its two forward passes and their options."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from addp_mm.models.networks import ADDPNetwork, build_network_parts

from ...test_generation.helpers import TOY_PRETRAIN_CONFIG, build_toy_generator


@pytest.fixture(scope='module')
def toy_addp():
    cfg = Config.fromfile(TOY_PRETRAIN_CONFIG).model.to_dict()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.init_weights()
    return model.eval()


def _inputs(model, masked: int, batch: int = 3):
    L = model.neck.num_tokens
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, 64, 64, generator=gen)
    ids = torch.randint(0, 32, (batch, L), generator=gen)
    mask = torch.zeros(batch, L)
    for row in mask:
        row[torch.randperm(L, generator=gen)[:masked]] = 1
    return x, ids, mask


def test_pretraining_and_generation_hold_the_same_network_at_the_top_level(toy_addp):
    generator = build_toy_generator()
    for model in (toy_addp, generator):
        assert isinstance(model, ADDPNetwork)
        assert not any(k.startswith('network.') for k in model.state_dict())
    keys = [k for k in toy_addp.state_dict() if not k.startswith('target_generator.predictor.')]
    assert keys == list(generator.state_dict())  # one layout, one order
    assert [n.split('.')[0] for n, _ in toy_addp.named_children()][1:4] == \
        ['backbone', 'neck', 'head']


def test_forward_logits_is_the_head_on_forward_features(toy_addp):
    x, ids, mask = _inputs(toy_addp, masked=10)
    with torch.no_grad():
        feats = toy_addp.forward_features(x, ids, mask)
        logits = toy_addp.forward_logits(x, ids, mask)
        by_hand = toy_addp.head(feats, toy_addp.neck.token_emb.weight)
    L, K = mask.shape[1], int((mask[0] == 0).sum())
    assert feats.shape == (3, 1 + L + K, 64)
    assert logits.shape == (3, 1 + L + K, toy_addp.head.vocab_size)
    assert torch.equal(logits, by_hand)


def test_num_codes_scores_the_grid_over_the_codebook(toy_addp):
    x, ids, mask = _inputs(toy_addp, masked=10)
    L, codes = mask.shape[1], toy_addp.target_generator.vqgan.n_embed
    with torch.no_grad():
        full = toy_addp.forward_logits(x, ids, mask)
        grid = toy_addp.forward_logits(x, ids, mask, num_codes=codes)
    assert grid.shape == (3, L, codes)
    torch.testing.assert_close(grid, full[:, 1:L + 1, :codes], rtol=1e-5, atol=1e-6)


def test_share_all_masked_runs_the_decoder_once_without_the_encoder(toy_addp, monkeypatch):
    L = toy_addp.neck.num_tokens
    _, ids, mask = _inputs(toy_addp, masked=L)
    with torch.no_grad():
        per_image = toy_addp.forward_logits(None, ids, mask)
        calls = []
        real = toy_addp.neck.forward
        monkeypatch.setattr(toy_addp.neck, 'forward',
                            lambda latent, i, m: calls.append(len(i)) or real(latent, i, m))
        monkeypatch.setattr(toy_addp.backbone, 'forward', None)  # any call would fail
        shared = toy_addp.forward_logits(None, ids, mask, share_all_masked=True)
    assert calls == [1]
    assert shared.shape == per_image.shape
    torch.testing.assert_close(shared, per_image, rtol=1e-5, atol=1e-6)


def test_an_image_is_needed_when_some_tokens_are_reliable(toy_addp):
    _, ids, mask = _inputs(toy_addp, masked=10)
    with pytest.raises(ValueError, match='an image x is needed'):
        toy_addp.forward_logits(None, ids, mask)


def test_a_head_that_does_not_fit_the_decoder_embedding_is_refused():
    cfg = Config.fromfile(TOY_PRETRAIN_CONFIG).model
    head = dict(cfg.head, word_dims=32)
    with pytest.raises(ValueError, match='set the head.s vocab_size and word_dims'):
        build_network_parts(cfg.backbone, cfg.neck, head)
