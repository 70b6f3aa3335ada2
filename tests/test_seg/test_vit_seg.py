"""The segmentation backbone (mmpretrain's VisionTransformer as configured): conformance with the
official fine-tuning ViT and loading of the converted release."""
import copy
import functools

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.utils import resize_pos_embed

import addp_mm  # noqa: F401
from addp_mm.engine import check_pretrained_keys
from addp_mm.checkpoints.loading import load_checkpoint_file

from ..conftest import assert_close_rel
from ..test_det.conftest import release_backbone_shapes
from .conftest import SEG_B, SEG_L


@functools.lru_cache()
def _shipped_backbone() -> dict:
    """The shipped ViT-B backbone config (read once: parsing the config takes ~0.5 s)."""
    return Config.fromfile(SEG_B).model.backbone.to_dict()


def _out_indices(depth: int) -> list:
    """The shipped ViT-B outputs ([3, 5, 7, 11] of 12 blocks) scaled to ``depth`` blocks; the last
    block is always one of them."""
    shipped = _shipped_backbone()['out_indices']
    assert shipped[-1] == 11
    return sorted({i * depth // 12 for i in shipped[:-1]} | {depth - 1})


def _seg_backbone_cfg(reference, checkpoint: str, **overrides) -> dict:
    """The shipped ViT-B backbone config with the fixture's sizes (the last block is always
    among the outputs)."""
    c = reference.config
    cfg = copy.deepcopy(_shipped_backbone())
    cfg.update(arch=dict(embed_dims=c['dim'], num_layers=c['depth'], num_heads=c['heads'],
                         feedforward_channels=4 * c['dim']),
               out_indices=_out_indices(c['depth']), patch_size=reference.patch_size,
               init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    cfg.update(overrides)
    return cfg


def _build(cfg: dict):
    from mmseg.registry import MODELS
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()  # mmpretrain's VisionTransformer.train() returns None
    return model


def test_tokens_match_official_finetune_vit(reference, converted_fixture):
    """The fixture's official fine-tuning ViT (class token kept, no final norm), loaded from the
    converted release: same tokens after the last block, and the feature maps are those tokens."""
    ref = reference.outputs['finetune_vit']
    x = ref['input_normalized']
    size, grid = reference.img_size, reference.grid
    raw = _build(_seg_backbone_cfg(reference, converted_fixture, img_size=size, out_type='raw'))
    featmap = _build(_seg_backbone_cfg(reference, converted_fixture, img_size=size))
    with torch.no_grad():
        tokens = raw(x)[-1]
        maps = featmap(x)
    assert_close_rel(tokens, ref['tokens_after_blocks'], name='tokens_after_blocks')
    assert_close_rel(tokens[:, 1:].mean(1), ref['avg_patch_tokens'], name='avg_patch_tokens')
    B, N, D = tokens.shape
    assert len(maps) == len(_out_indices(reference.config['depth']))
    assert maps[-1].shape == (B, D, grid, grid)
    torch.testing.assert_close(maps[-1], tokens[:, 1:].transpose(1, 2).reshape(B, D, grid, grid))


def test_fixture_weights_load_at_512_with_no_missing_key(reference, converted_fixture):
    """The shipped setting (img_size 512): every backbone tensor comes from the file, pos_embed
    resized from the pre-training grid (16 x 16 for ADDP) to the 512 px grid (class entry
    kept)."""
    model = _build(_seg_backbone_cfg(reference, converted_fixture))
    size = _shipped_backbone()['img_size']
    grid, new = reference.grid, size // reference.patch_size
    # the check the configs' CheckPretrainedKeysHook runs before training
    report = check_pretrained_keys(model)['']
    assert report['missing'] == [] and report['unexpected'] == []
    file_sd = load_checkpoint_file(converted_fixture)['state_dict']
    for k, v in model.state_dict().items():
        expected = file_sd['backbone.' + k]
        if k == 'pos_embed':
            assert v.shape == (1, 1 + new * new, reference.config['dim'])
            expected = resize_pos_embed(expected, (grid, grid), (new, new), 'bicubic', 1)
        torch.testing.assert_close(v, expected, rtol=0, atol=0, msg=k)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, size, size))
    assert [o.shape for o in outs] == ([(1, reference.config['dim'], new, new)] *
                                       len(_out_indices(reference.config['depth'])))


def test_wrong_checkpoints_fail_the_key_check(reference, converted_fixture, tmp_path):
    from mmseg.registry import MODELS
    # the official release itself (not converted): no 'backbone.' key would load
    model = MODELS.build(_seg_backbone_cfg(reference, reference.path('addp.pth')))
    with pytest.raises(RuntimeError, match='convert_addp.py'):
        check_pretrained_keys(model)
    # a ViT with more blocks than the file (e.g. the ViT-L config with a ViT-B file)
    c = reference.config
    model = MODELS.build(_seg_backbone_cfg(
        reference, converted_fixture, arch=dict(embed_dims=c['dim'], num_layers=c['depth'] + 1,
                                                num_heads=c['heads'],
                                                feedforward_channels=4 * c['dim'])))
    with pytest.raises(RuntimeError, match=rf'layers\.{c["depth"]}\.'):
        check_pretrained_keys(model)


@pytest.mark.parametrize('config', [SEG_B, SEG_L], ids=['base', 'large'])
def test_converted_release_keys_match_full_size_backbone(config):
    """At full size the backbone needs exactly the tensors of a converted release."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config).model.backbone
    with torch.device('meta'):
        seg = MODELS.build(cfg)
    expected = release_backbone_shapes(cfg.arch)
    ours = {k: v.shape for k, v in seg.state_dict().items()}
    assert set(ours) == set(expected)
    D = ours['cls_token'][-1]
    assert expected['pos_embed'] == (1, 257, D) and ours['pos_embed'] == (1, 1025, D)
    assert all(expected[k] == s for k, s in ours.items() if k != 'pos_embed')
