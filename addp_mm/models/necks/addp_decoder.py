"""ADDP token decoder: encoder features + reliable tokens -> features for token prediction."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.init import init_official
from ..utils.transformer import TransformerBlock


@MODELS.register_module()
class ADDPTokenDecoder(BaseModule):
    """The ADDP decoder neck (docs/method.md §3.6).

    Encoder features are projected (``decoder_embed``); position 0 and every masked position are
    replaced by ``mask_token``; the token embeddings of the *reliable* (unmasked) z_0 ids are
    appended after the 1 + L grid positions. Position embeddings: ``decoder_pos_embed_learned`` at
    unmasked positions (and position 0), ``decoder_pos_mask_embed`` at masked ones, and
    ``decoder_pos_token_embed`` at the appended tokens' grid positions. Then blocks and
    ``decoder_norm``. The head makes the logits from these features, tied to :attr:`token_emb`
    (its weight is passed to the head at every call by ``ADDPNetwork.forward_logits``).

    Args:
        embed_dims (int): Encoder width D (also the token-embedding width).
        decoder_embed_dims (int): Decoder width; must equal ``embed_dims`` because the appended
            token embeddings enter the decoder unprojected. Defaults to ``embed_dims``.
        decoder_depth (int): Blocks. Defaults to 8.
        decoder_num_heads (int): Heads. Defaults to 16.
        num_tokens (int): Grid tokens L. Defaults to 256.
        vocab_size (int): Token vocabulary (1024 codes + 1000 classes + mask). Defaults to 2025.
        drop_rate (float): Dropout in the blocks (official 0.1).
        embed_init_std (float): Std of the normal init of the token embedding (``token_emb``,
            which the head's logits are tied to), the mask token and the three position tables.
            Defaults to the official 0.02; narrow models should use
            :func:`~addp_mm.models.utils.init.width_aware_embed_std` (docs/method.md §3.9).
    """

    def __init__(self,
                 embed_dims: int = 768,
                 decoder_embed_dims: Optional[int] = None,
                 decoder_depth: int = 8,
                 decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 num_tokens: int = 256,
                 vocab_size: int = 2025,
                 drop_rate: float = 0.1,
                 embed_init_std: float = .02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not embed_init_std > 0:
            raise ValueError(f'embed_init_std must be positive, got {embed_init_std}.')
        self.embed_init_std = float(embed_init_std)
        Dd = decoder_embed_dims or embed_dims
        if Dd != embed_dims:
            raise ValueError(f'decoder_embed_dims ({Dd}) must equal embed_dims ({embed_dims}): the '
                             'reliable token embeddings are appended to the decoder input '
                             'unprojected.')
        self.num_tokens = num_tokens
        self.token_emb = nn.Embedding(vocab_size, embed_dims)
        self.decoder_embed = nn.Linear(embed_dims, Dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, num_tokens + 1, Dd))
        self.decoder_pos_mask_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, Dd))
        self.decoder_pos_token_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, Dd))
        self.decoder_blocks = nn.ModuleList(
            TransformerBlock(Dd, decoder_num_heads, mlp_ratio, drop_rate=drop_rate)
            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(Dd, eps=1e-6)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is not None:
            return
        init_official(self, embed_std=self.embed_init_std)
        for p in (self.mask_token, self.decoder_pos_embed_learned, self.decoder_pos_mask_embed,
                  self.decoder_pos_token_embed):
            nn.init.normal_(p, std=self.embed_init_std)

    def embed_inputs(self, latent: Optional[torch.Tensor], ids: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """Build the decoder input sequence.

        Args:
            latent (Tensor | None): (B, 1 + L, D) encoder output. May be None when every position
                is masked: the input then does not depend on it.
            ids (Tensor): (B, L) int64 token ids of z_0 (only unmasked ones are read).
            mask (Tensor): (B, L), 1 = masked; every sample must mask the same number.

        Returns:
            Tensor: (B, 1 + L + K, Dd), K = number of unmasked positions per sample.
        """
        B, L = mask.shape
        masked = torch.cat([mask.new_zeros(B, 1), mask], dim=1).bool().unsqueeze(-1)  # (B, 1+L, 1)
        mask_tok = self.mask_token.to(self.decoder_embed.weight.dtype).expand(B, L + 1, -1)
        if latent is None:
            # generation's first step: with every position masked nothing of the encoder is read
            if not bool(mask.bool().all()):
                raise ValueError('latent may only be None when every position is masked.')
            x = mask_tok.clone()
        else:
            x = self.decoder_embed(latent)
            replace = masked.clone()
            replace[:, 0] = True  # the class position always takes the mask token
            x = torch.where(replace, mask_tok, x)
        x = x + torch.where(masked, self.decoder_pos_mask_embed, self.decoder_pos_embed_learned)

        keep = ~mask.bool()  # (B, L)
        counts = keep.sum(1)
        K = int(counts[0])
        if bool((counts != K).any()):
            raise ValueError('every sample of a batch must have the same number of masked tokens.')
        if K == 0:
            return x
        pos = keep.nonzero()[:, 1].view(B, K)  # grid positions in ascending order
        tok = ids.gather(1, pos)
        appended = self.token_emb(tok) + self.decoder_pos_token_embed[0, 1:][pos]
        return torch.cat([x, appended.to(x.dtype)], dim=1)

    def forward(self, latent: Optional[torch.Tensor], ids: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Decoder features.

        Args:
            latent (Tensor | None): (B, 1 + L, D) encoder output (None if all masked).
            ids (Tensor): (B, L) z_0 ids.
            mask (Tensor): (B, L), 1 = masked.

        Returns:
            Tensor: (B, 1 + L + K, Dd) normalized decoder features.
        """
        x = self.embed_inputs(latent, ids, mask)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_norm(x)
