"""Every config name follows the one grammar of configs/addp/README.md ("Config names", issue 15).

{algorithm}_{backbone}[_{pretrain}-pre]_{N}xb{B}[-{trick}...]-{schedule}_{dataset}[-{k}shot]-{res}px

Three checks: each name parses (closed vocabularies, tricks in their documented order, the
pre-training segment only where a downstream config loads a pre-trained backbone); each name says
what its config does (batch, schedule, resolution and every trick are read back from the config);
each metafile ``Config:`` exists, is named as its entry, and every config is listed in a metafile.
Bad names from before the renaming are negative cases: the parser must refuse each with a reason.
"""
import glob
import os.path as osp
import re
from typing import Dict

import pytest
import yaml
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')

# The vocabularies of configs/addp/README.md, "Config names". A new value goes into that table and
# here together.
PRETRAIN_ALGORITHMS = ('addp', 'mage', 'mae', 'vqgan')
DOWNSTREAM_ALGORITHMS = ('cls', 'vitdet-mask-rcnn', 'upernet')
SIZES = ('toy', 'tiny', 'base', 'large')
# in the order names use
TRICKS = ('cpu', 'tokenbank', 'amp', 'linear', 'lsj', 'lpips', 'gan', 'coslr')
MASK_SCHEDULES = ('cosine', 'linear')
DATASETS = ('in1k', 'coco', 'ade20k', 'imagefolder', 'digits')

_ALT = '|'.join
NAME_RE = re.compile(
    rf'''^(?P<algorithm>{_ALT(PRETRAIN_ALGORITHMS + DOWNSTREAM_ALGORITHMS)})
    _(?P<backbone>vit-(?:{_ALT(SIZES)})-p\d+|maskgit-(?:{_ALT(SIZES)})-f\d+-c\d+)
    (?:_(?P<pretrain>(?:{_ALT(PRETRAIN_ALGORITHMS)})-[1-9]\d*e)-pre)?
    _(?P<gpus>[1-9]\d*)xb(?P<batch>[1-9]\d*)
    (?P<tricks>(?:-[a-z][a-z0-9]*)*?)
    -(?P<schedule>[1-9]\d*(?:e|iter)|[1-9]\d*steps-(?:{_ALT(MASK_SCHEDULES)}))
    _(?P<dataset>{_ALT(DATASETS)})(?:-(?P<shots>[1-9]\d*)shot)?
    -(?P<res>[1-9]\d*)px$''', re.X)


def parse_config_name(name: str) -> Dict[str, str]:
    """Split a config name (file name without ``.py``) into its segments.

    Raises:
        ValueError: the name does not follow the grammar; the message says what is wrong.
    """
    match = NAME_RE.match(name)
    if match is None:
        raise ValueError(
            f'{name!r} does not parse as {{algorithm}}_{{backbone}}[_{{pretrain}}-pre]_{{N}}xb{{B}}'
            '[-{trick}...]-{schedule}_{dataset}[-{k}shot]-{res}px (configs/addp/README.md, '
            '"Config names")')
    fields = match.groupdict()
    tricks = [t for t in fields['tricks'].split('-') if t]
    unknown = [t for t in tricks if t not in TRICKS]
    if unknown:
        raise ValueError(f'{name!r}: unknown trick(s) {unknown}; the tricks are {TRICKS}')
    if tricks != sorted(set(tricks), key=TRICKS.index):
        raise ValueError(f'{name!r}: tricks {tricks} repeat or are out of the order {TRICKS}')
    fields['tricks'] = tricks
    downstream = fields['algorithm'] in DOWNSTREAM_ALGORITHMS
    if fields['pretrain'] and not downstream:
        raise ValueError(f'{name!r}: only downstream configs name a pre-training (-pre)')
    steps = fields['schedule'].endswith(MASK_SCHEDULES)
    if steps and fields['algorithm'] != 'addp':
        raise ValueError(f'{name!r}: a steps schedule is for generation (addp) configs')
    return fields


