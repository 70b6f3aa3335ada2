"""The shared transformer parts (addp_mm/models/utils/transformer.py): the CPU dropout keeps
nn.Dropout's distribution; the attention is softmax(q k^T / sqrt(d)) v, in fp32 under autocast."""
import pytest
import torch
import torch.nn.functional as F

from addp_mm.models.utils.transformer import Attention, Dropout


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


# ----------------------------------------------------------------------------- Attention
def _attention(**kwargs):
    torch.manual_seed(0)
    return Attention(32, 4, **kwargs).eval()


def _by_hand(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head, then the output projection, in float64."""
    B, N, D = x.shape
    H, d = attn.num_heads, attn.head_dims
    w, b = attn.qkv.weight.double(), attn.qkv.bias.double()
    q, k, v = (x.double() @ w.t() + b).view(B, N, 3, H, d).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)  # (B, H, N, N)
    out = (weights @ v).transpose(1, 2).reshape(B, N, D)
    return out @ attn.proj.weight.double().t() + attn.proj.bias.double()


def test_attention_is_scaled_dot_product_attention_per_head():
    attn = _attention()
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        out = attn(x)
    assert out.shape == (2, 7, 32)
    torch.testing.assert_close(out.double(), _by_hand(attn, x), rtol=1e-5, atol=1e-5)


def test_attention_is_permutation_equivariant():
    """No position information inside: permuting the tokens permutes the output."""
    attn = _attention()
    x = torch.randn(2, 9, 32)
    perm = torch.randperm(9)
    with torch.no_grad():
        torch.testing.assert_close(attn(x[:, perm]), attn(x)[:, perm], rtol=1e-5, atol=1e-6)


def test_attention_without_qkv_bias_has_none():
    assert _attention(qkv_bias=False).qkv.bias is None
    assert _attention().qkv.bias is not None


def test_attention_dropout_only_while_training():
    attn = _attention(attn_drop=0.5, proj_drop=0.5)
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        reference = _attention()(x)
        assert torch.equal(attn(x), reference)  # eval: no dropout, same weights (same seed)
        attn.train()
        torch.manual_seed(1)
        first = attn(x)
        second = attn(x)
    assert not torch.equal(first, second)
    assert not torch.equal(first, reference)


def test_attention_runs_in_fp32_under_autocast(monkeypatch):
    """The official code keeps the softmax in fp32; under autocast the inputs of the attention
    are cast to fp32 (fp32_softmax=True, the default) or left in the autocast dtype."""
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append(q.dtype)
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', spy)
    x = torch.randn(2, 7, 32)
    for fp32_softmax in (True, False):
        attn = _attention(fp32_softmax=fp32_softmax)
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
            out = attn(x)
        assert out.dtype == torch.bfloat16
    assert seen == [torch.float32, torch.bfloat16]


def test_attention_refuses_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match='must be divisible by num_heads'):
        Attention(30, 4)
