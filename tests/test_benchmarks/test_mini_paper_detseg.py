"""The mini paper's detection and segmentation columns (benchmarks/mini_paper_parts/{canvases,
detseg}.py): the digit canvases, and both columns end to end at the CI size with the real Runner,
mmdet's Mask R-CNN and mmseg's UperNet (a few iterations; the numbers mean nothing)."""
import glob
import json
import math
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCHMARKS = osp.join(REPO, 'benchmarks')
MINI_CONFIGS = osp.join(REPO, 'configs', 'addp', 'mini')
if BENCHMARKS not in sys.path:  # mini_paper_parts lives beside benchmarks/mini_paper.py
    sys.path.insert(0, BENCHMARKS)

from mini_paper_parts import canvases as cv  # noqa: E402
from mini_paper_parts import detseg  # noqa: E402
from mini_paper_parts.data import write_digits  # noqa: E402


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    return write_digits(str(tmp_path_factory.mktemp('digits')), 0)


@pytest.fixture(scope='module')
def canvases(digits, tmp_path_factory):
    return cv.write_canvases(digits['root'], str(tmp_path_factory.mktemp('canvases')), 5,
                             num_train=12, num_test=6)


def _coco(path):
    with open(path) as f:
        return json.load(f)


def _masks(coco):
    """image id -> [(annotation, (64, 64) bool mask)]."""
    from pycocotools import mask as mask_utils
    out = {im['id']: [] for im in coco['images']}
    for ann in coco['annotations']:
        out[ann['image_id']].append((ann, mask_utils.decode(ann['segmentation']).astype(bool)))
    return out


def _split_list(digits, split):
    return dict(cv.read_digit_list(digits['root'], split))


@pytest.mark.parametrize('split', ['train', 'test'])
def test_instances_match_images_label_maps_and_sources(digits, canvases, split):
    """Masks are the stroke pixels (>= threshold) of one digit each, never overlapping; boxes are
    their extents; labels are the classes of the scans they came from; the label map is the
    union of the masks with label 1 + class."""
    coco = _coco(canvases[f'{split}_json'])
    assert [c['name'] for c in coco['categories']] == list(cv.DIGIT_CLASSES)
    assert len(coco['images']) == canvases[f'num_{split}']
    assert len(coco['annotations']) == canvases['instances'][split]
    classes = _split_list(digits, split)
    for image in coco['images']:
        name = image['file_name']
        img = np.asarray(Image.open(osp.join(canvases[f'{split}_images'], name)))
        label_map = np.asarray(Image.open(osp.join(canvases[f'{split}_seg_maps'], name)))
        assert img.shape == label_map.shape == (cv.CANVAS, cv.CANVAS)
        instances = _masks(coco)[image['id']]
        assert 1 <= len(instances) <= cv.MAX_DIGITS
        union = np.zeros(img.shape, int)
        expected_map = np.zeros(img.shape, np.uint8)
        boxes = []
        for ann, mask in instances:
            union += mask
            expected_map[mask] = ann['category_id']
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]
            assert ann['area'] == mask.sum() and ann['iscrowd'] == 0
            # the label is the class of the scan the digit came from
            assert classes[ann['source']] == ann['category_id'] - 1
            boxes.append(ann['bbox'])
        assert union.max() == 1, 'masks overlap'
        for i, (x, y, w, h) in enumerate(boxes):
            for x2, y2, w2, h2 in boxes[i + 1:]:
                assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, 'boxes overlap'
        # the strokes are exactly the bright pixels; the faint rims are background
        np.testing.assert_array_equal(union.astype(bool), img >= cv.STROKE_THRESHOLD)
        np.testing.assert_array_equal(label_map, expected_map)


def test_each_split_uses_its_own_digits_only(digits, canvases):
    train, test = _split_list(digits, 'train'), _split_list(digits, 'test')
    assert not set(train) & set(test)
    used = {split: {a['source'] for a in _coco(canvases[f'{split}_json'])['annotations']}
            for split in ('train', 'test')}
    assert used['train'] <= set(train) and used['test'] <= set(test)
    assert used['train'] and used['test']


def test_scales_and_counts_vary(digits, tmp_path):
    """Over 60 canvases: every scale (box sizes up to 32 px and below 16) and 1..4 digits."""
    out = cv.write_canvases(digits['root'], str(tmp_path), 1, num_train=60, num_test=1)
    coco = _coco(out['train_json'])
    per_image = np.bincount([a['image_id'] for a in coco['annotations']])[1:]
    assert set(per_image) == {1, 2, 3, 4}
    sides = [max(a['bbox'][2:]) for a in coco['annotations']]
    assert max(sides) > 24 and min(sides) <= 16


