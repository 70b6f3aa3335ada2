"""ADDP MLM head: decoder features -> token logits, and the soft-target cross-entropy."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.init import init_official
from ..utils.mlm import MlmLayer


@MODELS.register_module()
class ADDPHead(BaseModule):
    """Token logits tied to the decoder's token embedding, and the ADDP training loss.

    The word embeddings the logits are tied to belong to the token decoder
    (``ADDPTokenDecoder.token_emb``, saved once, under ``neck.token_emb.weight``); the network
    passes their weight to every call (:meth:`forward`), as the official MAGE passes its word
    embeddings to its ``MlmLayer``.

    Loss (docs/method.md §3.7): cross-entropy against the token predictor's distribution ``q``
    padded with zeros to the full vocabulary, label smoothing as PyTorch's
    ``CrossEntropyLoss(label_smoothing=...)`` for probability targets, averaged over masked
    positions.

    Args:
        in_dims (int): Decoder width.
        word_dims (int): Token-embedding width (encoder width D).
        vocab_size (int): Defaults to 2025.
        label_smoothing (float): Defaults to 0.1.
    """

    def __init__(self,
                 in_dims: int = 768,
                 word_dims: int = 768,
                 vocab_size: int = 2025,
                 label_smoothing: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.vocab_size = vocab_size
        self.label_smoothing = label_smoothing
        self.word_dims = word_dims
        self.mlm_layer = MlmLayer(in_dims, word_dims, vocab_size)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            init_official(self)

    def forward(self, feats: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """Token logits, tied to the word embeddings.

        Args:
            feats (Tensor): (B, N, in_dims) decoder features.
            word_embeddings (Tensor): (vocab, word_dims) weight of the token decoder's embedding
                (``neck.token_emb.weight``); no gradient flows into it through the logits.

        Returns:
            Tensor: (B, N, vocab) logits.
        """
        return self.mlm_layer(feats, word_embeddings)

    def loss(self, logits: torch.Tensor, target_probs: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """Soft-target cross-entropy over masked positions.

        Args:
            logits (Tensor): (B, N, vocab) decoder logits; positions 1..L are the grid.
            target_probs (Tensor): (B, K, h, w) target distribution over the K codes (h*w = L).
            mask (Tensor): (B, L), 1 = masked (positions that count).

        Returns:
            Tensor: scalar loss.
        """
        B, L = mask.shape
        logp = F.log_softmax(logits[:, 1:L + 1].float(), dim=-1)  # (B, L, vocab)
        target = target_probs.flatten(2).transpose(1, 2).float()  # (B, L, K)
        K = target.shape[-1]
        eps = self.label_smoothing
        # sum_c [(1-eps) q_c + eps/C] * -logp_c, with q_c = 0 beyond the K codes
        per_pos = (-(1 - eps) * (target * logp[..., :K]).sum(-1)
                   - eps / self.vocab_size * logp.sum(-1))
        m = mask.float()
        return (per_pos * m).sum() / m.sum().clamp(min=1)
