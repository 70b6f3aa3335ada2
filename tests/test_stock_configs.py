"""Converted ADDP weights in the configs that ship inside the installed stock packages (issue 14).

For each stock config the downstream READMEs show the lines a user changes, in a block marked
``<!-- stock-config: KEY -->`` (and command-line options in ``<!-- stock-config-options: KEY -->``).
These tests read those blocks from the READMEs, so what is tested is exactly what is documented:
the config is loaded from ``<pkg>/.mim/configs`` through its ``_base_ = 'pkg::...'``, the
README's lines are applied, the model is built with the converted fixture release through
``convert_addp.py --check``'s machinery (the config's own ``init_cfg`` / ``pretrained``), every
tensor of the file must reach the backbone bit-equal (only a resized ``pos_embed`` may differ), and
one training loss runs on a small input.

Test-only changes on top of the README lines, so that the models are small: the backbone width,
depth and heads are the fixture's (the README configs are ViT-B), the heads that read the
backbone get that width, SyncBN becomes BN (CPU, one process) and the segmentation heads get fewer
channels. They are applied after the README lines and never touch how the weights are loaded.
"""
import os.path as osp
import re
import shlex

import numpy as np
import pytest
import torch
from mmengine.config import Config

import addp_mm  # noqa: F401
from addp_mm.checkpoints.loading import load_checkpoint_file
from addp_mm.checkpoints.model_check import (build_with_weights, check_config, check_weights,
                                             point_config_at)

from .conftest import REPO_ROOT
from .tool_runs import _run_converter

BENCH = osp.join(REPO_ROOT, 'configs', 'addp', 'benchmarks')


def readme_block(folder: str, key: str) -> str:
    with open(osp.join(BENCH, folder, 'README.md')) as f:
        text = f.read()
    m = re.search(rf'<!-- stock-config: {re.escape(key)} -->\s*```python\n(.*?)```', text, re.S)
    assert m, f'no stock-config block {key!r} in {folder}/README.md'
    return m.group(1)


def readme_options(folder: str, key: str) -> list:
    with open(osp.join(BENCH, folder, 'README.md')) as f:
        text = f.read()
    m = re.search(rf'<!-- stock-config-options: {re.escape(key)} -->\s*```bash\n(.*?)```', text,
                  re.S)
    if not m:
        return []
    tokens = shlex.split(m.group(1).replace('\\\n', ' '))
    assert tokens[0] == '--cfg-options'
    return tokens[1:]


def readme_config(tmp_path, folder: str, key: str, checkpoint: str) -> Config:
    """The stock config with exactly the README's lines (checkpoint path -> ``checkpoint``)."""
    text = readme_block(folder, key)
    paths = set(re.findall(r"'(checkpoints/[^']+)'", text))
    assert len(paths) == 1, paths
    path = tmp_path / f'{key}.py'
    path.write_text(text.replace(paths.pop(), str(checkpoint)))
    cfg = Config.fromfile(str(path))
    options = readme_options(folder, key)
    if options:  # parsed as tools/train.py parses --cfg-options
        import argparse

        from mmengine.config import DictAction
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def _convert(reference, tmp_path, target):
    dst = tmp_path / f'addp_{target}.pth'
    code, out = _run_converter(reference.path('addp.pth'), dst, '--to', target, '--num-heads',
                               reference.config['heads'])
    assert code == 0, out
    return str(dst), out


def _arch(reference):
    c = reference.config
    return dict(embed_dims=c['dim'], num_layers=c['depth'], num_heads=c['heads'],
                feedforward_channels=4 * c['dim'])


def _file_tensors(path):
    ckpt = load_checkpoint_file(path)
    return ckpt.get('state_dict', ckpt.get('model'))


# ------------------------------------------------------------------------------------- mmpretrain


def _mmpretrain_tiny(cfg, reference):
    cfg.model.backbone.arch = _arch(reference)
    cfg.model.head.in_channels = reference.config['dim']
    return cfg


