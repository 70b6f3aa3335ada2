"""ADDP iterative generation, read top to bottom (docs/method.md §4).

The state of a batch is: token ids ``T`` (B, L), the mask ``m`` (B, L; 1 = masked) and
the current image ``x`` (B, 3, H, W) that the pixel encoder reads. One step (:func:`denoise_step`):

1. ``logits = logits_fn(x, T, m)``: (B, L, K) logits over the K codebook entries (the network:
   :meth:`~addp_mm.models.networks.ADDPNetwork.forward_logits` with ``num_codes=K``, as
   :class:`~addp_mm.generation.ADDPGenerator` binds it).
2. ``T'``: ids drawn from the logits (categorical, nucleus top-p or argmax) at masked positions,
   ``T`` elsewhere.
3. ``n``: how many positions stay masked after this step; the schedule (cosine or linear)
   covers the *initially* masked count ``n0``: ``n = clip(ceil(n0 * ratio(s)), 1, n0)``.
4. ``m'``: the ``n`` masked positions with the lowest confidence ``log p(T') + tau * gumbel``
   (unmasked positions have confidence +inf); ``tau`` is the choice temperature, linearly annealed
   to 0 ("dynamic") or constant ("static").
5. ``x' = tokenizer.decode_mixed(T', m', softmax(logits))``: the VQGAN decode of the
   probability-weighted ("soft") codebook vectors at ``m'`` and the codebook vectors of ``T'``
   elsewhere.

:func:`generate` runs the steps with one :class:`SamplingOptions`. Unconditional generation
starts with every position masked (:func:`start_unconditional`; the first step then does not
look at ``x`` at all); inpainting, outpainting and reconstruction start from the VQ tokens of a
user image with only the user's region masked (:func:`start_from_image`). Unmasked tokens are
never changed.

Randomness: each image owns a ``torch.Generator`` seeded from (seed, image index)
(:func:`image_seeds`), and every step draws its uniforms from it on the CPU. An image therefore
depends only on its seed, not on the batch it was generated in or on the device.
"""
import dataclasses
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..models.utils.masking import generation_ratio
from ..utils.grid import grid_side

SAMPLING_METHODS = ('categorical', 'top_p', 'argmax')
TEMPERATURE_STRATEGIES = ('dynamic', 'static')
SCHEDULES = ('cosine', 'linear')

