"""Token logits from decoder features, tied to a token-embedding matrix (used by ADDP and MAGE)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MlmLayer(nn.Module):
    """``Linear(in, D) -> GELU -> LayerNorm -> @ word_embeddings^T + bias``.

    Official parameter names (``fc``, ``ln``, ``bias``). The LayerNorm uses PyTorch's default
    epsilon (1e-5), as in the official MAGE/ADDP ``MlmLayer``.

    Args:
        in_dims (int): Decoder width.
        word_dims (int): Width of the token embeddings the logits are tied to.
        vocab_size (int): Number of token classes (2025 for ADDP/MAGE).
    """

    def __init__(self, in_dims: int, word_dims: int, vocab_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dims, word_dims)
        self.ln = nn.LayerNorm(word_dims)
        self.bias = nn.Parameter(torch.zeros(1, 1, vocab_size))

    def forward(self, x: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """x: (B, N, in_dims), word_embeddings: (vocab, word_dims) -> logits (B, N, vocab)."""
        h = self.ln(F.gelu(self.fc(x)))
        return h @ word_embeddings.detach().t() + self.bias
