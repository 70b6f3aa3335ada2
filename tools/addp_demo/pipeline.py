"""The quick-start pipeline: photos -> tokenizer -> token predictor -> ADDP -> pictures.

Each stage is an ordinary config of ``configs/addp/from_scratch`` (the folder is an argument,
``config_dir``) trained by the mmengine Runner; the checkpoint of each stage is the ``checkpoint``
field of the frozen module in the next one.
"""
import os
import os.path as osp
import time
from typing import Dict, List

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS
from PIL import Image

from addp_mm.engine.stages import latest_scalars, run_stage
from addp_mm.generation.api import build_generator, inpaint
from addp_mm.generation.sampling import image_seeds
from addp_mm.models.utils.masking import nested_masks, num_masked
from addp_mm.utils.errors import MissingPathError
from .data import PHOTOS, write_crops
from addp_mm.utils.figures import save_grid
from .figures import plot_losses

#: The config file of each stage, inside ``config_dir`` (``configs/addp/from_scratch``).
CONFIGS = dict(
    tokenizer='vqgan_maskgit-tiny-f4-c256_1xb8-cpu-coslr-1000iter_imagefolder-32px.py',
    predictor='mage_vit-tiny-p4_1xb32-cpu-coslr-300iter_imagefolder-32px.py',
    addp='addp_vit-tiny-p4_1xb16-cpu-coslr-300iter_imagefolder-32px.py',
    generation='addp_vit-tiny-p4_1xb32-8steps-cosine_imagefolder-32px.py',
)

#: Run sizes. ``demo``: what ``make demo`` runs (minutes on 2 CPU cores); ``ci``: a few
#: iterations per stage, to test the pipeline end to end.
SIZES = {
    'demo': dict(crops_per_photo=48, iters=dict(tokenizer=1000, predictor=300, addp=300),
                 batch=dict(tokenizer=8, predictor=32, addp=16), log_interval=10,
                 num_samples=16, gen_steps=8, num_examples=4),
    'ci': dict(crops_per_photo=2, iters=dict(tokenizer=4, predictor=12, addp=12),
               batch=dict(tokenizer=4, predictor=4, addp=4), log_interval=1,
               num_samples=4, gen_steps=2, num_examples=2),
}
IMAGE_SIZE = 32
#: Side of the crops written to the image folder; the training pipelines take random 32x32 crops
#: of them (RandomResizedCrop), the figures a resize of the whole crop.
DATA_SIZE = 48
#: Mask ratios shown in the x_t figure (ADDP trains on ratios in [0.5, 1)).
XT_MASK_RATIO = (0.6, 0.7)


