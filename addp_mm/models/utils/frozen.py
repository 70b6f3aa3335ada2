"""Frozen sub-modules: no gradients, always in eval mode."""
import torch.nn as nn


class FrozenMixin:
    """Mixin for modules that are never trained (VQGAN tokenizer, token predictor).

    ``freeze()`` turns off gradients; ``train()`` keeps the module in eval mode whatever the parent
    asks, so dropout stays off. (The official ADDP code lets the training loop's ``model.train()``
    switch the token predictor's dropout back on; ``ADDPTargetGenerator(predictor_dropout=True)``
    reproduces that, explicitly.)
    """

    def freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        nn.Module.train(self, False)

    def train(self, mode: bool = True):
        return nn.Module.train(self, False)
