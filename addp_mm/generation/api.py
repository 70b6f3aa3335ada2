"""Python API: build a generator from a config, sample, inpaint / outpaint / reconstruct, save PNGs.

Example::

    from addp_mm.generation.api import build_generator, inpaint, load_image, load_mask
    config = 'configs/addp/generation/addp_vit-base-p16_1xb32-20steps-cosine_in1k-256px.py'
    model = build_generator(config, 'checkpoints/addp-vit-base-16.pth', device='cuda')
    out = inpaint(model, load_image('cat.jpg', 256), pixel_mask=load_mask('hole.png', 256), seed=0)
    save_png(out['images'][0], 'cat_inpainted.png')
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmagic.registry import MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from PIL import Image

from ..models.utils.init import init_quietly
from ..utils.errors import ConfigError, MissingPathError
from ..utils.grid import grid_side
from .generator import ADDPGenerator  # noqa: F401  (registers the model)
from .sampling import image_seeds, pixel_mask_to_tokens

RANDOM_WEIGHTS = 'random'


def build_generator(config, checkpoint: Optional[str], device: Union[str, torch.device] = 'cpu',
                    **model_overrides):
    """Build an :class:`ADDPGenerator` from a generation config and load its weights strictly.

    Args:
        config (str | Config): Path of a config in ``configs/addp/generation`` (or a Config).
        checkpoint (str | None): Local checkpoint path (addp_mm pre-training checkpoint,
            converted or official ADDP release). ``'random'`` gives the official random
            initialisation drawn with seed 0, the same every time (smoke tests only); None keeps
            the config's ``model.checkpoint``.
        device (str | torch.device): Device to run on.
        **model_overrides: Replace fields of ``model`` (e.g. ``num_steps=8``,
            ``precision='bf16'``).

    Returns:
        ADDPGenerator: In eval mode on ``device``.
    """
    cfg = Config.fromfile(config) if isinstance(config, (str, os.PathLike)) else config
    model_cfg = cfg.model.copy()
    model_cfg.update(model_overrides)
    random_init = checkpoint == RANDOM_WEIGHTS
    if checkpoint is not None:
        model_cfg['checkpoint'] = None if random_init else checkpoint
    if model_cfg.get('checkpoint', None) is None and not random_init:
        raise ConfigError('no checkpoint given: pass the path of an ADDP checkpoint (or "random" '
                          'for random weights in smoke tests).')
    with torch.random.fork_rng():
        # 'random' weights are the same every time; the frozen VQGAN keeps PyTorch's
        # construction-time init, so the build is seeded too.
        torch.manual_seed(0)
        # build in the config's scope, whatever scope an earlier Runner left current
        model_cfg.setdefault('_scope_', cfg.get('default_scope', 'mmagic'))
        model = MODELS.build(model_cfg)
        if random_init:
            _init_quietly(model)
    return model.to(device).eval()


def _init_quietly(model) -> None:
    """Random weights for a smoke test, quietly (:func:`init_quietly`), and a line that says so."""
    init_quietly(model)
    MMLogger.get_current_instance().info(
        'random weights (seed 0) for a smoke test: the images will be noise')


def load_image(path: str, size: int) -> torch.Tensor:
    """Read an image as RGB, resize its shorter side to ``size`` (bicubic) and center-crop.

    Args:
        path (str): Image file.
        size (int): Output side (the generator's :attr:`image_size`).

    Returns:
        Tensor: (3, size, size) float RGB in [0, 1].
    """
    if not osp.isfile(path):
        raise MissingPathError(f'image not found: {path!r}')
    img = _resize_center_crop(_open_image(path).convert('RGB'), size, Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.


#: Grey level (0-255) from which a mask pixel counts as white, i.e. "generate here".
MASK_THRESHOLD = 128


def load_mask(path: str, size: int, image_path: Optional[str] = None) -> torch.Tensor:
    """Read a mask image with :func:`load_image`'s geometry: white = region to generate.

    The mask is converted to grayscale; a pixel is "generate" when its grey level is >=
    :data:`MASK_THRESHOLD` (128), "keep" below. A uniform mid-grey mask (127) keeps everything, an
    anti-aliased edge is cut at half intensity.

    Args:
        path (str): Mask file (any mode; converted to grayscale).
        size (int): Output side.
        image_path (str, optional): The image the mask belongs to; its size must match.

    Returns:
        Tensor: (size, size) bool, True = to generate.
    """
    if not osp.isfile(path):
        raise MissingPathError(f'mask not found: {path!r}')
    mask = _open_image(path).convert('L')
    if image_path is not None:
        with Image.open(image_path) as img:
            if img.size != mask.size:
                raise ConfigError(f'mask {path!r} is {mask.size[0]}x{mask.size[1]} but the '
                                  f'image is {img.size[0]}x{img.size[1]}; draw the mask at the '
                                  'image size.')
    mask = _resize_center_crop(mask, size, Image.NEAREST)
    return torch.from_numpy(np.asarray(mask) >= MASK_THRESHOLD)


def _open_image(path: str) -> Image.Image:
    """``Image.open`` with the file named when it is empty or not an image."""
    if osp.getsize(path) == 0:
        raise ConfigError(f'{path!r} is an empty file (0 bytes), not an image.')
    try:
        img = Image.open(path)
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ConfigError(f'{path!r} cannot be read as an image: {e}') from e
    return img


def _resize_center_crop(img: Image.Image, size: int, resample) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), resample=resample)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def outpaint_mask(size: int, keep: int) -> torch.Tensor:
    """Pixel mask for outpainting: everything outside a centered ``keep`` x ``keep`` square.

    Args:
        size (int): Image side.
        keep (int): Side of the kept center (the input image is resized into it by the tool).

    Returns:
        Tensor: (size, size) bool, True = to generate.
    """
    if not 0 < keep < size:
        raise ConfigError(f'the kept center ({keep}) must be smaller than the image ({size}).')
    mask = torch.ones(size, size, dtype=torch.bool)
    lo = (size - keep) // 2
    mask[lo:lo + keep, lo:lo + keep] = False
    return mask


def random_token_mask(num_tokens: int, ratio: float, seed: int = 0) -> torch.Tensor:
    """Token mask for reconstruction: ``ceil(ratio * num_tokens)`` random positions masked.

    Returns:
        Tensor: (num_tokens,) float, 1 = regenerate.
    """
    if not 0. < ratio <= 1.:
        raise ConfigError(f'mask ratio must be in (0, 1], got {ratio}.')
    n = int(np.ceil(ratio * num_tokens))
    order = torch.randperm(num_tokens, generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(num_tokens)
    mask[order[:n]] = 1.
    return mask


@torch.no_grad()
def inpaint(model,
            image: torch.Tensor,
            pixel_mask: Optional[torch.Tensor] = None,
            token_mask: Optional[torch.Tensor] = None,
            seed: int = 0,
            indices: Sequence[int] = (0, ),
            **options) -> Dict[str, torch.Tensor]:
    """Inpaint / outpaint / reconstruct one image; one result per index in ``indices``.

    Every token outside the mask is kept exactly (the result is the VQGAN decode of those tokens
    and the generated ones); a token is regenerated if any of its pixels is masked.

    Args:
        model (ADDPGenerator): The generator.
        image (Tensor): (3, H, W) RGB in [0, 1] at the generator's size (:func:`load_image`).
        pixel_mask (Tensor, optional): (H, W), nonzero = generate.
        token_mask (Tensor, optional): (L,) the mask on the token grid, 1 = masked (generated),
            instead of ``pixel_mask``.
        seed (int): Run seed; result k uses the seed of (seed, indices[k]).
        indices (Sequence[int]): Variation indices.
        **options: Sampling options (``num_steps``, ``schedule``, ...).

    Returns:
        dict: ``images`` (K, 3, H, W) in [0, 1], ``ids`` (K, L), ``input_ids`` (K, L),
        ``token_mask`` (L,).
    """
    if (pixel_mask is None) == (token_mask is None):
        raise ValueError('give exactly one of pixel_mask and token_mask.')
    grid = grid_side(model.num_tokens)
    if token_mask is None:
        token_mask = pixel_mask_to_tokens(pixel_mask[None].float(), grid)[0]
    token_mask = token_mask.float().reshape(-1)
    K = len(indices)
    out = model.inpaint(image[None].expand(K, -1, -1, -1), token_mask[None].expand(K, -1),
                        image_seeds(seed, indices), **options)
    out['token_mask'] = token_mask
    return out


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) RGB in [0, 1] -> (B, H, W, 3) uint8.

    Truncates like the official saving code (``clamp(x * 255, 0, 255).to(uint8)``) and like
    mmagic's metrics, which cast ``fake_img`` to uint8, so PNG files and in-loop metrics see the
    same pixels.
    """
    x = (images.detach().float() * 255.).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def save_png(image: Union[torch.Tensor, np.ndarray], path: str) -> None:
    """Write one image as PNG atomically (a crash never leaves a truncated file).

    Args:
        image (Tensor | ndarray): (3, H, W) RGB float in [0, 1], or (H, W, 3) uint8.
        path (str): Destination ``.png``.
    """
    if isinstance(image, torch.Tensor):
        image = to_uint8(image[None])[0]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    Image.fromarray(image).save(tmp, format='PNG')
    os.replace(tmp, path)
