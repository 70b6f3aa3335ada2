"""The mini paper's detection and segmentation columns: Mask R-CNN and UperNet on digit canvases.

For each initialisation (ADDP, MAE, random) one Runner stage trains the mmdet / mmseg model of
``configs/addp/mini`` on the train canvases (``canvases.write_canvases``) and evaluates it once on
the test canvases:

* detection: mmdet's Mask R-CNN with ``ADDPViTDet`` + ``SimpleFeaturePyramid``
  (:data:`DET_CONFIG`); mmdet's ``CocoMetric``, box and mask AP (and box AP50), in percent;
* segmentation: mmseg's UperNet on mmseg's own ``MAE`` backbone (:data:`SEG_CONFIG`); mmseg's
  ``IoUMetric``, mIoU in percent over background + 10 digits.

The pre-trained encoders reach both through the converter (:func:`addp_mm.checkpoints.convert.
convert_for_target`, what ``tools/model_converters/convert_addp.py --to`` writes): ``mmpretrain``
(``backbone.*`` keys; ``ADDPViTDet`` loads them with ``init_cfg`` prefix ``backbone.``) and
``mmseg-mae`` (mmseg's names plus layer scale 1 and zero relative position tables, sized for the
64 px canvases; ``model.pretrained``). The MAE checkpoint goes through the same functions as
ADDP's (its encoder has the same mmpretrain names). The pre-training-only norms (ADDP's
``pre_norm``, both final norms) are dropped, as in fine-tuning. Random init is each backbone's own
initialisation.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.structures import SegDataSample
from PIL import Image

from addp_mm.checkpoints.loading import load_checkpoint_file
from addp_mm.checkpoints.convert import convert_for_target
from addp_mm.checkpoints.weights import extract_state_dict
from addp_mm.utils.figures import save_grid

from .stages import log, run

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'addp', 'mini')
DET_CONFIG = osp.join(CONFIG_DIR,
                      'vitdet-mask-rcnn_vit-tiny-p4_1xb8-cpu-coslr-450iter_digits-64px.py')
SEG_CONFIG = osp.join(CONFIG_DIR, 'upernet_vit-tiny-p4_1xb8-cpu-600iter_digits-64px.py')
KINDS = ('addp', 'mae', 'random')
#: Input side of both models (the canvases) and heads of the tiny ViT (mmseg-mae tables).
IMG_SIZE = 64
NUM_HEADS = 4
#: ``full``: the configs' iteration counts; ``ci``: the pipeline test (numbers mean nothing).
SIZES = {'full': dict(det=None, seg=None), 'ci': dict(det=2, seg=2)}
#: mmdet's CocoMetric keys -> ours (values in percent).
DET_METRICS = {'bbox_ap': 'coco/bbox_mAP', 'segm_ap': 'coco/segm_mAP',
               'bbox_ap50': 'coco/bbox_mAP_50'}


def backbone_weights(ckpt: str, dst: str, target: str) -> str:
    """Convert a pre-training checkpoint (ADDP or mmpretrain MAE) for a downstream backbone.

    Args:
        ckpt (str): Runner checkpoint of the pre-training (``backbone.*`` keys with mmpretrain
            names; the rest of the model is dropped).
        dst (str): Output file.
        target (str): ``'mmpretrain'`` (``ADDPViTDet``) or ``'mmseg-mae'`` (mmseg's ``MAE``, made
            for :data:`IMG_SIZE` px inputs and :data:`NUM_HEADS` heads).

    Returns:
        str: ``dst``.
    """
    sd = extract_state_dict(load_checkpoint_file(ckpt), ckpt)
    extra = dict(img_size=IMG_SIZE, num_heads=NUM_HEADS) if target == 'mmseg-mae' else {}
    out, notes = convert_for_target(sd, target, keep_norms=False, **extra)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    for note in notes:
        log(f'weights {osp.basename(dst)}: {note}')
    return dst


def det_options(canvases: dict) -> dict:
    # absolute paths: mmdet/mmseg join them to data_root unchanged
    return {
        'train_dataloader.dataset.data_root': canvases['root'],
        'train_dataloader.dataset.ann_file': canvases['train_json'],
        'train_dataloader.dataset.data_prefix': dict(img=canvases['train_images'] + os.sep),
        'test_dataloader.dataset.data_root': canvases['root'],
        'test_dataloader.dataset.ann_file': canvases['test_json'],
        'test_dataloader.dataset.data_prefix': dict(img=canvases['test_images'] + os.sep),
        'test_evaluator.ann_file': canvases['test_json'],
    }


def seg_options(canvases: dict) -> dict:
    options = {}
    for split in ('train', 'test'):
        options[f'{split}_dataloader.dataset.data_root'] = canvases['root']
        options[f'{split}_dataloader.dataset.data_prefix'] = dict(
            img_path=canvases[f'{split}_images'], seg_map_path=canvases[f'{split}_seg_maps'])
    return options


def _fingerprint(path: str) -> str:
    """A short name of a checkpoint file (path, size, modification time). It names the converted
    weights, so a stage trained from another pre-training is not reused as this one's."""
    st = os.stat(path)
    key = f'{osp.abspath(path)}:{st.st_size}:{st.st_mtime_ns}'
    return hashlib.sha1(key.encode()).hexdigest()[:8]