def test_deterministic_from_the_seed(digits, canvases, tmp_path):
    def content(out, split):
        coco = _coco(out[f'{split}_json'])
        pixels = [np.asarray(Image.open(osp.join(out[f'{split}_images'], im['file_name'])))
                  for im in coco['images']]
        return coco['annotations'], np.stack(pixels)

    again = cv.write_canvases(digits['root'], str(tmp_path / 'again'), 5, num_train=12,
                              num_test=6)
    for split in ('train', 'test'):
        anns, pixels = content(canvases, split)
        anns2, pixels2 = content(again, split)
        assert anns == anns2
        np.testing.assert_array_equal(pixels, pixels2)
    # the test canvases do not depend on how many train canvases there are
    fewer = cv.write_canvases(digits['root'], str(tmp_path / 'fewer'), 5, num_train=3,
                              num_test=6)
    np.testing.assert_array_equal(content(fewer, 'test')[1], content(canvases, 'test')[1])
    other = cv.write_canvases(digits['root'], str(tmp_path / 'other'), 6, num_train=12,
                              num_test=6)
    assert not np.array_equal(content(other, 'train')[1], content(canvases, 'train')[1])


def test_reused_only_with_the_same_settings(digits, tmp_path):
    out = cv.write_canvases(digits['root'], str(tmp_path), 0, num_train=2, num_test=1)
    stamp = osp.getmtime(out['train_json'])
    assert cv.write_canvases(digits['root'], str(tmp_path), 0, num_train=2,
                             num_test=1)['train_json'] == out['train_json']
    assert osp.getmtime(out['train_json']) == stamp  # not written again
    bigger = cv.write_canvases(digits['root'], str(tmp_path), 0, num_train=4, num_test=1)
    assert len(_coco(bigger['train_json'])['images']) == 4


def test_missing_digits_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match='write_digits'):
        cv.write_canvases(str(tmp_path / 'nothing'), str(tmp_path / 'out'), 0, 2, 1)


