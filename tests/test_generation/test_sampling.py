"""Units of the sampling loop: seeds, token draws, schedule, mask choice, pixel -> token masks."""
import math

import pytest
import torch

from addp_mm.generation.sampling import (choose_masked, image_seeds, num_masked_after,
                                         pixel_mask_to_tokens, sample_ids)


def test_image_seeds_depend_only_on_seed_and_index():
    a = image_seeds(0, [0, 1, 2, 3])
    assert torch.equal(image_seeds(0, [2, 3]), a[2:])  # independent of the batch
    assert len(set(a.tolist())) == 4
    assert not set(image_seeds(1, [0, 1, 2, 3]).tolist()) & set(a.tolist())
    assert bool((a >= 0).all())


def test_categorical_draw_follows_the_distribution():
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    logits = probs.clamp_min(1e-30).log().expand(1, 20000, -1)
    u = torch.rand(1, 20000, generator=torch.Generator().manual_seed(0))
    ids = sample_ids(logits, u, 'categorical')
    freq = torch.bincount(ids[0], minlength=4).float() / ids.numel()
    assert freq[3] == 0  # a zero-probability code is never drawn
    assert torch.allclose(freq[:3], probs[:3], atol=0.015), freq


def test_categorical_draw_is_inverse_cdf():
    logits = torch.tensor([[[0., 0., 0., 0.]]]).expand(1, 4, 4)  # uniform over 4 codes
    u = torch.tensor([[0.0, 0.26, 0.74, 0.999]])
    assert sample_ids(logits, u, 'categorical').tolist() == [[0, 1, 2, 3]]


def test_top_p_keeps_only_the_nucleus():
    # probabilities 0.6 / 0.3 / 0.1 over codes 2 / 0 / 1
    logits = torch.tensor([0.3, 0.1, 0.6]).log().expand(1, 1000, -1)
    u = torch.rand(1, 1000, generator=torch.Generator().manual_seed(1))
    assert set(sample_ids(logits, u, 'top_p', top_p=0.5).unique().tolist()) == {2}
    assert set(sample_ids(logits, u, 'top_p', top_p=0.8).unique().tolist()) == {0, 2}
    assert set(sample_ids(logits, u, 'categorical').unique().tolist()) == {0, 1, 2}


def test_argmax_draw():
    logits = torch.randn(2, 5, 7)
    assert torch.equal(sample_ids(logits, torch.rand(2, 5), 'argmax'), logits.argmax(-1))


def test_schedule_counts():
    # docs/method.md §4.2: n = clip(ceil(256 ratio), 1, 256); cosine 8 steps from the fixture:
    # 252, 237, ...
    cos = [num_masked_after(s, 8, 256, 'cosine') for s in range(8)]
    assert cos == [math.ceil(256 * math.cos(math.pi / 2 * (s + 1) / 8)) or 1 for s in range(8)]
    assert cos[:2] == [252, 237] and cos[-1] == 1
    lin = [num_masked_after(s, 256, 256, 'linear') for s in range(256)]
    assert lin[:3] == [255, 254, 253] and lin[-1] == 1
    # inpainting: the schedule covers the masked count only
    assert [num_masked_after(s, 4, 10, 'linear') for s in range(4)] == [8, 5, 3, 1]


def test_choose_masked_keeps_unmasked_positions_unmasked():
    mask = torch.tensor([[1., 1., 0., 1., 0., 1.]])
    log_probs = torch.tensor([[-1., -3., -9., -2., -9., -0.5]])
    new = choose_masked(log_probs, mask, 2, 0., torch.rand(1, 6))
    assert new.tolist() == [[0., 1., 0., 1., 0., 0.]]  # the two least confident masked
    noisy = choose_masked(log_probs, mask, 3, 100., torch.rand(1, 6))
    assert noisy.sum() == 3 and bool((noisy <= mask).all())


def test_pixel_mask_to_tokens_any_pixel_counts():
    pm = torch.zeros(1, 64, 64)
    pm[0, 0, 0] = 1  # one pixel of token (0, 0)
    pm[0, 40:50, 17] = 1  # pixels of tokens (2, 1) and (3, 1)
    tokens = pixel_mask_to_tokens(pm, 4)
    expected = torch.zeros(1, 16)
    expected[0, [0, 2 * 4 + 1, 3 * 4 + 1]] = 1
    assert torch.equal(tokens, expected)
    with pytest.raises(ValueError, match='multiple of the token grid'):
        pixel_mask_to_tokens(torch.zeros(1, 62, 64), 4)