def _config_files():
    files = glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(f, REPO_ROOT) for f in files
                  if '_base_' not in osp.relpath(f, CONFIG_ROOT).split(osp.sep))


CONFIG_FILES = _config_files()


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


@pytest.mark.parametrize('bad,reason', [
    # names from before the renaming (issue 15)
    ('addp_vit-base-p16_8xb512-amp-coslr-1600e_in1k', 'does not parse'),  # no resolution
    ('mask-rcnn_vit-base-p16-addp-pre_simplefpn_lsj-100e_coco', 'does not parse'),  # no NxbB
    ('addp-vit-base_upernet_8xb2-amp-160k_ade20k-512x512', 'does not parse'),  # no -p16, 512x512
    ('addp_vit-toy-p16_8steps-cosine_cpu-64px', 'does not parse'),  # cpu as the dataset
    ('vqgan_f16-c1024_8xb32-200k_imagefolder-256px', 'does not parse'),  # 200k, no backbone
    ('vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px', 'does not parse'),  # no model
    # each rule on its own
    ('addp_vit-base-p16_8xb512-coslr-amp-1600e_in1k-256px', 'out of the order'),
    ('addp_vit-base-p16_8xb512-amp-amp-1600e_in1k-256px', 'repeat'),
    ('addp_vit-base-p16_8xb512-fp16-1600e_in1k-256px', 'unknown trick'),
    ('addp_vit-base-p16_addp-800e-pre_8xb512-amp-1600e_in1k-256px', 'only downstream'),
    ('mage_vit-base-p16_1xb32-20steps-cosine_in1k-256px', 'steps schedule'),
    ('upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160k_ade20k-512px', 'does not parse'),
    ('upernet_vit-base-p16_addp-1600e-pre_8xb2-amp-160000iter_ade20k-512x512', 'does not parse'),
    ('cls_vit-base_addp-1600e-pre_8xb128-amp-coslr-100e_in1k-256px', 'does not parse'),
    ('cls_vit-base-p16_addp-1600e-pre_8xb128-amp-coslr-100e_imagenet-256px', 'does not parse'),
])
def test_bad_names_are_refused(bad, reason):
    with pytest.raises(ValueError, match=reason):
        parse_config_name(bad)


def test_a_good_name_parses_into_its_segments():
    fields = parse_config_name(
        'cls_vit-base-p16_addp-1600e-pre_8xb2048-amp-linear-coslr-90e_in1k-256px')
    assert fields == dict(algorithm='cls', backbone='vit-base-p16', pretrain='addp-1600e',
                          gpus='8', batch='2048', tricks=['amp', 'linear', 'coslr'],
                          schedule='90e', dataset='in1k', shots=None, res='256')
    fields = parse_config_name('addp_vit-large-p16_1xb32-256steps-linear_in1k-256px')
    assert (fields['tricks'], fields['schedule']) == ([], '256steps-linear')


def test_there_are_configs():
    # every folder of configs/addp with configs, so a broken glob cannot pass the tests below
    folders = {osp.dirname(f) for f in CONFIG_FILES}
    assert {'configs/addp', 'configs/addp/generation', 'configs/addp/from_scratch',
            'configs/addp/mini', 'configs/addp/benchmarks/classification',
            'configs/addp/benchmarks/detection', 'configs/addp/benchmarks/segmentation'} <= folders


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_config_name_parses(path):
    parse_config_name(_stem(path))


def _schedulers(cfg):
    scheds = cfg.get('param_scheduler') or []
    return [scheds] if isinstance(scheds, dict) else list(scheds)


