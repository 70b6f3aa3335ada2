"""FID / IS that never download, and the real-image folder their reference statistics come from.

mmagic's ``FrechetInceptionDistance`` and ``InceptionScore`` silently try to download NVIDIA's
Inception when ``inception_path`` is missing, and FID computes the reference statistics from the
dataloader when ``inception_pkl`` does not exist. The subclasses here (``OfflineFID``,
``OfflineIS``) compute exactly the same numbers but check the local files first and fail with a
message that names the missing file and how to produce it.
"""
import os
import os.path as osp
from typing import List, Optional

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmagic.evaluation.metrics import FrechetInceptionDistance, InceptionScore
from mmagic.registry import DATASETS, METRICS

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
INCEPTION_HELP = (
    'FID and IS use NVIDIA\'s TorchScript Inception "inception-2015-12-05.pt" (the TF-FID weights; '
    'inception_style="StyleGAN"). addp_mm never downloads it: fetch it once on a machine with '
    'internet access (https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/'
    'inception-2015-12-05.pt), copy it here and set `inception_path` (e.g. --cfg-options '
    'inception_path=/path/inception-2015-12-05.pt). See configs/addp/generation/README.md.')
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


@METRICS.register_module()
class OfflineFID(FrechetInceptionDistance):
    """mmagic's FID (``inception_style='StyleGAN'``) with local files only.

    Args:
        fake_nums (int): Generated images (50000 for FID-50k).
        inception_path (str): Local TorchScript Inception file.
        inception_pkl (str): Local reference statistics (``real_mean``/``real_cov`` pickle). If it
            does not exist, it is computed from the test dataloader's real images and saved there.
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

    def prepare(self, module, dataloader) -> None:
        if not osp.isfile(self.inception_pkl):
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
