"""One seed of the mini paper, stage after stage, and the teacher curve of seed 0.

Every stage leaves a record in its folder and is reused by a rerun with the same settings (a run
killed at any point continues where it stopped, and repeats no finished stage); ``results.json``
is written atomically at the end.
"""
import json
import os
import os.path as osp
import time
from typing import Dict, Iterable, List, Optional

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from addp_mm.generation.api import build_generator
from addp_mm.generation.mage_sampler import MAGESampler
from addp_mm.utils.errors import ConfigError
from addp_mm.utils.provenance import write_json_atomic
from _common import machine
from . import canvases as canvas_data
from . import detseg
from .data import read_split, write_digits
from .figures import figures, plot_teacher_curve
from .generation import generate_images, image_sets, random_token_images, reconstructions
from .predictor_eval import evaluate_predictor
from .recognition import LINEAR_PROTOCOLS, PROTOCOLS, recognition
from .scoring import FidIs, train_feature_net
from .stages import log, read_done, run
from .summary import FID_ROWS
from .tokens import token_bank

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'addp', 'mini')
CONFIGS = dict(
    tokenizer='vqgan_maskgit-tiny-f4-c64_1xb16-cpu-coslr-500iter_digits-32px.py',
    # the image pipeline and the tokenizer of the token bank (stage 2's image config)
    images='mage_vit-tiny-p4_1xb32-cpu-coslr-400iter_digits-32px.py',
    predictor='mage_vit-tiny-p4_1xb8-cpu-tokenbank-coslr-8000iter_digits-32px.py',
    addp='addp_vit-tiny-p4_1xb32-cpu-tokenbank-coslr-1500iter_digits-32px.py',
    mae='mae_vit-tiny-p4_1xb32-cpu-coslr-1500iter_digits-32px.py',
    linear_probe='cls_vit-tiny-p4_1xb64-cpu-linear-coslr-400iter_digits-32px.py',
    linear_probe_10shot='cls_vit-tiny-p4_1xb32-cpu-linear-coslr-200iter_digits-10shot-32px.py',
    finetune='cls_vit-tiny-p4_1xb64-cpu-coslr-600iter_digits-32px.py',
    generation='addp_vit-tiny-p4_1xb32-8steps-cosine_digits-32px.py',
)
TASKS = ('cls', 'gen', 'det', 'seg')
PRETRAIN_STAGES = ('tokenizer', 'predictor', 'addp', 'mae')
#: ``full``: the benchmark (the configs' own lengths); ``ci``: the pipeline test.
SIZES = {
    'full': dict(iters=None, num_samples=1000, gen_batch=250, feature_net_epochs=10,
                 crops_per_image=16, canvases=(3000, 300)),
    'ci': dict(iters=dict(tokenizer=4, predictor=3, addp=3, mae=3, linear_probe=3,
                          linear_probe_10shot=3, finetune=3),
               num_samples=24, gen_batch=12, feature_net_epochs=2, crops_per_image=1,
               canvases=(6, 4)),
}


def config(name: str) -> str:
    return osp.join(CONFIG_DIR, CONFIGS[name])


def parse_tasks(text: str) -> tuple:
    """``cls,gen,det,seg`` (any subset, any order) -> the tasks in their run order."""
    tasks = {t.strip() for t in text.split(',') if t.strip()}
    unknown = sorted(tasks - set(TASKS))
    if unknown or not tasks:
        raise ConfigError(f'--tasks {text!r}: unknown task(s) {unknown}; use a comma-separated '
                          f'subset of {",".join(TASKS)}.')
    return tuple(t for t in TASKS if t in tasks)