#: ``logits_fn(x, ids, mask) -> (B, L, K)`` codebook logits (x may be None while all is masked).
LogitsFn = Callable[[Optional[torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor]
State = Dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """The sampling options of one run, validated when made (a bad value is a ``ValueError``).

    Args:
        num_steps (int): Denoising steps N (>= 1). Defaults to 20.
        schedule (str): ``'cosine'`` (cos(pi/2 (s+1)/N)) or ``'linear'`` (1 - (s+1)/N) mask
            schedule. Defaults to ``'cosine'``.
        choice_temperature (float): Gumbel-noise scale of the mask choice (>= 0). Defaults to 6.0.
        temperature_strategy (str): ``'dynamic'`` (``tau * (1 - (s+1)/N)``) or ``'static'``.
            Defaults to ``'dynamic'``.
        sampling (str): ``'categorical'``, ``'top_p'`` or ``'argmax'``. Defaults to
            ``'categorical'``.
        top_p (float): Nucleus mass for ``'top_p'``, in (0, 1]. Defaults to 1.0.
    """

    num_steps: int = 20
    schedule: str = 'cosine'
    choice_temperature: float = 6.0
    temperature_strategy: str = 'dynamic'
    sampling: str = 'categorical'
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if int(self.num_steps) < 1:
            raise ValueError(f'num_steps must be >= 1, got {self.num_steps}.')
        if self.schedule not in SCHEDULES:
            raise ValueError(f'unknown schedule {self.schedule!r}: use one of {SCHEDULES}.')
        if self.temperature_strategy not in TEMPERATURE_STRATEGIES:
            raise ValueError(f'unknown temperature_strategy {self.temperature_strategy!r}: use one '
                             f'of {TEMPERATURE_STRATEGIES}.')
        if self.sampling not in SAMPLING_METHODS:
            raise ValueError(f'unknown sampling {self.sampling!r}: use one of {SAMPLING_METHODS}.')
        if not 0. < float(self.top_p) <= 1.:
            raise ValueError(f'top_p must be in (0, 1], got {self.top_p}.')
        if float(self.choice_temperature) < 0:
            raise ValueError(f'choice_temperature must be >= 0, got {self.choice_temperature}.')

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        """The option names, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides) -> 'SamplingOptions':
        """A copy with ``overrides`` (None values ignored), validated again.

        Raises:
            ValueError: An unknown option name or a bad value.
        """
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise ValueError(f'unknown sampling options {unknown}; valid: {list(self.names())}.')
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        """``{name: value}`` in :meth:`names` order."""
        return dataclasses.asdict(self)


# SplitMix64 constants: a bijective 64-bit mixer, so distinct (seed, index) pairs give
# well-separated generator seeds even for consecutive indices.
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def image_seeds(seed: int, indices: Sequence[int]) -> torch.Tensor:
    """Per-image generator seeds derived from a run seed and the images' global indices.

    Args:
        seed (int): Run seed (``--seed``).
        indices (Sequence[int]): Global image indices (e.g. the PNG file numbers).

    Returns:
        Tensor: (B,) int64 seeds in [0, 2^63).
    """
    return torch.tensor([_splitmix64((int(seed) << 32) ^ int(i)) >> 1 for i in indices],
                        dtype=torch.int64)


def make_generators(seeds: torch.Tensor) -> List[torch.Generator]:
    """One CPU ``torch.Generator`` per image, seeded with ``seeds`` (B,) int64."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds.tolist()]


def draw_uniforms(generators: Optional[List[torch.Generator]], batch_size: int, num_tokens: int,
                  device: torch.device) -> torch.Tensor:
    """This step's random numbers: (B, 2, L) uniforms in [0, 1) (token draw, Gumbel noise).

    Drawn on the CPU from each image's generator (or the global RNG when ``generators`` is None)
    so that an image's randomness does not depend on its batch or on the device.
    """
    if generators is None:
        u = torch.rand(batch_size, 2, num_tokens)
    else:
        if len(generators) != batch_size:
            raise ValueError(f'{len(generators)} generators for a batch of {batch_size}.')
        u = torch.stack([torch.rand(2, num_tokens, generator=g) for g in generators])
    return u.to(device)


def sample_ids(logits: torch.Tensor, u: torch.Tensor, sampling: str = 'categorical',
               top_p: float = 1.) -> torch.Tensor:
    """Draw one token per position by inverse-CDF sampling with the given uniforms.

    Args:
        logits (Tensor): (B, L, K) logits.
        u (Tensor): (B, L) uniforms in [0, 1).
        sampling (str): ``'categorical'`` (the official default), ``'top_p'`` (nucleus: the
            smallest set of most likely codes whose mass reaches ``top_p``, as the official
            ``nucleus_sampling``) or ``'argmax'`` (deterministic, for conformance tests).
        top_p (float): Nucleus mass for ``'top_p'``.

    Returns:
        Tensor: (B, L) int64 ids.
    """
    if sampling == 'argmax':
        return logits.argmax(-1)
    # float64 cumulative sums keep the draw independent of summation-order noise.
    probs = F.softmax(logits.double(), dim=-1)
    order = None
    if sampling == 'top_p':
        probs, order = probs.sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the strictly more likely codes
        probs = probs * (before < top_p)  # the first code always stays (before = 0)
    cdf = probs.cumsum(-1)
    # right=True: index i is drawn when cdf[i-1] <= v < cdf[i], i.e. with probability p_i
    ids = torch.searchsorted(cdf, (u.double() * cdf[..., -1]).unsqueeze(-1), right=True)
    ids = ids.clamp_(max=logits.shape[-1] - 1)
    if order is not None:
        ids = order.gather(-1, ids)
    return ids.squeeze(-1)


def num_masked_after(step: int, num_steps: int, num_initial: int, schedule: str) -> int:
    """Positions still masked after ``step``: ``clip(ceil(n0 * ratio), 1, n0)`` (official).

    The official code keeps at least one position masked even after the last step (its final
    image decodes one soft vector); kept for fidelity.
    """
    n = math.ceil(num_initial * generation_ratio(step, num_steps, schedule))
    return int(min(max(n, 1), num_initial))


def choose_masked(log_probs: torch.Tensor, mask: torch.Tensor, num: int, temperature: float,
                     gumbel_u: torch.Tensor) -> torch.Tensor:
    """The next mask: the ``num`` least confident of the currently masked positions stay masked.

    Args:
        log_probs (Tensor): (B, L) log-probability of each position's chosen token.
        mask (Tensor): (B, L) current mask (1 = masked).
        num (int): Positions that stay masked (<= the current masked count).
        temperature (float): Gumbel-noise scale.
        gumbel_u (Tensor): (B, L) uniforms for the Gumbel noise.

    Returns:
        Tensor: (B, L) float mask, 1 = still masked.
    """
    confidence = log_probs.float().masked_fill(~mask.bool(), float('inf'))
    if temperature > 0:
        u = gumbel_u.float().clamp(1e-20, 1. - 1e-7)
        confidence = confidence + temperature * -torch.log(-torch.log(u))
    lowest = confidence.topk(num, dim=-1, largest=False).indices
    return torch.zeros_like(mask, dtype=torch.float32).scatter_(1, lowest, 1.)


def start_unconditional(batch_size: int, num_tokens: int,
                        device: Union[str, torch.device] = 'cpu') -> State:
    """Initial state of unconditional generation: every position masked, no image.

    Returns:
        dict: ``ids`` (B, L) zeros (never read), ``mask`` (B, L) ones, ``x`` None.
    """
    return dict(ids=torch.zeros(batch_size, num_tokens, dtype=torch.long, device=device),
                mask=torch.ones(batch_size, num_tokens, device=device), x=None)


def start_from_image(tokenizer, images: torch.Tensor, mask: torch.Tensor) -> State:
    """Initial state for inpainting / outpainting / reconstruction.

    The image is tokenized; its tokens at the positions of ``mask`` are generated anew, all others
    are kept. The first image the encoder reads decodes the kept tokens and, at masked positions,
    the mean codebook vector (the soft vector of a uniform distribution), so none of the masked
    pixels leak in.

    Args:
        tokenizer (VQGANTokenizer): The frozen tokenizer (``encode``, ``decode_mixed``).
        images (Tensor): (B, 3, H, W) RGB in [0, 1].
        mask (Tensor): (B, L), 1 = masked (to be generated).

    Returns:
        dict: ``ids`` (B, L), ``mask`` (B, L) float, ``x`` (B, 3, H, W).
    """
    _, ids = tokenizer.encode(images)
    mask = mask.to(images.device).float()
    return dict(ids=ids, mask=mask, x=tokenizer.decode_mixed(ids, mask))


def denoise_step(logits_fn: LogitsFn, tokenizer, state: State, step: int, num_initial: int,
                 u: torch.Tensor, options: SamplingOptions) -> State:
    """One alternating denoising step (items 1-5 of the module docstring).

    Args:
        logits_fn (callable): ``logits_fn(x, ids, mask) -> (B, L, K)`` codebook logits.
        tokenizer (VQGANTokenizer): The frozen tokenizer (``decode_mixed``).
        state (dict): ``x`` (B, 3, H, W) current image (None only if every position is
            masked), ``ids`` (B, L) current ids (read at unmasked positions), ``mask`` (B, L),
            1 = masked, the same count in every row.
        step (int): Step index s (0-based).
        num_initial (int): Masked count before step 0 (the schedule's 100%).
        u (Tensor): (B, 2, L) this step's uniforms (:func:`draw_uniforms`).
        options (SamplingOptions): The run's options.

    Returns:
        dict: ``logits`` (B, L, K), ``ids`` (B, L) T', ``mask`` (B, L) m', ``x`` (B, 3, H, W) x'.
    """
    ids, mask = state['ids'], state['mask']
    logits = logits_fn(state['x'], ids, mask).float()
    drawn = sample_ids(logits, u[:, 0], options.sampling, options.top_p)
    new_ids = torch.where(mask.bool(), drawn, ids)

    num = min(num_masked_after(step, options.num_steps, num_initial, options.schedule),
              int(mask.sum(1).max()))
    tau = options.choice_temperature
    if options.temperature_strategy == 'dynamic':
        tau = tau * (1. - (step + 1) / options.num_steps)
    log_probs = F.log_softmax(logits, dim=-1).gather(-1, new_ids.unsqueeze(-1)).squeeze(-1)
    new_mask = choose_masked(log_probs, mask, num, tau, u[:, 1])

    B, L, _ = logits.shape
    side = grid_side(L)
    probs = F.softmax(logits, dim=-1).transpose(1, 2).reshape(B, -1, side, side)
    new_x = tokenizer.decode_mixed(new_ids, new_mask, probs)
    return dict(logits=logits, ids=new_ids, mask=new_mask, x=new_x)


def generate(logits_fn: LogitsFn,
             tokenizer,
             state: State,
             options: SamplingOptions,
             generators: Optional[List[torch.Generator]] = None,
             callback: Optional[Callable[[int, State], None]] = None) -> State:
    """Run the ADDP denoising loop.

    Args:
        logits_fn (callable): ``logits_fn(x, ids, mask) -> (B, L, K)`` codebook logits, in eval
            mode (e.g. ``ADDPNetwork.forward_logits`` with ``num_codes=K``).
        tokenizer (VQGANTokenizer): The frozen tokenizer (``decode_mixed``).
        state (dict): The start (:func:`start_unconditional`, :func:`start_from_image`):
            ``ids`` (B, L) (only unmasked positions are read, and kept exactly), ``mask`` (B, L),
            1 = masked (every row must have the same masked count: the token decoder
            appends the same number of unmasked tokens per image), ``x`` (B, 3, H, W) image read
            by the first step (None when every position is masked).
        options (SamplingOptions): Steps, schedule, temperature, token draw.
        generators (list[torch.Generator], optional): One per image (:func:`make_generators`);
            None uses the global RNG.
        callback (callable, optional): Called as ``callback(step, state)`` after every step with
            :func:`denoise_step`'s output.

    Returns:
        dict: ``images`` (B, 3, H, W) RGB in [0, 1], ``ids`` (B, L), ``mask`` (B, L) (what
        is still masked: one position, by the official schedule).
    """
    if not isinstance(options, SamplingOptions):
        raise TypeError(f'options must be a SamplingOptions, got {type(options).__name__}.')
    ids, mask, x = state['ids'], state['mask'].float(), state.get('x')
    counts = mask.sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError('every image of a batch must have the same number of masked tokens; '
                         'generate images with different masks in separate batches.')
    num_initial = int(counts[0])
    B, L = mask.shape
    if x is None and num_initial != L:
        raise ValueError('an initial image x is needed when some tokens are already unmasked '
                         '(use start_from_image).')
    if num_initial == 0:  # nothing to generate
        return dict(images=tokenizer.decode_mixed(ids, mask).clamp(0, 1), ids=ids, mask=mask)

    state = dict(ids=ids, mask=mask, x=x)
    for step in range(options.num_steps):
        u = draw_uniforms(generators, B, L, mask.device)
        state = denoise_step(logits_fn, tokenizer, state, step, num_initial, u, options)
        if callback is not None:
            callback(step, state)
    return dict(images=state['x'].clamp(0, 1), ids=state['ids'], mask=state['mask'])


def pixel_mask_to_tokens(pixel_mask: torch.Tensor, grid: Union[int, Sequence[int]]) -> torch.Tensor:
    """Map a pixel mask to the token grid: a token is masked if any of its pixels is masked.

    Args:
        pixel_mask (Tensor): (B, H, W) or (B, 1, H, W); nonzero = masked (to be generated).
        grid (int | tuple): Token grid side (h = w) or (h, w); H and W must be multiples of it.

    Returns:
        Tensor: (B, h * w) float, 1 = masked, row-major like the VQGAN ids.
    """
    if pixel_mask.dim() == 3:
        pixel_mask = pixel_mask.unsqueeze(1)
    h, w = (grid, grid) if isinstance(grid, int) else tuple(grid)
    H, W = pixel_mask.shape[-2:]
    if H % h or W % w:
        raise ValueError(f'mask size {(H, W)} is not a multiple of the token grid {(h, w)}; '
                         'resize the mask to the image size.')
    pooled = F.max_pool2d((pixel_mask != 0).float(), kernel_size=(H // h, W // w))
    return pooled.flatten(1)
