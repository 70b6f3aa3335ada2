"""Frozen sub-modules: no gradients, always in eval mode, weights from a checkpoint file."""
from typing import Optional, Sequence

import torch.nn as nn
from mmengine.logging import MMLogger

from ...checkpoints.weights import StateDict, load_frozen_weights


class FrozenMixin:
    """Mixin for modules that are never trained (VQGAN tokenizer, token predictor, VGG loss).

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


class FrozenCheckpointMixin(FrozenMixin):
    """A frozen ``BaseModule`` whose weights come from a checkpoint file (tokenizer, predictor).

    The module is frozen at construction; ``checkpoint`` is loaded strictly in
    :meth:`init_weights`, after any parent initialisation (so a parent ``init_cfg`` never
    overwrites it). A subclass only says where its tensors are in a file:
    :attr:`checkpoint_prefixes` (the key prefixes they may sit under, e.g.
    ``target_generator.vqgan.`` in an ADDP Runner checkpoint; the first prefix holding all of them
    wins), and :meth:`convert_checkpoint` for files with other key names. Without a checkpoint
    the log says, prominently, that the weights are random.

    Args:
        checkpoint (str, optional): Local path of the weights. None keeps random weights (tests
            only, or when ``load_from`` / ``resume`` fills them afterwards).
        *args, **kwargs: The network's own arguments (its sizes).
    """

    #: Human-readable name for messages, e.g. ``'VQGAN tokenizer'``.
    frozen_name: str = 'frozen module'
    #: Key prefixes the module's tensors may sit under in a checkpoint, e.g. ``('', 'vqgan.')``.
    checkpoint_prefixes: Sequence[str] = ('', )
    #: The config field that sets ``checkpoint`` (named by the random-weights warning).
    checkpoint_field: str = 'checkpoint'
    #: Where such weights come from (named by the random-weights warning).
    checkpoint_example: str = 'a checkpoint of this module'

    def __init__(self, *args, checkpoint: Optional[str] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checkpoint = checkpoint
        self.freeze()

    def convert_checkpoint(self, state_dict: StateDict) -> StateDict:
        """Rename a checkpoint's keys (its prefix already stripped) to this module's; identity."""
        return state_dict

    def init_weights(self) -> None:
        """Parent initialisation, then the weights of ``checkpoint`` (strictly), if given."""
        super().init_weights()
        if self.checkpoint is None:
            warn_random_frozen(self.frozen_name, self.checkpoint_field, self.checkpoint_example)
            return
        load_frozen_weights(self, self.checkpoint, prefixes=self.checkpoint_prefixes,
                            name=self.frozen_name, convert=self.convert_checkpoint)


def warn_random_frozen(name: str, field: str, example: str) -> None:
    """Log, prominently, that a frozen module runs with random weights (``checkpoint=None``).

    Training against a random tokenizer / predictor runs and its loss goes down, but it learns
    nothing useful, and generation from it gives colour noise: the log must say so.

    Args:
        name (str): The module, e.g. ``'VQGAN tokenizer'``.
        field (str): The config field that sets its weights.
        example (str): Where such weights come from.
    """
    bar = '!' * 100
    MMLogger.get_current_instance().warning(
        f'\n{bar}\n!! The frozen {name} runs with RANDOM weights (checkpoint=None). A model '
        'trained against it learns nothing useful\n!! and images generated with it are noise. Set '
        f'{field}\n!! ({example}).\n!! (Fine in tests, or when load_from / resume fills these '
        f'weights afterwards.)\n{bar}')