class Pretraining:
    """The pre-training stages of one seed: tokenizer -> token bank -> predictor -> ADDP; MAE."""

    def __init__(self, out: str, seed: int, size: str, stage_iters: Dict[str, int]) -> None:
        unknown = set(stage_iters) - set(PRETRAIN_STAGES)
        if unknown:
            raise ConfigError(f'--iters: unknown stage(s) {sorted(unknown)}; use '
                              f'{", ".join(PRETRAIN_STAGES)}.')
        self.out, self.seed, self.size = out, seed, SIZES[size]
        self.stage_iters = dict(stage_iters)
        self.data = write_digits(osp.join(out, 'data'), seed)
        self.records: Dict[str, dict] = {}

    def iters(self, stage: str) -> Optional[int]:
        if stage in self.stage_iters:
            return self.stage_iters[stage]
        return None if self.size['iters'] is None else self.size['iters'].get(stage)

    def planned_iters(self, stage: str) -> int:
        """The iterations ``stage`` trains for (``--iters``, the size, else its config's)."""
        iters = self.iters(stage)
        return Config.fromfile(config(stage)).train_cfg.max_iters if iters is None else iters

    def common(self) -> dict:
        return {'train_dataloader.dataset.data_root': self.data['root']}

    def tokenizer(self) -> dict:
        if 'tokenizer' not in self.records:
            self.records['tokenizer'] = run('1-tokenizer', config('tokenizer'),
                                            osp.join(self.out, 'tokenizer'), self.seed,
                                            self.common(), self.iters('tokenizer'))
        return self.records['tokenizer']

    def bank(self) -> dict:
        if 'bank' not in self.records:
            self.records['bank'] = token_bank(
                config('images'), config('images'), self.tokenizer()['checkpoint'],
                self.data['root'], osp.join(self.out, 'tokens'), self.size['crops_per_image'],
                self.seed)
        return self.records['bank']

    def predictor(self, work_dir: Optional[str] = None, iters: Optional[int] = None) -> dict:
        """Stage 2 (another length in another folder for the teacher curve)."""
        key = 'predictor' if work_dir is None else work_dir
        if key not in self.records:
            self.records[key] = run(
                '2-predictor', config('predictor'), work_dir or osp.join(self.out, 'predictor'),
                self.seed, {'train_dataloader.dataset.bank_file': self.bank()['bank_file'],
                            'model.target_generator.checkpoint': self.tokenizer()['checkpoint']},
                iters if iters is not None else self.iters('predictor'))
        return self.records[key]

    def addp(self, predictor: Optional[dict] = None, work_dir: Optional[str] = None) -> dict:
        key = 'addp' if work_dir is None else work_dir
        if key not in self.records:
            predictor = predictor or self.predictor()
            self.records[key] = run('3-addp', config('addp'), work_dir or
                                    osp.join(self.out, 'addp'), self.seed, {
                                        'train_dataloader.dataset.bank_file':
                                        self.bank()['bank_file'],
                                        'model.target_generator.vqgan.checkpoint':
                                        self.tokenizer()['checkpoint'],
                                        'model.target_generator.predictor.checkpoint':
                                        predictor['checkpoint']}, self.iters('addp'))
        return self.records[key]

    def mae(self) -> dict:
        if 'mae' not in self.records:
            self.records['mae'] = run('4-mae', config('mae'), osp.join(self.out, 'mae'), self.seed,
                                      self.common(), self.iters('mae'))
        return self.records['mae']

    def frozen_parts(self, predictor: Optional[dict] = None) -> dict:
        """The frozen tokenizer and predictor configs (with their checkpoints) of ADDP."""
        tg = Config.fromfile(config('addp')).model.target_generator
        return dict(tokenizer=dict(tg.vqgan, checkpoint=self.tokenizer()['checkpoint']),
                    predictor=dict(tg.predictor,
                                   checkpoint=(predictor or self.predictor())['checkpoint']))

    def mage_sampler(self, predictor: Optional[dict] = None) -> MAGESampler:
        return MAGESampler(**self.frozen_parts(predictor))


def predictor_report(pre: Pretraining, predictor: Optional[dict] = None,
                     work_dir: Optional[str] = None) -> dict:
    """The token predictor on the test tokens (``predictor_eval``), recorded once."""
    work_dir = work_dir or osp.join(pre.out, 'predictor_eval')
    predictor = predictor or pre.predictor()
    settings = dict(predictor=predictor['settings'], tokenizer=pre.tokenizer()['settings'])
    rec = read_done('predictor report', work_dir, settings)
    if rec is None:
        sampler = pre.mage_sampler(predictor)
        train_x, _ = read_split(pre.data['root'], 'train')
        test_x, _ = read_split(pre.data['root'], 'test')
        with torch.no_grad():
            train_ids = torch.cat([sampler.vqgan.encode(b)[1] for b in train_x.split(256)])
            test_ids = torch.cat([sampler.vqgan.encode(b)[1] for b in test_x.split(256)])
        rec = dict(report=evaluate_predictor(sampler.predictor, train_ids, test_ids),
                   settings=settings, seconds=0.)
        write_json_atomic(osp.join(work_dir, 'done.json'), rec)
        log('token predictor on the test tokens: ' + ', '.join(
            f'{k} {v:.2f}' for k, v in rec['report'].items()))
    return rec['report']


