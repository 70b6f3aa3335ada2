"""Every shipped classification config: loads, builds at full size, predicts one image, and its
optimizer follows the official layer-decay recipe."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS, TRANSFORMS
from PIL import Image

import addp_mm  # noqa: F401
from .conftest import ALL_CONFIGS, FINETUNE_B, FINETUNE_L, LINEAR_B

# config -> (embed dims, blocks, layer decay, lr at batch 1024 or 16384, drop path, parameters in M)
EXPECTED = {
    FINETUNE_B: (768, 12, 0.65, 4e-3, 0.1, 86.6),
    FINETUNE_L: (1024, 24, 0.8, 1e-3, 0.2, 304.4),
    LINEAR_B: (768, 12, None, 6.4, 0.0, 86.6),
}


def build_full(path: str):
    cfg = Config.fromfile(path)
    model_cfg = cfg.model.copy()
    model_cfg['data_preprocessor'] = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(model_cfg)
    return cfg, model.eval()


def cpu_optim_cfg(optim_wrapper: dict) -> dict:
    """The config's optimizer wrapper as a plain fp32 OptimWrapper (AmpOptimWrapper needs a GPU)."""
    cfg = dict(optim_wrapper)
    cfg['type'] = 'OptimWrapper'
    cfg.pop('loss_scale', None)
    return cfg


def check_layer_decay(model, cfg, L: int, rate: float, lr: float) -> None:
    """Official param_groups_lrd on the full model: lr(i) = lr * rate ** (L + 1 - i)."""
    ow = build_optim_wrapper(model, cpu_optim_cfg(cfg.optim_wrapper))
    lrs = {}
    for g in ow.optimizer.param_groups:
        for n in g['param_names']:
            lrs[n] = (g['lr'], g['weight_decay'])
    assert len(lrs) == len(list(model.parameters()))
    stem = pytest.approx(lr * rate**(L + 1))
    assert lrs['backbone.patch_embed.projection.weight'] == (stem, 0.05)
    assert lrs['backbone.pos_embed'] == (stem, 0.)
    assert lrs['backbone.cls_token'] == (stem, 0.)
    assert lrs['backbone.layers.0.attn.qkv.weight'] == (pytest.approx(lr * rate**L), 0.05)
    assert lrs[f'backbone.layers.{L - 1}.ffn.layers.1.weight'][0] == pytest.approx(lr * rate)
    assert lrs[f'backbone.layers.{L - 1}.ln1.weight'] == (pytest.approx(lr * rate), 0.)
    assert lrs['backbone.ln2.weight'] == (pytest.approx(lr), 0.)
    assert lrs['head.fc.weight'] == (pytest.approx(lr), 0.05)
    assert lrs['head.fc.bias'] == (pytest.approx(lr), 0.)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_full_size_config_predicts_one_image(path, tmp_path):
    cfg, model = build_full(path)
    dims, depth, rate, lr, drop_path, params_m = EXPECTED[path]
    # the checkpoint path is a local file the user makes; missing, it fails with its name
    ckpt_name = osp.basename(cfg.model.backbone.init_cfg.checkpoint)
    with pytest.raises(FileNotFoundError, match=ckpt_name):
        model.init_weights()

    backbone = model.backbone
    assert type(backbone).__name__ == 'VisionTransformer'
    assert (backbone.embed_dims, backbone.num_layers) == (dims, depth)
    assert backbone.patch_resolution == (16, 16)  # img_size 256, patch 16
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, abs=0.1)
    assert backbone.init_cfg['type'] == 'Pretrained' and backbone.init_cfg['prefix'] == 'backbone.'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    if rate is not None:  # fine-tuning: official drop path, no final norm, fc_norm (ln2)
        assert backbone.layers[-1].ffn.dropout_layer.drop_prob == pytest.approx(drop_path)
        assert not backbone.final_norm and hasattr(backbone, 'ln2')
        assert isinstance(backbone.pre_norm, torch.nn.Identity)
        check_layer_decay(model, cfg, depth, rate, lr)
    else:  # linear probe: only the head trains
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable == {'head.fc.weight', 'head.fc.bias'}

    # one real image through the config's test pipeline and the model's predict path (batch 1)
    img = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / 'img.jpg')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose([TRANSFORMS.build(t) for t in cfg.test_pipeline])
    data = default_collate([pipeline(dict(img_path=str(tmp_path / 'img.jpg')))])
    assert data['inputs'].shape == (1, 3, 256, 256)  # Resize(256 short) + CenterCrop(256)
    with torch.no_grad():
        out = model.test_step(data)[0]
    assert out.pred_score.shape == (1000, )
    assert torch.isfinite(out.pred_score).all()
    assert out.pred_score.sum().item() == pytest.approx(1.0, abs=1e-4)
