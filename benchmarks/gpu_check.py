#!/usr/bin/env python
"""The GPU check (issue 16, item 5): conformance on CUDA, then pre-training and generation speed.

Run by ``benchmarks/gpu_check.sh`` (which installs the carried wheels first); writes one JSON file,
``OUT/gpu_check.json``, with the sections ``machine``, ``conformance``, ``pretrain``,
``generation`` and ``errors``. Every section runs on its own: a failure is recorded with its
traceback and the next section still runs.

- ``conformance``: every fixture folder (``--fixtures``: ``gpu_check.sh`` passes those it unpacks
  from ``benchmarks/wheels/fixtures.pt``; default ``../shared/fixtures/*``) on the device in fp32
  with TF32 off: the official release converted and loaded into the ADDP model, then the VQGAN
  encode / decode, the token predictor, x_t, the encoder, the decoder logits, the loss and two
  generation steps against ``reference.pt``, with the fixture's tolerance (max|ours - ref| <=
  1e-4 max|ref|) and its rule for ids and masks (equal, or a near-tie of the reference).
- ``pretrain``: one full pre-training step (VQGAN, token predictor, encoder, decoder, backward,
  clip, fused AdamW) of ViT-B and ViT-L at batch 64, random weights, 256x256, in bf16 and fp16
  autocast, each with attention in fp32 (``fp32_softmax=True``, as the official code) and with
  flash attention in the autocast dtype (``fp32_softmax=False`` under the flash SDPA backend);
  ``img_per_s`` from the median of the timed steps after a warm-up, ``peak_gib`` the device's
  peak allocation.
- ``generation``: a 20-step unconditional generation of 64 images with ViT-B in bf16.

``--dry-run`` runs every path on the CPU at tiny size (tiny models, batch 2, 2 steps; the
conformance at the fixtures' own size): the check of this script where no GPU is at hand.

    python benchmarks/gpu_check.py OUT            # on the GPU machine (through gpu_check.sh)
    python benchmarks/gpu_check.py --dry-run OUT  # on a CPU

The fixtures are read and compared with the tests' own code (``tests/conftest.py``), so the
repository root must come first on ``PYTHONPATH`` (a wheel the check carries, model-index,
installs a ``tests`` package of its own): ``gpu_check.sh`` puts it there; run directly,
``PYTHONPATH=. python benchmarks/gpu_check.py ...`` from the repository root.
"""
import argparse
import contextlib
import functools
import glob
import importlib.util
import json
import os
import os.path as osp
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import types

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from _common import (GENERATION_CONFIGS, REPO, build_pretrain_model, machine,  # noqa: E402
                     make_train_step, peak_rss_gib, sync)
from addp_mm.checkpoints.convert import convert_official_addp  # noqa: E402
from addp_mm.checkpoints.loading import load_checkpoint_file  # noqa: E402
from addp_mm.checkpoints.weights import extract_state_dict  # noqa: E402
from addp_mm.models.utils.init import init_quietly  # noqa: E402
from addp_mm.models.utils.transformer import Attention  # noqa: E402
from addp_mm.utils.device import set_tf32  # noqa: E402

GEN_CONFIG = osp.join(REPO, GENERATION_CONFIGS['base'])
#: The sizes of the dry run's tiny models (a fixture-like config, see tests/conftest.py).
TINY = dict(dim=32, depth=1, heads=2, dec_depth=1, dec_heads=2, tp_dim=32, tp_depth=1, tp_heads=2,
            label_smoothing=0.1, gen_num_iter=2, gen_schedule='cosine',
            vqgan=dict(embed_dim=16, n_embed=64,
                       ddconfig=dict(ch=32, ch_mult=[1, 1, 2], num_res_blocks=1,
                                     z_channels=16, resolution=32)))


def log(msg: str) -> None:
    print(f'[gpu_check {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def reset_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> dict:
    if device.type == 'cuda':
        return dict(peak_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 3))
    # the process's peak so far (CPU dry run: not per run)
    return dict(peak_rss_gib=peak_rss_gib())


