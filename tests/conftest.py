import functools
import json
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

# albumentations (imported by mmpretrain/mmdet/mmseg transforms) checks PyPI at import time.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import numpy as np
import pytest
import torch

# Conformance is fp32: on a CUDA machine TF32 would round matmul inputs to 10 mantissa bits and
# miss the fixture tolerance, so it is off for the whole suite (as in every official entry point;
# addp_mm.utils.device.set_tf32 does the same for the tools).
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURE_ROOT = osp.join(REPO_ROOT, '..', 'shared', 'fixtures')
#: The fixture folders the conformance suite runs against (each test once per folder), unless
#: ``ADDP_REFERENCE_DIR`` names a single folder. Every folder is made the same way (the rule in
#: addp_reference/README.md); the tests read every size from ``config.json`` and the tensors.
DEFAULT_REFERENCE_DIRS = (osp.join(FIXTURE_ROOT, 'addp_reference'),
                          osp.join(FIXTURE_ROOT, 'addp_reference_c'))
DEFAULT_REFERENCE_DIR = DEFAULT_REFERENCE_DIRS[0]


def reference_dirs() -> Tuple[str, ...]:
    """``ADDP_REFERENCE_DIR`` if set (one folder), else both shared fixture folders."""
    root = os.environ.get('ADDP_REFERENCE_DIR')
    return (root, ) if root else DEFAULT_REFERENCE_DIRS


def vocab_ids(n_embed: int) -> Dict[str, int]:
    """Vocabulary size and special ids from the codebook size, as the official MAGE/ADDP code
    derives them: ``vocab_size = n_embed + 1000 + 1`` (codes, 1000 class slots, mask),
    ``fake_class_label = n_embed + 1100 - 1024``, ``mask_token_label = vocab_size - 1``."""
    vocab_size = n_embed + 1000 + 1
    return dict(vocab_size=vocab_size, fake_class_label=n_embed + 1100 - 1024,
                mask_token_label=vocab_size - 1)


class Reference:
    """The official implementation's outputs on small random weights (see the fixture README)."""

    def __init__(self, root: str) -> None:
        self.root = root
        with open(osp.join(root, 'config.json')) as f:
            self.config = json.load(f)
        self.data = torch.load(osp.join(root, 'reference.pt'), map_location='cpu',
                               weights_only=True)
        self.inputs = self.data['inputs']
        self.outputs = self.data['outputs']

    def path(self, name: str) -> str:
        return osp.join(self.root, name)

    # sizes, all read from config.json or the tensors (no test may assume one fixture's sizes)
    @property
    def batch(self) -> int:
        return int(self.inputs['images'].shape[0])

    @property
    def img_size(self) -> int:
        return int(self.config['vqgan']['ddconfig']['resolution'])

    @property
    def grid(self) -> int:
        """Side of the token grid (= the ViT's patch grid)."""
        dd = self.config['vqgan']['ddconfig']
        return dd['resolution'] // 2**(len(dd['ch_mult']) - 1)

    @property
    def num_tokens(self) -> int:
        return self.grid**2

    @property
    def patch_size(self) -> int:
        return self.img_size // self.grid

    @property
    def ids(self) -> Dict[str, int]:
        return vocab_ids(self.config['vqgan']['n_embed'])


def _missing_fixture(root: str) -> None:
    msg = (f'conformance fixture not found in {root!r}: set ADDP_REFERENCE_DIR to an '
           'addp_reference folder (../shared/fixtures/addp_reference and addp_reference_c beside '
           'the checkout are used by default).')
    if os.environ.get('CI', '').lower() == 'true':
        pytest.fail(msg)
    pytest.skip(msg)


@functools.lru_cache(maxsize=None)
def load_reference(root: str) -> Reference:
    """Each folder is read once per session (the tensors are only read by the tests)."""
    return Reference(root)


# Module scope, not session: a session-scoped parameter would make pytest regroup the tests of
# every module by folder (all of one folder's tests first), changing the suite's order; per module
# the order stays, and load_reference keeps each folder's tensors loaded once.
def _scopes_saved():
    from mmengine.registry import DefaultScope
    return DefaultScope, DefaultScope._instance_dict.copy()


def _scopes_restore(saved) -> None:
    cls, instances = saved
    cls._instance_dict.clear()
    cls._instance_dict.update(instances)


@pytest.fixture(scope='module', autouse=True)
def no_default_scope_leak_between_modules():
    """Every module starts with the DefaultScope state of the session start.

    A Runner (or ``overwrite_default_scope`` left open) makes its scope the process's current
    one, and registries then build in that scope: a generation test leaving ``mmagic`` current made
    later mmpretrain builds fail depending on the suite's order.
    """
    saved = _scopes_saved()
    yield
    _scopes_restore(saved)


@pytest.fixture(autouse=True)
def no_default_scope_leak_between_tests():
    """Every test starts with the DefaultScope state its module's fixtures left."""
    saved = _scopes_saved()
    yield
    _scopes_restore(saved)


