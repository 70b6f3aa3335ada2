"""The official ADDP/MAGE initialisation, shared by the trainable modules."""
import math

import torch.nn as nn


def init_official(module: nn.Module) -> None:
    """Xavier-uniform Linear weights with zero bias, LayerNorm (1, 0), normal(0.02) embeddings.

    Frozen sub-modules (``requires_grad=False`` parameters) are left untouched.
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
            nn.init.normal_(m.weight, std=.02)


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
