"""MAGE's own generator: the frozen token predictor driving ADDP's sampling loop on tokens alone.

The paper compares ADDP's samples with those of its token predictor (MAGE). :class:`MAGESampler`
gives :func:`~addp_mm.generation.sampling.generate` what it needs, the predictor's codebook logits
as the logits function and the frozen VQGAN as the tokenizer, so MAGE samples come from the same
loop, schedule, options and per-image seeds as ADDP's. The predictor reads only the tokens: the
image the loop decodes at each step is not an input of it.
"""
from typing import Dict, Optional

import torch
from mmpretrain.registry import MODELS

from . import sampling
from .sampling import SamplingOptions


class MAGESampler:
    """Unconditional samples of a frozen MAGE token predictor.

    Args:
        tokenizer (dict): Config of the frozen ``VQGANTokenizer`` (with its ``checkpoint``).
        predictor (dict): Config of the frozen ``MAGETokenPredictor`` (with its ``checkpoint``).
        options (SamplingOptions, optional): Sampling defaults (steps, schedule, temperature).
            Defaults to ``SamplingOptions()``, ADDP's defaults.
        device (str | torch.device): Defaults to ``'cpu'``.
    """

    def __init__(self, tokenizer: dict, predictor: dict,
                 options: Optional[SamplingOptions] = None, device='cpu') -> None:
        self.vqgan = MODELS.build(dict(tokenizer, _scope_='mmpretrain'))
        self.predictor = MODELS.build(dict(predictor, _scope_='mmpretrain'))
        for module in (self.vqgan, self.predictor):
            module.init_weights()  # frozen modules load their checkpoint here
            module.to(device).eval()
        self.device = torch.device(device)
        self.options = options if options is not None else SamplingOptions()

    @classmethod
    def from_config(cls, cfg, tokenizer_checkpoint: str, predictor_checkpoint: str,
                    **kwargs) -> 'MAGESampler':
        """From an ADDP config (its ``model.target_generator`` sizes) and the two checkpoints."""
        tg = cfg.model.target_generator
        return cls(dict(tg.vqgan, checkpoint=tokenizer_checkpoint),
                   dict(tg.predictor, checkpoint=predictor_checkpoint), **kwargs)

    @property
    def num_tokens(self) -> int:
        return self.vqgan.token_grid**2

    def token_logits(self, x: Optional[torch.Tensor], ids: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """(B, L, K) codebook logits of the predictor; the image ``x`` is not read."""
        return self.predictor(ids, mask).float()

    @torch.no_grad()
    def sample(self, seeds: torch.Tensor, **options) -> Dict[str, torch.Tensor]:
        """One image per seed, as ``ADDPGenerator.sample``.

        Args:
            seeds (Tensor): (B,) int64 per-image seeds
                (:func:`~addp_mm.generation.sampling.image_seeds`).
            **options: Overrides of the sampling defaults.

        Returns:
            dict: ``images`` (B, 3, H, W) RGB in [0, 1], ``ids`` (B, L), ``mask`` (B, L).
        """
        opts = self.options.replace(**options)
        start = sampling.start_unconditional(len(seeds), self.num_tokens, self.device)
        out = sampling.generate(self.token_logits, self.vqgan, start, opts,
                                generators=sampling.make_generators(seeds))
        out['images'] = out['images'].float()
        return out
