"""The installed stack imports, and the mmcv ops Mask R-CNN needs run on the CPU."""
import importlib
import os

import pytest
import torch

# albumentations (imported by mmseg/mmagic) otherwise asks PyPI for updates at import time.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')


@pytest.mark.parametrize('name', [
    'torch', 'torchvision', 'mmengine', 'mmcv', 'mmcv.ops', 'mmpretrain', 'mmdet', 'mmseg', 'mmagic'
])
def test_library_imports(name):
    mod = importlib.import_module(name)
    if '.' not in name:
        assert getattr(mod, '__version__', None), f'{name} has no __version__'


def test_pinned_versions():
    import mmcv
    import mmengine
    assert mmcv.__version__ == '2.1.0'
    assert mmengine.__version__ == '0.10.7'
    assert torch.__version__.split('+')[0] == '2.14.1'


def test_nms_removes_the_overlapping_box():
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(box0, box1) = 81 / 100 = 0.81 > 0.5; box2 overlaps nothing.
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torch.allclose(dets, torch.tensor([[0., 0., 10., 10., 0.9], [20., 20., 30., 30., 0.7]]))
    # Below the IoU of the pair, nothing is removed.
    _, keep = nms(boxes, scores, iou_threshold=0.9)
    assert keep.tolist() == [0, 1, 2]


def test_roi_align_values():
    from mmcv.ops import RoIAlign
    roi_align = RoIAlign(output_size=(2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    rois = torch.tensor([[0., 2., 2., 10., 10.], [1., 0., 0., 16., 16.]])

    const = torch.full((2, 3, 16, 16), 3.5)
    out = roi_align(const, rois)
    assert out.shape == (2, 3, 2, 2)
    assert torch.allclose(out, torch.full_like(out, 3.5))

    # A feature equal to the column index: with aligned=True the box [2, 10] is split into bins
    # [2, 6] and [6, 10], sampled at x = 3, 5 and 7, 9, i.e. pixel coordinates x - 0.5.
    ramp = torch.arange(16.).expand(1, 1, 16, 16).contiguous()
    out = roi_align(ramp, rois[:1])
    assert torch.allclose(out[0, 0], torch.tensor([[3.5, 7.5], [3.5, 7.5]]))
