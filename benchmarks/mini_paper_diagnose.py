#!/usr/bin/env python
"""Diagnostics of a mini-paper run (the numbers of the investigation in mini_paper/README.md).

    python benchmarks/mini_paper_diagnose.py work_dirs/mini_paper/seed0
    python benchmarks/mini_paper_diagnose.py work_dirs/mini_paper/seed0 \
        --predictor work_dirs/mini_paper_longpred/seed0/predictor/iter_1600.pth \
        --addp work_dirs/mini_paper_longpred/seed0/addp/iter_600.pth

Prints, on the run's digits:

- tokenizer: test reconstruction L1, unigram perplexity of the train tokens, how many codes hold
  90% of them, and how many distinct codes the top-left token (always background) takes;
- token predictor: top-1 and cross-entropy on masked test tokens at mask ratios 0.5 / 0.75, next
  to the per-position prior (the train split's most frequent code of each grid position) and a
  nearest-neighbour copy (mini_paper_parts/predictor_eval.py). A predictor at the per-position
  prior gives ADDP a target that does not depend on the image;
- encoders (ADDP, MAE, random init): effective rank of the test features (mean patch token after
  the final norm; exp of the entropy of the normalised covariance spectrum) and the std across
  images relative to the mean feature norm (a collapsed encoder maps every digit to about the same
  vector).
"""
import argparse
import os
import os.path as osp

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmpretrain.models import VisionTransformer  # noqa: E402

import addp_mm  # noqa: F401,E402
from addp_mm.checkpoints.convert import to_backbone_state_dict  # noqa: E402
from addp_mm.checkpoints.loading import load_checkpoint_file  # noqa: E402
from addp_mm.checkpoints.weights import extract_state_dict  # noqa: E402
from addp_mm.generation.mage_sampler import MAGESampler  # noqa: E402
from mini_paper_parts.data import read_split  # noqa: E402
from mini_paper_parts.pipeline import config  # noqa: E402
from mini_paper_parts.predictor_eval import RATIOS, evaluate_predictor  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='diagnostics of a mini-paper run')
    parser.add_argument('run', help='a mini_paper.py --out folder')
    parser.add_argument('--predictor', help='another token-predictor checkpoint to diagnose')
    parser.add_argument('--addp', help='another ADDP checkpoint to diagnose')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)

    run = args.run
    data = osp.join(run, 'data')
    x_train, _ = read_split(data, 'train')
    x_test, _ = read_split(data, 'test')
    tok = osp.join(run, 'tokenizer', f'iter_{_iters(run, "tokenizer")}.pth')
    pred = args.predictor or osp.join(run, 'predictor', f'iter_{_iters(run, "predictor")}.pth')
    sampler = MAGESampler.from_config(Config.fromfile(config('addp')), tok, pred)
    vq, predictor = sampler.vqgan, sampler.predictor
    torch.manual_seed(0)
    with torch.no_grad():
        _, ids = vq.encode(x_test)
        _, train_ids = vq.encode(x_train)
        rec = (vq.decode_ids(ids).clamp(0, 1) - x_test).abs().mean().item()
        counts = torch.bincount(train_ids.flatten(), minlength=vq.n_embed).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()
        top = p.sort(descending=True).values.cumsum(0)
        print(f'tokenizer: test L1 {rec:.4f}; train-token perplexity {perplexity:.1f} of '
              f'{vq.n_embed} codes; {int((top < 0.9).sum()) + 1} codes hold 90% of the tokens; '
              f'the top-left (background) token takes {train_ids[:, 0].unique().numel()} '
              'distinct codes')
    report = evaluate_predictor(predictor, train_ids, ids)
    for ratio in RATIOS:
        print(f'predictor {osp.basename(pred)}, mask ratio {ratio}: top-1 '
              f'{report[f"top1_{ratio}"]:.1f}% (CE {report[f"ce_{ratio}"]:.2f}); per-position '
              f'prior {report[f"prior_top1_{ratio}"]:.1f}%; nearest-neighbour copy '
              f'{report[f"nn_top1_{ratio}"]:.1f}%')

    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1) / 255.
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1) / 255.
    addp = args.addp or osp.join(run, 'addp', f'iter_{_iters(run, "addp")}.pth')
    mae = osp.join(run, 'mae', f'iter_{_iters(run, "mae")}.pth')
    for kind, ckpt in (('ADDP', addp), ('MAE', mae), ('random init', None)):
        torch.manual_seed(0)
        vit = VisionTransformer(
            arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
            img_size=32, patch_size=4, pre_norm=kind == 'ADDP', patch_cfg=dict(bias=True),
            final_norm=True, out_type='featmap')
        vit.init_weights()
        if ckpt is not None:
            sd = extract_state_dict(load_checkpoint_file(ckpt), ckpt)
            sd = to_backbone_state_dict(sd, keep_norms=True) if kind == 'ADDP' else \
                {k: v for k, v in sd.items() if k.startswith('backbone.')}
            vit.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()}, strict=True)
        vit.eval()
        with torch.no_grad():
            f = vit((x_test - mean) / std)[0].flatten(2).mean(2).double()  # (N, D)
        cov = torch.cov(f.T)
        eig = torch.linalg.eigvalsh(cov).clamp(min=0)
        q = eig / eig.sum()
        erank = torch.exp(-(q[q > 0] * q[q > 0].log()).sum()).item()
        spread = (f.std(0).norm() / f.mean(0).norm()).item()
        print(f'encoder {kind}: effective rank {erank:.1f} of {f.shape[1]}; std across images / '
              f'mean feature norm {spread:.3f}')


def _iters(run: str, stage: str) -> int:
    names = [f for f in os.listdir(osp.join(run, stage)) if f.startswith('iter_')]
    if not names:
        raise FileNotFoundError(f'no iter_*.pth in {osp.join(run, stage)}')
    return max(int(n[5:-4]) for n in names)


if __name__ == '__main__':
    main()