def test_mmpretrain_mae_finetune(reference, tmp_path):
    from mmpretrain.structures import DataSample
    ckpt, _ = _convert(reference, tmp_path, 'mmpretrain')
    cfg = _mmpretrain_tiny(readme_config(tmp_path, 'classification', 'mmpretrain-mae-vit-b', ckpt),
                           reference)
    assert cfg.model.backbone.img_size == 256
    assert cfg.train_dataloader.dataset.pipeline[1].scale == 256
    assert cfg.test_dataloader.dataset.pipeline[2].crop_size == 256
    report = check_weights(cfg, ckpt)
    file_sd = _file_tensors(ckpt)
    assert report.ok and report.missing == [] and report.transformed == []
    assert sorted('backbone.' + k for k in report.loaded) == sorted(file_sd)  # all, bit-equal
    assert report.unexpected == [] and report.new_layers == ['ln2.weight', 'ln2.bias']

    point_config_at(cfg, ckpt)
    model = build_with_weights(cfg)
    model.train()
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
             data_samples=[DataSample().set_gt_label(i) for i in (3, 7)]), training=True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0


def test_mmpretrain_224_resizes_pos_embed_and_says_so(reference, tmp_path):
    """The stock img_size=224 with ADDP weights: pos_embed is resized at load (the README's
    note)."""
    ckpt, _ = _convert(reference, tmp_path, 'mmpretrain')
    cfg = _mmpretrain_tiny(readme_config(tmp_path, 'classification', 'mmpretrain-mae-vit-b', ckpt),
                           reference)
    cfg.model.backbone.img_size = 224
    report = check_weights(cfg, ckpt)
    assert report.ok and report.transformed == ['pos_embed']


def test_check_catches_a_forgotten_prefix_and_a_wrong_target(reference, tmp_path):
    ckpt, _ = _convert(reference, tmp_path, 'mmpretrain')
    cfg = _mmpretrain_tiny(readme_config(tmp_path, 'classification', 'mmpretrain-mae-vit-b', ckpt),
                           reference)
    cfg.model.backbone.init_cfg.pop('prefix')
    report = check_weights(cfg, ckpt)
    assert not report.ok and 'pos_embed' in report.missing and report.loaded == []
    assert any("prefix='backbone.'" in h for h in report.hints)
    # the CLI exits non-zero on it
    cfg_path = tmp_path / 'no_prefix.py'
    cfg.dump(str(cfg_path))
    code, out = _run_converter(ckpt, '--check', cfg_path)
    assert code == 1 and 'MISSING' in out and 'check FAILED' in out


# ------------------------------------------------------------------------------------------ mmseg


def _mmseg_tiny(cfg, reference):
    D, L = reference.config['dim'], reference.config['depth']
    idx = list(range(L))[-4:]
    n = len(idx)
    bn = dict(type='BN', requires_grad=True)
    cfg.model.backbone.update(embed_dims=D, num_layers=L, num_heads=reference.config['heads'],
                              out_indices=idx)
    if n == 4:
        cfg.model.neck.embed_dim = D
    else:  # Feature2Pyramid needs 4 maps; a fixture with fewer blocks feeds the heads directly
        cfg.model.neck = None
    cfg.model.decode_head.update(in_channels=[D] * n, in_index=list(range(n)), channels=32,
                                 norm_cfg=bn)
    cfg.model.auxiliary_head.update(in_channels=D, in_index=n - 1, channels=16, norm_cfg=bn)
    return cfg


def test_mmseg_mae_upernet(reference, tmp_path):
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    ckpt, out = _convert(reference, tmp_path, 'mmseg-mae')
    assert 'relative position bias' in out
    cfg = _mmseg_tiny(readme_config(tmp_path, 'segmentation', 'mmseg-mae-upernet', ckpt),
                      reference)
    assert cfg.model.pretrained == ckpt and cfg.model.backbone.type == 'MAE'
    report = check_weights(cfg, ckpt)
    file_sd = _file_tensors(ckpt)
    assert report.ok and report.missing == [] and report.unexpected == []
    assert report.transformed == ['pos_embed']  # 16 x 16 -> the 32 x 32 grid of 512 px
    assert sorted(report.loaded + report.transformed) == sorted(file_sd)

    point_config_at(cfg, ckpt)
    model = build_with_weights(cfg)
    model.train()
    samples = []
    for seed in (0, 1):  # 2 images: BatchNorm after the 1 x 1 pooling of UPerHead needs > 1 value
        sample = SegDataSample(gt_sem_seg=PixelData(
            data=torch.from_numpy(np.random.default_rng(seed).integers(0, 150, (1, 512, 512)))))
        sample.set_metainfo(dict(img_shape=(512, 512), pad_shape=(512, 512),
                                 ori_shape=(512, 512)))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 512, 512), dtype=torch.uint8) for _ in samples],
             data_samples=samples), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


