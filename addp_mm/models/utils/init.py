"""The official ADDP/MAGE initialisation, shared by the trainable modules."""
import logging
import math

import torch.nn as nn
from mmengine.logging import MMLogger


def init_official(module: nn.Module, embed_std: float = .02) -> None:
    """Xavier-uniform Linear weights with zero bias, LayerNorm (1, 0), normal(0.02) embeddings.

    Frozen sub-modules (``requires_grad=False`` parameters) are left untouched.

    Args:
        module (nn.Module): The module to initialise (recursively).
        embed_std (float): Std of the ``nn.Embedding`` tables. The official value, 0.02, is the
            default; see :func:`width_aware_embed_std` for why narrow models need more.
    """
    for m in module.modules():
        if any(not p.requires_grad for p in m.parameters(recurse=False)):
            continue
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=embed_std)


def init_patch_embed(conv: nn.Conv2d) -> None:
    """The official patch-embedding initialisation: xavier-uniform over the flattened kernel
    (as for a Linear layer), and the bias left at PyTorch's default for a convolution,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels * p * p. The official
    ``_init_weights`` only re-initialises Linear and LayerNorm modules, so the conv bias keeps
    its construction-time value; it is drawn again here so that ``init_weights`` alone decides
    it."""
    w = conv.weight
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    if conv.bias is not None:
        fan_in = w[0].numel()
        bound = 1. / math.sqrt(fan_in) if fan_in > 0 else 0.
        nn.init.uniform_(conv.bias, -bound, bound)


def width_aware_embed_std(width: int, base_width: int = 768, base_std: float = .02) -> float:
    """``base_std * base_width / width``: the token-embedding init of a narrow model.

    The MLM heads of MAGE and ADDP score a LayerNorm-ed feature h (norm about sqrt(D)) against the
    tied, detached token embeddings, so at initialisation the logits differ by at most about
    ``std * D``. At the official ``std = 0.02`` a ViT-B (D = 768) can put more than 0.999 on one
    of 64 codes, a width-128 model at most about 0.2 (tests/test_models/test_embed_init.py); the
    embeddings do not grow (their only gradient passes a LayerNorm that ignores their scale), so
    that cap loosens only as the head's LayerNorm gain moves, by about lr per optimizer step
    (docs/method.md §3.9). This value keeps ``std * D``, the logit range of a ViT-B, at every
    width (0.12 at width 128). It measured better than ``0.02 * sqrt(768 / D)`` (the embedding
    norm of a ViT-B), than not detaching the embeddings and than a learned logit scale
    (benchmarks/mini_paper/README.md, "The confidence cap").
    """
    return base_std * base_width / width


def init_quietly(model: nn.Module) -> None:
    """``model.init_weights()`` without mmengine's per-parameter "initialized by" dump (about a
    thousand INFO lines on the console when no log file is open); warnings still show."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