def test_coco_json_loads_in_mmdet(canvases):
    """mmdet's CocoDataset with the config's own dataset settings and pipeline gives the masks,
    boxes and labels of the JSON."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = _config(detseg.DET_CONFIG, detseg.det_options(canvases))
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    coco = _coco(canvases['test_json'])
    masks = _masks(coco)
    assert len(dataset) == len(coco['images'])
    sample = dataset[0]['data_samples']
    anns = masks[sample.img_id]
    gt = sample.gt_instances
    assert gt.labels.tolist() == [a['category_id'] - 1 for a, _ in anns]
    np.testing.assert_array_equal(gt.masks.masks, np.stack([m for _, m in anns]))
    x, y, w, h = anns[0][0]['bbox']
    assert gt.bboxes.tensor[0].tolist() == [x, y, x + w, y + h]
    assert dataset[0]['inputs'].shape == (3, cv.CANVAS, cv.CANVAS)


def test_label_maps_load_in_mmseg(canvases):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = _config(detseg.SEG_CONFIG, detseg.seg_options(canvases))
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(dataset) == canvases['num_train']
    assert dataset.metainfo['classes'] == tuple(cv.SEG_CLASSES)
    item = dataset[3]
    name = osp.basename(item['data_samples'].seg_map_path)
    expected = np.asarray(Image.open(osp.join(canvases['train_seg_maps'], name)))
    np.testing.assert_array_equal(item['data_samples'].gt_sem_seg.data[0].numpy(), expected)
    assert expected.max() >= 1


def test_a_relative_output_folder_loads_in_both(digits, tmp_path, monkeypatch):
    """The mini paper's default output folder is relative (work_dirs/mini_paper/seedN): mmdet and
    mmseg join relative annotation and image paths to data_root, so the paths the configs get are
    absolute (a relative one named root/root/... and the detection column failed)."""
    from mmdet.registry import DATASETS as DET_DATASETS
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS as SEG_DATASETS
    monkeypatch.chdir(tmp_path)
    canv = cv.write_canvases(digits['root'], osp.join('rel', 'canvases'), 5, num_train=2,
                             num_test=3)
    assert all(osp.isabs(canv[k]) for k in ('root', 'train_json', 'test_json', 'train_images'))
    det = _config(detseg.DET_CONFIG, detseg.det_options(canv))
    seg = _config(detseg.SEG_CONFIG, detseg.seg_options(canv))
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert len(DET_DATASETS.build(det.train_dataloader.dataset)) == 2
        assert len(DET_DATASETS.build(det.test_dataloader.dataset)) == 3
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert len(SEG_DATASETS.build(seg.test_dataloader.dataset)) == 3


def _config(path, options):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    return cfg


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope='module')
def pretrained(digits, tmp_path_factory):
    """CI-size ADDP and MAE checkpoints: the mini paper's own pre-training stages (its configs,
    the Runner), 2 iterations each."""
    from mini_paper_parts.stages import run
    out = tmp_path_factory.mktemp('pretrain')
    common = {'train_dataloader.dataset.data_root': digits['root']}

    def config(name):
        return osp.join(MINI_CONFIGS, name + '_digits-32px.py')

    tok = run('tokenizer', config('vqgan_maskgit-tiny-f4-c64_1xb16-cpu-coslr-500iter'),
              str(out / 'tokenizer'), 0, common, 2)
    pred = run('predictor', config('mage_vit-tiny-p4_1xb32-cpu-coslr-400iter'),
               str(out / 'predictor'), 0,
               dict(common, **{'model.target_generator.checkpoint': tok['checkpoint']}), 2)
    addp = run('addp', config('addp_vit-tiny-p4_1xb32-cpu-coslr-600iter'), str(out / 'addp'),
               0, dict(common, **{
                   'model.target_generator.vqgan.checkpoint': tok['checkpoint'],
                   'model.target_generator.predictor.checkpoint': pred['checkpoint']}), 2)
    mae = run('mae', config('mae_vit-tiny-p4_1xb32-cpu-coslr-600iter'), str(out / 'mae'), 0,
              common, 2)
    return dict(addp=addp['checkpoint'], mae=mae['checkpoint'], random=None)


@pytest.fixture(scope='module')
def columns(canvases, pretrained, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('detseg'))
    det = detseg.run_detection(canvases, pretrained, work, 0, size='ci')
    seg = detseg.run_segmentation(canvases, pretrained, work, 0, size='ci')
    return dict(det=det, seg=seg, work=work)


def test_both_columns_report_every_metric(columns):
    assert set(columns['det']) == set(columns['seg']) == {'addp', 'mae', 'random'}
    for kind in ('addp', 'mae', 'random'):
        det, seg = columns['det'][kind], columns['seg'][kind]
        assert set(det) == {'bbox_ap', 'segm_ap', 'bbox_ap50'} and set(seg) == {'miou'}
        for value in (*det.values(), *seg.values()):
            assert math.isfinite(value) and 0. <= value <= 100., (kind, det, seg)
    seconds = detseg.stage_seconds(columns['work'])
    assert set(seconds) == {f'{t}_{k}' for t in ('det', 'seg') for k in ('addp', 'mae', 'random')}
    assert all(s > 0 for s in seconds.values())
    for kind in ('addp', 'mae', 'random'):
        for task in ('det', 'seg'):
            # each stage logs into its own work_dir (mmdet's and mmseg's stock runtimes name
            # their visualizer 'visualizer', which the stages of one process would share)
            assert glob.glob(osp.join(columns['work'], f'{task}_{kind}', '*', 'vis_data',
                                      'scalars.json')), (task, kind)


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_pretrained_encoders_are_what_the_models_start_from(columns, pretrained, task):
    """Each pre-trained model trained from its converted encoder: after 2 warm-up steps its
    backbone is within 1e-3 of the file (a fresh init differs by about 0.02 and more), and the
    converted file was the documented target's (``CheckPretrainedKeysHook`` found every backbone
    tensor, else training would have stopped)."""
    from addp_mm.checkpoints.loading import load_checkpoint_file
    from addp_mm.checkpoints.weights import extract_state_dict
    prefix = 'backbone.' if task == 'det' else ''
    target = 'mmpretrain' if task == 'det' else 'mmseg-mae'
    for kind in ('addp', 'mae'):
        with open(osp.join(columns['work'], f'{task}_{kind}', 'done.json')) as f:
            trained = extract_state_dict(load_checkpoint_file(json.load(f)['checkpoint']))
        weights = glob.glob(osp.join(columns['work'], 'weights', f'{kind}_{target}_*.pth'))
        assert len(weights) == 1, weights
        converted = extract_state_dict(load_checkpoint_file(weights[0]))
        key = 'layers.1.attn.qkv.weight'
        start = converted[prefix + key]
        assert (trained['backbone.' + key] - start).abs().max() < 1e-3, kind
        # and not what the other pre-training gave
        other = extract_state_dict(load_checkpoint_file(pretrained['mae' if kind == 'addp'
                                                                   else 'addp']))
        assert (other['backbone.' + key] - start).abs().max() > 1e-2, kind


def test_finished_stages_are_reused_only_for_the_same_pretraining(columns, canvases, pretrained):
    """A second call reads the finished stages (same metrics, no training); another pre-training
    checkpoint for a kind is refused instead of reusing the stage trained from the first."""
    done = [osp.join(columns['work'], f'seg_{kind}', 'done.json') for kind in detseg.KINDS]
    stamps = [osp.getmtime(p) for p in done]
    again = detseg.run_segmentation(canvases, pretrained, columns['work'], 0, size='ci')
    assert again == columns['seg']
    assert [osp.getmtime(p) for p in done] == stamps
    swapped = dict(pretrained, addp=pretrained['mae'], mae=pretrained['addp'])
    with pytest.raises(RuntimeError, match='other settings'):
        detseg.run_detection(canvases, swapped, columns['work'], 0, size='ci')


def test_predictions_figure(columns, canvases, tmp_path):

    from addp_mm.utils.figures import grid_size
    path = detseg.predictions_figure(canvases, columns['work'], str(tmp_path / 'fig.png'), num=4)
    with Image.open(path) as img:
        # canvas, ground truth, 3 Mask R-CNN rows, 3 UperNet rows; 4 canvases each
        assert img.size == grid_size(8, 4)


def test_unknown_size_or_kind_names_the_fix(canvases, tmp_path):
    with pytest.raises(ValueError, match='size must be one of'):
        detseg.run_detection(canvases, {}, str(tmp_path), 0, size='huge')
    with pytest.raises(ValueError, match='unknown backbone kinds'):
        detseg.run_segmentation(canvases, {'mage': 'x.pth'}, str(tmp_path), 0, size='ci')
