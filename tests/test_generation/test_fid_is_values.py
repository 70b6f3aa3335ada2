"""FID and IS values, not only plumbing: what mmagic's metrics report in the toy generator's test
loop equals FID / IS computed here independently, in numpy/scipy, from the stand-in Inception's
features of the same images.

The independent side regenerates the images with the toy generator (seed 0, indices 0..n-1, as
the loop does), reads the real PNGs with PIL, runs the stand-in network itself (RGB uint8 in, as
NVIDIA's TorchScript Inception takes) and computes

- FID = |mu_f - mu_r|^2 + Tr(S_f) + Tr(S_r) - 2 Tr((S_r^1/2 S_f S_r^1/2)^1/2) (unbiased
  covariances; the symmetric form, through eigendecompositions, not mmagic's sqrtm of S_f S_r);
- IS = mean over splits of exp(mean_i KL(p(y|x_i) || p(y))).

A channel swap, a scale error or a wrong image order anywhere in the loop changes the features and
fails the comparison.
"""
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from addp_mm.generation.api import to_uint8
from addp_mm.generation.sampling import image_seeds

from .helpers import TOY_CONFIG, build_toy_generator
from .test_mmagic_loop import TinyInception, run_test

NUM_FAKE, NUM_REAL, STEPS, SPLITS = 8, 10, 3, 2


@pytest.fixture(scope='module')
def inception(tmp_path_factory):
    torch.manual_seed(1)
    net = TinyInception().eval().requires_grad_(False)
    path = tmp_path_factory.mktemp('inception_values') / 'tiny_inception.pt'
    torch.jit.script(net).save(str(path))
    return net, str(path)


def fid_numpy(real: np.ndarray, fake: np.ndarray) -> float:
    def stats(x):
        x = x.astype(np.float64)
        mu = x.mean(0)
        d = x - mu
        return mu, d.T @ d / (len(x) - 1)

    def psd_sqrt(a):
        w, v = linalg.eigh((a + a.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    mu_r, s_r = stats(real)
    mu_f, s_f = stats(fake)
    root_r = psd_sqrt(s_r)
    cross = np.sqrt(np.clip(linalg.eigvalsh(root_r @ s_f @ root_r), 0, None)).sum()
    return float(((mu_f - mu_r)**2).sum() + np.trace(s_f) + np.trace(s_r) - 2 * cross)


def is_numpy(probs: np.ndarray, splits: int) -> float:
    probs = probs.astype(np.float64)
    n = len(probs) // splits
    scores = []
    for k in range(splits):
        part = probs[k * n:(k + 1) * n]
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part) - np.log(marginal))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores))


def test_fid_and_is_equal_an_independent_computation(tmp_path, inception, toy_checkpoint):
    from mmengine.config import Config
    net, inception_path = inception
    real_dir = tmp_path / 'real'
    real_dir.mkdir()
    rng = np.random.default_rng(0)
    real = []
    for i in range(NUM_REAL):  # smooth random images: features with some spread
        low = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(low).resize((64, 64), Image.BICUBIC))
        Image.fromarray(img).save(real_dir / f'{i:02d}.png')
        real.append(img)

    cfg = Config.fromfile(TOY_CONFIG)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = toy_checkpoint
    cfg.test_dataloader.dataset.data_root = str(real_dir)
    cfg.test_dataloader.batch_size = 4
    for metric in cfg.test_evaluator.metrics:
        metric.inception_path = inception_path
        metric.fake_nums = NUM_FAKE
    cfg.test_evaluator.metrics[0].inception_pkl = str(tmp_path / 'stats' / 'real.pkl')
    cfg.test_evaluator.metrics[1].splits = SPLITS
    cfg.model.num_steps = STEPS
    metrics = run_test(cfg)
    fid_key = next(k for k in metrics if k.endswith('/fid'))
    is_key = next(k for k in metrics if k.endswith('/is'))

    # the same images, made here: seed 0, indices 0..n-1 (uint8 as the metrics see them)
    gen = build_toy_generator(checkpoint=toy_checkpoint)
    with torch.no_grad():
        fake = to_uint8(gen.sample(image_seeds(0, range(NUM_FAKE)), num_steps=STEPS)['images'])

    def run_net(images, **kw):
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # RGB uint8
        with torch.no_grad():
            return net(x, **kw).double().numpy()

    real_feat = run_net(real, return_features=True)
    fake_feat = run_net(list(fake), return_features=True)
    fake_probs = run_net(list(fake))
    fid, iscore = fid_numpy(real_feat, fake_feat), is_numpy(fake_probs, SPLITS)
    assert fid > 1e-3 and 1. < iscore < 10.
    # float32 features, float64 statistics: agreement to 1e-4 of the value
    assert metrics[fid_key] == pytest.approx(fid, rel=1e-4, abs=1e-6)
    assert metrics[is_key] == pytest.approx(iscore, rel=1e-4)
    # and the comparison can fail: the features of the images in BGR order give another FID
    bgr = fid_numpy(real_feat, run_net([f[..., ::-1] for f in fake], return_features=True))
    assert abs(bgr - fid) > 1e-3 * fid