def test_mmseg_mae_loads_nothing_from_a_backbone_prefixed_file(reference, tmp_path):
    """The silent trap of the issue: the mmpretrain file given to mmseg's MAE. --check says so."""
    ckpt, _ = _convert(reference, tmp_path, 'mmpretrain')
    cfg = _mmseg_tiny(readme_config(tmp_path, 'segmentation', 'mmseg-mae-upernet', ckpt),
                      reference)
    report = check_weights(cfg, ckpt)
    assert not report.ok and report.loaded == [] and report.transformed == []
    assert any('--to mmseg-mae' in h for h in report.hints)


# ------------------------------------------------------------------------------------------- mmdet


def test_mmdet_mask_rcnn(reference, tmp_path):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    ckpt, _ = _convert(reference, tmp_path, 'mmpretrain')
    cfg = readme_config(tmp_path, 'detection', 'mmdet-mask-rcnn', ckpt)
    c = reference.config
    cfg.model.backbone.arch = dict(embed_dims=c['dim'], num_layers=c['depth'],
                                   num_heads=c['heads'])
    cfg.model.neck.in_channels = c['dim']
    report = check_weights(cfg, ckpt)
    file_sd = _file_tensors(ckpt)
    assert report.ok and report.missing == [] and report.transformed == []
    assert report.unexpected == ['backbone.cls_token']  # ViTDet-style: no class token
    assert sorted('backbone.' + k for k in report.loaded + ['cls_token']) == sorted(file_sd)

    point_config_at(cfg, ckpt)
    model = build_with_weights(cfg)
    model.train()
    masks = np.zeros((1, 64, 64), np.uint8)
    masks[0, 8:40, 8:40] = 1
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1., 1.), pad_shape=(64, 64)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 40., 40.]]),
                                       labels=torch.tensor([0]), masks=BitmapMasks(masks, 64, 64))
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)],
             data_samples=[sample]), training=True)
    losses = model(**data, mode='loss')
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k and isinstance(v, torch.Tensor))
    assert torch.isfinite(total)


# ---------------------------------------------------------------------------------- timm / ViTDet


def test_timm_file_loads_strictly_into_timm_and_computes_the_same_features(reference, tmp_path):
    timm = pytest.importorskip('timm')
    from mmpretrain.models import VisionTransformer
    c = reference.config
    timm_ckpt, _ = _convert(reference, tmp_path, 'timm')
    mmp_ckpt, _ = _convert(reference, tmp_path, 'mmpretrain')
    tsd = load_checkpoint_file(timm_ckpt)
    assert set(tsd) == {'model'}
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=256, patch_size=16, embed_dim=c['dim'], depth=c['depth'], num_heads=c['heads'],
        global_pool='avg', num_classes=0)
    missing, unexpected = vit.load_state_dict(tsd['model'], strict=False)
    assert sorted(missing) == ['fc_norm.bias', 'fc_norm.weight'] and unexpected == []
    ours = VisionTransformer(arch=_arch(reference), img_size=256, out_type='raw', final_norm=False,
                             init_cfg=dict(type='Pretrained', checkpoint=mmp_ckpt,
                                           prefix='backbone.'))
    ours.init_weights()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        a, b = vit.forward_features(x), ours(x)[-1]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_vitdet_file_has_the_vitdet_vit_names_and_shapes(reference, tmp_path):
    """mmdet's projects/ViTDet is not installed: check the file against its ``ViT``'s parameters
    (patch_embed.proj, pos_embed with the class entry for pretrain_img_size=256, blocks.N.{norm1,
    attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}; rel_pos_h/w are zero-initialised in the ViT and
    in no pre-trained file), read from ``ckpt['model']`` as its init_weights does."""
    c = reference.config
    D, L = c['dim'], c['depth']
    ckpt, out = _convert(reference, tmp_path, 'vitdet')
    assert 'dropped cls_token' in out and 'pretrain_img_size=256' in out
    sd = load_checkpoint_file(ckpt)['model']
    expected = {'patch_embed.proj.weight': (D, 3, 16, 16), 'patch_embed.proj.bias': (D, ),
                'pos_embed': (1, 1 + 16 * 16, D)}
    for i in range(L):
        for name, shape in (('norm1', (D, )), ('attn.qkv', (3 * D, D)), ('attn.proj', (D, D)),
                            ('norm2', (D, )), ('mlp.fc1', (4 * D, D)), ('mlp.fc2', (D, 4 * D))):
            expected[f'blocks.{i}.{name}.weight'] = shape
            expected[f'blocks.{i}.{name}.bias'] = (shape[0], )
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    timm_sd = load_checkpoint_file(_convert(reference, tmp_path, 'timm')[0])['model']
    assert all(torch.equal(v, timm_sd[k]) for k, v in sd.items())