def _log(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


def config_path(config_dir: str, stage: str) -> str:
    """The config file of ``stage`` in ``config_dir``; :class:`MissingPathError` (a
    ``FileNotFoundError``) names the folder."""
    path = osp.join(config_dir, CONFIGS[stage])
    if not osp.isfile(path):
        raise MissingPathError(f'{path} not found: pass --config-dir, the '
                               'configs/addp/from_scratch folder of an addp_mm checkout.')
    return path


def _load_images(paths: List[str]) -> torch.Tensor:
    """PNG files -> (N, 3, IMAGE_SIZE, IMAGE_SIZE) RGB in [0, 1] (bicubic resize)."""
    arrays = [
        np.asarray(Image.open(p).convert('RGB').resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC),
                   dtype=np.float32) / 255. for p in paths
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _example_paths(data_dir: str, n: int) -> List[str]:
    """The first crop of the first ``n`` photos (stable across runs)."""
    return [osp.join(data_dir, f'{name}_000.png') for name in list(PHOTOS)[:n]]


def train_all(work_dir: str, config_dir: str, size: str = 'demo',
              seed: int = 0) -> Dict[str, str]:
    """Write the photo crops and train the three stages (skipping finished ones).

    Returns:
        dict: ``data`` folder and the final checkpoint of ``tokenizer``, ``predictor``, ``addp``.
    """
    s = SIZES[size]
    data_dir = osp.join(work_dir, 'data', 'images')
    # Large crops (60-100% of the shorter side): the tiny models can then learn the photos'
    # layouts in minutes, and the samples look like the photos.
    files = write_crops(data_dir, DATA_SIZE, s['crops_per_photo'], seed=seed, min_frac=0.6,
                        max_frac=1.0)
    print(f'[demo] data: {len(files)} crops of {len(PHOTOS)} scikit-image photos in {data_dir}',
          flush=True)

    def common(stage: str) -> dict:
        return {'train_dataloader.dataset.data_root': data_dir,
                'train_dataloader.batch_size': s['batch'][stage]}

    out = dict(data=data_dir)
    out['tokenizer'] = run_stage(
        '1-tokenizer', config_path(config_dir, 'tokenizer'), osp.join(work_dir, 'tokenizer'),
        s['iters']['tokenizer'], common('tokenizer'), s['log_interval'], seed,
        log=_log)['checkpoint']
    out['predictor'] = run_stage(
        '2-predictor', config_path(config_dir, 'predictor'), osp.join(work_dir, 'predictor'),
        s['iters']['predictor'],
        dict(common('predictor'), **{'model.target_generator.checkpoint': out['tokenizer']}),
        s['log_interval'], seed, log=_log)['checkpoint']
    out['addp'] = run_stage(
        '3-addp', config_path(config_dir, 'addp'), osp.join(work_dir, 'addp'), s['iters']['addp'],
        dict(common('addp'), **{
            'model.target_generator.vqgan.checkpoint': out['tokenizer'],
            'model.target_generator.predictor.checkpoint': out['predictor']
        }), s['log_interval'], seed, log=_log)['checkpoint']
    return out


@torch.no_grad()
def figure_reconstructions(ckpt: str, data_dir: str, path: str, config_dir: str) -> str:
    """Originals vs frozen-tokenizer reconstructions, one crop per photo."""
    cfg = Config.fromfile(config_path(config_dir, 'predictor'))
    tok_cfg = dict(cfg.model.target_generator, checkpoint=ckpt)
    vqgan = MODELS.build(tok_cfg)
    vqgan.init_weights()
    images = _load_images(_example_paths(data_dir, len(PHOTOS)))
    _, ids = vqgan.encode(images)
    rec = vqgan.decode_ids(ids).clamp(0, 1)
    grid = vqgan.token_grid
    return save_grid([images, rec], path, ['original', 'tokenizer\nreconstruction'],
                     f'VQGAN tokenizer: {IMAGE_SIZE}x{IMAGE_SIZE} images <-> {grid}x{grid} tokens '
                     f'of {vqgan.n_embed} codes')


@torch.no_grad()
def figure_addp_step(out: Dict[str, str], path: str, num: int, seed: int,
                     config_dir: str) -> str:
    """One ADDP training sample and prediction per image.

    Rows: original; z_0 (tokenizer reconstruction); the tokens masked at step t (darkened); x_t
    (VQGAN decode of exact tokens outside the mask and the predictor's soft tokens inside);
    ADDP's argmax tokens at the masked positions (z_0 elsewhere), decoded; the token predictor's
    target distribution's argmax, decoded the same way.
    """
    cfg = Config.fromfile(config_path(config_dir, 'addp'))
    cfg.model.target_generator.vqgan.checkpoint = out['tokenizer']
    cfg.model.target_generator.predictor.checkpoint = out['predictor']
    model = MODELS.build(cfg.model)
    model.init_weights()
    load_checkpoint(model, out['addp'], map_location='cpu', strict=True, logger='silent')
    model.eval()
    vqgan = model.target_generator.vqgan
    images = _load_images(_example_paths(out['data'], num))
    B, L = images.shape[0], model.neck.num_tokens
    gen = torch.Generator().manual_seed(seed)
    mask_t, mask_next = nested_masks(torch.rand(B, L, generator=gen),
                                     num_masked(XT_MASK_RATIO[0], L),
                                     num_masked(XT_MASK_RATIO[1], L))
    target = model.target_generator(images, mask_t, mask_next)
    ids = target['ids']
    logits = model.forward_logits(target['x_t'], ids, mask_t, num_codes=vqgan.n_embed)
    masked = mask_t.bool()
    pred_ids = torch.where(masked, logits.argmax(-1), ids)
    tgt_ids = torch.where(masked, target['target'].flatten(2).argmax(1), ids)
    side = vqgan.token_grid
    shade = mask_t.view(B, 1, side, side)
    shade = torch.nn.functional.interpolate(shade, size=images.shape[-2:], mode='nearest')
    rows = [images, vqgan.decode_ids(ids).clamp(0, 1), images * (1 - 0.75 * shade),
            target['x_t'].clamp(0, 1), vqgan.decode_ids(pred_ids).clamp(0, 1),
            vqgan.decode_ids(tgt_ids).clamp(0, 1)]
    labels = ['original', 'z_0 (tokens)', f'mask_t ({XT_MASK_RATIO[0]:.0%})', 'x_t',
              'ADDP argmax\n(masked tokens)', 'predictor target\nargmax']
    return save_grid(rows, path, labels, 'ADDP: what the encoder reads (x_t) and what it predicts')


def figure_generation(out: Dict[str, str], paths: Dict[str, str], size: str, seed: int,
                      config_dir: str) -> None:
    """Unconditional samples and an inpainting example with the generation API."""
    s = SIZES[size]
    # The training Runners left 'mmpretrain' as the current default scope; the generator is an
    # mmagic model.
    with DefaultScope.overwrite_default_scope('mmagic'):
        model = build_generator(config_path(config_dir, 'generation'), out['addp'], device='cpu',
                                num_steps=s['gen_steps'])
    n = s['num_samples']
    samples = model.sample(image_seeds(seed, range(n)), show_progress=True)['images']
    cols = 4 if n >= 8 else n
    save_grid(list(samples.view(-1, cols, *samples.shape[1:])), paths['samples'],
              None, f'ADDP unconditional samples ({s["gen_steps"]} steps, seed {seed})')

    # inpainting: the centre half of each example is regenerated, the rest is kept exactly
    images = _load_images(_example_paths(out['data'], s['num_examples']))
    hole = torch.zeros(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
    q = IMAGE_SIZE // 4
    hole[q:IMAGE_SIZE - q, q:IMAGE_SIZE - q] = True
    results = [inpaint(model, img, pixel_mask=hole, seed=seed, indices=(0, 1))['images']
               for img in images]
    masked = images * (~hole).float()
    # what the kept tokens alone decode to: the inpainted images differ from it only through the
    # regenerated tokens (the decoder mixes neighbouring tokens, so also a little outside the hole)
    z0 = model.vqgan.decode_ids(model.vqgan.encode(images.to(model.vqgan.codebook.device))[1])
    rows = [images, masked, z0.clamp(0, 1).cpu(), torch.stack([r[0] for r in results]),
            torch.stack([r[1] for r in results])]
    save_grid(rows, paths['inpainting'],
              ['original', 'input (hole)', 'tokenizer\nreconstruction', 'inpainted #1',
               'inpainted #2'], 'ADDP inpainting: the tokens under the hole regenerated')


def run_demo(config_dir: str, work_dir: str = 'work_dirs/demo', size: str = 'demo',
             seed: int = 0) -> Dict[str, str]:
    """Train the three stages on the scikit-image photos and write the figures.

    Args:
        config_dir (str): The folder of the stage configs (:data:`CONFIGS`), i.e.
            ``configs/addp/from_scratch`` of an addp_mm checkout.
        work_dir (str): Folder of the data, the stages and the figures.
        size (str): ``'demo'`` or ``'ci'`` (see :data:`SIZES`).
        seed (int): Seed of the crops, the training runs and the sampling.

    Returns:
        dict: Paths of the PNG figures: ``losses``, ``reconstructions``, ``addp_step``,
        ``samples``, ``inpainting``.
    """
    if size not in SIZES:
        raise ValueError(f'size must be one of {list(SIZES)}, got {size!r}.')
    start = time.time()
    out = train_all(work_dir, config_dir, size, seed)
    fig_dir = osp.join(work_dir, 'figures')
    os.makedirs(fig_dir, exist_ok=True)
    paths = {k: osp.join(fig_dir, f'{k}.png')
             for k in ('losses', 'reconstructions', 'addp_step', 'samples', 'inpainting')}
    print('[demo] figures: loss curves, reconstructions, ADDP step', flush=True)
    plot_losses({stage: latest_scalars(osp.join(work_dir, stage))
                 for stage in ('tokenizer', 'predictor', 'addp')}, paths['losses'])
    figure_reconstructions(out['tokenizer'], out['data'], paths['reconstructions'], config_dir)
    figure_addp_step(out, paths['addp_step'], SIZES[size]['num_examples'], seed, config_dir)
    print('[demo] figures: sampling and inpainting with addp_mm.generation', flush=True)
    figure_generation(out, paths, size, seed, config_dir)
    print(f'[demo] finished in {time.time() - start:.0f} s. Figures:', flush=True)
    for k, p in paths.items():
        print(f'  {k:16s} {p}', flush=True)
    return paths
