"""The table of several seeds' ``results.json``: mean ± std, and which targets are met."""
import json
import os.path as osp
from typing import List, Optional

import numpy as np

from .recognition import PROTOCOLS

ROWS = (('addp', 'ADDP'), ('mae', 'MAE (mmpretrain)'), ('mage', 'MAGE (token predictor)'),
        ('random', 'random init'))
FID_ROWS = ('addp', 'mage', 'reconstruction', 'real', 'random_tokens')
FID_NAMES = dict(addp='ADDP samples', mage='MAGE samples (the token predictor alone)',
                 reconstruction='tokenizer reconstructions of the test split (ceiling)',
                 real='real test split (floor)', random_tokens='uniformly random tokens (worst)')
#: #11's ADDP FID (mean of seeds 0-2), the reference of the FID target (at most half of it).
FID_BEFORE = 248.67


def load_runs(dirs: List[str]) -> List[dict]:
    runs = []
    for d in dirs:
        path = osp.join(d, 'results.json') if osp.isdir(d) else d
        with open(path) as f:
            runs.append(json.load(f))
    return runs


def mean(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def cell(values, digits: int = 1) -> str:
    """``mean ± std`` (population std over seeds) of the values that exist, ``-`` if none."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    return f'{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}'


def _get(run: dict, *keys):
    for k in keys:
        if not isinstance(run, dict) or k not in run:
            return None
        run = run[k]
    return run


def targets(runs: List[dict]) -> List[tuple]:
    """(target, measured, met) rows of issue #20's targets, means over the seeds."""
    def m(*keys):
        return mean([_get(r, *keys) for r in runs])

    rows = []

    def add(name, measured, ok):
        rows.append((name, measured, None if ok is None else bool(ok)))

    pt, prior = m('predictor', 'top1_0.5'), m('predictor', 'prior_top1')
    if pt is not None:
        add('token predictor: masked top-1 at ratio 0.5 at least per-position prior + 10',
            f'{pt:.1f} against {prior:.1f} + 10', pt >= prior + 10)
    for p, name in (('linear_probe_10shot', '10-shot probe'), ('linear_probe', 'linear probe')):
        a, r = m(p, 'addp'), m(p, 'random')
        if a is not None and r is not None:
            add(f'ADDP {name} at least random init + 5', f'{a:.1f} against {r:.1f} + 5', a >= r + 5)
    a, r = m('finetune', 'addp'), m('finetune', 'random')
    if a is not None and r is not None:
        add('ADDP fine-tuning at least random init', f'{a:.1f} against {r:.1f}', a >= r)
    fa, fm = m('fid', 'addp'), m('fid', 'mage')
    if fa is not None:
        add(f'ADDP FID at most half of #11\'s {FID_BEFORE:.0f}',
            f'{fa:.1f} against {FID_BEFORE / 2:.1f}', fa <= FID_BEFORE / 2)
        if fm is not None:
            add('ADDP FID below the MAGE samples\' FID', f'{fa:.1f} against {fm:.1f}', fa < fm)
    a, e = m('linear_probe', 'addp'), m('linear_probe', 'mae')
    if a is not None and e is not None:
        add('stretch: ADDP linear probe within 10 points of MAE\'s', f'{a:.1f} against {e:.1f}',
            a >= e - 10)
    for task, metric, name in (('det', 'bbox_ap', 'box AP'), ('seg', 'miou', 'mIoU')):
        va, ve, vr = (m(task, k, metric) for k in ('addp', 'mae', 'random'))
        if None not in (va, ve, vr):
            add(f'the paper\'s order on {name}: ADDP ≥ MAE > random init',
                f'{va:.1f} / {ve:.1f} / {vr:.1f}', va >= ve > vr)
    return rows


def summarize(dirs: List[str]) -> str:
    """The README's tables (markdown) of finished runs."""
    runs = load_runs(dirs)
    seeds = ', '.join(str(r['seed']) for r in runs)
    has_det = any('det' in r for r in runs)
    has_seg = any('seg' in r for r in runs)
    head = ['initialisation', 'linear probe', '10 labels/class', 'fine-tuning']
    if has_det:
        head += ['Mask R-CNN box AP', 'mask AP', 'box AP50']
    if has_seg:
        head += ['UperNet mIoU']
    lines = [f'Downstream, on the test split (seeds {seeds}; mean ± std): top-1 %, COCO-style AP '
             '(x100) on the test canvases, mIoU %', '', '| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for k, name in ROWS:
        if not any(_get(r, 'linear_probe', k) is not None for r in runs):
            continue
        cells = [cell([_get(r, p, k) for r in runs]) for p in PROTOCOLS]
        if has_det:
            cells += [cell([_get(r, 'det', k, m) for r in runs])
                      for m in ('bbox_ap', 'segm_ap', 'bbox_ap50')]
        if has_seg:
            cells += [cell([_get(r, 'seg', k, 'miou') for r in runs])]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    if any('predictor' in r for r in runs):
        lines += ['', 'The token predictor on the test tokens (masked positions; %, nats)', '',
                  '| mask ratio | predictor top-1 | cross-entropy | per-position prior | '
                  'nearest-neighbour copy (10 train images) |', '|---|---|---|---|---|']
        for ratio in ('0.5', '0.75'):
            lines.append(f'| {ratio} | ' + ' | '.join(
                cell([_get(r, 'predictor', f'{k}_{ratio}') for r in runs], d)
                for k, d in (('top1', 1), ('ce', 2), ('prior_top1', 1), ('nn_top1', 1))) + ' |')
    if any('fid' in r for r in runs):
        lines += ['', 'Generation, FID / IS with the digit feature network (reference: train '
                  'split)',
                  '', '| image set | images | FID ↓ | IS ↑ |', '|---|---|---|---|']
        for k in FID_ROWS:
            n = _get(runs[0], 'num_images', k)
            lines.append(f'| {FID_NAMES[k]} | {n} | {cell([_get(r, "fid", k) for r in runs], 2)} '
                         f'| {cell([_get(r, "is", k) for r in runs], 2)} |')
    rows = targets(runs)
    if rows:
        lines += ['', 'Targets (means over the seeds)', '', '| target | measured | met? |',
                  '|---|---|---|']
        lines += [f'| {t} | {v} | {"yes" if ok else "**no**"} |' for t, v, ok in rows]
    m = runs[0].get('machine', {})
    stages = sorted({k for r in runs for k in r.get('stage_seconds', {})})
    # Per seed, not a mean: seeds may run alone or side by side, with different thread counts.
    times = '; '.join(f'seed {r["seed"]} {r["seconds"] / 60:.1f} min '
                      f'({_get(r, "machine", "threads")} thread(s))'
                      for r in runs if r.get('seconds'))
    lines += ['', f'Run time: {times}, on {m.get("cpu")} (family {m.get("cpu_family")}, model '
              f'{m.get("cpu_model")}; flags '
              f'{", ".join(m.get("cpu_flags", m.get("flags", [])))}). Per stage (s), seed by seed: ' +
              ', '.join(f'{k} ' + ' / '.join(
                  '-' if r.get('stage_seconds', {}).get(k) is None
                  else f'{r["stage_seconds"][k]:.0f}' for r in runs) for k in stages) +
              '. Feature network test top-1: '
              f'{cell([r.get("feature_net_test_top1") for r in runs])} %.']
    return '\n'.join(lines)
