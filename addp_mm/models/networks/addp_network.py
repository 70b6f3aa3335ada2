"""The trainable ADDP network: image x_t + reliable tokens -> token logits.

docs/method.md §3.5-3.7 describes the parts, §4.1 their use in generation.

Pre-training (:class:`~addp_mm.models.algorithms.ADDP`, ``models/algorithms/addp.py``) and
generation (:class:`~addp_mm.generation.ADDPGenerator`, ``generation/generator.py``) are this
network with their own surroundings. Both build its three parts with :func:`build_network_parts`
and inherit :class:`ADDPNetwork` for the forward pass.

The parts are top-level sub-modules of the model (``backbone``, ``neck``, ``head``), not of a
``network`` sub-module: that is the checkpoint layout (``backbone.*``, ``neck.*``, ``head.*``) of
the official release, of every addp_mm checkpoint and of the layer-decay groups.
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

from ..backbones.addp_vit import ADDPViT
from ..heads.addp_head import ADDPHead
from ..necks.addp_decoder import ADDPTokenDecoder

PartConfig = Union[dict, nn.Module]


def build_part(cfg: PartConfig) -> nn.Module:
    """Build an addp_mm part from mmpretrain's ``MODELS`` (a module is returned as it is).

    ``_scope_`` defaults to ``'mmpretrain'``: under another default scope (generation runs under
    ``'mmagic'``) a bare build would look the type up in a registry where the addp_mm parts are
    not registered.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('_scope_', 'mmpretrain')
    return MODELS.build(cfg)


def build_network_parts(backbone: PartConfig, neck: PartConfig,
                        head: PartConfig) -> Dict[str, nn.Module]:
    """Build the encoder, token decoder and head (:func:`build_part`), and check that the head
    fits the decoder.

    Args:
        backbone (dict | nn.Module): :class:`ADDPViT` config (the pixel encoder).
        neck (dict | nn.Module): :class:`ADDPTokenDecoder` config.
        head (dict | nn.Module): :class:`ADDPHead` config.

    Returns:
        dict: ``backbone``, ``neck``, ``head`` modules, in this order (the construction order,
        which fixes the random draws of their construction-time init).

    Raises:
        ValueError: The head's (vocab_size, word_dims) differ from the decoder's token embedding,
            which the logits are tied to.
    """
    parts = dict(backbone=build_part(backbone), neck=build_part(neck), head=build_part(head))
    embedding = tuple(parts['neck'].token_emb.weight.shape)
    expected = (parts['head'].vocab_size, parts['head'].word_dims)
    if embedding != expected:
        raise ValueError(f'the token decoder embeds {embedding[0]} ids in {embedding[1]} dims but '
                         f'the head expects {expected} (vocab_size, word_dims); set the head\'s '
                         'vocab_size and word_dims to the decoder\'s vocab_size and embed_dims.')
    return parts