def generator_for(pre: Pretraining, addp: dict):
    with DefaultScope.overwrite_default_scope('mmagic'):
        return build_generator(config('generation'), addp['checkpoint'], device='cpu')


def generation_scores(pre: Pretraining, addp: dict, predictor: dict, folder: str,
                      rows: Iterable[str] = FID_ROWS) -> dict:
    """Image sets (made once each, ``folder/sets``) and their FID / IS."""
    s = pre.size
    feat = train_feature_net(pre.data, osp.join(pre.out, 'feature_net.pt'),
                             s['feature_net_epochs'])
    train_x, _ = read_split(pre.data['root'], 'train')
    test_x, _ = read_split(pre.data['root'], 'test')
    seconds = {}

    def timed(name, make):
        def wrapped():
            t0 = time.time()
            images = make()
            seconds[name] = time.time() - t0
            return images
        return wrapped

    makers = dict(
        addp=lambda: generate_images(generator_for(pre, addp), s['num_samples'], s['gen_batch'],
                                     pre.seed, 'ADDP'),
        mage=lambda: generate_images(pre.mage_sampler(predictor), s['num_samples'],
                                     s['gen_batch'], pre.seed, 'MAGE'),
        reconstruction=lambda: reconstructions(pre.mage_sampler(predictor).vqgan, test_x),
        real=lambda: test_x,
        random_tokens=lambda: random_token_images(pre.mage_sampler(predictor).vqgan,
                                                  s['num_samples'], pre.seed))
    sets = image_sets(osp.join(folder, 'sets'), {k: timed(k, makers[k]) for k in rows})
    score = FidIs(feat['path'], train_x)
    scores = {k: score(v) for k, v in sets.items()}
    return dict(sets=sets, feature_net=feat, seconds=seconds,
                fid={k: scores[k]['fid'] for k in sets},
                inception_score={k: scores[k]['inception_score'] for k in sets},
                num_images={k: len(v) for k, v in sets.items()})


def spent(out: str, part: str, seconds: float) -> float:
    """Add ``seconds`` to ``part``'s time in ``OUT/seconds.json`` and return the sum: the time a
    part took over the invocations that made the folder. A part's time is added when it finishes;
    the seed's total (``'seed'``) also when a run ends on an error, Ctrl-C or SIGTERM, but not
    after SIGKILL. A rerun that reuses every stage adds only the little it spends (loading,
    scoring the saved image sets, figures)."""
    path = osp.join(out, 'seconds.json')
    ledger = {}
    if osp.isfile(path):
        with open(path) as f:
            ledger = json.load(f)
    ledger[part] = ledger.get(part, 0.) + seconds
    write_json_atomic(path, ledger)
    return ledger[part]


