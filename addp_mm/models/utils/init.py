"""The official ADDP/MAGE initialisation, shared by the trainable modules."""
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