# ------------------------------------------------------------------------------ mmagic, load_from


def test_check_follows_load_from_for_an_mmagic_generator(tmp_path):
    """An mmagic config without a Pretrained backbone takes its weights through ``load_from``;
    all its tensors are frozen, so every one counts."""
    import addp_mm.generation  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'addp', 'generation',
                                   'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py'))
    sd = build_with_weights(cfg).state_dict()
    torch.manual_seed(1)
    good = tmp_path / 'gen.pth'
    torch.save({'state_dict': {k: v + torch.randn_like(v) if v.is_floating_point() else v
                               for k, v in sd.items()}}, good)
    report = check_weights(cfg, str(good), verbose=False)
    assert report.mechanism == 'load_from' and report.ok and report.unexpected == []
    assert len(report.loaded) == len([k for k in sd if k.startswith('backbone.')])
    bad = tmp_path / 'bare.pth'  # the encoder without its 'backbone.' prefix
    torch.save({'state_dict': {k[len('backbone.'):]: v for k, v in sd.items()
                               if k.startswith('backbone.')}}, bad)
    report = check_weights(cfg, str(bad), verbose=False)
    assert not report.ok and report.loaded == []


def test_package_config_names_resolve_to_the_installed_files():
    from addp_mm.checkpoints.model_check import resolve_config_path
    path = resolve_config_path('mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py')
    assert osp.isfile(path) and osp.join('mmseg', '.mim', 'configs') in path
    with pytest.raises(FileNotFoundError):
        resolve_config_path('mmseg::mae/nope.py')


def _mmseg_options(reference, crop=None, img=None):
    """--cfg-options that shrink the stock mmseg MAE config to the fixture's width and depth, and
    set the crop and the backbone's input size."""
    c = reference.config
    D = c['dim']
    options = [f'model.backbone.embed_dims={D}', f'model.backbone.num_layers={c["depth"]}',
               f'model.backbone.num_heads={c["heads"]}', 'model.backbone.out_indices=[0,1]',
               'model.neck=None', f'model.decode_head.in_channels=[{D},{D}]',
               'model.decode_head.in_index=[0,1]', 'model.decode_head.channels=16',
               f'model.auxiliary_head.in_channels={D}', 'model.auxiliary_head.in_index=1',
               'model.auxiliary_head.channels=16']
    if img:
        options.append(f'model.backbone.img_size=({img},{img})')
    if crop:
        options.append(f'crop_size=({crop},{crop})')
    return options


