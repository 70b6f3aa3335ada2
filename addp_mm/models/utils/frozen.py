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


def warn_random_frozen(name: str, field: str, example: str) -> None:
    """Log, prominently, that a frozen module runs with random weights (``checkpoint=None``).

    Training against a random tokenizer / predictor runs and its loss goes down, but it learns
    nothing useful, and generation from it gives colour noise: the log must say so.

    Args:
        name (str): The module, e.g. ``'VQGAN tokenizer'``.
        field (str): The config field that sets its weights.
        example (str): Where such weights come from.
    """
    from mmengine.logging import MMLogger
    bar = '!' * 100
    MMLogger.get_current_instance().warning(
        f'\n{bar}\n!! The frozen {name} runs with RANDOM weights (checkpoint=None). A model '
        'trained against it learns nothing useful\n!! and images generated with it are noise. Set '
        f'{field}\n!! ({example}).\n!! (Fine in tests, or when load_from / resume fills these '
        f'weights afterwards.)\n{bar}')