class ADDPNetwork:
    """The trainable ADDP network: image x_t + reliable tokens -> token logits.

    A mixin for a model that holds the parts of :func:`build_network_parts` as top-level
    sub-modules. The chain (:meth:`forward_features`, then :meth:`forward_logits`):

    1. the encoder (``backbone``, ``models/backbones/addp_vit.py``) reads the image:
       (B, 1 + L, D) features;
    2. the token decoder (``neck``, ``models/necks/addp_decoder.py``) replaces the masked
       positions by its mask token and appends the embeddings of the reliable (unmasked) tokens:
       (B, 1 + L + K, D) features (K reliable tokens);
    3. the head (``head``, ``models/heads/addp_head.py``) scores every position against the
       decoder's token embedding, passed to it as an argument: logits over the whole vocabulary
       (codes, class slots, mask id).

    Pre-training scores the result as it is; generation asks for the codebook logits of the grid
    positions only, and shares the first step's pass (the options of :meth:`forward_logits`).
    See docs/method.md §3 (pre-training) and §4 (generation).
    """

    backbone: ADDPViT
    neck: ADDPTokenDecoder
    head: ADDPHead

    def compile_network(self, compile: Union[bool, dict],
                        extra: Sequence[nn.Module] = ()) -> None:
        """``torch.compile`` the encoder, decoder and head (and ``extra`` modules) in place.

        ``nn.Module.compile`` keeps every parameter name, so checkpoints, ``load_from`` and the
        layer-decay groups are unchanged. Off by default: on the CPUs measured it is slower than
        eager and its first call compiles for minutes (benchmarks/README.md, "torch.compile").

        Args:
            compile (bool | dict): False does nothing; True compiles with PyTorch's defaults
                (inductor); a dict is passed to ``torch.compile`` (e.g. ``dict(mode=
                'max-autotune', dynamic=True)``).
            extra (Sequence[nn.Module]): More modules to compile (generation: the VQGAN decoder).
        """
        if not compile:
            return
        kwargs = dict(compile) if isinstance(compile, dict) else {}
        for module in (self.backbone, self.neck, self.head, *extra):
            module.compile(**kwargs)

    def forward_features(self, x: Optional[torch.Tensor], ids: torch.Tensor,
                         mask: torch.Tensor) -> torch.Tensor:
        """Token-decoder features for (image, ids, mask): steps 1-2 of the chain.

        Args:
            x (Tensor | None): (B, 3, H, W) image in [0, 1] (the encoder clamps it). None is only
                valid when every position is masked (the decoder input then does not depend on
                it, and the encoder is skipped).
            ids (Tensor): (B, L) z_0 ids, read at unmasked (reliable) positions.
            mask (Tensor): (B, L), 1 = masked; every row must have the same count.

        Returns:
            Tensor: (B, 1 + L + K, D) features, K = unmasked count.
        """
        if x is None and not bool(mask.bool().all()):
            raise ValueError('an image x is needed when some tokens are unmasked (reliable).')
        latent = None if x is None else self.backbone(x)[0]  # (B, 1 + L, D)
        return self.neck(latent, ids, mask)

    def forward_logits(self,
                       x: Optional[torch.Tensor],
                       ids: torch.Tensor,
                       mask: torch.Tensor,
                       num_codes: Optional[int] = None,
                       share_all_masked: bool = False) -> torch.Tensor:
        """Token logits for (image, ids, mask): the whole chain.

        Args:
            x (Tensor | None): (B, 3, H, W) image in [0, 1]; None only when every position is
                masked (see :meth:`forward_features`).
            ids (Tensor): (B, L) z_0 ids, read at unmasked (reliable) positions.
            mask (Tensor): (B, L), 1 = masked; every row must have the same count.
            num_codes (int, optional): Score only the L grid positions and keep the first
                ``num_codes`` vocabulary entries (the codebook): (B, L, num_codes), what the
                sampling loop reads. None (the default) scores every position over the whole
                vocabulary, what the training loss reads.
            share_all_masked (bool): When every position of the batch is masked, skip the
                encoder and run the decoder once for the whole batch (its input is then the same
                for every image; the result is expanded). Only for eval mode, where dropout is
                off. Defaults to False.

        Returns:
            Tensor: (B, 1 + L + K, vocab) logits, K = unmasked count; or (B, L, num_codes).
        """
        B, L = mask.shape
        shared = share_all_masked and bool(mask.bool().all())
        if shared:
            feats = self.forward_features(None, ids[:1], mask[:1])
        else:
            feats = self.forward_features(x, ids, mask)
        embedding = self.neck.token_emb.weight  # (vocab, D): the logits are tied to it
        if num_codes is None:
            logits = self.head(feats, embedding)
        else:
            # the head is per position: score only the grid positions, keep the codebook entries
            logits = self.head(feats[:, 1:L + 1], embedding)[..., :num_codes]
        return logits.expand(B, -1, -1) if shared else logits
