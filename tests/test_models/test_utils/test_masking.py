"""The mask schedules (addp_mm/models/utils/masking.py; docs/method.md §3.2, §3.3, §4.2)."""
import math

import pytest
import torch

from addp_mm.models.utils.masking import (generation_ratio, nested_masks, num_masked,
                                          training_ratio_grid)


def test_training_ratio_grid_is_the_cosine_grid_in_range():
    ratios, probs = training_ratio_grid(100, 0.5, 1.0, 0.55, 0.25)
    # cos(pi/2 k/100) >= 0.5 for k <= 66; k = 0 (ratio 1) is left out by the open upper bound
    expected = torch.tensor([math.cos(math.pi / 2 * k / 100) for k in range(66, 0, -1)],
                            dtype=torch.float64)
    assert ratios.dtype == probs.dtype == torch.float64
    torch.testing.assert_close(ratios, expected, rtol=0, atol=1e-15)
    assert bool((ratios[1:] > ratios[:-1]).all())
    assert float(probs.sum()) == pytest.approx(1., abs=1e-12)


def test_training_ratio_grid_weights_are_the_normal_pdf():
    ratios, probs = training_ratio_grid(100, 0.5, 1.0, 0.55, 0.25)
    pdf = torch.exp(-0.5 * ((ratios - 0.55) / 0.25)**2)
    torch.testing.assert_close(probs / probs[0], pdf / pdf[0], rtol=1e-12, atol=0)
    # the mode is the grid point nearest to mu
    assert int(probs.argmax()) == int((ratios - 0.55).abs().argmin())


def test_num_masked_rounds_up():
    assert num_masked(0.5, 256) == 128
    assert num_masked(0.501, 256) == 129
    assert num_masked(0.99988, 256) == 256  # the grid's top ratio masks every position
    assert num_masked(0., 16) == 0


def test_nested_masks_mask_the_lowest_noise_first():
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.7],
                          [0.2, 0.8, 0.6, 0.4, 0.0]])
    mask_t, mask_next = nested_masks(noise, 2, 3)
    assert mask_t.tolist() == [[0, 1, 0, 1, 0], [1, 0, 0, 0, 1]]
    assert mask_next.tolist() == [[0, 1, 1, 1, 0], [1, 0, 0, 1, 1]]
    assert mask_t.dtype == mask_next.dtype == torch.float32


def test_nested_masks_are_nested_with_exact_counts():
    torch.manual_seed(0)
    mask_t, mask_next = nested_masks(torch.rand(8, 64), 20, 37)
    assert mask_t.sum(1).tolist() == [20.] * 8
    assert mask_next.sum(1).tolist() == [37.] * 8
    assert bool((mask_t <= mask_next).all())  # mask_t is a subset of mask_next
    assert not torch.equal(mask_t[0], mask_t[1])  # per-sample noise, per-sample masks


@pytest.mark.parametrize('schedule,expected', [
    ('cosine', [math.cos(math.pi / 2 * t / 4) for t in (1, 2, 3, 4)]),
    ('linear', [0.75, 0.5, 0.25, 0.]),
])
def test_generation_ratio(schedule, expected):
    got = [generation_ratio(s, 4, schedule) for s in range(4)]
    assert got == pytest.approx(expected, abs=1e-15)
    assert got == sorted(got, reverse=True)


def test_generation_ratio_refuses_an_unknown_schedule():
    with pytest.raises(ValueError, match="use 'cosine' or 'linear'"):
        generation_ratio(0, 4, 'exponential')
