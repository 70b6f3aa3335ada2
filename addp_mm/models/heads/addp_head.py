"""ADDP MLM head: decoder features -> token logits, and the soft-target cross-entropy."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.init import init_official
from ..utils.mlm import MlmLayer


@MODELS.register_module()
class ADDPHead(BaseModule):
    """Token logits tied to the decoder's token embedding, and the ADDP training loss.

    The word embeddings the logits are tied to belong to the token decoder
    (``ADDPTokenDecoder.token_emb``); the network hands them over once after building its parts,
    with :meth:`tie_embedding`. The head keeps a reference without registering it as a
    sub-module, so the tensor is saved once, under ``neck.token_emb.weight``.

    Loss (docs/method.md §3.7): cross-entropy against the token predictor's distribution ``q``
    padded with zeros to the full vocabulary, label smoothing as PyTorch's
    ``CrossEntropyLoss(label_smoothing=...)`` for probability targets, averaged over masked positions.

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
        self.mlm_layer = MlmLayer(in_dims, word_dims, vocab_size)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            init_official(self)

    def tie_embedding(self, embedding: nn.Embedding) -> None:
        """Tie the logits to ``embedding`` ((vocab, word_dims) weight), not registered here.

        Args:
            embedding (nn.Embedding): The token decoder's ``token_emb``.
        """
        if tuple(embedding.weight.shape) != (self.vocab_size, self.mlm_layer.fc.out_features):
            raise ValueError(f'the tied embedding is {tuple(embedding.weight.shape)}, the head '
                             f'expects ({self.vocab_size}, {self.mlm_layer.fc.out_features}) '
                             '(vocab_size, word_dims).')
        # object.__setattr__: nn.Module would register it, duplicating its state-dict entry
        object.__setattr__(self, 'word_embedding', embedding)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, N, in_dims) -> logits (B, N, vocab), tied to the word embeddings."""
        embedding = self.__dict__.get('word_embedding')
        if embedding is None:
            raise RuntimeError('ADDPHead has no word embeddings: the network calls '
                               'head.tie_embedding(neck.token_emb) after building its parts.')
        return self.mlm_layer(feats, embedding.weight)

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
        per_pos = -(1 - eps) * (target * logp[..., :K]).sum(-1) - eps / self.vocab_size * logp.sum(-1)
        m = mask.float()
        return (per_pos * m).sum() / m.sum().clamp(min=1)
