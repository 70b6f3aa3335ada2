"""Pre-processing is part of conformance: the fixture's raw images, as each shipped config loads and
pre-processes them, must give the official model inputs.

Each config's pipeline starts with ``LoadImageFromFile`` (BGR, 0-255), and its data preprocessor
turns that into the network input. The fixture's ``inputs.images`` (RGB in [0, 1]) go in as the
loader would hand them over (x 255, BGR), and come out as:

- pre-training: the [0, 1] RGB input of the official pre-training (``inputs.images`` itself);
- fine-tuning, segmentation, detection: ``finetune_vit.input_normalized`` (ImageNet mean/std,
  RGB), padded at the bottom/right where the config pads;
- generation (inpainting / outpainting / reconstruction): the [0, 1] RGB image the VQGAN reads.

A wrong mean/std or a BGR/RGB swap in any of these configs fails here. The loaders are checked
too: a PNG of the (uint8-rounded) fixture image must load in the order the preprocessors expect.
"""
import copy
import functools
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from ..conftest import REPO_ROOT, assert_close_rel

CONFIGS = osp.join(REPO_ROOT, 'configs', 'addp')
PRETRAIN = [osp.join(CONFIGS, 'addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py'),
            osp.join(CONFIGS, 'addp_vit-large-p16_8xb512-amp-coslr-800e_in1k-256px.py')]
BENCH = osp.join(CONFIGS, 'benchmarks')
FINETUNE = [osp.join(BENCH, 'classification', name) for name in (
    'cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px.py',
    'cls_vit-large-p16_addp-800e-pre_8xb128-amp-coslr-50e_in1k-256px.py',
    'cls_vit-base-p16_addp-1600e-pre_8xb2048-amp-linear-coslr-90e_in1k-256px.py')]
SEG = [osp.join(BENCH, 'segmentation', name) for name in (
    'upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512px.py',
    'upernet_vit-large-p16_addp-800e-pre_8xb2-amp-160000iter_ade20k-512px.py')]
DET = [osp.join(BENCH, 'detection', name) for name in (
    'vitdet-mask-rcnn_vit-base-p16_addp-1600e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py',
    'vitdet-mask-rcnn_vit-large-p16_addp-800e-pre_8xb8-amp-lsj-184375iter_coco-1024px.py')]
GEN = [osp.join(CONFIGS, 'generation', name) for name in (
    'addp_vit-base-p16_1xb32-20steps-cosine_in1k-256px.py',
    'addp_vit-large-p16_1xb32-20steps-cosine_in1k-256px.py',
    'addp_vit-large-p16_1xb32-256steps-linear_in1k-256px.py')]


@functools.lru_cache()
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def load_config(path: str) -> Config:
    """The shipped config (parsed once per file, ~0.5 s each; a copy per test)."""
    return copy.deepcopy(_parsed(path))


def _name(path: str) -> str:
    return osp.basename(path)[:-3]


def loader_view(images: torch.Tensor):
    """(B, 3, H, W) RGB [0, 1] -> what LoadImageFromFile + PackInputs hand over: a list of
    (3, H, W) float BGR tensors in [0, 255]."""
    return [img.flip(0) * 255. for img in images]


def build_preprocessor(cfg: Config, scope: str, default_type: str):
    """The data preprocessor the Runner gives the model: ``model.data_preprocessor``, else the
    top-level ``data_preprocessor`` (mmengine's Runner), with the model's default type."""
    from mmengine.registry import MODELS
    pre = cfg.model.get('data_preprocessor', None) or cfg.get('data_preprocessor', None)
    pre = dict(pre.to_dict() if hasattr(pre, 'to_dict') else pre)
    pre.setdefault('type', default_type)
    with DefaultScope.overwrite_default_scope(scope):
        registry = MODELS if scope == 'mmengine' else _scope_models(scope)
        return registry.build(pre)


def _scope_models(scope: str):
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
    elif scope == 'mmseg':
        import addp_mm  # noqa: F401
        from mmseg.registry import MODELS
    elif scope == 'mmdet':
        import addp_mm.det  # noqa: F401
        from mmdet.registry import MODELS
    else:
        import addp_mm.generation  # noqa: F401
        from mmagic.registry import MODELS
    return MODELS


def run(pre, images: torch.Tensor, training: bool = False, stacked: bool = False) -> torch.Tensor:
    """``stacked``: the config collates with ``default_collate`` (one (B, 3, H, W) tensor)."""
    inputs = loader_view(images)
    out = pre(dict(inputs=torch.stack(inputs) if stacked else inputs, data_samples=None),
              training)
    inputs = out['inputs']
    if isinstance(inputs, (list, tuple)):  # SelfSupDataPreprocessor: one tensor per view
        assert len(inputs) == 1
        inputs = inputs[0]
    return inputs


