"""The VQGAN blocks compute in place only without autograd, with bit-identical results."""
import torch

from addp_mm.models.tokenizers.vqgan import VQGAN, ResBlock, VQGANTokenizer


def _tiny_tokenizer() -> VQGANTokenizer:
    torch.manual_seed(0)
    return VQGANTokenizer(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=16, embed_dim=16,
                          n_embed=32, resolution=16, norm_groups=8)


def test_inplace_decode_is_bit_identical():
    vq = _tiny_tokenizer()
    z = torch.randn(2, 16, 8, 8)
    x = torch.rand(2, 3, 16, 16)
    fast = vq.decode(z), vq.encode(x)[0]  # the frozen tokenizer: no autograd, in place
    with torch.enable_grad():  # the trainable network's methods with autograd on: out of place
        slow = VQGAN.decode(vq, z), VQGAN.encode(vq, x)[0]
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)


def test_blocks_stay_differentiable_with_autograd():
    block = ResBlock(16, 32, norm_groups=8)  # with the 1x1 shortcut on the output
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    y = block(x)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with torch.no_grad():
        assert torch.equal(block(x), y.detach())
