"""FID / IS that never download, and the real-image folder their reference statistics come from.

mmagic's ``FrechetInceptionDistance`` and ``InceptionScore`` silently try to download NVIDIA's
Inception when ``inception_path`` is missing, and FID computes the reference statistics from the
dataloader when ``inception_pkl`` does not exist. The subclasses here (``OfflineFID``,
``OfflineIS``) compute exactly the same numbers but check the local files first and fail with a
message that names the missing file and how to produce it.

Cached reference statistics are only reused for the inputs they were computed from: beside
``inception_pkl`` OfflineFID keeps ``<inception_pkl>.key.json`` (the real images' names, sizes and
modification times, the Inception file's SHA-256, the preprocessing pipeline and ``real_nums``)
and refuses a cache whose key differs from the current inputs (:func:`reference_key`).
"""
import json
import os
import os.path as osp
import re
from typing import List, Optional

from mmengine.dataset import BaseDataset
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmagic.evaluation.metrics import FrechetInceptionDistance, InceptionScore
from mmagic.registry import DATASETS, METRICS

from ..utils.provenance import (canonical_sha256, differences, file_sha256,
                                write_json_atomic)

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
INCEPTION_HELP = (
    'FID and IS use NVIDIA\'s TorchScript Inception "inception-2015-12-05.pt" (the TF-FID weights; '
    'inception_style="StyleGAN"). addp_mm never downloads it: fetch it once on a machine with '
    'internet access (https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/'
    'inception-2015-12-05.pt), copy it here and point the config at it: with tools/test.py, '
    '`--cfg-options inception_path=/path/inception-2015-12-05.pt` (tools/test.py passes it to '
    'every metric), or per metric `--cfg-options '
    'test_evaluator.metrics.0.inception_path=/path/inception-2015-12-05.pt '
    'test_evaluator.metrics.1.inception_path=/path/inception-2015-12-05.pt`. See '
    'configs/addp/generation/README.md.')
STATS_HELP = (
    'To produce the reference statistics once: prepare ImageNet val as 256x256 PNG files '
    '(torchvision Resize(256) + CenterCrop(256), saved as PNG; see '
    'configs/addp/generation/README.md), point `real_data_root` at that folder and run '
    'tools/test.py with this config: FID extracts the Inception features of the real images and '
    'saves them to `inception_pkl`, later runs only read the file.')


def _check_inception_path(metric: str, inception_style: str, inception_path: Optional[str]) -> None:
    if inception_style != 'StyleGAN':
        raise ValueError(f'{metric}: inception_style must be "StyleGAN" (mmagic\'s PyTorch style '
                         'downloads torchvision weights and gives different numbers).')
    if not inception_path or '://' in str(inception_path):
        raise ValueError(f'{metric}: inception_path must be a local file, got '
                         f'{inception_path!r}. {INCEPTION_HELP}')
    if not osp.isfile(inception_path):
        raise FileNotFoundError(f'{metric}: inception_path {inception_path!r} not found. '
                                f'{INCEPTION_HELP}')


KEY_SUFFIX = '.key.json'


def _image_listing(root: str):
    """Sorted (relative path, size, mtime_ns) of the images under ``root``; None if no folder."""
    if not root or not osp.isdir(root):
        return None
    rows = []
    for dirpath, _, files in os.walk(root, followlinks=True):
        for f in files:
            if f.lower().endswith(IMAGE_EXTENSIONS):
                path = osp.join(dirpath, f)
                st = os.stat(path)
                rows.append((osp.relpath(path, root).replace(os.sep, '/'), st.st_size,
                             st.st_mtime_ns))
    return sorted(rows)


def _pipeline_text(dataset) -> str:
    """The dataset's preprocessing as text, without object addresses."""
    pipeline = getattr(dataset, 'pipeline', None)
    return re.sub(r' at 0x[0-9a-fA-F]+', '', repr(pipeline))


def reference_key(dataset, inception_path: str, real_nums: int, real_key: str = 'gt_img',
                  inception_style: str = 'StyleGAN') -> dict:
    """What FID reference statistics depend on.

    Args:
        dataset: The real-image dataset (its ``data_root`` and ``pipeline`` are read).
        inception_path (str): The Inception file (hashed).
        real_nums (int): How many real images are used (-1: all).

    Returns:
        dict: ``real_images`` (count and SHA-256 of the sorted relative names, sizes and
        modification times; None when the folder does not exist), ``inception_sha256``,
        ``inception_style``, ``preprocessing``, ``real_nums``, ``real_key``.
    """
    listing = _image_listing(getattr(dataset, 'data_root', None))
    real = None if listing is None else dict(count=len(listing),
                                             listing_sha256=canonical_sha256(listing))
    return dict(real_images=real, inception_sha256=file_sha256(inception_path),
                inception_style=inception_style, preprocessing=_pipeline_text(dataset),
                real_nums=int(real_nums), real_key=real_key)