def _stages(task: str, canvases: dict, backbones: Dict[str, Optional[str]], work_dir: str,
            seed: int, size: str) -> Dict[str, dict]:
    """Train and test one task for every initialisation; the stage records by kind."""
    if size not in SIZES:
        raise ValueError(f'size must be one of {sorted(SIZES)}, got {size!r}.')
    unknown = set(backbones) - set(KINDS)
    if unknown:
        raise ValueError(f'unknown backbone kinds {sorted(unknown)}; use {list(KINDS)} (None '
                         'for random init).')
    config, target = ((DET_CONFIG, 'mmpretrain') if task == 'det' else
                      (SEG_CONFIG, 'mmseg-mae'))
    base = det_options(canvases) if task == 'det' else seg_options(canvases)
    if size == 'ci' and task == 'det':
        # a model trained for 2 iterations may score every box below 0.05; CocoMetric then
        # reports nothing at all, and the pipeline test checks that it reports
        base['model.test_cfg.rcnn.score_thr'] = 0.
    records = {}
    for kind in KINDS:
        ckpt = backbones.get(kind)
        options = dict(base)
        if ckpt is None:
            # random init: nothing to load, so no CheckPretrainedKeysHook
            options['custom_hooks'] = [dict(type='FaultToleranceHook')]
        else:
            dst = osp.join(work_dir, 'weights', f'{kind}_{target}_{_fingerprint(ckpt)}.pth')
            backbone_weights(ckpt, dst, target)
            if task == 'det':
                options['model.backbone.init_cfg'] = dict(_delete_=True, type='Pretrained',
                                                          checkpoint=dst, prefix='backbone.')
            else:  # the converter's documented path for mmseg's MAE backbone
                options['model.pretrained'] = dst
        records[kind] = run(f'{task}-{kind}', config, osp.join(work_dir, f'{task}_{kind}'), seed,
                            options, SIZES[size][task], test=True)
    return records


def run_detection(canvases: dict, backbones: Dict[str, Optional[str]], work_dir: str, seed: int,
                  size: str = 'full') -> Dict[str, Dict[str, float]]:
    """Mask R-CNN on the digit canvases for ADDP, MAE and random init.

    Args:
        canvases (dict): What :func:`canvases.write_canvases` returned.
        backbones (dict): ``addp``, ``mae`` -> pre-training Runner checkpoint (ADDP: the ``ADDP``
            model's; MAE: mmpretrain's ``MAE``), ``random`` -> None. A kind set to None (or left
            out) trains from random init.
        work_dir (str): Stages go to ``det_<kind>/``, converted weights to ``weights/``.
        seed (int): Runner seed.
        size (str): ``'full'`` or ``'ci'`` (:data:`SIZES`).

    Returns:
        dict: ``{kind: {'bbox_ap', 'segm_ap', 'bbox_ap50'}}``, COCO AP in percent on the test
        canvases.
    """
    records = _stages('det', canvases, backbones, work_dir, seed, size)
    # mmdet rounds AP to 3 decimals: one decimal in percent
    return {kind: {ours: round(100. * rec['metrics'][theirs], 1)
                   for ours, theirs in DET_METRICS.items()}
            for kind, rec in records.items()}


def run_segmentation(canvases: dict, backbones: Dict[str, Optional[str]], work_dir: str,
                     seed: int, size: str = 'full') -> Dict[str, Dict[str, float]]:
    """UperNet on the digit canvases for ADDP, MAE and random init.

    Args: as :func:`run_detection` (stages go to ``seg_<kind>/``).

    Returns:
        dict: ``{kind: {'miou'}}``, mmseg's mIoU in percent over background + 10 digits on the
        test canvases.
    """
    records = _stages('seg', canvases, backbones, work_dir, seed, size)
    return {kind: {'miou': rec['metrics']['mIoU']} for kind, rec in records.items()}


def stage_seconds(work_dir: str) -> Dict[str, float]:
    """Training + test seconds of each finished stage under ``work_dir``, e.g. ``det_addp``."""
    out = {}
    for task in ('det', 'seg'):
        for kind in KINDS:
            rec = _finished(work_dir, task, kind)
            if rec is not None:
                out[f'{task}_{kind}'] = rec['seconds']
    return out


