"""benchmarks/mini_paper.py end to end at the CI size (a few iterations per stage; no claims).

The full run is a benchmark (benchmarks/mini_paper/README.md); this keeps its pipeline working:
the digits split on disk, every Runner stage, the three recognition protocols for the three
initialisations, generation, the feature network and mmagic's FID/IS, figures and the table.
"""
import json
import math
import os
import os.path as osp
import signal
import subprocess
import sys
from collections import Counter

import pytest
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'mini_paper.py')


@pytest.fixture(scope='module')
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('mini_paper') / 'seed3'
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    proc = subprocess.run([sys.executable, SCRIPT, '--size', 'ci', '--seed', '3', '--out',
                           str(out)], cwd=str(out.parent), env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    with open(out / 'results.json') as f:
        results = json.load(f)
    return dict(out=out, results=results, stdout=proc.stdout)


def _read(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def test_digits_split_in_mmpretrain_format(ci_run):
    root = ci_run['out'] / 'data'
    train, test = _read(root / 'meta' / 'train.txt'), _read(root / 'meta' / 'test.txt')
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert not {p for p, _ in train} & {p for p, _ in test}
    for rows in (train, test):
        for rel, label in rows:
            assert rel.split('/')[1] == label  # <split>/<digit>/<index>.png
    # stratified: every class is 25% +- one image of its digits in the test split
    n_train, n_test = Counter(c for _, c in train), Counter(c for _, c in test)
    for c in map(str, range(10)):
        assert abs(n_test[c] - 0.25 * (n_test[c] + n_train[c])) <= 1
    few = _read(root / 'meta' / 'train_10shot.txt')
    assert Counter(c for _, c in few) == {str(c): 10 for c in range(10)}
    assert {p for p, _ in few} <= {p for p, _ in train}
    with Image.open(root / train[0][0]) as img:
        assert img.size == (32, 32) and img.mode == 'RGB'
    # the pre-training folder holds the train split only
    pngs = [f for _, _, fs in os.walk(root / 'train') for f in fs if f.endswith('.png')]
    assert len(pngs) == len(train)


def test_results_json_has_every_row(ci_run):
    r = ci_run['results']
    assert r['seed'] == 3 and r['seconds'] > 0
    assert r['tasks'] == ['cls', 'gen', 'det', 'seg']
    for protocol in ('linear_probe', 'linear_probe_10shot', 'finetune'):
        # the paper's MAGE row (its encoder on the tokenizer's tokens) has the linear probes
        rows = {'addp', 'mae', 'random'} | ({'mage'} if protocol != 'finetune' else set())
        assert set(r[protocol]) == rows
        for v in r[protocol].values():
            assert 0. <= v <= 100.
    # the token predictor, measured before ADDP distils it, beside its two references
    keys = {'top1_0.5', 'top1_0.75', 'ce', 'prior_top1', 'nn_top1'}
    assert keys <= set(r['predictor'])
    for k in keys:
        assert math.isfinite(r['predictor'][k]) and r['predictor'][k] >= 0., k
    assert 0. < r['predictor']['prior_top1'] <= 100. and 0. < r['predictor']['nn_top1'] <= 100.
    assert set(r['stage_seconds']) >= {'tokenizer', 'bank', 'predictor', 'addp', 'mae'}
    # the detection and segmentation columns, for the three initialisations
    for kind in ('addp', 'mae', 'random'):
        for k in ('bbox_ap', 'segm_ap', 'bbox_ap50'):
            assert math.isfinite(r['det'][kind][k]) and 0. <= r['det'][kind][k] <= 100.
        assert math.isfinite(r['seg'][kind]['miou']) and 0. <= r['seg'][kind]['miou'] <= 100.
    for metric in ('fid', 'is'):
        assert set(r[metric]) == {'addp', 'mage', 'reconstruction', 'real', 'random_tokens'}
    for v in r['fid'].values():
        assert v >= 0.
    for v in r['is'].values():
        assert 1. - 1e-6 <= v <= 10. + 1e-6  # exp(KL) over 10 classes
    assert r['num_images']['real'] == r['num_images']['reconstruction'] == 450


def test_feature_network_knows_digits_and_fid_separates(ci_run):
    """Even after one epoch the FID/IS network recognises test digits well above chance (10%),
    and real test digits are far closer to the train split than random-token decodes."""
    r = ci_run['results']
    assert r['feature_net_test_top1'] > 50.
    assert r['fid']['real'] < 0.5 * r['fid']['random_tokens']
    assert r['is']['real'] > 3.


def test_figures_are_pngs(ci_run):
    for name, path in ci_run['results']['figures'].items():
        assert osp.isfile(path), name
        with Image.open(path) as img:
            assert img.format == 'PNG'
            lo, hi = img.convert('L').getextrema()
            assert hi - lo > 50, name


def test_summary_table(ci_run, tmp_path):
    other = tmp_path / 'copy'
    other.mkdir()
    r = dict(ci_run['results'], seed=4)
    r['finetune'] = dict(r['finetune'], addp=r['finetune']['addp'] + 2.)
    (other / 'results.json').write_text(json.dumps(r))
    proc = subprocess.run([sys.executable, SCRIPT, '--summarize', str(ci_run['out']), str(other)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert 'seeds 3, 4' in table
    addp_row = next(line for line in table.splitlines() if line.startswith('| ADDP |'))
    cells = [c.strip() for c in addp_row.strip(' |').split('|')]
    # fine-tuning (the fourth column) differs by 2 points between the two runs: std 1.0
    assert cells[3].endswith('± 1.0')
    assert len(cells) == 1 + 3 + 3 + 1  # recognition, detection (3 metrics), segmentation
    assert '| MAGE (token predictor) |' in table and 'nearest-neighbour copy' in table
    assert 'Targets' in table


def test_mini_configs_parse_and_are_listed():
    """Every config of configs/addp/mini parses, is one of the script's stages and is listed in
    the folder's metafile and README."""
    import yaml
    from mmengine.config import Config
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    try:
        import mini_paper_parts.pipeline as mini_paper
    finally:
        sys.path.pop(0)
    folder = osp.join(REPO, 'configs', 'addp', 'mini')
    configs = sorted(f for f in os.listdir(folder) if f.endswith('.py'))
    # the script's configs exist (older ones stay: config names are cited, never removed)
    assert set(mini_paper.CONFIGS.values()) <= set(configs)
    with open(osp.join(folder, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    assert sorted(osp.basename(m['Config']) for m in meta['Models']) == configs
    with open(osp.join(folder, 'README.md')) as f:
        readme = f.read()
    for name in configs:
        assert f'({name})' in readme, name
        cfg = Config.fromfile(osp.join(folder, name))
        assert cfg.model.type
        if 'max_iters' in cfg:  # the name states the schedule
            assert f'-{cfg.max_iters}iter_' in name


def test_rerun_with_other_settings_is_refused(ci_run):
    """A finished stage is reused only for the same settings: another iteration count into the
    same folder stops with an error instead of reporting the old run's numbers."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    proc = subprocess.run([sys.executable, SCRIPT, '--size', 'ci', '--seed', '3', '--out',
                           str(ci_run['out']), '--iters', 'tokenizer=5'], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert 'holds a finished run made with other settings' in proc.stderr
    assert 'choose another output folder' in proc.stderr
    assert 'Traceback' not in proc.stderr


def _run_until(cmd, env, pattern, cwd):
    """Start ``cmd``; SIGKILL it as soon as a line of its output contains ``pattern`` (None: let
    it finish). Returns (returncode, output)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if pattern is not None and pattern in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.stdout.close()
    return proc.wait(timeout=900), ''.join(lines)


def _numbers(obj, prefix=''):
    """Every number of a results.json, by path, without the timings, paths and machine."""
    skip = ('seconds', 'figures', 'machine', 'generation_seconds', 'stage_seconds')
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in skip:
                out.update(_numbers(v, f'{prefix}.{k}'))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = obj
    return out


def test_survives_sigkill_at_three_points(ci_run, tmp_path):
    """SIGKILL during a pre-training stage, during a probe and while the FID sets are drawn;
    the same command each time continues, repeats no finished stage, and ends with the
    results.json of the uninterrupted run (one thread: bit for bit)."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    out = tmp_path / 'seed3'
    cmd = [sys.executable, SCRIPT, '--size', 'ci', '--seed', '3', '--tasks', 'cls,gen',
           '--out', str(out)]
    finished = set()
    for pattern in ('3-addp: training', 'linear_probe-mae: training', 'MAGE: 12/', None):
        rc, log = _run_until(cmd, env, pattern, str(tmp_path))
        # a stage finished before is reused, never trained again
        for name in finished:
            assert f'{name}: training' not in log, (name, log[-3000:])
        finished |= {line.split('] ', 1)[1].split(': done in')[0]
                     for line in log.splitlines() if ': done in ' in line and '] ' in line}
        if pattern is not None:
            assert rc == -signal.SIGKILL, log[-3000:]
            assert not (out / 'results.json').exists()
        else:
            assert rc == 0, log[-5000:]
    assert {'1-tokenizer', '3-addp', 'linear_probe-addp'} <= finished
    with open(out / 'results.json') as f:
        resumed = json.load(f)
    expected = _numbers(ci_run['results'])
    got = _numbers(resumed)
    shared = {k for k in expected if not k.startswith(('.det', '.seg', '.tasks'))}
    assert shared <= set(got)
    assert {k: got[k] for k in shared} == {k: expected[k] for k in shared}
