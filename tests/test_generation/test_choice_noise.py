"""The noisy path of a denoising step, against the official formulas with injected noise.

The conformance fixture records steps with argmax and choice temperature 0 only. Here the random
parts run with given uniforms ``u`` (``u[:, 0]`` draws the tokens, ``u[:, 1]`` the Gumbel noise)
and the expected result is recomputed in float64 numpy from the official formulas (MAGE/ADDP
``engine_generate`` / ``mask_by_random_topk``; docs/method.md §4.3, §4.4):

- tokens: a categorical draw from softmax(logits), here by inverse CDF with ``u[:, 0]``;
- confidence: ``log p(T')`` at masked positions, +inf at unmasked ones, plus
  ``tau * g`` with Gumbel noise ``g = -log(-log(u[:, 1]))``;
- temperature: ``tau = choice_temperature * (1 - (s + 1) / N)`` ("dynamic") or constant;
- the ``n = clip(ceil(n0 * cos(pi / 2 * (s + 1) / N)), 1, n0)`` lowest confidences stay masked.
"""
import math

import numpy as np
import pytest
import torch

from addp_mm.generation import sampling
from addp_mm.generation.sampling import SamplingOptions, denoise_step


def official_step(logits, ids, mask, u, step, num_steps, num_initial, tau0, strategy):
    """The official step's choices in float64 numpy: (T', m')."""
    logits = logits.double().numpy()
    ids, mask, u = ids.numpy(), mask.numpy().astype(bool), u.double().numpy()
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    cdf = np.cumsum(p, -1)
    drawn = np.array([[min(int(np.searchsorted(cdf[b, i], u[b, 0, i] * cdf[b, i, -1], 'right')),
                           p.shape[-1] - 1) for i in range(p.shape[1])] for b in range(p.shape[0])])
    new_ids = np.where(mask, drawn, ids)
    ratio = (step + 1) / num_steps
    n = min(max(math.ceil(num_initial * math.cos(math.pi / 2 * ratio)), 1), num_initial)
    tau = tau0 * (1 - ratio) if strategy == 'dynamic' else tau0
    logp = np.log(np.take_along_axis(p, new_ids[..., None], -1)[..., 0])
    gumbel = -np.log(-np.log(np.clip(u[:, 1], 1e-20, 1 - 1e-7)))
    confidence = np.where(mask, logp + tau * gumbel, np.inf)
    new_mask = np.zeros_like(mask)
    for b in range(len(mask)):
        new_mask[b, np.argsort(confidence[b], kind='stable')[:n]] = True
    return torch.from_numpy(new_ids), torch.from_numpy(new_mask.astype(np.float32)), tau


@pytest.mark.parametrize('strategy,step,num_steps', [('dynamic', 2, 8), ('dynamic', 4, 8),
                                                    ('static', 1, 4)])
def test_noisy_step_follows_the_official_formula(toy_generator, strategy, step, num_steps):
    g = torch.Generator().manual_seed(step)
    B, L = 3, toy_generator.num_tokens
    K = toy_generator.vqgan.codebook.shape[0]
    logits = 2. * torch.randn(B, L, K, generator=g)
    # some positions already unmasked (an inpainting-like state), the same count per row
    mask = torch.zeros(B, L)
    for b in range(B):
        mask[b, torch.randperm(L, generator=g)[:L - 3]] = 1.
    ids = torch.randint(0, K, (B, L), generator=g)
    u = torch.rand(B, 2, L, generator=g)
    # a stand-in network: given logits; the real VQGAN of the toy generator
    state = dict(x=torch.rand(B, 3, 64, 64), ids=ids, mask=mask)
    options = SamplingOptions(num_steps=num_steps, choice_temperature=6.,
                              temperature_strategy=strategy, sampling='categorical')
    with torch.no_grad():
        out = denoise_step(lambda x, ids, mask: logits, toy_generator.vqgan, state, step, L - 3,
                           u, options)
    exp_ids, exp_mask, tau = official_step(logits, ids, mask, u, step, num_steps, L - 3, 6.,
                                           strategy)
    assert tau > 0
    assert torch.equal(out['ids'], exp_ids)
    assert torch.equal(out['mask'], exp_mask)
    # unmasked tokens are kept, and the noise mattered: without it another mask is chosen
    assert torch.equal(out['ids'][mask == 0], ids[mask == 0])
    _, quiet_mask, _ = official_step(logits, ids, mask, u, step, num_steps, L - 3, 0., strategy)
    assert not torch.equal(quiet_mask, exp_mask)


def test_generate_anneals_the_choice_temperature(toy_generator, monkeypatch):
    """Inside the loop, step s chooses with tau * (1 - (s + 1) / N) (dynamic) or tau (static)."""
    seen = []
    real = sampling.choose_masked

    def spy(log_probs, mask, num, temperature, gumbel_u):
        seen.append(temperature)
        return real(log_probs, mask, num, temperature, gumbel_u)

    monkeypatch.setattr(sampling, 'choose_masked', spy)
    seeds = torch.tensor([1, 2])
    toy_generator.sample(seeds, num_steps=5, choice_temperature=4.5,
                         temperature_strategy='dynamic')
    assert seen == pytest.approx([4.5 * (1 - (s + 1) / 5) for s in range(5)], abs=1e-12)
    seen.clear()
    toy_generator.sample(seeds, num_steps=3, choice_temperature=4.5,
                         temperature_strategy='static')
    assert seen == [4.5] * 3


def test_gumbel_confidence_is_log_prob_plus_scaled_gumbel():
    """choose_masked alone: the kept-masked set is the n lowest of log p + tau * g."""
    g = torch.Generator().manual_seed(3)
    log_probs = -torch.rand(2, 30, generator=g) * 5
    mask = (torch.rand(2, 30, generator=g) < 0.7).float()
    mask[1] = mask[0]  # same count per row
    u = torch.rand(2, 30, generator=g)
    tau = 2.5
    conf = np.where(mask.numpy() > 0,
                    log_probs.double().numpy() + tau * -np.log(-np.log(u.double().numpy())),
                    np.inf)
    n = int(mask[0].sum()) // 2
    expected = np.zeros((2, 30), np.float32)
    for b in range(2):
        expected[b, np.argsort(conf[b])[:n]] = 1
    out = sampling.choose_masked(log_probs, mask, n, tau, u)
    assert torch.equal(out, torch.from_numpy(expected))
    assert not torch.equal(out, sampling.choose_masked(log_probs, mask, n, 0., u))