def light_package(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` (its submodules import as
    usual)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    pkg = types.ModuleType(name)
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules[name] = pkg


def import_generator():
    """The sampling loop's modules, and nothing of mmagic but what it needs.

    ``addp_mm.generation``'s ``__init__`` also imports the FID/IS metrics, and ``mmagic.models``'
    imports every mmagic model (diffusers, transformers, lpips, albumentations, ...): neither is
    needed to sample, and a bare GPU machine has none of them. Both packages are registered
    without their ``__init__``; the generator, the sampling loop and mmagic's
    ``DataPreprocessor`` are imported alone (mmagic's model registry then finds
    ``mmagic.models`` already imported and imports nothing more)."""
    import mmagic.registry  # noqa: F401
    light_package('addp_mm.generation')
    light_package('mmagic.models')
    import mmagic.models.data_preprocessors  # noqa: F401  (registers DataPreprocessor)
    from addp_mm.generation import api, generator, sampling
    return api, generator, sampling


def require_repo_tests() -> None:
    """Refuse to start when ``import tests`` would not find this repository's ``tests/``."""
    spec = importlib.util.find_spec('tests')
    found = [osp.realpath(p) for p in (spec.submodule_search_locations or [])] if spec else []
    if osp.realpath(osp.join(REPO, 'tests')) not in found:
        raise SystemExit('gpu_check.py needs this repository\'s tests/conftest.py (the fixture '
                         'reader), which is not first on the path: run it through '
                         'benchmarks/gpu_check.sh, or as PYTHONPATH=. python '
                         'benchmarks/gpu_check.py from the repository root.')


# ----------------------------------------------------------------------------- conformance
def fixture_dirs(given) -> list:
    if given:
        return given
    root = osp.join(REPO, '..', 'shared', 'fixtures')
    return sorted(osp.dirname(p) for p in glob.glob(osp.join(root, '*', 'reference.pt')))


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours, ref = ours.detach().double().cpu(), ref.detach().double().cpu()
    if ours.shape != ref.shape:
        raise AssertionError(f'shape {tuple(ours.shape)} != {tuple(ref.shape)}')
    return (ours - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Checks:
    """Collects one fixture's comparisons: ``{name: {rel_err, ok}}`` or ``{ok, error}``."""

    def __init__(self, rtol: float = 1e-4) -> None:
        self.rtol, self.results = rtol, {}

    def close(self, name: str, ours, ref) -> None:
        err = rel_err(ours, ref)
        self.results[name] = dict(rel_err=float(f'{err:.3e}'), ok=err <= self.rtol)

    def run(self, name: str, fn) -> None:
        """``fn()`` raises AssertionError for a mismatch (the tests' own tie rules)."""
        try:
            fn()
            self.results[name] = dict(ok=True)
        except Exception as e:  # noqa: BLE001  (recorded, the other checks go on)
            self.results[name] = dict(ok=False, error=f'{type(e).__name__}: {e}'[:2000])

    @property
    def ok(self) -> bool:
        return all(r['ok'] for r in self.results.values())


@torch.no_grad()
def conformance(root: str, device: torch.device) -> dict:
    from tests.conftest import Reference, assert_equal_or_tie, reference_model_cfg

    t0 = time.perf_counter()
    ref = Reference(root)
    to = lambda t: t.to(device)  # noqa: E731
    inp = {k: to(v) for k, v in ref.inputs.items()}
    out = {k: to(v) for k, v in ref.outputs.items() if torch.is_tensor(v)}
    checks = Checks()

    sd, _, unknown = convert_official_addp(extract_state_dict(
        load_checkpoint_file(ref.path('addp.pth'))))
    assert unknown == [], unknown
    tmp = tempfile.mkdtemp()
    converted = osp.join(tmp, 'addp_mm.pth')
    torch.save(dict(state_dict=sd), converted)
    model = MODELS.build(reference_model_cfg(ref.config))
    init_quietly(model)
    load_checkpoint(model, converted, strict=True, map_location='cpu', logger='silent')
    model = model.to(device).eval()
    vqgan, predictor = model.target_generator.vqgan, model.target_generator.predictor

    z_q, ids = vqgan.encode(inp['images'])
    z = vqgan.encoder(inp['images']).permute(0, 2, 3, 1).reshape(ids.shape[0], ids.shape[1], -1)
    dist = torch.cdist(z.double(), vqgan.codebook.double()[None])**2
    checks.run('vq_tokens', lambda: assert_equal_or_tie(ids.cpu(), ref.outputs['vq_tokens'],
                                                        -dist.cpu(), True, 'vq_tokens'))
    checks.close('vq_z0', z_q, out['vq_z0'])
    checks.close('vq_decoded', vqgan.decode(out['vq_z0']), out['vq_decoded'])
    checks.close('tp_probs_mask_t', predictor.predict(out['vq_tokens'], inp['mask_t']),
                 out['tp_probs_mask_t'])
    checks.close('tp_soft_z_mask_next', vqgan.soft_vectors(
        predictor.predict(out['vq_tokens'], inp['mask_next'])), out['tp_soft_z_mask_next'])
    res = model.target_generator(inp['images'], inp['mask_t'], inp['mask_next'])
    checks.run('target_ids', lambda: require(torch.equal(res['ids'], out['vq_tokens']),
                                             'ids of the target generator differ'))
    checks.close('target', res['target'], out['tp_probs_mask_t'])
    checks.close('x_t', res['x_t'], out['x_t'])
    checks.close('encoder_out', model.backbone(out['x_t'])[0], out['encoder_out'])
    feats = model.neck(out['encoder_out'], out['vq_tokens'], inp['mask_t'])
    checks.close('decoder_logits', model.head(feats, model.neck.token_emb.weight),
                 out['decoder_logits'])
    logits = model.forward_logits(res['x_t'], res['ids'], inp['mask_t'])
    checks.close('decoder_logits_chain', logits, out['decoder_logits'])
    if 'loss' in out:  # a batch mean: not in a trimmed copy (gpu_check_fixtures.py)
        checks.close('loss', model.head.loss(out['decoder_logits'], out['tp_probs_mask_t'],
                                             inp['mask_t']), out['loss'])
        checks.close('loss_chain', model.head.loss(logits, res['target'], inp['mask_t']),
                     out['loss'])
    del model, res, feats, logits

    # generation: the fixture's two deterministic steps (argmax, choice temperature 0)
    def generation_checks() -> None:
        from tests.test_generation.test_conformance_generation import generator_cfg
        _, _, sampling = import_generator()
        from mmagic.registry import MODELS as MMAGIC_MODELS
        cfg = ref.config
        gen = MMAGIC_MODELS.build(dict(generator_cfg(cfg, converted, channels_last=True),
                                       _scope_='mmagic')).to(device).eval()
        steps = ref.outputs['generation']
        st = {k: to(v) for k, v in steps['step1'].items()}
        L = st['mask_in'].shape[1]
        u = torch.rand(st['mask_in'].shape[0], 2, L, device=device)  # unused by argmax
        options = sampling.SamplingOptions(num_steps=cfg['gen_num_iter'],
                                           schedule=cfg['gen_schedule'], choice_temperature=0.,
                                           sampling='argmax')
        logits_fn = functools.partial(gen.forward_logits, num_codes=gen.vqgan.n_embed,
                                      share_all_masked=True)
        o = sampling.denoise_step(logits_fn, gen.vqgan,
                                  dict(x=st['x_in'], ids=st['tokens_in'], mask=st['mask_in']), 1,
                                  L, u, options)
        checks.close('gen_step1_logits', o['logits'], st['logits'])
        checks.run('gen_step1_tokens', lambda: assert_equal_or_tie(
            o['ids'].cpu(), steps['step1']['argmax_tokens'], steps['step1']['logits'], True,
            'step1 argmax tokens'))
        checks.close('gen_step1_x_next', o['x'], st['x_next'])
        states = {}

        class Stop(Exception):
            pass

        def record(step, state):
            states[step] = {k: v.clone() for k, v in state.items()}
            if step == 1:
                raise Stop

        B = st['mask_in'].shape[0]
        try:
            sampling.generate(logits_fn, gen.vqgan,
                              sampling.start_unconditional(B, L, device), options,
                              callback=record)
        except Stop:
            pass
        for s in (0, 1):
            ref_s = {k: to(v) for k, v in steps[f'step{s}'].items()}
            checks.close(f'gen_chain_step{s}_logits', states[s]['logits'], ref_s['logits'])
            checks.close(f'gen_chain_step{s}_x', states[s]['x'], ref_s['x_next'])
            checks.run(f'gen_chain_step{s}_ids_mask', lambda s=s, r=ref_s: require(
                torch.equal(states[s]['ids'], r['argmax_tokens']) and torch.equal(
                    states[s]['mask'], r['mask_next'].to(states[s]['mask'].dtype)),
                f'chained step{s} ids or mask differ'))

    checks.run('generation', generation_checks)
    if checks.results['generation']['ok']:
        del checks.results['generation']
    shutil.rmtree(tmp, ignore_errors=True)
    return dict(ok=checks.ok, batch=ref.batch,
                trimmed_from_batch=ref.config.get('trimmed_from_batch'),
                seconds=round(time.perf_counter() - t0, 1),
                checks=checks.results)


# ----------------------------------------------------------------------------- speed
def set_attention(model, fp32_softmax: bool) -> int:
    """Every ``Attention`` block's ``fp32_softmax`` (encoder, decoder, frozen token predictor)."""
    n = 0
    for m in model.modules():
        if isinstance(m, Attention):
            m.fp32_softmax = fp32_softmax
            n += 1
    return n


def attention_kernels(mode: str, device: torch.device) -> list:
    """``fp32``: PyTorch's choice for fp32 inputs; ``flash``: the flash kernel only (on a CPU,
    whose flash kernel has no dropout, the math kernel too: the dry run checks the path only)."""
    if mode == 'fp32':
        return []
    return ['FLASH_ATTENTION'] + (['MATH'] if device.type == 'cpu' else [])


def attention_context(kernels: list):
    if not kernels:
        return contextlib.nullcontext()
    return sdpa_kernel([getattr(SDPBackend, k) for k in kernels])


def pretrain_model(arch: str, dry_run: bool):
    """The real-size model of ``arch`` with random weights, or for the dry run the tiny one."""
    if dry_run:
        from tests.conftest import reference_model_cfg
        model = MODELS.build(reference_model_cfg(TINY))
        init_quietly(model)
        return model
    return build_pretrain_model(arch)


def time_pretrain(model, device, batch: int, precision: str, attention: str, steps: int) -> dict:
    set_attention(model, attention == 'fp32')
    kernels = attention_kernels(attention, device)
    model.train()
    train_step = make_train_step(model, precision, device,
                                 forward_context=lambda: attention_context(kernels))
    size = model.target_generator.vqgan.resolution
    images = torch.rand(batch, 3, size, size, device=device)
    nonfinite: list = []

    def step(i: int) -> float:
        torch.manual_seed(i)  # the same mask ratios in every run
        sync(device)
        t0 = time.perf_counter()
        loss = train_step(images)
        sync(device)
        seconds = time.perf_counter() - t0
        if not bool(torch.isfinite(loss)):
            nonfinite.append(i)  # recorded, not fatal (fp16: the scaler skips such a step)
        return seconds

    reset_peak(device)
    step(0)  # warm-up
    times = [step(i + 1) for i in range(steps)]
    del train_step  # frees the optimizer state before the next model
    step_s = statistics.median(times)
    return dict(sdpa_kernels=kernels or 'default', step_s=round(step_s, 4),
                img_per_s=round(batch / step_s, 2),
                step_times=[round(t, 4) for t in times], nonfinite_loss_steps=nonfinite,
                **peak_gib(device))


def pretrain(device, dry_run: bool, batch: int, steps: int, results: list) -> None:
    for arch in ('base', 'large'):
        t0 = time.perf_counter()
        try:
            model = pretrain_model(arch, dry_run).to(device)
        except Exception:  # noqa: BLE001
            results.append(dict(arch=arch, error=traceback.format_exc()[-3000:]))
            continue
        log(f'pre-training {arch}: built in {time.perf_counter() - t0:.1f} s')
        for precision in ('bf16', 'fp16'):
            for attention in ('fp32', 'flash'):
                run = dict(arch=arch if not dry_run else f'tiny ({arch} slot)', batch=batch,
                           precision=precision, attention=attention)
                try:
                    run.update(time_pretrain(model, device, batch, precision, attention, steps))
                except Exception:  # noqa: BLE001
                    run['error'] = traceback.format_exc()[-3000:]
                log(f'pre-training {run}')
                results.append(run)
        del model
        if device.type == 'cuda':
            torch.cuda.empty_cache()


def generation(device, dry_run: bool, batch: int, steps: int) -> dict:
    api, _, sampling = import_generator()
    if dry_run:
        from tests.test_generation.test_conformance_generation import generator_cfg
        cfg = generator_cfg(TINY, checkpoint=None, channels_last=True)
        cfg = Config(dict(model=dict(cfg, _scope_='mmagic')))
    else:
        cfg = GEN_CONFIG
    model = api.build_generator(cfg, 'random', device=device, precision='bf16',
                                channels_last=True)
    seeds = sampling.image_seeds(0, range(batch))

    def run(n: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        out = model.sample(seeds, num_steps=n)
        sync(device)
        assert out['images'].shape[0] == batch
        return time.perf_counter() - t0

    run(2)  # warm-up: the first (shared) step and one full step
    reset_peak(device)
    seconds = run(steps)
    return dict(arch='base' if not dry_run else 'tiny', batch=batch, steps=steps,
                precision='bf16', seconds=round(seconds, 3),
                img_per_s=round(batch / seconds, 2), **peak_gib(device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='folder for gpu_check.json')
    parser.add_argument('--dry-run', action='store_true',
                        help='every path on the CPU at tiny size (batch 2, 2 steps)')
    parser.add_argument('--device', default=None, help='default: cuda, cpu for --dry-run')
    parser.add_argument('--fixtures', nargs='*', default=None,
                        help='fixture folders (default: ../shared/fixtures/*)')
    parser.add_argument('--only', nargs='*', default=None,
                        choices=['conformance', 'pretrain', 'generation'],
                        help='run only these sections')
    args = parser.parse_args()
    t_start = time.perf_counter()

    set_tf32(False)  # conformance in true fp32; autocast runs are unaffected
    device = torch.device(args.device or ('cpu' if args.dry_run else 'cuda'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('no CUDA device: use --dry-run on a CPU')
    batch, steps, gen_steps = (2, 2, 2) if args.dry_run else (64, 3, 20)
    sections = args.only or ['conformance', 'pretrain', 'generation']
    if 'conformance' in sections or args.dry_run:  # the dry run's tiny models come from there too
        require_repo_tests()
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, 'gpu_check.json')
    result = dict(dry_run=args.dry_run, device=str(device), machine=machine(device),
                  tf32=dict(matmul=torch.backends.cuda.matmul.allow_tf32,
                            cudnn=torch.backends.cudnn.allow_tf32),
                  conformance={}, pretrain=[], generation={}, errors={})

    def save() -> None:
        result['seconds'] = round(time.perf_counter() - t_start, 1)
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)

    if 'conformance' in sections:
        dirs = fixture_dirs(args.fixtures)
        if not dirs:
            result['errors']['conformance'] = 'no fixture folder found'
        for root in dirs:
            name = osp.basename(osp.normpath(root))
            try:
                result['conformance'][name] = conformance(root, device)
            except Exception:  # noqa: BLE001
                result['conformance'][name] = dict(ok=False, error=traceback.format_exc()[-3000:])
            log(f'conformance {name}: ok={result["conformance"][name]["ok"]}')
            save()
    if 'pretrain' in sections:
        pretrain(device, args.dry_run, batch, steps, result['pretrain'])
        save()
    if 'generation' in sections:
        try:
            result['generation'] = generation(device, args.dry_run, batch, gen_steps)
        except Exception:  # noqa: BLE001
            result['generation'] = dict(error=traceback.format_exc()[-3000:])
        log(f'generation {result["generation"]}')
    save()
    log(f'wrote {path} in {result["seconds"]} s')


if __name__ == '__main__':
    main()