@pytest.fixture(scope='module', params=reference_dirs(),
                ids=lambda root: osp.basename(osp.normpath(root)))
def reference(request) -> Reference:
    """One fixture folder per parameter: every test that uses it runs on each folder."""
    root = request.param
    if not osp.isfile(osp.join(root, 'reference.pt')):
        _missing_fixture(root)
    return load_reference(root)


def write_smooth_images(root, num: int = 12, size: int = 72,
                        suffixes: Sequence[str] = ('png', )) -> None:
    """``img_00.<suffix>`` ...: smooth random RGB images (bicubic upsampling of 5x5 noise, so a
    VQGAN sees structure); the suffixes are used in turn."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(num):
        low = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
        Image.fromarray(low).resize((size, size), Image.BICUBIC).save(
            osp.join(str(root), f'img_{i:02d}.{suffixes[i % len(suffixes)]}'))


def assert_close_rel(ours: torch.Tensor, ref: torch.Tensor, rtol: float = 1e-4,
                     name: str = '') -> None:
    """The fixture's tolerance: max|ours - ref| <= rtol * max|ref|."""
    assert ours.shape == ref.shape, f'{name}: shape {tuple(ours.shape)} != {tuple(ref.shape)}'
    ours, ref = ours.double(), ref.double()
    err = (ours - ref).abs().max().item()
    scale = ref.abs().max().item()
    assert err <= rtol * scale, f'{name}: max abs error {err:.3e} > {rtol} x {scale:.3e}'


def assert_equal_or_tie(ours: torch.Tensor, ref: torch.Tensor, scores: torch.Tensor,
                        largest: bool, name: str, tie_tol: float = 1e-5) -> None:
    """Equal, except where the reference's decision had a near-tie (fixture README).

    Args:
        scores: for ids, (B, L, K) candidate scores, higher = better (logits, or negative
            distances to the codes; the top-2 candidates must be within tie_tol); for masks,
            (B, L) confidences, where a flip is only allowed if the position's confidence is within
            tie_tol of the selection threshold (``largest``: whether the highest are selected).
    """
    diff = ours != ref
    if not bool(diff.any()):
        return
    if scores.dim() == 3:  # token ids
        top2 = scores[diff].double().topk(2, dim=-1).values
        gap = top2[:, 0] - top2[:, 1]
    else:  # masks: distance to the boundary between kept and decided
        s = scores.double()
        n = int(ref[0].sum())
        thresh = s.sort(dim=-1, descending=largest).values[:, n - 1:n + 1].mean(-1, keepdim=True)
        gap = (s - thresh).abs()[diff]
    assert bool((gap <= tie_tol).all()), (
        f'{name}: {int(diff.sum())} entries differ and are not near-ties (gaps {gap.tolist()[:5]})')


def reference_model_cfg(config: dict, vqgan_ckpt=None, predictor_ckpt=None) -> dict:
    """An ``ADDP`` model config with the sizes of a fixture's ``config.json``."""
    vq, dd = config['vqgan'], config['vqgan']['ddconfig']
    D = config['dim']
    side = dd['resolution'] // 2**(len(dd['ch_mult']) - 1)
    ids = vocab_ids(vq['n_embed'])
    return dict(
        type='ADDP',
        backbone=dict(type='ADDPViT', arch=dict(embed_dims=D, num_layers=config['depth'],
                                                num_heads=config['heads']),
                      img_size=dd['resolution'], patch_size=dd['resolution'] // side),
        neck=dict(type='ADDPTokenDecoder', embed_dims=D, decoder_depth=config['dec_depth'],
                  decoder_num_heads=config['dec_heads'], num_tokens=side * side,
                  vocab_size=ids['vocab_size']),
        head=dict(type='ADDPHead', in_dims=D, word_dims=D, vocab_size=ids['vocab_size'],
                  label_smoothing=config.get('label_smoothing', 0.1)),
        target_generator=dict(
            type='ADDPTargetGenerator',
            vqgan=dict(type='VQGANTokenizer', checkpoint=vqgan_ckpt, ch=dd['ch'],
                       ch_mult=dd['ch_mult'], num_res_blocks=dd['num_res_blocks'],
                       z_channels=dd['z_channels'], embed_dim=vq['embed_dim'],
                       n_embed=vq['n_embed'], resolution=dd['resolution']),
            predictor=dict(type='MAGETokenPredictor', checkpoint=predictor_ckpt,
                           embed_dims=config['tp_dim'], depth=config['tp_depth'],
                           num_heads=config['tp_heads'],
                           decoder_depth=config.get('tp_dec_depth', config['tp_depth']),
                           decoder_num_heads=config.get('tp_dec_heads', config['tp_heads']),
                           codebook_size=vq['n_embed'], num_tokens=side * side, **ids)),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0., 0., 0.],
                               std=[255., 255., 255.], to_rgb=True))
