#!/usr/bin/env python
"""The ADDP paper's table in miniature, on real images, on 2 CPU cores.

    python benchmarks/mini_paper.py --seed 0 --out work_dirs/mini_paper/seed0
    python benchmarks/mini_paper.py --summarize work_dirs/mini_paper/seed*   # mean +- std table
    make mini-paper                                                           # seeds 0, 1, 2

Data: scikit-learn's handwritten digits (1,797 real 8x8 scans, 17 grey levels, 10 classes),
upsampled to 32x32 RGB and written in mmpretrain's on-disk format with a fixed stratified split
(1,347 train / 450 test). Pre-training reads the train split without labels.

One seed trains, with the project's configs (``configs/addp/mini``) and the ordinary mmengine
Runner:

1. the tiny VQGAN tokenizer, then the tiny MAGE token predictor, then ADDP (tiny ViT);
2. mmpretrain's own MAE with the same ViT, batch and iterations (the same images seen);
3. for ADDP, MAE and random init: a linear probe on all training labels, a linear probe on 10
   labels per class, and full fine-tuning with layer-wise lr decay; top-1 on the test split
   (mmpretrain's ``Accuracy``);
4. generation: 1,000 unconditional ADDP samples (``ADDPGenerator``), 1,000 MAGE samples (the
   same sampling loop driven by the token predictor alone), tokenizer reconstructions of the
   test split, the real test split and 1,000 decodes of uniformly random tokens, each scored
   with mmagic's FID and IS classes against the train split. The feature network is a small CNN
   classifier the script trains on the train split (fixed seed 0, the same for every run), saved
   in the TorchScript interface of the Inception file mmagic loads;
5. figures (``DIR/figures``): sample grids and an inpainting grid on test digits.

Everything lands in ``DIR/results.json``. A finished stage is not trained again (its final
checkpoint / metrics file is reused), so an interrupted run continues where it stopped.
``--size ci`` runs a few iterations per stage (the pipeline test; its numbers mean nothing).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
# addp_mm from this checkout; machine_info beside this file; the demo's stage and figure code
# (tools/addp_demo, tool code beside tools/demo.py)
for _path in (REPO, HERE, osp.join(REPO, 'tools')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

CONFIG_DIR = osp.join(REPO, 'configs', 'addp', 'mini')
CONFIGS = dict(
    tokenizer='vqgan_maskgit-tiny-f4-c64_1xb16-cpu-coslr-500iter_digits-32px.py',
    predictor='mage_vit-tiny-p4_1xb32-cpu-coslr-400iter_digits-32px.py',
    addp='addp_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py',
    mae='mae_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py',
    linear='cls_vit-tiny-p4_1xb64-cpu-linear-coslr-400iter_digits-32px.py',
    linear_10shot='cls_vit-tiny-p4_1xb32-cpu-linear-coslr-200iter_digits-10shot-32px.py',
    finetune='cls_vit-tiny-p4_1xb64-cpu-coslr-600iter_digits-32px.py',
    generation='addp_vit-tiny-p4_1xb32-8steps-cosine_digits-32px.py',
)
#: ``full``: the benchmark (the configs' own iteration counts); ``ci``: the pipeline test.
SIZES = {
    'full': dict(iters=None, num_samples=1000, gen_batch=100, feature_net_epochs=10),
    'ci': dict(iters=dict(tokenizer=4, predictor=3, addp=3, mae=3, linear=3, linear_10shot=3,
                          finetune=3), num_samples=24, gen_batch=12, feature_net_epochs=2),
}
PRETRAINED = ('addp', 'mae', 'random')
PROTOCOLS = ('linear_probe', 'linear_probe_10shot', 'finetune')
PROTOCOL_CONFIG = dict(linear_probe='linear', linear_probe_10shot='linear_10shot',
                       finetune='finetune')
FID_ROWS = ('addp', 'mage', 'reconstruction', 'real', 'random_tokens')
IMAGE_SIZE = 32
SHOTS = 10
TEST_FRACTION = 0.25
SPLIT_SEED = 0  # the train/test split is the same for every run
FEATURE_NET_SEED = 0  # so is the FID/IS feature network


def log(msg: str) -> None:
    print(f'[mini-paper {time.strftime("%H:%M:%S")}] {msg}', flush=True)


# ----------------------------------------------------------------------------- data
def write_digits(root: str, seed: int) -> Dict[str, str]:
    """Write the digits as 32x32 RGB PNGs with mmpretrain annotation files.

    Layout: ``train/<digit>/<index>.png``, ``test/<digit>/<index>.png`` (index = row of
    ``load_digits``), ``meta/train.txt``, ``meta/test.txt`` (``path label`` lines),
    ``meta/train_10shot.txt`` (10 per class, drawn with ``seed``) and ``meta/classes.txt``.

    Returns:
        dict: ``root``, ``train`` folder, ``test`` folder.
    """
    import numpy as np
    from PIL import Image
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise RuntimeError('the mini paper reads scikit-learn\'s bundled digits: '
                           '`pip install scikit-learn` (it is in requirements/runtime.txt).') from e
    digits = load_digits()
    labels = digits.target.astype(int)
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(index, test_size=TEST_FRACTION, stratify=labels,
                                           random_state=SPLIT_SEED)
    meta = osp.join(root, 'meta')
    os.makedirs(meta, exist_ok=True)
    for split, rows in (('train', sorted(train_idx)), ('test', sorted(test_idx))):
        lines = []
        for i in rows:
            rel = f'{split}/{labels[i]}/{i:04d}.png'
            path = osp.join(root, rel)
            if not osp.isfile(path):
                os.makedirs(osp.dirname(path), exist_ok=True)
                # 17 grey levels 0..16 -> 0..255, bicubic upsampling, grey -> RGB
                grey = Image.fromarray(np.round(digits.images[i] * 255. / 16.).astype(np.uint8))
                grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC).convert('RGB').save(path)
            lines.append(f'{rel} {labels[i]}')
        with open(osp.join(meta, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    rng = np.random.default_rng(seed)
    few = []
    for c in range(10):
        rows = sorted(i for i in train_idx if labels[i] == c)
        few += [f'train/{c}/{i:04d}.png {c}' for i in sorted(rng.choice(rows, SHOTS,
                                                                        replace=False))]
    with open(osp.join(meta, 'train_10shot.txt'), 'w') as f:
        f.write('\n'.join(few) + '\n')
    with open(osp.join(meta, 'classes.txt'), 'w') as f:
        f.write('\n'.join(str(c) for c in range(10)) + '\n')
    return dict(root=root, train=osp.join(root, 'train'), test=osp.join(root, 'test'))


def read_split(root: str, split: str):
    """(N, 3, 32, 32) float images in [0, 1] and (N,) labels of ``meta/<split>.txt``."""
    import numpy as np
    import torch
    from PIL import Image
    with open(osp.join(root, 'meta', f'{split}.txt')) as f:
        rows = [line.split() for line in f if line.strip()]
    images = np.stack([np.asarray(Image.open(osp.join(root, p)).convert('RGB')) for p, _ in rows])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.
    return x, torch.tensor([int(c) for _, c in rows])


# ----------------------------------------------------------------------------- training runs
def run(name: str, config: str, work_dir: str, seed: int, options: Optional[dict] = None,
        max_iters: Optional[int] = None, test: bool = False) -> dict:
    """Train one config with the mmengine Runner (skipped when already done).

    Returns:
        dict: ``checkpoint`` (final), ``seconds`` and, with ``test``, ``metrics`` of the test
        split (mmpretrain's Accuracy).
    """
    from mmengine.runner import Runner

    from addp_mm.engine.stages import stage_config

    # a stage that did not finish starts again (they take minutes)
    cfg = stage_config(name, osp.join(CONFIG_DIR, CONFIGS[config]), work_dir, max_iters, options,
                       seed=seed)
    iters = cfg.train_cfg.max_iters
    # what makes this run: reused only when it matches exactly
    settings = dict(config=CONFIGS[config], iters=iters, seed=seed,
                    options=json.loads(json.dumps(options or {}, sort_keys=True)))
    done = osp.join(work_dir, 'done.json')
    if osp.isfile(done):
        with open(done) as f:
            rec = json.load(f)
        if rec.get('settings') != settings:
            raise RuntimeError(
                f'{name}: {work_dir} holds a finished run with other settings '
                f'({rec.get("settings")} != {settings}); choose another --out or delete that '
                'folder to train again.')
        log(f'{name}: done before ({rec["seconds"]:.0f} s), reusing {work_dir}')
        return rec
    log(f'{name}: {iters} iterations ({osp.basename(CONFIGS[config])}) -> {work_dir}')
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    rec = dict(checkpoint=osp.join(work_dir, f'iter_{iters}.pth'), iters=iters,
               settings=settings)
    if not osp.isfile(rec['checkpoint']):
        raise RuntimeError(f'{name}: training finished but {rec["checkpoint"]} was not written.')
    if test:
        rec['metrics'] = {k: float(v) for k, v in runner.test().items()}
        log(f'{name}: test {rec["metrics"]}')
    rec['seconds'] = time.time() - start
    with open(done, 'w') as f:
        json.dump(rec, f)
    return rec


def backbone_file(kind: str, ckpt: str, dst: str, keep_norms: bool) -> str:
    """The pre-trained encoder as ``backbone.*`` weights of mmpretrain's VisionTransformer.

    ADDP: :func:`addp_mm.utils.convert.to_backbone_state_dict` (what ``convert_addp.py
    --backbone-only [--keep-norms]`` writes). MAE: mmpretrain's ``MAEViT`` already uses the
    ``VisionTransformer`` names; its fixed sin-cos ``pos_embed`` loads as the (then trainable)
    position embedding, as in mmpretrain's MAE fine-tuning.
    """
    import torch

    from addp_mm.checkpoints.loading import load_checkpoint_file
    from addp_mm.checkpoints.convert import to_backbone_state_dict
    from addp_mm.checkpoints.weights import extract_state_dict
    sd = extract_state_dict(load_checkpoint_file(ckpt), ckpt)
    if kind == 'addp':
        out = to_backbone_state_dict(sd, keep_norms=keep_norms)
    else:
        out = {k: v for k, v in sd.items() if k.startswith('backbone.')}
        if not keep_norms:
            out = {k: v for k, v in out.items() if not k.startswith('backbone.ln1.')}
    torch.save(dict(state_dict=out), dst)
    return dst


def recognition(kind: str, pretrain_ckpt: Optional[str], data: dict, work_dir: str, seed: int,
                iters: Optional[dict]) -> Dict[str, float]:
    """Linear probe (all labels, 10 per class) and fine-tuning top-1 of one initialisation."""
    out = {}
    for protocol in PROTOCOLS:
        config = PROTOCOL_CONFIG[protocol]
        linear = protocol.startswith('linear')
        options = {'train_dataloader.dataset.data_root': data['root'],
                   'test_dataloader.dataset.data_root': data['root']}
        if pretrain_ckpt is not None:
            wdir = osp.join(work_dir, 'weights')
            os.makedirs(wdir, exist_ok=True)
            dst = osp.join(wdir, f'{kind}_backbone{"_norms" if linear else ""}.pth')
            if not osp.isfile(dst):
                backbone_file(kind, pretrain_ckpt, dst, keep_norms=linear)
            options['model.backbone.init_cfg'] = dict(_delete_=True, type='Pretrained',
                                                      checkpoint=dst, prefix='backbone.')
        else:  # random init: nothing to load, so no CheckPretrainedKeysHook
            options['custom_hooks'] = [dict(type='FaultToleranceHook')]
        if kind == 'addp' and linear:
            # ADDP's encoder has the tokenizer norm (pre_norm) after the patch embedding
            options['model.backbone.pre_norm'] = True
        rec = run(f'{protocol}-{kind}', config, osp.join(work_dir, f'{protocol}_{kind}'), seed,
                  options, None if iters is None else iters[config], test=True)
        out[protocol] = rec['metrics']['accuracy/top1']  # mmpretrain reports percent
    return out


# ----------------------------------------------------------------------------- FID/IS network
FEATURE_DIM = 64


def feature_net_class():
    """The FID/IS feature network: a small CNN digit classifier (defined lazily: torch import)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class DigitFeatureNet(nn.Module):
        """32x32 digit classifier with the interface of NVIDIA's TorchScript Inception.

        ``forward(img, return_features)`` takes (B, 3, 32, 32) images with values in [0, 255]
        (mmagic passes uint8, channel order irrelevant: the channels are averaged) and returns
        the 64-d penultimate features (FID) or the 10 class probabilities (IS).
        """

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
            self.fc = nn.Linear(64 * 4 * 4, FEATURE_DIM)
            self.cls = nn.Linear(FEATURE_DIM, 10)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            x = x.float().mean(1, keepdim=True) / 127.5 - 1.
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 16x16
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 8x8
            x = F.max_pool2d(F.relu(self.conv3(x)), 2)  # 4x4
            return F.relu(self.fc(x.flatten(1)))

        def forward(self, img: torch.Tensor, return_features: bool = False,
                    use_fp16: bool = False, no_output_bias: bool = False) -> torch.Tensor:
            feats = self.features(img)
            if return_features:
                return feats
            return F.softmax(self.cls(feats), dim=1)

    return DigitFeatureNet


def train_feature_net(data: dict, path: str, epochs: int) -> dict:
    """Train the FID/IS feature network on the train split (seed 0) and save it as TorchScript.

    Training: Adam 1e-3, batch 64, random shifts of up to 2 pixels, cross-entropy. Returns its
    top-1 on the test split (a feature network that does not know digits makes FID meaningless).
    """
    import torch
    import torch.nn.functional as F
    info = path + '.json'
    if osp.isfile(path) and osp.isfile(info):
        with open(info) as f:
            rec = json.load(f)
        if rec['epochs'] == epochs:
            return rec
    start = time.time()
    x_train, y_train = read_split(data['root'], 'train')
    x_test, y_test = read_split(data['root'], 'test')
    with torch.random.fork_rng():
        torch.manual_seed(FEATURE_NET_SEED)
        net = feature_net_class()()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(FEATURE_NET_SEED)
        for _ in range(epochs):
            order = torch.randperm(len(x_train), generator=gen)
            for i in range(0, len(order), 64):
                idx = order[i:i + 64]
                dy, dx = torch.randint(-2, 3, (2, ), generator=gen).tolist()
                x = torch.roll(x_train[idx], shifts=(dy, dx), dims=(2, 3)) * 255.
                loss = F.cross_entropy(net.cls(net.features(x)), y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        top1 = float((net(x_test * 255.).argmax(1) == y_test).float().mean()) * 100.
    torch.jit.script(net).save(path)
    rec = dict(path=path, test_top1=top1, epochs=epochs, seconds=time.time() - start)
    with open(info, 'w') as f:
        json.dump(rec, f)
    log(f'feature network: test top-1 {top1:.1f}% ({rec["seconds"]:.0f} s) -> {path}')
    return rec


class FidIs:
    """FID and IS of image sets with mmagic's metric classes and the digit feature network.

    The reference statistics (mean and covariance of the features of the real train split) are
    computed by mmagic's own feature pass (``forward_inception``) and set on the FID metric;
    every image set then goes through ``process`` and ``compute_metrics`` as in mmagic's loop.
    IS is one split over all images (``splits=1``), at 32x32 (``resize=False``).
    """

    def __init__(self, feature_net: str, real_images) -> None:
        import numpy as np
        import torch
        from mmagic.evaluation.metrics import FrechetInceptionDistance
        self.feature_net = feature_net
        ref = FrechetInceptionDistance(fake_nums=len(real_images), inception_style='StyleGAN',
                                       inception_path=feature_net)
        with torch.no_grad():
            feats = torch.cat([ref.forward_inception(self._rgb255(b))
                               for b in real_images.split(256)]).numpy()
        self.real_mean, self.real_cov = np.mean(feats, 0), np.cov(feats, rowvar=False)

    @staticmethod
    def _rgb255(images):
        return (images.float() * 255.).clamp(0, 255).round()

    def __call__(self, images) -> Dict[str, float]:
        """FID against the train split and IS of ``images`` (N, 3, 32, 32) in [0, 1]."""
        import torch
        from mmagic.evaluation.metrics import FrechetInceptionDistance, InceptionScore
        n = len(images)
        fid = FrechetInceptionDistance(fake_nums=n, inception_style='StyleGAN',
                                       inception_path=self.feature_net)
        fid.real_mean, fid.real_cov = self.real_mean, self.real_cov
        inception_score = InceptionScore(fake_nums=n, resize=False, splits=1,
                                         inception_style='StyleGAN',
                                         inception_path=self.feature_net)
        with torch.no_grad():
            for batch in images.split(100):
                samples = [dict(fake_img=img) for img in self._rgb255(batch)]
                fid.process({}, samples)
                inception_score.process({}, samples)
            return dict(fid=fid.compute_metrics(fid.fake_results)['fid'],
                        inception_score=inception_score.compute_metrics(
                            inception_score.fake_results)['is'])


# ----------------------------------------------------------------------------- generation
class MAGESampler:
    """The stage-2 token predictor as a generator: MAGE's iterative decoding of masked tokens.

    It gives :func:`addp_mm.generation.sampling.generate` what it needs (``token_logits`` as the
    logits function and ``vqgan`` as the tokenizer), so MAGE samples come from the same loop,
    schedule and options as ADDP's; the predictor reads only the tokens (the decoded image is
    ignored).
    """

    def __init__(self, tokenizer_ckpt: str, predictor_ckpt: str) -> None:
        from mmengine.config import Config
        from mmpretrain.registry import MODELS
        cfg = Config.fromfile(osp.join(CONFIG_DIR, CONFIGS['addp']))
        tg = cfg.model.target_generator
        self.vqgan = MODELS.build(dict(tg.vqgan, checkpoint=tokenizer_ckpt, _scope_='mmpretrain'))
        self.predictor = MODELS.build(dict(tg.predictor, checkpoint=predictor_ckpt,
                                           _scope_='mmpretrain'))
        self.vqgan.init_weights()
        self.predictor.init_weights()
        self.vqgan.eval()
        self.predictor.eval()

    def token_logits(self, x, ids, mask):
        return self.predictor(ids, mask)  # (B, L, codebook size)


def generate_images(sampler, n: int, batch: int, seed: int, num_steps: int, what: str):
    """``n`` unconditional samples, image i drawn with the seed of (seed, i)."""
    import torch

    from addp_mm.generation.sampling import (SamplingOptions, generate, image_seeds,
                                             make_generators, start_unconditional)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            b = min(batch, n - i)
            if hasattr(sampler, 'sample'):  # ADDPGenerator
                images = sampler.sample(image_seeds(seed, range(i, i + b)))['images']
            else:
                L = sampler.vqgan.token_grid**2
                images = generate(sampler.token_logits, sampler.vqgan, start_unconditional(b, L),
                                  SamplingOptions(num_steps=num_steps),
                                  generators=make_generators(image_seeds(seed, range(i, i + b))))
                images = images['images']
            out.append(images.float().cpu())
            log(f'{what}: {i + b}/{n} samples')
    return torch.cat(out)


# ----------------------------------------------------------------------------- figures
def figures(fig_dir: str, sets: dict, labels, generator, test_x, test_y, seed: int) -> dict:
    """Sample grid, side-by-side overview of every scored set, inpainting of test digits."""
    import torch

    from addp_mm.utils.figures import save_grid
    from addp_mm.generation.api import inpaint
    os.makedirs(fig_dir, exist_ok=True)
    paths = {}
    cols = 10
    n = min(len(sets['addp']), 100) // cols * cols
    if n:
        paths['samples'] = save_grid(list(sets['addp'][:n].view(-1, cols, 3, 32, 32)),
                                     osp.join(fig_dir, 'addp_samples.png'), None,
                                     f'ADDP: {n} unconditional samples (seed {seed})')
    k = min(cols, *(len(v) for v in sets.values()))
    names = [r for r in FID_ROWS if r in sets]
    paths['overview'] = save_grid([sets[r][:k] for r in names],
                                  osp.join(fig_dir, 'overview.png'),
                                  [labels[r] for r in names],
                                  'The scored image sets (first images of each)')
    # one test digit per class; the lower half (4 of 8 token rows) is regenerated twice
    first = [int((test_y == c).nonzero()[0]) for c in range(10) if bool((test_y == c).any())]
    images = test_x[first]
    hole = torch.zeros(32, 32, dtype=torch.bool)
    hole[16:] = True
    results = [inpaint(generator, img, pixel_mask=hole, seed=seed, indices=(0, 1))['images']
               for img in images]
    rows = [images, images * (~hole).float(), torch.stack([r[0] for r in results]),
            torch.stack([r[1] for r in results])]
    paths['inpainting'] = save_grid(rows, osp.join(fig_dir, 'inpainting.png'),
                                    ['test digit', 'input (lower\nhalf removed)',
                                     'inpainted #1', 'inpainted #2'],
                                    'ADDP inpainting on test digits: lower half regenerated')
    return paths


# ----------------------------------------------------------------------------- the run
def run_seed(seed: int, out: str, size: str = 'full', stage_iters: Optional[dict] = None) -> dict:
    """Everything for one seed; returns (and writes) ``OUT/results.json``.

    ``stage_iters`` overrides the iterations of pre-training stages (``tokenizer``, ``predictor``,
    ``addp``, ``mae``; their lr schedules are rescaled), e.g. ``{'predictor': 1600}``.
    """
    import torch

    from addp_mm.generation.api import build_generator
    s = SIZES[size]
    iters = s['iters']
    stage_iters = dict(stage_iters or {})
    unknown = set(stage_iters) - {'tokenizer', 'predictor', 'addp', 'mae'}
    if unknown:
        raise ValueError(f'--iters: unknown stage(s) {sorted(unknown)}; use tokenizer, predictor, '
                         'addp or mae.')
    start = time.time()
    os.makedirs(out, exist_ok=True)
    data = write_digits(osp.join(out, 'data'), seed)
    log(f'data: digits 32x32 in {data["root"]}')
    common = {'train_dataloader.dataset.data_root': data['root']}

    def it(name):
        if name in stage_iters:
            return stage_iters[name]
        return None if iters is None else iters[name]

    # ---- pre-training: tokenizer -> predictor -> ADDP; MAE on the same images
    stages = {}
    stages['tokenizer'] = run('1-tokenizer', 'tokenizer', osp.join(out, 'tokenizer'), seed,
                              common, it('tokenizer'))
    stages['predictor'] = run('2-predictor', 'predictor', osp.join(out, 'predictor'), seed,
                              dict(common, **{'model.target_generator.checkpoint':
                                              stages['tokenizer']['checkpoint']}),
                              it('predictor'))
    stages['addp'] = run('3-addp', 'addp', osp.join(out, 'addp'), seed, dict(common, **{
        'model.target_generator.vqgan.checkpoint': stages['tokenizer']['checkpoint'],
        'model.target_generator.predictor.checkpoint': stages['predictor']['checkpoint']}),
        it('addp'))
    stages['mae'] = run('4-mae', 'mae', osp.join(out, 'mae'), seed, common, it('mae'))

    # ---- recognition
    results = dict(seed=seed, size=size, stage_iters={k: v['iters'] for k, v in stages.items()})
    acc = {k: recognition(k, stages[k]['checkpoint'] if k != 'random' else None, data,
                          osp.join(out, 'recognition'), seed, iters) for k in PRETRAINED}
    for protocol in PROTOCOLS:
        results[protocol] = {k: acc[k][protocol] for k in PRETRAINED}

    # ---- generation
    feat = train_feature_net(data, osp.join(out, 'feature_net.pt'), s['feature_net_epochs'])
    train_x, _ = read_split(data['root'], 'train')
    test_x, test_y = read_split(data['root'], 'test')
    score = FidIs(feat['path'], train_x)
    gen_cfg = osp.join(CONFIG_DIR, CONFIGS['generation'])
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmagic'):
        generator = build_generator(gen_cfg, stages['addp']['checkpoint'], device='cpu')
    num_steps = generator.sampling_defaults.num_steps
    sets = {}
    t0 = time.time()
    sets['addp'] = generate_images(generator, s['num_samples'], s['gen_batch'], seed, num_steps,
                                   'ADDP')
    gen_seconds = time.time() - t0
    mage = MAGESampler(stages['tokenizer']['checkpoint'], stages['predictor']['checkpoint'])
    sets['mage'] = generate_images(mage, s['num_samples'], s['gen_batch'], seed, num_steps,
                                   'MAGE')
    with torch.no_grad():
        vq = mage.vqgan
        sets['reconstruction'] = torch.cat([vq.decode_ids(vq.encode(b)[1]).clamp(0, 1)
                                            for b in test_x.split(150)])
        gen = torch.Generator().manual_seed(seed)
        rand_ids = torch.randint(0, vq.n_embed, (s['num_samples'], vq.token_grid**2),
                                 generator=gen)
        sets['random_tokens'] = torch.cat([vq.decode_ids(b).clamp(0, 1)
                                           for b in rand_ids.split(150)])
    sets['real'] = test_x
    scores = {k: score(v) for k, v in sets.items()}
    results['fid'] = {k: scores[k]['fid'] for k in FID_ROWS}
    results['is'] = {k: scores[k]['inception_score'] for k in FID_ROWS}
    results['num_images'] = {k: len(sets[k]) for k in FID_ROWS}
    results['feature_net_test_top1'] = feat['test_top1']
    labels = dict(addp='ADDP samples', mage='MAGE samples',
                  reconstruction='tokenizer\nrecon. (test)', real='real (test)',
                  random_tokens='random tokens')
    results['figures'] = figures(osp.join(out, 'figures'), sets, labels, generator, test_x,
                                 test_y, seed)
    results['stage_seconds'] = {k: v['seconds'] for k, v in stages.items()}
    results['generation_seconds'] = gen_seconds
    from machine_info import machine
    results['machine'] = machine()
    results['seconds'] = time.time() - start
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    log(f'seed {seed}: finished in {results["seconds"]:.0f} s -> {osp.join(out, "results.json")}')
    print(json.dumps({k: results[k] for k in (*PROTOCOLS, 'fid', 'is')}, indent=1), flush=True)
    return results


# ----------------------------------------------------------------------------- the table
def summarize(dirs: List[str]) -> str:
    """Markdown table, mean +- std (population std over seeds) of ``results.json`` files."""
    import numpy as np
    runs = []
    for d in dirs:
        path = osp.join(d, 'results.json') if osp.isdir(d) else d
        with open(path) as f:
            runs.append(json.load(f))

    def cell(values, digits=1):
        values = [v for v in values if v is not None]
        if not values:
            return 'n/a'
        return f'{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}'

    seeds = ', '.join(str(r['seed']) for r in runs)
    lines = [f'Recognition, top-1 % on the 450 test digits (seeds {seeds}; mean ± std)', '',
             '| initialisation | linear probe | linear probe, 10 labels/class | fine-tuning |',
             '|---|---|---|---|']
    for k, name in (('addp', 'ADDP'), ('mae', 'MAE (mmpretrain)'), ('random', 'random init')):
        lines.append(f'| {name} | ' + ' | '.join(cell([r[p][k] for r in runs])
                                                 for p in PROTOCOLS) + ' |')
    lines += ['', 'Generation, FID / IS with the digit feature network (reference: train split)',
              '', '| image set | images | FID ↓ | IS ↑ |', '|---|---|---|---|']
    names = dict(addp='ADDP samples (8 steps)', mage='MAGE samples (token predictor, 8 steps)',
                 reconstruction='tokenizer reconstructions of the test split (ceiling)',
                 real='real test split (floor)', random_tokens='uniformly random tokens (worst)')
    for k in FID_ROWS:
        lines.append(f'| {names[k]} | {runs[0]["num_images"][k]} | '
                     f'{cell([r["fid"][k] for r in runs], 2)} | '
                     f'{cell([r["is"][k] for r in runs], 2)} |')
    secs = [r['seconds'] for r in runs]
    m = runs[0]['machine']
    lines += ['', f'Run time per seed: {cell([t / 60 for t in secs])} min on '
              f'{m["cpu"]} (family {m.get("cpu_family")}; {m["threads"]} thread(s) per seed; '
              f'flags {", ".join(m.get("cpu_flags", m.get("flags", [])))}). Feature network test '
              'top-1: '
              f'{cell([r["feature_net_test_top1"] for r in runs])} %.']
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seed', type=int, default=0, help='seed of training and sampling')
    parser.add_argument('--out', default=None,
                        help='output folder (default work_dirs/mini_paper/seed<SEED>)')
    parser.add_argument('--size', choices=list(SIZES), default='full',
                        help='full: the benchmark; ci: a few iterations per stage (tests)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1: results are deterministic for a '
                        'seed and a thread count; `make mini-paper` runs the seeds side by side)')
    parser.add_argument('--iters', nargs='+', default=[], metavar='STAGE=N',
                        help='iterations of pre-training stages instead of the configs\' '
                        '(tokenizer, predictor, addp, mae), e.g. --iters predictor=1600')
    parser.add_argument('--summarize', nargs='+', metavar='DIR',
                        help='print the mean ± std table of these finished runs and exit')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    import torch
    torch.set_num_threads(args.threads)
    import addp_mm  # noqa: F401  (registers the models)
    out = args.out or osp.join('work_dirs', 'mini_paper', f'seed{args.seed}')
    try:
        stage_iters = {k: int(v) for k, v in (item.split('=') for item in args.iters)}
    except ValueError:
        sys.exit(f'error: --iters takes STAGE=N items, got {args.iters}')
    run_seed(args.seed, out, args.size, stage_iters)
    return 0


if __name__ == '__main__':
    sys.exit(main())
