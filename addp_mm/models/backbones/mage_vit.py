"""The MAGE transformer over VQ tokens (token embedding, encoder, decoder, MLM layer).

A trainable backbone: :class:`~addp_mm.models.algorithms.MAGE` trains it from scratch, and
:class:`~addp_mm.models.predictors.MAGETokenPredictor` is the same network, frozen, as ADDP's token
predictor.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...utils.grid import grid_side
from ..utils.init import init_official
from ..utils.mlm import MlmLayer
from ..utils.transformer import Dropout, TransformerBlock


class TokenEmbedding(nn.Module):
    """BERT-style token embedding of MAGE: word + learned position -> LayerNorm -> dropout.

    Args:
        vocab_size (int): 2025 (1024 codes + 1000 class slots + mask).
        embed_dims (int): Width D.
        seq_len (int): 257 (class slot + 16x16 tokens).
        drop_rate (float): Dropout. Defaults to 0.1.
    """

    def __init__(self, vocab_size: int, embed_dims: int, seq_len: int,
                 drop_rate: float = 0.1) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embed_dims)
        self.position_embeddings = nn.Embedding(seq_len, embed_dims)
        self.LayerNorm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.dropout = Dropout(drop_rate)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, N) -> (B, N, D)."""
        x = self.word_embeddings(ids) + self.position_embeddings.weight[:ids.shape[1]]
        return self.dropout(self.LayerNorm(x))