def _resolution(cfg) -> int:
    """The input side of the config's model, in pixels."""
    if 'image_size' in cfg:  # detection: the LSJ crop
        return cfg.image_size[0]
    model = cfg.model
    for key in ('backbone', 'vqgan', 'target_generator'):
        part = model.get(key) or {}
        for field in ('img_size', 'resolution'):
            if field in part:
                return part[field]
    raise AssertionError('no resolution found in the model')


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_config_name_says_what_the_config_does(path):
    """The name's batch, schedule, resolution and tricks are those of the config itself."""
    name = parse_config_name(_stem(path))
    cfg = Config.fromfile(osp.join(REPO_ROOT, path), import_custom_modules=False)
    model = cfg.model
    generation = model.type == 'ADDPGenerator'
    gpus, batch = int(name['gpus']), int(name['batch'])
    loader = cfg.test_dataloader if generation else cfg.train_dataloader
    assert loader.batch_size == batch, 'B is the per-GPU batch of the (train) dataloader'
    if cfg.get('auto_scale_lr', {}).get('base_batch_size'):
        assert cfg.auto_scale_lr.base_batch_size == gpus * batch, 'N x B is the total batch'
    assert _resolution(cfg) == int(name['res']), 'res: the side of the model input'

    schedule = name['schedule']
    number = int(re.match(r'\d+', schedule).group())
    if generation:
        assert schedule == f'{model.num_steps}steps-{model.schedule}'
    elif schedule.endswith('iter'):
        assert cfg.train_cfg.get('type', 'IterBasedTrainLoop') == 'IterBasedTrainLoop'
        assert cfg.train_cfg.max_iters == number
    else:
        assert (cfg.train_cfg.get('type') == 'EpochBasedTrainLoop'
                or cfg.train_cfg.get('by_epoch') is True), 'an {n}e schedule counts epochs'
        assert cfg.train_cfg.max_epochs == number

    tricks = set(name['tricks'])
    env = cfg.get('env_cfg', {}).get('dist_cfg', {})
    assert ('cpu' in tricks) == (env.get('backend') == 'gloo'), 'cpu: a gloo (CPU) runtime'
    if generation:
        assert not tricks - {'cpu'}, 'generation configs have no training tricks'
        return
    assert ('amp' in tricks) == (cfg.optim_wrapper.get('type') == 'AmpOptimWrapper'), \
        'amp: an AmpOptimWrapper'
    cosine = any(s['type'] == 'CosineAnnealingLR' for s in _schedulers(cfg))
    assert ('coslr' in tricks) == cosine, 'coslr: a cosine learning-rate decay'
    assert ('tokenbank' in tricks) == (loader.dataset.type == 'TokenBankDataset'), \
        'tokenbank: trains on a token bank (fixed crops, tokenized once)'
    assert ('lpips' in tricks) == bool(model.get('perceptual_loss')), 'lpips: a perceptual loss'
    assert ('gan' in tricks) == bool(model.get('discriminator')), 'gan: a discriminator'
    frozen = bool(model.get('backbone', {}).get('frozen_stages'))
    assert ('linear' in tricks) == frozen, 'linear: a linear probe of a frozen backbone'
    if 'lsj' in tricks:
        resize = [t for t in cfg.train_pipeline if t['type'] == 'RandomResize']
        assert resize and resize[0]['ratio_range'] == (0.1, 2.0), 'lsj: large-scale jitter'

    init = model.get('backbone', {}).get('init_cfg') or {}
    pretrained = isinstance(init, dict) and init.get('type') == 'Pretrained'
    assert bool(name['pretrain']) == pretrained, \
        '{pretrain}-pre exactly when the config loads a pre-trained backbone'
    if name['shots']:
        assert f"{name['shots']}shot" in loader.dataset.ann_file


def _metafiles():
    return sorted(glob.glob(osp.join(CONFIG_ROOT, '**', 'metafile.yml'), recursive=True))


def test_metafiles_list_every_config_once():
    listed = []
    for metafile in _metafiles():
        with open(metafile) as f:
            models = yaml.safe_load(f)['Models']
        for model in models:
            config = model['Config']
            assert osp.isfile(osp.join(REPO_ROOT, config)), f'{metafile}: {config} does not exist'
            assert osp.dirname(osp.join(REPO_ROOT, config)) == osp.dirname(metafile), \
                f'{metafile}: {config} is not in the metafile\'s folder'
            assert model['Name'] == _stem(config), f'{metafile}: Name is not the config name'
            listed.append(config)
    assert sorted(listed) == CONFIG_FILES, 'each config is listed in exactly one metafile'
