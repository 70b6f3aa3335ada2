"""The shared transformer parts: the CPU dropout keeps nn.Dropout's distribution."""
import pytest
import torch

from addp_mm.models.utils.transformer import Dropout


@pytest.mark.parametrize('p', [0.1, 0.5])
def test_dropout_distribution_and_gradient(p):
    torch.manual_seed(0)
    drop = Dropout(p).train()
    x = torch.ones(400, 500, requires_grad=True)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005  # 200k Bernoulli draws: std < 0.0012
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask / (1 - p)) / dx = mask / (1 - p)


def test_dropout_identity_in_eval_and_at_zero():
    x = torch.randn(3, 4)
    assert Dropout(0.1).eval()(x) is x
    assert Dropout(0.).train()(x) is x
    assert torch.equal(Dropout(1.).train()(x), torch.zeros_like(x))


def test_dropout_keeps_dtype():
    x = torch.randn(8, 16, dtype=torch.bfloat16)
    assert Dropout(0.1).train()(x).dtype == torch.bfloat16