@MODELS.register_module()
class MAGEViT(BaseModule):
    """The MAGE transformer over VQ tokens (docs/method.md §2.2): token embedding -> encoder
    blocks -> norm -> decoder_embed -> masked (and dropped) positions padded with the decoder's own
    class-position feature -> + learned position embedding -> decoder blocks -> norm -> MLM layer
    tied to the word embeddings.

    Trainable; :class:`MAGETokenPredictor` is the frozen version. Parameter names follow the
    official MAGE model (block internals as mmpretrain's ViT), so a MAGE release file and the
    checkpoints of the :class:`~addp_mm.models.algorithms.MAGE` algorithm (``backbone.*``) load
    into the frozen predictor.

    Args:
        embed_dims (int): Encoder width. ViT-B 768, ViT-L 1024.
        depth (int): Encoder blocks. ViT-B 12, ViT-L 24.
        num_heads (int): Encoder heads.
        decoder_embed_dims (int): Decoder width. Defaults to ``embed_dims``.
        decoder_depth (int): Decoder blocks. Defaults to 8.
        decoder_num_heads (int): Decoder heads. Defaults to 16.
        mlp_ratio (float): MLP hidden width / D. Defaults to 4.
        codebook_size (int): VQ codebook size. Defaults to 1024.
        num_tokens (int): Grid tokens. Defaults to 256.
        fake_class_label (int): Id at sequence position 0. Defaults to 1100.
        mask_token_label (int): Id of a masked token. Defaults to 2024.
        vocab_size (int): Defaults to 2025 (1024 codes + 1000 class slots + mask, kept for weight
            compatibility with the release even when the codebook is smaller).
        drop_rate (float): Dropout in the embedding and every block. Defaults to 0.1.
        embed_init_std (float): Std of the normal init of the token and position embeddings
            (``token_emb.*``, ``decoder_pos_embed_learned``). The MLM layer's logits are tied to
            the token embeddings, so this scale bounds how confident the untrained head can be.
            Defaults to the official 0.02; narrow models should use
            :func:`~addp_mm.models.utils.init.width_aware_embed_std` (docs/method.md §3.9).
        init_cfg (dict, optional): Defaults to the official initialisation.
    """

    def __init__(self,
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
                 embed_init_std: float = .02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not embed_init_std > 0:
            raise ValueError(f'embed_init_std must be positive, got {embed_init_std}.')
        if not (codebook_size <= fake_class_label < vocab_size and
                codebook_size <= mask_token_label < vocab_size):
            raise ValueError(f'fake_class_label ({fake_class_label}) and mask_token_label '
                             f'({mask_token_label}) must lie in [codebook_size, vocab_size) = '
                             f'[{codebook_size}, {vocab_size}).')
        decoder_embed_dims = decoder_embed_dims or embed_dims
        self.codebook_size = codebook_size
        self.num_tokens = num_tokens
        self.fake_class_label = fake_class_label
        self.mask_token_label = mask_token_label
        self.embed_init_std = float(embed_init_std)
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

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        # official MAGE: xavier Linear, LayerNorm (1, 0), normal(0.02) embeddings and position
        # embeddings (0.02 = embed_init_std's default)
        init_official(self, embed_std=self.embed_init_std)
        if self.decoder_pos_embed_learned.requires_grad:
            nn.init.normal_(self.decoder_pos_embed_learned, std=self.embed_init_std)

    def forward_features(self,
                         ids: torch.Tensor,
                         mask: Optional[torch.Tensor] = None,
                         drop: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The encoder: token embedding -> blocks -> final norm.

        Args:
            ids (Tensor): (B, L) int64 VQ ids.
            mask (Tensor, optional): (B, L), nonzero = masked (replaced by the mask id). None
                masks nothing.
            drop (Tensor, optional): (B, L), nonzero = left out (see :meth:`forward`).

        Returns:
            Tensor: (B, 1 + L - dropped, D) features, the class slot first.
        """
        B, L = ids.shape
        if L != self.num_tokens:
            raise ValueError(f'{L} tokens per image, but the model was built for num_tokens='
                             f'{self.num_tokens}; set num_tokens to the tokenizer grid size.')
        if mask is not None:
            ids = torch.where(mask.bool(), torch.full_like(ids, self.mask_token_label), ids)
        seq = torch.cat([ids.new_full((B, 1), self.fake_class_label), ids], dim=1)  # (B, 1+L)
        x = self.token_emb(seq)  # (B, 1+L, D)
        if drop is not None:
            keep = torch.cat([drop.new_zeros(B, 1), drop], dim=1) == 0  # (B, 1+L)
            x = x[keep].view(B, -1, x.shape[-1])  # (B, 1+L-n_drop, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self,
                ids: torch.Tensor,
                mask: torch.Tensor,
                drop: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits over the codebook at every grid position.

        Args:
            ids (Tensor): (B, L) int64 VQ ids.
            mask (Tensor): (B, L), nonzero = masked (replaced by the mask id).
            drop (Tensor, optional): (B, L), nonzero = left out of the encoder (MAGE training);
                must be a subset of ``mask`` with the same count in every sample. None (sampling,
                the frozen predictor) encodes every position.

        Returns:
            Tensor: (B, L, codebook_size) logits.
        """
        B, L = ids.shape
        x = self.decoder_embed(self.forward_features(ids, mask, drop))
        if drop is not None:
            keep = torch.cat([drop.new_zeros(B, 1), drop], dim=1) == 0  # (B, 1+L)
            # put the kept positions back in place; dropped ones are masked and padded below
            full = x.new_zeros(B, L + 1, x.shape[-1])
            x = full.masked_scatter(keep.unsqueeze(-1), x)
        # pad_with_cls_token: masked positions take the decoder's own position-0 feature
        full_mask = torch.cat([mask.new_zeros(B, 1), mask], dim=1).bool().unsqueeze(-1)
        x = torch.where(full_mask, x[:, :1].expand_as(x), x)
        x = x + self.decoder_pos_embed_learned
        for blk in self.decoder_blocks:
            x = blk(x)
        logits = self.mlm_layer(self.decoder_norm(x), self.token_emb.word_embeddings.weight)
        return logits[:, 1:, :self.codebook_size]

    def predict(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Probabilities over the codebook as maps.

        Args:
            ids (Tensor): (B, L) int64 VQ ids, L = h*w.
            mask (Tensor): (B, L), nonzero = masked.

        Returns:
            Tensor: (B, codebook_size, h, w) probabilities (softmax over the codebook).
        """
        B, L = ids.shape
        side = grid_side(L)
        probs = self(ids, mask).float().softmax(-1)  # (B, L, K)
        return probs.transpose(1, 2).reshape(B, -1, side, side)
