"""The one ViT block used by every transformer in addp_mm.

The ADDP pixel encoder, the ADDP token decoder and the frozen MAGE token predictor all use the same
pre-norm block (LayerNorm eps 1e-6, qkv bias, 4x MLP with GELU, dropout in attention and MLP). The
parameter names follow mmpretrain's ``VisionTransformer`` (``ln1``, ``attn.qkv``, ``attn.proj``,
``ln2``, ``ffn.layers.0.0``, ``ffn.layers.1``) so encoder weights drop into it unchanged; the
official (timm) names are mapped by
:func:`addp_mm.checkpoints.weights.timm_to_mmpretrain_block_key`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with a cheaper mask on the CPU.

    The same distribution (each element kept with probability 1 - p and scaled by 1 / (1 - p)),
    with the keep mask made from one uniform draw per element, which on the CPU is about twice as
    fast as ``nn.Dropout``'s Bernoulli kernel (a pre-training step runs ~60 dropouts). The random
    stream differs from ``nn.Dropout``'s; in eval mode both are the identity. Other devices use
    ``nn.Dropout``'s kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.:
            return x
        if x.device.type != 'cpu' or self.p >= 1.:
            return F.dropout(x, self.p, True, self.inplace)
        keep = torch.rand(x.shape, dtype=torch.float32).ge_(self.p).mul_(1. / (1. - self.p))
        return x * keep.to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention.

    The official code computes ``softmax(q k^T / sqrt(d))`` in fp32. Here the product is
    :func:`torch.nn.functional.scaled_dot_product_attention`, which is the same function; under
    autocast its inputs are cast to fp32 when ``fp32_softmax`` is set so the softmax stays in fp32
    as in the official code.

    Args:
        embed_dims (int): Channels D.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        attn_drop (float): Dropout on the attention weights. Defaults to 0.
        proj_drop (float): Dropout after the output projection. Defaults to 0.
        fp32_softmax (bool): Run attention in fp32 under autocast. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 fp32_softmax: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads}).')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop = attn_drop
        self.fp32_softmax = fp32_softmax
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        B, N, D = x.shape
        # (B, N, 3, H, d) -> (3, B, H, N, d)
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        dtype = q.dtype
        if self.fp32_softmax and torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                out = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(),
                    dropout_p=self.attn_drop if self.training else 0.).to(dtype)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_drop if self.training else 0.)
        out = out.transpose(1, 2).reshape(B, N, D)  # (B, N, H*d)
        return self.proj_drop(self.proj(out))


class FFN(nn.Module):
    """Two-layer MLP with GELU, laid out like mmcv's ``FFN`` (``layers.0.0`` and ``layers.1``).

    Args:
        embed_dims (int): Input and output channels.
        hidden_dims (int): Hidden channels.
        drop (float): Dropout after the activation and after the second linear layer.
    """

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden_dims), nn.GELU(), Dropout(drop)),
            nn.Linear(hidden_dims, embed_dims), Dropout(drop))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DropPath(nn.Module):
    """Stochastic depth per sample (used only when fine-tuning)."""

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: ``x + attn(ln1(x))`` then ``x + ffn(ln2(x))``.

    Args:
        embed_dims (int): Channels D.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden width of the MLP relative to D. Defaults to 4.
        qkv_bias (bool): Bias in qkv. Defaults to True.
        drop_rate (float): Dropout in attention weights, after the projection and in the MLP
            (the official ADDP/MAGE blocks use 0.1 everywhere). Defaults to 0.
        drop_path_rate (float): Stochastic depth. Defaults to 0.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = Attention(embed_dims, num_heads, qkv_bias, attn_drop=drop_rate,
                              proj_drop=drop_rate)
        self.ln2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio), drop=drop_rate)
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        x = x + self.drop_path(self.attn(self.ln1(x)))
        return x + self.drop_path(self.ffn(self.ln2(x)))