def check_loader(cfg: Config, scope: str, images: torch.Tensor, tmp_path) -> None:
    """The config's first transform reads a PNG as BGR uint8, the order the preprocessor takes."""
    from mmcv.transforms import LoadImageFromFile  # noqa: F401
    from mmengine.registry import TRANSFORMS
    pipeline = cfg.get('train_pipeline', None) or cfg.test_dataloader.dataset.pipeline
    load = dict(pipeline[0])
    assert load['type'] == 'LoadImageFromFile', load
    rgb = (images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path = str(tmp_path / 'img.png')
    Image.fromarray(rgb).save(path)
    _scope_models(scope)
    with DefaultScope.overwrite_default_scope(scope):
        transform = TRANSFORMS.build(load)
    results = transform(dict(img_path=path, gt=path, gt_path=path))
    img = results.get('img', results.get('gt'))
    assert img.dtype == np.uint8 and np.array_equal(img, rgb[..., ::-1]), 'loader is not BGR'


@pytest.mark.parametrize('path', PRETRAIN, ids=_name)
def test_pretraining_input(reference, path, tmp_path):
    cfg = load_config(path)
    pre = build_preprocessor(cfg, 'mmpretrain', 'SelfSupDataPreprocessor')
    images = reference.inputs['images']
    assert cfg.train_dataloader.collate_fn.type == 'default_collate'
    assert_close_rel(run(pre, images, training=True, stacked=True), images,
                     name=f'{_name(path)} input')
    check_loader(cfg, 'mmpretrain', images, tmp_path)


@pytest.mark.parametrize('path', FINETUNE, ids=_name)
def test_finetuning_input(reference, path, tmp_path):
    cfg = load_config(path)
    pre = build_preprocessor(cfg, 'mmpretrain', 'ClsDataPreprocessor')
    ref = reference.outputs['finetune_vit']['input_normalized']
    assert_close_rel(run(pre, reference.inputs['images']), ref, name=f'{_name(path)} input')
    check_loader(cfg, 'mmpretrain', reference.inputs['images'], tmp_path)


def _padded_matches(ours: torch.Tensor, ref: torch.Tensor, name: str) -> None:
    """``ours`` is ``ref`` in the top-left corner and zeros (the pad value) elsewhere."""
    H, W = ref.shape[-2:]
    assert ours.shape[:2] == ref.shape[:2] and ours.shape[-2] >= H and ours.shape[-1] >= W
    assert_close_rel(ours[..., :H, :W], ref, name=name)
    pad = ours.clone()
    pad[..., :H, :W] = 0
    assert not pad.any(), f'{name}: nonzero padding'


@pytest.mark.parametrize('path', SEG, ids=_name)
def test_segmentation_input(reference, path, tmp_path):
    cfg = load_config(path)
    pre = build_preprocessor(cfg, 'mmseg', 'SegDataPreProcessor')
    ref = reference.outputs['finetune_vit']['input_normalized']
    _padded_matches(run(pre, reference.inputs['images']), ref, _name(path))
    check_loader(cfg, 'mmseg', reference.inputs['images'], tmp_path)


@pytest.mark.parametrize('path', DET, ids=_name)
def test_detection_input(reference, path, tmp_path):
    cfg = load_config(path)
    pre = build_preprocessor(cfg, 'mmdet', 'DetDataPreprocessor')
    ref = reference.outputs['finetune_vit']['input_normalized']
    _padded_matches(run(pre, reference.inputs['images']), ref, _name(path))
    check_loader(cfg, 'mmdet', reference.inputs['images'], tmp_path)


def test_a_channel_swap_or_wrong_statistics_would_fail(reference):
    """The comparisons above can fail: the fine-tuning preprocessor without to_rgb, or with the
    mean/std of another convention, does not give the official input."""
    cfg = load_config(FINETUNE[0])
    ref = reference.outputs['finetune_vit']['input_normalized']
    images = reference.inputs['images']
    for change in (dict(to_rgb=False), dict(mean=[127.5] * 3, std=[127.5] * 3)):
        bad = Config(dict(model=dict(), data_preprocessor=dict(cfg.data_preprocessor, **change)))
        pre = build_preprocessor(bad, 'mmpretrain', 'ClsDataPreprocessor')
        with pytest.raises(AssertionError, match='max abs error'):
            assert_close_rel(run(pre, images), ref, name=str(change))


@pytest.mark.parametrize('path', GEN, ids=_name)
def test_generation_input(reference, path, tmp_path):
    """Generation reads images twice: the real images of FID through the config's pipeline and
    mmagic data preprocessor (which must hand the metrics BGR 0-255, the order mmagic's Inception
    wrapper flips to RGB, like the generator's ``fake_img``), and the user image of
    inpainting / outpainting / reconstruction, which the VQGAN must get as RGB in [0, 1] (the
    pre-training input)."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import TRANSFORMS

    from addp_mm.generation.api import load_image
    images = reference.inputs['images']
    rgb8 = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    paths = []
    for i, img in enumerate(rgb8):
        paths.append(str(tmp_path / f'{i}.png'))
        Image.fromarray(img).save(paths[-1])
    quantized = torch.from_numpy(rgb8).permute(0, 3, 1, 2).float()  # RGB 0-255

    cfg = load_config(path)
    _scope_models('mmagic')
    with DefaultScope.overwrite_default_scope('mmagic'):
        pipeline = [TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline]
    samples = []
    for p in paths:
        results = dict(gt_path=p, img_path=p)
        for t in pipeline:
            results = t(results)
        samples.append(results)
    pre = build_preprocessor(cfg, 'mmagic', 'DataPreprocessor')
    real = pre(pseudo_collate(samples), False)['data_samples'].gt_img
    torch.testing.assert_close(real.float(), quantized.flip(1), rtol=0, atol=1e-3)

    # the user image: RGB in [0, 1] at the generator's size, within uint8 rounding of the raw input
    size = images.shape[-1]
    user = torch.stack([load_image(p, size) for p in paths])
    torch.testing.assert_close(user, quantized / 255., rtol=0, atol=1e-6)
    assert (user - images).abs().max() <= 0.5 / 255 + 1e-6
