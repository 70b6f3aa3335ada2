"""ADDP as an mmagic unconditional generative model (a plain mmengine ``BaseModel``).

Only the mmagic interface lives here: the network is pre-training's
(:class:`~addp_mm.models.networks.ADDPNetwork`, ``models/networks/addp_network.py``: same parts,
same state-dict layout) and the denoising loop is :func:`addp_mm.generation.sampling.generate`.
"""
import copy
import functools
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import MMLogger
from mmengine.model import BaseModel, ModuleDict
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from tqdm import tqdm

from .. import models  # noqa: F401  (registers ADDPViT & co. in mmpretrain's MODELS)
from ..checkpoints.convert import convert_official_addp
from ..checkpoints.layouts import is_official_addp
from ..checkpoints.loading import load_checkpoint_file
from ..checkpoints.weights import extract_state_dict, load_strict
from ..models.networks import ADDPNetwork, build_network_parts, build_part
from ..utils.device import EMULATED_BF16_HINT, cpu_has_native_bf16, fp32_without_tf32
from ..utils.errors import CheckpointMismatchError, ConfigError
from . import sampling
from .sampling import SamplingOptions

StateDict = Dict[str, torch.Tensor]

#: ``sample_kwargs`` understood by :meth:`ADDPGenerator.forward` (mmagic metrics, inferencer):
#: the sampling options and the seeding / progress keys.
SAMPLE_KWARGS = SamplingOptions.names() + ('seed', 'indices', 'show_progress')
PRECISIONS = ('fp32', 'bf16', 'fp16')
#: Tensors of a pre-training checkpoint that generation does not use (the token predictor).
UNUSED_PREFIX = 'target_generator.predictor.'
#: What a checkpoint must hold for the generator (named in the errors of a strict load).
GENERATOR_WEIGHTS = ('ADDP generator (backbone, neck, head and target_generator.vqgan of an '
                     'addp_mm pre-training checkpoint, of the output of '
                     'tools/model_converters/convert_addp.py or of the official ADDP release)')


