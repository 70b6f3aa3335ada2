"""Frozen MAGE token predictor: p(z_0 | visible tokens) used to make ADDP's training samples."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.frozen import FrozenMixin
from ..utils.mlm import MlmLayer
from ..utils.transformer import TransformerBlock


class TokenEmbedding(nn.Module):
    """BERT-style token embedding of MAGE: word + learned position -> LayerNorm -> dropout.

    Args:
        vocab_size (int): 2025 (1024 codes + 1000 class slots + mask).
        embed_dims (int): Width D.
        seq_len (int): 257 (class slot + 16x16 tokens).
        drop_rate (float): Dropout. Defaults to 0.1.
    """

    def __init__(self, vocab_size: int, embed_dims: int, seq_len: int, drop_rate: float = 0.1) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embed_dims)
        self.position_embeddings = nn.Embedding(seq_len, embed_dims)
        self.LayerNorm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, N) -> (B, N, D)."""
        x = self.word_embeddings(ids) + self.position_embeddings.weight[:ids.shape[1]]
        return self.dropout(self.LayerNorm(x))


@MODELS.register_module()
class MAGETokenPredictor(FrozenMixin, BaseModule):
    """Frozen MAGE model that predicts VQ-token distributions at masked positions.

    Architecture as SPEC 2.2: token embedding -> encoder blocks -> norm -> decoder_embed -> masked
    positions padded with the decoder's own class-position feature -> + learned position embedding
    -> decoder blocks -> norm -> MLM layer tied to the word embeddings.

    Args:
        checkpoint (str, optional): Local path to a MAGE release file (``{'model': ...}``), an ADDP
            release file (``token_predictor.*`` keys) or an addp_mm checkpoint. None keeps random
            weights (tests only).
        embed_dims (int): Encoder width. ViT-B 768, ViT-L 1024.
        depth (int): Encoder blocks. ViT-B 12, ViT-L 24.
        num_heads (int): Encoder heads.
        decoder_embed_dims (int): Decoder width. Defaults to ``embed_dims``.
        decoder_depth (int): Decoder blocks. Defaults to 8.
        decoder_num_heads (int): Decoder heads. Defaults to 16.
        codebook_size (int): VQ codebook size. Defaults to 1024.
        num_tokens (int): Grid tokens. Defaults to 256.
        fake_class_label (int): Id at sequence position 0. Defaults to 1100.
        mask_token_label (int): Id of a masked token. Defaults to 2024.
        vocab_size (int): Defaults to 2025.
        drop_rate (float): Dropout (inactive: the module stays in eval mode).
    """

    def __init__(self,
                 checkpoint: Optional[str] = None,
                 embed_dims: int = 768,
                 depth: int = 12,
                 num_heads: int = 12,
                 decoder_embed_dims: Optional[int] = None,
                 decoder_depth: int = 8,
                 decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 codebook_size: int = 1024,
                 num_tokens: int = 256,
                 fake_class_label: int = 1100,
                 mask_token_label: int = 2024,
                 vocab_size: int = 2025,
                 drop_rate: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        decoder_embed_dims = decoder_embed_dims or embed_dims
        self.checkpoint = checkpoint
        self.codebook_size = codebook_size
        self.fake_class_label = fake_class_label
        self.mask_token_label = mask_token_label
        seq_len = num_tokens + 1
        self.token_emb = TokenEmbedding(vocab_size, embed_dims, seq_len, drop_rate)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dims, num_heads, mlp_ratio, drop_rate=drop_rate)
            for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dims, decoder_embed_dims)
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, seq_len, decoder_embed_dims))
        self.decoder_blocks = nn.ModuleList(
            TransformerBlock(decoder_embed_dims, decoder_num_heads, mlp_ratio, drop_rate=drop_rate)
            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_embed_dims, eps=1e-6)
        self.mlm_layer = MlmLayer(decoder_embed_dims, embed_dims, vocab_size)
        self.freeze()

    def init_weights(self) -> None:
        super().init_weights()
        if self.checkpoint is not None:
            from ...utils.weights import load_frozen_weights, rename_official_blocks
            load_frozen_weights(
                self, self.checkpoint,
                prefixes=('', 'token_predictor.', 'target_generator.predictor.'),
                name='MAGE token predictor',
                convert=lambda sd: rename_official_blocks(sd, ('blocks.', 'decoder_blocks.')))

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits over the codebook at every grid position.

        Args:
            tokens (Tensor): (B, L) int64 VQ ids.
            mask (Tensor): (B, L), nonzero = masked (replaced by the mask id).

        Returns:
            Tensor: (B, L, codebook_size) logits.
        """
        B = tokens.shape[0]
        ids = torch.where(mask.bool(), torch.full_like(tokens, self.mask_token_label), tokens)
        ids = torch.cat([ids.new_full((B, 1), self.fake_class_label), ids], dim=1)  # (B, 1+L)
        x = self.token_emb(ids)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x))
        # pad_with_cls_token: masked positions take the decoder's own position-0 feature
        full_mask = torch.cat([mask.new_zeros(B, 1), mask], dim=1).bool().unsqueeze(-1)
        x = torch.where(full_mask, x[:, :1].expand_as(x), x)
        x = x + self.decoder_pos_embed_learned
        for blk in self.decoder_blocks:
            x = blk(x)
        logits = self.mlm_layer(self.decoder_norm(x), self.token_emb.word_embeddings.weight)
        return logits[:, 1:, :self.codebook_size]

    @torch.no_grad()
    def predict(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Probabilities over the codebook as maps.

        Args:
            tokens (Tensor): (B, L) int64 VQ ids, L = h*w.
            mask (Tensor): (B, L), nonzero = masked.

        Returns:
            Tensor: (B, codebook_size, h, w) probabilities (softmax over the codebook).
        """
        B, L = tokens.shape
        side = int(round(L**0.5))
        probs = self(tokens, mask).float().softmax(-1)  # (B, L, K)
        return probs.transpose(1, 2).reshape(B, -1, side, side)
