#!/usr/bin/env python
"""How the mini paper's token-predictor recipe was chosen: on the train digits only.

    python benchmarks/mini_paper_select.py predictor --std 0.12 --iters 2000 --batch 32
    python benchmarks/mini_paper_select.py predictor --std 0.02 --no-detach --iters 400
    python benchmarks/mini_paper_select.py addp --predictor OUT/predictor_<tag>.pth --std 0.12
    python benchmarks/mini_paper_select.py table          # the README's selection table

Issue #20 asks for the predictor's batch, steps, lr and embedding init to be chosen on the train
split only. This script splits the mini paper's 1,347 train digits (seed 0) into 1,078 to fit and
269 to validate (20% of each class), trains the tokenizer stage as the mini paper does, draws 16
crops of every fitting image with the pre-training pipeline (numpy seed 0) and tokenizes them once,
then:

- ``predictor``: trains the tiny MAGE predictor (``MAGEViT`` of the mini configs, MAGE's loss:
  one truncated-normal mask ratio per batch, half the sequence dropped from the encoder, label
  smoothing 0.1) in a plain loop on those ids (AdamW (0.9, 0.95), weight decay 0.05 on matrices,
  linear warm-up over 10% then cosine, clipping at 3.0), and reports masked top-1 and
  cross-entropy on the validation digits' tokens at ratios 0.5 and 0.75 (4 masks each), beside the
  per-position prior of the fitting tokens. ``--no-detach`` (the logits' gradient also reaches the
  embeddings) and ``--logit-scale`` (a learned scalar on the logits) are the two alternatives to a
  larger embedding init that the issue asks to try;
- ``addp``: trains ADDP (the mini config's model, frozen tokenizer and the given predictor) in the
  same kind of loop and probes its encoder (mean patch token) with scikit-learn's logistic
  regression: fit digits -> validation digits, all labels and 10 per class (5 draws), every 250
  iterations.

It is a fast proxy of the Runner stages (same models, losses, masks and schedules; batches drawn
with replacement), deterministic for a thread count. Results append to ``OUT/selection.jsonl``;
``table`` prints them. The test digits are never read.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmpretrain.registry import MODELS, TRANSFORMS  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import addp_mm  # noqa: F401,E402
from addp_mm.models.algorithms.mage import truncated_normal  # noqa: E402
from addp_mm.models.backbones.mage_vit import MAGEViT  # noqa: E402
from addp_mm.models.utils import mlm  # noqa: E402
from addp_mm.models.utils.masking import num_masked  # noqa: E402
from addp_mm.utils.errors import add_debug_argument, run_main  # noqa: E402
from mini_paper_parts.data import write_digits  # noqa: E402
from mini_paper_parts.pipeline import config  # noqa: E402
from mini_paper_parts.stages import run  # noqa: E402

CROPS = 16
VAL_FRACTION = 0.2
SPLIT_SEED = 0


# ----------------------------------------------------------------------------- data
def _rows(root, split):
    with open(osp.join(root, 'meta', f'{split}.txt')) as f:
        return [line.split() for line in f if line.strip()]


def _image(root, rel):
    return np.asarray(Image.open(osp.join(root, rel)).convert('RGB'))


def _tensor(images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.


def fit_val_split(root):
    """(fit paths, validation paths, {path: label}) of the train digits (20% of each class)."""
    rows = _rows(root, 'train')
    rng = np.random.default_rng(SPLIT_SEED)
    by_class = {}
    for path, label in rows:
        by_class.setdefault(label, []).append(path)
    val = []
    for _, paths in sorted(by_class.items()):
        val += list(rng.choice(paths, int(round(VAL_FRACTION * len(paths))), replace=False))
    val = set(val)
    return [p for p, _ in rows if p not in val], sorted(val), dict(rows)


def prepare(out):
    """Digits, tokenizer stage, and the token ids of the fitting crops and of both parts."""
    cache = osp.join(out, 'tokens.pth')
    data = write_digits(osp.join(out, 'data'), 0)
    tok = run('1-tokenizer', config('tokenizer'), osp.join(out, 'tokenizer'), 0,
              {'train_dataloader.dataset.data_root': data['root']})
    if osp.isfile(cache):
        return data, tok, torch.load(cache)
    cfg = Config.fromfile(config('addp'))
    vq = MODELS.build(dict(cfg.model.target_generator.vqgan, checkpoint=tok['checkpoint'],
                           _scope_='mmpretrain'))
    vq.init_weights()
    vq.eval()
    fit, val, _ = fit_val_split(data['root'])
    crop = TRANSFORMS.build(dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.6, 1.0),
                                 aspect_ratio_range=(0.85, 1.15), backend='pillow',
                                 interpolation='bicubic'))
    np.random.seed(0)
    crops = [crop(dict(img=_image(data['root'], p).copy()))['img'] for p in fit
             for _ in range(CROPS)]

    def ids(x):
        with torch.no_grad():
            return torch.cat([vq.encode(b)[1] for b in x.split(256)])

    tokens = dict(bank=ids(_tensor(crops)), val=ids(_tensor([_image(data['root'], p)
                                                            for p in val])),
                  fit=ids(_tensor([_image(data['root'], p) for p in fit])))
    torch.save(tokens, cache)
    return data, tok, tokens


# ----------------------------------------------------------------------------- loops
def _optimizer(named_params, lr, wd):
    # as the configs' paramwise_cfg: no decay on biases and 1-D parameters
    def plain(n, p):
        return p.ndim <= 1 or n.endswith('bias')

    decay = [p for n, p in named_params if p.requires_grad and not plain(n, p)]
    other = [p for n, p in named_params if p.requires_grad and plain(n, p)]
    return torch.optim.AdamW([dict(params=decay, weight_decay=wd),
                              dict(params=other, weight_decay=0.)], lr=lr, betas=(0.9, 0.95))


def _lr(step, iters, lr, warm):
    if step < warm:
        return lr * (0.01 + 0.99 * step / warm)
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, iters - warm)))


def _alternative_mlm(no_detach: bool, logit_scale: bool) -> None:
    """The two alternatives to a larger embedding init, as a patch of the MLM layer."""
    def forward(self, x, word_embeddings):
        h = self.ln(F.gelu(self.fc(x)))
        logits = h @ (word_embeddings if no_detach else word_embeddings.detach()).t()
        if logit_scale:
            logits = logits * self.log_scale.exp()
        return logits + self.bias
    mlm.MlmLayer.forward = forward


def train_predictor(args, tokens):
    if args.no_detach or args.logit_scale:
        _alternative_mlm(args.no_detach, args.logit_scale)
    torch.manual_seed(args.seed)
    net = MAGEViT(embed_dims=128, depth=4, num_heads=4, decoder_depth=2, decoder_num_heads=4,
                  codebook_size=64, num_tokens=64, vocab_size=66, fake_class_label=64,
                  mask_token_label=65, drop_rate=0., embed_init_std=args.std)
    net.init_weights()
    if args.logit_scale:
        net.mlm_layer.log_scale = nn.Parameter(torch.zeros(()))
    opt = _optimizer(list(net.named_parameters()), args.lr, 0.05)
    bank = tokens['bank']
    L = bank.shape[1]
    gen = torch.Generator().manual_seed(args.seed)
    warm = max(1, int(0.1 * args.iters))
    for step in range(args.iters):
        for group in opt.param_groups:
            group['lr'] = _lr(step, args.iters, args.lr, warm)
        ids = bank[torch.randint(0, len(bank), (args.batch, ), generator=gen)]
        ratio = truncated_normal(0.55, 0.25, 0.5, 1.0, generator=gen)
        rank = torch.rand(args.batch, L, generator=gen).argsort(1).argsort(1)
        mask = (rank < num_masked(ratio, L)).float()
        drop = (rank < num_masked(0.5, L)).float()
        ce = F.cross_entropy(net(ids, mask, drop).flatten(0, 1), ids.flatten(),
                             label_smoothing=0.1, reduction='none').view(args.batch, L)
        loss = (ce * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 3.0)
        opt.step()
    return net.eval()


@torch.no_grad()
def evaluate(net, tokens):
    val, fit = tokens['val'], tokens['fit']
    L = val.shape[1]
    mode = torch.stack([torch.bincount(fit[:, i], minlength=64).argmax() for i in range(L)])
    gen = torch.Generator().manual_seed(123)
    out = {}
    for ratio in (0.5, 0.75):
        mask = torch.cat([torch.rand(val.shape, generator=gen).argsort(1).argsort(1)
                          < round(ratio * L) for _ in range(4)])
        ids = val.repeat(4, 1)
        logits = net(ids, mask.float())
        out[f'top1_{ratio}'] = round(100 * float((logits.argmax(-1)[mask] == ids[mask])
                                                 .float().mean()), 1)
        out[f'ce_{ratio}'] = round(float(F.cross_entropy(logits[mask], ids[mask])), 3)
        out[f'prior_{ratio}'] = round(100 * float((mode.expand_as(ids)[mask] == ids[mask])
                                                  .float().mean()), 1)
        out[f'maxp_{ratio}'] = round(float(logits.softmax(-1).max(-1).values[mask].mean()), 3)
    return out


def train_addp(args, data, tok, tokens, record):
    cfg = Config.fromfile(config('addp')).model
    cfg.target_generator.vqgan.checkpoint = tok['checkpoint']
    cfg.target_generator.predictor.checkpoint = args.predictor
    cfg.neck.embed_init_std = args.std
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg, _scope_='mmpretrain'))
    model.init_weights()
    fit, val, labels = fit_val_split(data['root'])
    xf = _tensor([_image(data['root'], p) for p in fit])
    xv = _tensor([_image(data['root'], p) for p in val])
    yf = np.array([int(labels[p]) for p in fit])
    yv = np.array([int(labels[p]) for p in val])

    def probe():
        model.eval()
        with torch.no_grad():
            ff, fv = (torch.cat([model.backbone(b)[0][:, 1:].mean(1) for b in x.split(256)])
                      .numpy() for x in (xf, xv))
        model.train()

        def score(idx):
            scaler = StandardScaler().fit(ff[idx])
            clf = LogisticRegression(max_iter=2000).fit(scaler.transform(ff[idx]), yf[idx])
            return 100 * clf.score(scaler.transform(fv), yv)

        rng = np.random.default_rng(0)
        shots = [score(np.concatenate([rng.choice(np.where(yf == k)[0], 10, replace=False)
                                       for k in range(10)])) for _ in range(5)]
        return dict(lin=round(score(np.arange(len(yf))), 1), shot10=round(float(np.mean(shots)),
                                                                            1))

    record['init'] = probe()
    params = list(model.named_parameters())
    opt = _optimizer(params, args.lr, 0.05)
    bank = tokens['bank'].long()
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    warm = max(1, int(args.iters / 12))
    model.train()
    record['curve'] = []
    for step in range(args.iters):
        for group in opt.param_groups:
            group['lr'] = _lr(step, args.iters, args.lr, warm)
        ids = bank[torch.randint(0, len(bank), (args.batch, ), generator=gen)]
        loss = model.loss([ids], None)['loss']
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params if p.requires_grad], 3.0)
        opt.step()
        if (step + 1) % 250 == 0 or step + 1 == args.iters:
            record['curve'].append(dict(probe(), it=step + 1))
            print(record['curve'][-1], flush=True)


# ----------------------------------------------------------------------------- table
def table(out):
    with open(osp.join(out, 'selection.jsonl')) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print('| predictor | embedding init std | iterations x batch, lr | masked top-1 at 0.5 | '
          'CE at 0.5 | per-position prior | top-1 at 0.75 | CE at 0.75 | mean top probability |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        if r['what'] != 'predictor':
            continue
        how = ('no detach' if r['no_detach'] else '') + (' learned logit scale'
                                                         if r['logit_scale'] else '')
        print(f"| {how.strip() or 'detached (official)'} | {r['std']} | {r['iters']} x "
              f"{r['batch']}, {r['lr']:g} | {r['top1_0.5']} | {r['ce_0.5']} | {r['prior_0.5']} | "
              f"{r['top1_0.75']} | {r['ce_0.75']} | {r['maxp_0.5']} |")
    print('\n| ADDP on predictor | ADDP neck std | iterations | ' +
          ' | '.join(f'probe / 10-shot at {i}' for i in ('init', 250, 750, 1500)) + ' |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        if r['what'] == 'addp':
            curve = {c['it']: c for c in r['curve']}
            cells = [r['init']] + [curve.get(i, {}) for i in (250, 750, r['iters'])]
            print(f"| {osp.basename(r['predictor'])} | {r['std']} | {r['iters']} | " + ' | '.join(
                f"{c.get('lin', '-')} / {c.get('shot10', '-')}" for c in cells) + ' |')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('what', choices=('predictor', 'addp', 'table'))
    parser.add_argument('--out', default='work_dirs/mini_paper_select')
    parser.add_argument('--std', type=float, default=0.02, help='embed_init_std')
    parser.add_argument('--no-detach', action='store_true')
    parser.add_argument('--logit-scale', action='store_true')
    parser.add_argument('--iters', type=int, default=400)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--predictor', help='addp: a predictor file written by `predictor`')
    parser.add_argument('--threads', type=int, default=1)
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.what == 'table':
        table(args.out)
        return 0
    torch.set_num_threads(args.threads)
    data, tok, tokens = prepare(args.out)
    record = dict(what=args.what, **{k: v for k, v in vars(args).items()
                                     if k not in ('what', 'out', 'debug')})
    start = time.time()
    if args.what == 'predictor':
        net = train_predictor(args, tokens)
        record.update(evaluate(net, tokens))
        tag = f"std{args.std}_{args.iters}x{args.batch}_lr{args.lr:g}" + \
            ('_nodetach' if args.no_detach else '') + ('_logitscale' if args.logit_scale else '')
        path = osp.join(args.out, f'predictor_{tag}.pth')
        torch.save(dict(state_dict=net.state_dict()), path)
        record['file'] = path
    else:
        if not args.predictor or not osp.isfile(args.predictor):
            sys.exit('error: addp needs --predictor FILE, a file written by '
                     '`mini_paper_select.py predictor`.')
        train_addp(args, data, tok, tokens, record)
    record['seconds'] = round(time.time() - start, 1)
    print(json.dumps(record), flush=True)
    with open(osp.join(args.out, 'selection.jsonl'), 'a') as f:
        f.write(json.dumps(record) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main))