@MODELS.register_module()
class ADDPGenerator(ADDPNetwork, BaseModel):
    """Unconditional ADDP image generator for mmagic (docs/method.md §4).

    ``forward(inputs=dict(num_batches=B, sample_kwargs=dict(...)))`` returns one mmagic
    ``DataSample`` per image whose ``fake_img`` is (3, H, W), BGR, float in [0, 255], as mmagic's
    metrics and inferencer expect; ``noise`` holds the image's seed.

    Randomness: every image is driven by one int64 seed (its "noise"). Seeds come from, in order:
    ``inputs['noise']`` (a (B,) int64 tensor, e.g. from :meth:`noise_fn`); or
    ``sample_kwargs['seed']`` with the images' global ``indices`` (default: this process's running
    count, interleaved over ranks so that rank r of W makes images r, r + W, ...; the same images
    ``tools/generate.py --seed`` writes); or the global torch RNG (seeded by the Runner's
    ``randomness``).

    Weights: the state dict is pre-training's (``backbone.*``, ``neck.*``, ``head.*``,
    ``target_generator.vqgan.*``), so an addp_mm pre-training checkpoint (and the converter's
    output) loads as it is; its token predictor (``target_generator.predictor.*``) is not used
    and is left out. The official release is converted on the fly. Every load is strict.

    ``target_generator`` here is a ``ModuleDict`` that holds only the frozen VQGAN, kept for the
    key layout of pre-training; docs/method.md §1.3 lists its meaning in every model.

    Args:
        backbone (dict): :class:`ADDPViT` config (pixel encoder).
        neck (dict): :class:`ADDPTokenDecoder` config.
        head (dict): :class:`ADDPHead` config.
        vqgan (dict): :class:`VQGANTokenizer` config (its weights come from ``checkpoint``);
            held as ``target_generator.vqgan`` (also :attr:`vqgan`).
        checkpoint (str, optional): Local checkpoint loaded strictly at construction: an addp_mm
            pre-training checkpoint, the converter's output or the official release. None leaves
            the weights to ``init_weights`` / ``load_state_dict`` (e.g. ``load_from``).
        num_steps, schedule, choice_temperature, temperature_strategy, sampling, top_p: The
            default :class:`~addp_mm.generation.sampling.SamplingOptions` (same defaults;
            :attr:`sampling_defaults`), validated at construction.
        precision (str): ``'fp32'`` (default; conformance), ``'bf16'`` (autocast; fast on GPUs
            and on CPUs with native bf16, very slow on other CPUs, which warns) or ``'fp16'``
            (CUDA autocast).
        channels_last (bool): Run the VQGAN decoder's convolutions in channels-last memory
            format (same math). Defaults to False.
        compile (bool | dict): ``torch.compile`` the network and the VQGAN decoder (see
            :meth:`ADDPNetwork.compile_network`; ``tools/generate.py --compile``). Defaults to
            False.
        data_preprocessor (dict, optional): Defaults to mmagic's ``DataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    #: Its load_state_dict pre-hook converts and checks every loaded checkpoint itself (strictly),
    #: so CheckPretrainedKeysHook leaves ``load_from`` to it.
    checks_loaded_keys = True

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 vqgan: dict,
                 checkpoint: Optional[str] = None,
                 num_steps: int = 20,
                 schedule: str = 'cosine',
                 choice_temperature: float = 6.0,
                 temperature_strategy: str = 'dynamic',
                 sampling: str = 'categorical',
                 top_p: float = 1.0,
                 precision: str = 'fp32',
                 channels_last: bool = False,
                 compile: Union[bool, dict] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='DataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        parts = build_network_parts(backbone, neck, head)
        self.backbone, self.neck, self.head = parts['backbone'], parts['neck'], parts['head']
        self.target_generator = ModuleDict(dict(vqgan=build_part(vqgan)))
        grid = self.vqgan.resolution // self.vqgan.downsample
        if grid * grid != self.neck.num_tokens or self.backbone.num_patches != self.neck.num_tokens:
            raise ConfigError(
                f'inconsistent sizes: the VQGAN makes a {grid}x{grid} token grid, the decoder '
                f'expects {self.neck.num_tokens} tokens and the encoder '
                f'{self.backbone.num_patches} patches; set img_size / resolution / num_tokens '
                'to match.')
        if precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {PRECISIONS}, got {precision!r}.')
        self.sampling_defaults = SamplingOptions(
            num_steps=num_steps, schedule=schedule, choice_temperature=choice_temperature,
            temperature_strategy=temperature_strategy, sampling=sampling, top_p=top_p)
        self.precision = precision
        if channels_last:  # the encoder only runs for inpainting: left as it is
            self.vqgan.use_channels_last(encoder=False)
        self.compile_network(compile, extra=(self.vqgan.decoder, ))
        self.checkpoint = checkpoint
        self._num_sampled = 0  # images made by this process with sample_kwargs['seed']
        self.register_load_state_dict_pre_hook(self._adapt_checkpoint)
        if checkpoint is not None:
            self.load_weights(checkpoint)
        self.eval()

    # ---------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Random (official) initialisation, unless ``checkpoint`` already filled the weights."""
        if self.checkpoint is None:
            super().init_weights()

    def load_weights(self, filename: str) -> None:
        """Load a checkpoint strictly (every tensor of the generator must be in the file).

        Args:
            filename (str): Local path; see ``checkpoint`` for the accepted layouts.

        Raises:
            MissingPathError: The file does not exist (a ``FileNotFoundError``).
            CheckpointMismatchError: The file lacks some of the generator's weights (a
                ``KeyError``).
            ConfigError: Sizes differ from the config's (a ``ValueError``).
        """
        sd = extract_state_dict(load_checkpoint_file(filename), filename)
        incompatible = self.load_state_dict(sd, strict=False)
        MMLogger.get_current_instance().info(
            f'loaded the ADDP generator from {filename} '
            f'({len(incompatible.unexpected_keys)} unused tensors ignored)')

    def _adapt_checkpoint(self, module, state_dict: StateDict, prefix: str, local_metadata,
                          strict, missing_keys, unexpected_keys, error_msgs) -> None:
        """``load_state_dict`` pre-hook: convert the official release, leave out the token
        predictor, then require every weight with the config's size
        (:func:`~addp_mm.checkpoints.weights.load_strict`).

        It runs for every loader (``load_weights``, the Runner's ``load_from``, mmagic's
        inferencer), whose ``strict=False`` would otherwise only log missing weights.
        """
        own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if is_official_addp(own):
            own, _, unknown = convert_official_addp(own)
            if unknown:
                raise CheckpointMismatchError(
                    f'unrecognised keys in an official ADDP checkpoint: {unknown[:5]}')
        adapted = {k: v for k, v in own.items() if not k.startswith(UNUSED_PREFIX)}
        for k in list(state_dict):
            if k.startswith(prefix):
                del state_dict[k]
        state_dict.update({prefix + k: v for k, v in adapted.items()})

        # every weight present with the config's size; the copy load_state_dict makes next
        # writes the same values again
        load_strict(self, adapted, GENERATOR_WEIGHTS, 'the checkpoint')

    # ---------------------------------------------------------------- network
    @property
    def vqgan(self):
        """The frozen :class:`VQGANTokenizer` (``target_generator.vqgan``)."""
        return self.target_generator.vqgan

    @property
    def num_tokens(self) -> int:
        """Tokens per image L (16 x 16 = 256 for 256x256 images)."""
        return self.neck.num_tokens

    @property
    def image_size(self) -> int:
        """Side of the generated images."""
        return self.vqgan.resolution

    def autocast(self):
        """Context manager applying ``precision`` to the network (sampling math stays fp32).

        fp32 is true fp32: TF32 is off for CUDA matmuls and convolutions inside (as in the
        official generation code), the previous flags restored after."""
        if self.precision == 'fp32':
            return fp32_without_tf32()
        device = self.data_preprocessor.device.type
        dtype = torch.bfloat16 if self.precision == 'bf16' else torch.float16
        if dtype == torch.float16 and device != 'cuda':
            raise ConfigError("precision='fp16' needs a CUDA device; use 'bf16' or 'fp32'.")
        if device == 'cpu' and not cpu_has_native_bf16():
            warnings.warn(f"precision='bf16' on a CPU without native bf16: {EMULATED_BF16_HINT}. "
                          "Use precision='fp32' here.")
        return torch.autocast(device, dtype=dtype)

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self,
               seeds: torch.Tensor,
               show_progress: bool = False,
               callback: Optional[Callable] = None,
               **options) -> Dict[str, torch.Tensor]:
        """Generate one image per seed.

        Args:
            seeds (Tensor): (B,) int64 per-image seeds (see
                :func:`addp_mm.generation.sampling.image_seeds`).
            show_progress (bool): tqdm bar over the steps.
            callback (callable, optional): ``callback(step, state)`` after each step.
            **options: Overrides of :attr:`sampling_defaults` (``num_steps``, ``schedule``,
                ``choice_temperature``, ``temperature_strategy``, ``sampling``, ``top_p``; None
                values keep the default).

        Returns:
            dict: ``images`` (B, 3, H, W) RGB in [0, 1] float32, ``ids`` (B, L), ``mask`` (B, L).
        """
        start = sampling.start_unconditional(len(seeds), self.num_tokens,
                                             self.data_preprocessor.device)
        return self._run(start, seeds, show_progress, callback, options)

    @torch.no_grad()
    def inpaint(self,
                images: torch.Tensor,
                mask: torch.Tensor,
                seeds: torch.Tensor,
                show_progress: bool = False,
                callback: Optional[Callable] = None,
                **options) -> Dict[str, torch.Tensor]:
        """Regenerate the masked tokens of images, keeping every other token exactly.

        Inpainting, outpainting and reconstruction differ only in the mask. The schedule covers
        the masked count, not the whole grid.

        Args:
            images (Tensor): (B, 3, H, W) RGB in [0, 1], H = W = :attr:`image_size`.
            mask (Tensor): (B, L), 1 = masked, regenerated (see
                :func:`addp_mm.generation.sampling.pixel_mask_to_tokens`); every row must have
                the same count.
            seeds (Tensor): (B,) int64 per-image seeds.
            show_progress, callback, **options: as :meth:`sample`.

        Returns:
            dict: ``images`` (B, 3, H, W) in [0, 1], ``ids`` (B, L) (equal to the input image's
            tokens outside the mask), ``mask`` (B, L) still masked, ``input_ids`` (B, L).
        """
        device = self.data_preprocessor.device
        images = images.to(device)
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f'images must be {self.image_size}x{self.image_size}, got '
                             f'{tuple(images.shape[-2:])}; resize / crop them first '
                             '(addp_mm.generation.api.load_image does).')
        with self.autocast():
            start = sampling.start_from_image(self.vqgan, images, mask)
        out = self._run(start, seeds, show_progress, callback, options)
        out['input_ids'] = start['ids']
        return out

    def _run(self, start: Dict[str, torch.Tensor], seeds: torch.Tensor, show_progress: bool,
             callback: Optional[Callable], options: dict) -> Dict[str, torch.Tensor]:
        """The denoising loop from a start state with one generator per seed."""
        opts = self.sampling_defaults.replace(**options)
        generators = sampling.make_generators(seeds)
        bar = None
        if show_progress:
            bar = tqdm(total=opts.num_steps, desc='ADDP steps', leave=False)

        def on_step(step, state):
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(step, state)

        # the loop reads codebook logits of the grid positions; while every position is masked
        # (the first step of unconditional sampling) the decoder input is the same for every
        # image, so the encoder is skipped and the decoder runs once for the batch
        logits_fn = functools.partial(self.forward_logits, num_codes=self.vqgan.n_embed,
                                      share_all_masked=True)
        with self.autocast():
            out = sampling.generate(logits_fn, self.vqgan, start, opts, generators=generators,
                                    callback=on_step)
        if bar is not None:
            bar.close()
        out['images'] = out['images'].float()
        return out

    # ---------------------------------------------------------------- mmagic interface
    def noise_fn(self, noise: Union[torch.Tensor, Callable, None] = None,
                 num_batches: int = 1) -> torch.Tensor:
        """Per-image seeds, the "noise" of this model (used by mmagic's ``VisualizationHook``).

        Args:
            noise (Tensor | callable | None): Seeds (returned as int64), a callable
                ``noise(num_batches)`` or None (drawn from the global torch RNG).
            num_batches (int): Number of seeds to draw.

        Returns:
            Tensor: (B,) int64 seeds.
        """
        if isinstance(noise, torch.Tensor):
            return noise.reshape(-1).long()
        if callable(noise):
            return torch.as_tensor(noise(num_batches)).reshape(-1).long()
        if noise is not None:
            raise TypeError('noise must be a tensor of seeds, a callable or None, got '
                            f'{type(noise)}')
        return torch.randint(0, 2**62, (num_batches, ), dtype=torch.int64)

    def _seeds_for_call(self, inputs: dict, sample_kwargs: dict) -> torch.Tensor:
        noise = inputs.get('noise', None)
        num_batches = inputs.get('num_batches', None)
        if noise is not None:
            return self.noise_fn(noise, num_batches or 1).cpu()
        num_batches = int(num_batches or 1)
        if sample_kwargs.get('seed', None) is None:
            return self.noise_fn(None, num_batches)
        indices = sample_kwargs.get('indices', None)
        if indices is None:
            rank, world = get_dist_info()
            indices = [(self._num_sampled + j) * world + rank for j in range(num_batches)]
            self._num_sampled += num_batches
        elif len(indices) != num_batches:
            raise ValueError(f'{len(indices)} indices for num_batches={num_batches}.')
        return sampling.image_seeds(sample_kwargs['seed'], indices)

    def forward(self,
                inputs: Optional[dict] = None,
                data_samples: Optional[Sequence[DataSample]] = None,
                mode: Optional[str] = None) -> List[DataSample]:
        """Generate images (mmagic's unconditional-model interface).

        Args:
            inputs (dict | Tensor): ``num_batches`` (int), optional ``noise`` ((B,) int64 seeds)
                and ``sample_kwargs`` (keys in :data:`SAMPLE_KWARGS`); a tensor is taken as
                ``noise``. ``sample_model`` is ignored (there is no EMA model).
            data_samples (list[DataSample], optional): Merged into the outputs.
            mode (str, optional): Unused (mmagic interface).

        Returns:
            list[DataSample]: One per image: ``fake_img`` (3, H, W) BGR float [0, 255], ``noise``
            (its seed), ``sample_kwargs``.
        """
        if isinstance(inputs, torch.Tensor):  # mmagic also passes the noise alone
            inputs = dict(noise=inputs)
        inputs = dict(inputs or {})
        sample_kwargs = dict(inputs.get('sample_kwargs', None) or {})
        unknown = sorted(set(sample_kwargs) - set(SAMPLE_KWARGS))
        if unknown:
            raise ValueError(f'unknown sample_kwargs {unknown} for ADDPGenerator; valid keys: '
                             f'{list(SAMPLE_KWARGS)}.')
        seeds = self._seeds_for_call(inputs, sample_kwargs)
        options = {k: v for k, v in sample_kwargs.items() if k in SamplingOptions.names()}
        out = self.sample(seeds, show_progress=bool(sample_kwargs.get('show_progress', False)),
                          **options)
        fake = (out['images'] * 255.)[:, [2, 1, 0]]  # RGB [0, 1] -> BGR [0, 255]
        results = []
        for i in range(len(seeds)):
            sample = DataSample()
            if data_samples:
                sample.update(data_samples[i])
            sample.fake_img = fake[i]
            sample.noise = seeds[i]
            sample.sample_kwargs = copy.deepcopy(sample_kwargs)
            results.append(sample)
        return results

    def val_step(self, data: dict) -> List[DataSample]:
        """``self(**data_preprocessor(data))``: what mmagic's loops and metrics call."""
        return self(**self.data_preprocessor(data))

    def test_step(self, data: dict) -> List[DataSample]:
        """Same as :meth:`val_step`."""
        return self(**self.data_preprocessor(data))

    def train_step(self, data, optim_wrapper):
        raise NotImplementedError(
            'ADDPGenerator only samples. Train ADDP with the pre-training configs in '
            'configs/addp/ and load the checkpoint here.')

    def train(self, mode: bool = True):
        # Sampling only: dropout must stay off whatever a loop asks.
        return super().train(False)