@METRICS.register_module()
class OfflineFID(FrechetInceptionDistance):
    """mmagic's FID (``inception_style='StyleGAN'``) with local files only.

    Args:
        fake_nums (int): Generated images (50000 for FID-50k).
        inception_path (str): Local TorchScript Inception file.
        inception_pkl (str): Local reference statistics (``real_mean``/``real_cov`` pickle). If it
            does not exist, it is computed from the test dataloader's real images and saved there,
            with its key (what it was computed from) in ``<inception_pkl>.key.json``. An existing
            file is only used when its key matches the current real images, Inception file and
            preprocessing; otherwise the run stops and names what changed.
        **kwargs: Other :class:`FrechetInceptionDistance` arguments (``prefix``,
            ``sample_kwargs``, ``real_nums``, ...).
    """

    def __init__(self, fake_nums: int, inception_path: str, inception_pkl: str,
                 inception_style: str = 'StyleGAN', **kwargs) -> None:
        _check_inception_path('OfflineFID', inception_style, inception_path)
        if not inception_pkl or '://' in str(inception_pkl) or str(inception_pkl).startswith('s3'):
            raise ValueError('OfflineFID: inception_pkl must be a local path (the reference '
                             f'statistics file), got {inception_pkl!r}. {STATS_HELP}')
        super().__init__(fake_nums, inception_style=inception_style,
                         inception_path=inception_path, inception_pkl=inception_pkl, **kwargs)
        self.inception_path = inception_path  # hashed into the key of the cached statistics

    def _check_cached_statistics(self, key: dict, dataloader) -> None:
        """Refuse an ``inception_pkl`` computed from other inputs than ``key`` describes."""
        key_path = self.inception_pkl + KEY_SUFFIX
        fix = (f'Delete {self.inception_pkl!r} (and {key_path!r}) to recompute it from the current '
               'real images, or set inception_pkl to another path '
               '(--cfg-options inception_pkl=... with tools/test.py).')
        if not osp.isfile(key_path):
            if key['real_images'] is not None and key['real_images']['count'] > 0:
                raise RuntimeError(
                    f'OfflineFID: the reference statistics {self.inception_pkl!r} have no key file '
                    f'({key_path!r}), so it is unknown which images and Inception weights they '
                    f'come from, while {key["real_images"]["count"]} real images are in '
                    f'{dataloader.dataset.data_root!r}. {fix}')
            print_log(f'OfflineFID: using {self.inception_pkl} as given (no {key_path} and no real '
                      'images to check it against).', 'current', level=30)
            return
        with open(key_path) as f:
            stored = json.load(f)
        current = dict(key)
        if current['real_images'] is None:  # folder absent: only the other parts can be checked
            current['real_images'] = stored.get('real_images')
            print_log(f'OfflineFID: the real-image folder is absent; the image list of '
                      f'{self.inception_pkl} is not re-checked.', 'current')
        diffs = differences(stored, current)
        if diffs:
            raise RuntimeError(
                f'OfflineFID: the cached reference statistics {self.inception_pkl!r} were computed '
                'from other inputs than this run uses:\n  ' + '\n  '.join(diffs) + f'\n{fix}')

    def prepare(self, module, dataloader) -> None:
        key = reference_key(dataloader.dataset, self.inception_path, self.real_nums,
                            getattr(self, 'real_key', 'gt_img'), 'StyleGAN')
        cached = osp.isfile(self.inception_pkl)
        if cached:
            self._check_cached_statistics(key, dataloader)
        else:
            if len(dataloader.dataset) == 0:
                root = getattr(dataloader.dataset, 'data_root', None)
                raise FileNotFoundError(
                    f'OfflineFID: the reference statistics {self.inception_pkl!r} do not exist and '
                    f'there are no real images to compute them from (folder {root!r} is missing '
                    f'or empty). {STATS_HELP}')
            print_log(f'OfflineFID: computing the reference statistics from '
                      f'{len(dataloader.dataset)} real images into {self.inception_pkl}',
                      'current')
            os.makedirs(osp.dirname(osp.abspath(self.inception_pkl)), exist_ok=True)
        super().prepare(module, dataloader)
        if not cached and osp.isfile(self.inception_pkl):
            if is_main_process():
                write_json_atomic(self.inception_pkl + KEY_SUFFIX, key)


@METRICS.register_module()
class OfflineIS(InceptionScore):
    """mmagic's Inception Score (``inception_style='StyleGAN'``) with a local Inception file.

    Args:
        fake_nums (int): Generated images (50000 for IS-50k).
        inception_path (str): Local TorchScript Inception file.
        **kwargs: Other :class:`InceptionScore` arguments (``splits``, ``prefix``, ...).
    """

    def __init__(self, fake_nums: int, inception_path: str, inception_style: str = 'StyleGAN',
                 sample_kwargs: Optional[dict] = None, **kwargs) -> None:
        _check_inception_path('OfflineIS', inception_style, inception_path)
        super().__init__(fake_nums, inception_style=inception_style,
                         inception_path=inception_path, **kwargs)
        # mmagic's InceptionScore takes no sample_kwargs; the sampler reads the attribute.
        self.sample_kwargs = dict(sample_kwargs or {})


@DATASETS.register_module()
class RealImageFolder(BaseDataset):
    """Real images (every PNG/JPEG/BMP/WebP under a folder, sorted) for FID reference statistics.

    Each item is ``dict(gt_path=...)`` for a pipeline like ``LoadImageFromFile(key='gt')`` +
    ``PackInputs``. A missing folder gives an empty dataset (with a log message) instead of an
    error, because the folder is only read when the statistics file (``inception_pkl``) does not
    exist yet; :class:`OfflineFID` raises a clear error in that case.

    Args:
        data_root (str): Folder of real images.
        pipeline (list[dict]): Data pipeline.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO = dict(dataset_type='real_image_folder', task_name='generation')

    def __init__(self, data_root: str, pipeline: List[dict], **kwargs) -> None:
        # mmengine cannot serialize an empty data list (np.concatenate of nothing).
        kwargs.setdefault('serialize_data', False)
        super().__init__(data_root=data_root, pipeline=pipeline, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_root
        if not osp.isdir(root):
            print_log(f'RealImageFolder: {root!r} does not exist; the dataset is empty (fine when '
                      'the FID reference statistics already exist).', 'current')
            return []
        paths = []
        for dirpath, _, files in os.walk(root, followlinks=True):
            paths += [osp.join(dirpath, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
        return [dict(gt_path=p, sample_idx=i) for i, p in enumerate(sorted(paths))]