def run_seed(seed: int, out: str, size: str = 'full', stage_iters: Optional[dict] = None,
             tasks: Iterable[str] = TASKS) -> dict:
    """Everything for one seed; returns (and writes) ``OUT/results.json``."""
    start = time.time()
    try:
        tasks = tuple(tasks)
        os.makedirs(out, exist_ok=True)
        pre = Pretraining(out, seed, size, stage_iters or {})
        s = pre.size
        log(f'seed {seed}: tasks {",".join(tasks)}; digits 32x32 in {pre.data["root"]}')
        results = dict(seed=seed, size=size, tasks=list(tasks))
        need_addp = bool(set(tasks) & {'cls', 'gen', 'det', 'seg'})
        if need_addp:
            results['predictor'] = predictor_report(pre)
            pre.addp()
        if set(tasks) & {'cls', 'det', 'seg'}:
            pre.mae()
        results['stage_iters'] = {k: pre.records[k]['iters'] for k in PRETRAIN_STAGES
                                  if k in pre.records}
        results['stage_seconds'] = {k: pre.records[k]['seconds'] for k in
                                    ('tokenizer', 'bank', 'predictor', 'addp', 'mae')
                                    if k in pre.records}
        iters = s['iters']
        if 'cls' in tasks:
            t0 = time.time()
            configs = {p: config(p) for p in PROTOCOLS}
            rec_dir = osp.join(out, 'recognition')
            acc = {k: recognition(k, None if k == 'random' else dict(checkpoint=pre.records[k]
                                                                   ['checkpoint']),
                                  pre.data['root'], rec_dir, seed, configs, iters)
                   for k in ('addp', 'mae', 'random')}
            acc['mage'] = recognition('mage', pre.frozen_parts(), pre.data['root'], rec_dir, seed,
                                      configs, iters, protocols=LINEAR_PROTOCOLS)
            for protocol in PROTOCOLS:
                results[protocol] = {k: v[protocol] for k, v in acc.items() if protocol in v}
            results['stage_seconds']['recognition'] = spent(out, 'recognition', time.time() - t0)
        if 'gen' in tasks:
            t0 = time.time()
            gen = generation_scores(pre, pre.records['addp'], pre.predictor(), out)
            results['fid'], results['is'] = gen['fid'], gen['inception_score']
            results['num_images'] = gen['num_images']
            results['feature_net_test_top1'] = gen['feature_net']['test_top1']
            results['generation_seconds'] = gen['seconds'].get('addp')
            test_x, test_y = read_split(pre.data['root'], 'test')
            results['figures'] = figures(osp.join(out, 'figures'), gen['sets'],
                                         generator_for(pre, pre.records['addp']), test_x, test_y,
                                         seed)
            results['stage_seconds']['generation'] = spent(out, 'generation', time.time() - t0)
        if 'det' in tasks or 'seg' in tasks:
            n_train, n_test = s['canvases']
            canv = canvas_data.write_canvases(pre.data['root'], osp.join(out, 'canvases'), seed,
                                              n_train, n_test)
            backbones = dict(addp=pre.records['addp']['checkpoint'],
                             mae=pre.records['mae']['checkpoint'], random=None)
            ds_dir = osp.join(out, 'detseg')
            for task, fn in (('det', detseg.run_detection), ('seg', detseg.run_segmentation)):
                if task in tasks:
                    t0 = time.time()
                    results[task] = fn(canv, backbones, ds_dir, seed, size)
                    results['stage_seconds'][task] = spent(out, task, time.time() - t0)
            results.setdefault('figures', {})['detseg'] = detseg.predictions_figure(
                canv, ds_dir, osp.join(out, 'figures', 'detseg.png'))
        results['machine'] = machine()
        results['seconds'] = spent(out, 'seed', time.time() - start)
        start = None
        write_json_atomic(osp.join(out, 'results.json'), results)
        log(f'seed {seed}: finished in {results["seconds"]:.0f} s -> '
            f'{osp.join(out, "results.json")}')
        return results
    finally:
        if start is not None:  # stopped or failed: its time still counts for the seed
            spent(out, 'seed', time.time() - start)


def teacher_curve(seed: int, out: str, budgets: List[int], size: str = 'full') -> dict:
    """ADDP's 10-shot probe and FID against its predictor's masked top-1, one point per
    predictor budget (iterations). Reuses the seed's run in ``out`` (data, tokenizer, token bank
    and, for its own budget, everything); other budgets train in ``out/curve/predictor<N>``."""
    pre = Pretraining(out, seed, size, {})
    # The run's own budget last: the curve can start while the seed's own run is still training.
    main_iters = pre.planned_iters('predictor')
    points = []
    configs = {p: config(p) for p in PROTOCOLS}
    for n in sorted(set(budgets) - {main_iters}) + [main_iters]:
        if n == main_iters:
            folder, predictor, addp = out, pre.predictor(), pre.addp()
            report = predictor_report(pre)
        else:
            folder = osp.join(out, 'curve', f'predictor{n}')
            predictor = pre.predictor(osp.join(folder, 'predictor'), n)
            addp = pre.addp(predictor, osp.join(folder, 'addp'))
            report = predictor_report(pre, predictor, osp.join(folder, 'predictor_eval'))
        shot = recognition('addp', dict(checkpoint=addp['checkpoint']), pre.data['root'],
                           osp.join(folder, 'recognition'), seed, configs, pre.size['iters'],
                           protocols=('linear_probe_10shot', ))
        gen = generation_scores(pre, addp, predictor, folder, rows=('addp', 'mage'))
        points.append(dict(predictor_iters=n, predictor_top1=report['top1_0.5'],
                           prior_top1=report['prior_top1'], predictor_ce=report['ce'],
                           linear_probe_10shot=shot['linear_probe_10shot'],
                           fid=gen['fid']['addp'], mage_fid=gen['fid']['mage']))
        log(f'teacher curve: {points[-1]}')
    random = recognition('random', None, pre.data['root'], osp.join(out, 'recognition'), seed,
                         configs, pre.size['iters'], protocols=('linear_probe_10shot', ))
    path = plot_teacher_curve(points, random, osp.join(out, 'figures', 'teacher_curve.png'))
    result = dict(seed=seed, points=points, random_init=random, figure=path)
    write_json_atomic(osp.join(out, 'teacher_curve.json'), result)
    return result