def test_cli_converts_and_checks_against_the_installed_mmseg_config(reference, tmp_path):
    """The README's command with a ``pkg::`` config name; --cfg-options only shrink the model."""
    c = reference.config
    options = _mmseg_options(reference)
    config = 'mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py'
    code, out = _run_converter(reference.path('addp.pth'), tmp_path / 'seg.pth', '--to',
                               'mmseg-mae', '--num-heads', c['heads'], '--check', config,
                               '--cfg-options', *options)
    assert code == 0, out
    n = len(_file_tensors(tmp_path / 'seg.pth'))
    assert f'{n} of {n} trainable tensors loaded ({n - 1} bit-equal' in out
    assert 'check passed' in out and 'via model.pretrained' in out
    # the backbone-prefixed file fails the same check: exit status 1
    code, out = _run_converter(reference.path('addp.pth'), tmp_path / 'bb.pth', '--to',
                               'mmpretrain', '--check', config, '--cfg-options', *options)
    assert code == 1 and 'check FAILED' in out and '--to mmseg-mae' in out


MMSEG_MAE = 'mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py'


def test_mmseg_mae_tables_follow_the_config(reference, tmp_path):
    """A 640 px crop and heads 16 wide (not 64): --check CONFIG makes the relative position tables
    for them, and every tensor loads bit-equal (pos_embed resized by mmseg at load)."""
    c = reference.config
    assert c['dim'] // c['heads'] != 64
    options = _mmseg_options(reference, crop=640, img=640)
    dst = tmp_path / 'seg640.pth'
    code, out = _run_converter(reference.path('addp.pth'), dst, '--to', 'mmseg-mae', '--check',
                               MMSEG_MAE, '--cfg-options', *options)
    assert code == 0, out
    assert (f'relative position tables for 640x640 px inputs (model.backbone.img_size) and '
            f'{c["heads"]} heads (model.backbone.num_heads)') in out
    file_sd = _file_tensors(dst)
    assert file_sd['layers.0.attn.relative_position_bias_table'].shape == ((2 * 40 - 1)**2 + 3,
                                                                           c['heads'])
    report = check_config(MMSEG_MAE, dst, cfg_options=options, verbose=False)
    assert report.ok and report.missing == [] and report.size_mismatch == []
    assert report.transformed == ['pos_embed']  # 16 x 16 -> 40 x 40, by mmseg at load
    assert sorted(report.loaded + report.transformed) == sorted(file_sd)


def test_mmseg_mae_flags_that_disagree_with_the_config_are_refused(reference, tmp_path):
    options = _mmseg_options(reference, crop=640, img=640)
    heads = reference.config['heads']
    for flags, named in ((['--img-size', '512'], '--img-size 512 disagrees'),
                         (['--num-heads', str(heads + 1)], f'--num-heads {heads + 1} disagrees')):
        code, out = _run_converter(reference.path('addp.pth'), tmp_path / 'x.pth', '--to',
                                   'mmseg-mae', *flags, '--check', MMSEG_MAE, '--cfg-options',
                                   *options, refusals=True)
        assert isinstance(code, str) and named in code and 'drop' in code, (flags, code)
    # a crop the backbone is not built for
    code, _ = _run_converter(reference.path('addp.pth'), tmp_path / 'x.pth', '--to', 'mmseg-mae',
                             '--check', MMSEG_MAE, '--cfg-options',
                             *_mmseg_options(reference, crop=640, img=512), refusals=True)
    assert isinstance(code, str) and 'set model.backbone.img_size=(640, 640)' in code
    assert not (tmp_path / 'x.pth').exists()


def test_check_names_img_size_and_num_heads_when_the_tables_do_not_fit(reference, tmp_path):
    """The default tables (512 px, embed_dims // 64 heads) against the 640 px config: mmseg cannot
    load them (it would resize with scipy's interp2d); --check says which flags fix it."""
    dst = tmp_path / 'seg512.pth'
    code, out = _run_converter(reference.path('addp.pth'), dst, '--to', 'mmseg-mae',
                               '--num-heads', '1' if reference.config['dim'] % 64 == 0 else
                               str(reference.config['heads']))
    assert code == 0, out
    report = check_config(MMSEG_MAE, dst, cfg_options=_mmseg_options(reference, 640, 640),
                          verbose=False)
    assert not report.ok and report.error is not None
    hint = next(h for h in report.hints if 'relative position bias tables' in h)
    assert f'--img-size 640 --num-heads {reference.config["heads"]}' in hint
    assert '--to mmseg-mae --check CONFIG' in hint