# ----------------------------------------------------------------------------- figure
def _finished(work_dir: str, task: str, kind: str) -> Optional[dict]:
    done = osp.join(work_dir, f'{task}_{kind}', 'done.json')
    if not osp.isfile(done):
        return None
    with open(done) as f:
        return json.load(f)


def _build(task: str, checkpoint: str):
    """The trained model of a finished stage, in eval mode."""
    cfg = Config.fromfile(DET_CONFIG if task == 'det' else SEG_CONFIG)
    scope = 'mmdet' if task == 'det' else 'mmseg'
    registry = DET_MODELS if task == 'det' else SEG_MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.eval()


def _predict(task: str, model, images: np.ndarray) -> List[np.ndarray]:
    """Per canvas an (H, W) int label map: 0 background, 1 + digit (det: masks of score >= 0.5,
    the higher score on top)."""
    H, W = images.shape[1:3]
    # BGR uint8 (C, H, W), as the loaders give it (the canvases are grey)
    inputs = [torch.from_numpy(np.repeat(img[None], 3, 0)) for img in images]
    meta = dict(img_shape=(H, W), ori_shape=(H, W), pad_shape=(H, W), scale_factor=(1., 1.))
    sample_type = DetDataSample if task == 'det' else SegDataSample
    samples = [sample_type(metainfo=meta) for _ in inputs]
    with torch.no_grad():
        outs = model.test_step(dict(inputs=inputs, data_samples=samples))
    maps = []
    for out in outs:
        if task == 'seg':
            maps.append(out.pred_sem_seg.data[0].numpy().astype(int))
            continue
        pred = out.pred_instances
        label = np.zeros((H, W), int)
        keep = (pred.scores >= 0.5).nonzero().flatten().tolist()
        for i in sorted(keep, key=lambda i: float(pred.scores[i])):  # best drawn last
            label[pred.masks[i].numpy()] = int(pred.labels[i]) + 1
        maps.append(label)
    return maps


def _colour(images: np.ndarray, label_maps: List[np.ndarray], palette: np.ndarray):
    """(N, 3, H, W) float images: the canvas, labelled pixels tinted with their class colour."""
    grey = images.astype(np.float32)[..., None].repeat(3, -1) / 255.
    out = []
    for g, lab in zip(grey, label_maps):
        tint = palette[lab] / 255.
        mix = np.where((lab > 0)[..., None], 0.3 * g + 0.7 * tint, g)
        out.append(torch.from_numpy(mix).permute(2, 0, 1).float())
    return torch.stack(out)


def predictions_figure(canvases: dict, work_dir: str, path: str, num: int = 8) -> str:
    """Test canvases with the predicted masks of the three initialisations side by side.

    Rows: the canvas, the ground truth (stroke pixels coloured by class), Mask R-CNN's masks
    (score >= 0.5) for ADDP, MAE and random init, UperNet's label maps for the same three. Colour
    = class (the palette of the segmentation config; background untinted). Only finished stages
    of ``work_dir`` are drawn.

    Args:
        canvases (dict): What :func:`canvases.write_canvases` returned.
        work_dir (str): The ``work_dir`` of :func:`run_detection` / :func:`run_segmentation`.
        path (str): Output PNG.
        num (int): Canvases (columns): the first ``num`` test canvases.

    Returns:
        str: ``path``.
    """
    names = sorted(os.listdir(canvases['test_images']))[:num]
    images = np.stack([np.asarray(Image.open(osp.join(canvases['test_images'], n)).convert('L'))
                       for n in names])
    truth = [np.asarray(Image.open(osp.join(canvases['test_seg_maps'], n))).astype(int)
             for n in names]
    palette = np.array(Config.fromfile(SEG_CONFIG).metainfo['palette'], np.float32)
    rows, labels = [_colour(images, [np.zeros_like(t) for t in truth], palette),
                    _colour(images, truth, palette)], ['test canvas', 'ground truth']
    titles = dict(addp='ADDP', mae='MAE', random='random init')
    for task, model_name, metric, key, scale in (('det', 'Mask R-CNN', 'mask AP', 'coco/segm_mAP',
                                                  100.), ('seg', 'UperNet', 'mIoU', 'mIoU', 1.)):
        for kind in KINDS:
            rec = _finished(work_dir, task, kind)
            if rec is None:
                continue
            model = _build(task, rec['checkpoint'])
            rows.append(_colour(images, _predict(task, model, images), palette))
            value = scale * rec['metrics'][key]
            labels.append(f'{model_name}\n{titles[kind]}\n({metric} {value:.1f})')
    return save_grid(rows, path, labels,
                     'Test canvases: predicted masks (colour = digit class)')
