"""The shared code of the benchmark scripts: a private helper, not an entry point.

Every script in this folder runs as ``python benchmarks/X.py``, so this folder is on ``sys.path``
and ``import _common`` finds this file; ``addp_mm`` is the installed (editable) package. The
scripts import this module and ``addp_mm``, never each other (benchmarks/README.md lists which
file is which).

- What every JSON line says about the machine: :func:`machine`. The CI machine kind is not one
  processor (a Zen 3 EPYC with AVX2 only on one draw, a Zen 5 with AVX-512 and native bf16 on
  another), so a figure means nothing without the processor it came from: the CPU model, its
  family and the flags that change speed and numerics.
- The floor of a counted run (``--flops``): :func:`peak_rates` measures what this machine's
  kernels reach at best (the ``bench_peak.py`` figures), :func:`flop_split` and :func:`floor`
  divide a run's counted operations by those rates, :func:`flop_report` gives the fields a
  script adds to its line.
- The workloads: :func:`build_pretrain_model` (an ADDP pre-training model with random weights),
  :func:`make_train_step` (one full pre-training step as the configs run it) and
  :data:`GENERATION_CONFIGS`.
- Device helpers: :func:`sync`, :func:`peak_rss_gib`.
"""
import contextlib
import os
import os.path as osp
import platform
import resource
import time
from typing import Callable, Dict, Optional

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401  (registers the ADDP modules into mmpretrain's MODELS)
from addp_mm.models.utils.init import init_quietly

#: The repository root (the configs are read from there).
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The ADDP pre-training model of each arch (``build_pretrain_model``), relative to :data:`REPO`.
PRETRAIN_MODEL_CONFIG = 'configs/addp/_base_/models/addp_vit-{arch}-p16.py'
#: The 20-step ImageNet generation config of each arch, relative to :data:`REPO`.
GENERATION_CONFIGS = dict(
    base='configs/addp/generation/addp_vit-base-p16_1xb32-20steps-cosine_in1k-256px.py',
    large='configs/addp/generation/addp_vit-large-p16_1xb32-20steps-cosine_in1k-256px.py')

#: /proc/cpuinfo flags that decide which kernels oneDNN / MKL run (fp32 width, native bf16).
FLAGS_OF_INTEREST = ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_fp16', 'avx512_vnni',
                     'amx_tile', 'amx_bf16', 'amx_fp16', 'amx_int8')


def cpu_info(path: str = '/proc/cpuinfo') -> Dict:
    """``cpu`` (model name), ``cpu_vendor``, ``cpu_family``, ``cpu_model`` and ``cpu_flags``
    (those of :data:`FLAGS_OF_INTEREST` the first processor has)."""
    info = dict(cpu=platform.processor() or platform.machine(), cpu_vendor=None, cpu_family=None,
                cpu_model=None, cpu_flags=[])
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return info
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough
        key, _, value = line.partition(':')
        key, value = key.strip(), value.strip()
        if key == 'model name':
            info['cpu'] = value
        elif key == 'vendor_id':
            info['cpu_vendor'] = value
        elif key == 'cpu family':
            info['cpu_family'] = int(value)
        elif key == 'model':
            info['cpu_model'] = int(value)
        elif key == 'flags':
            have = set(value.split())
            info['cpu_flags'] = [f for f in FLAGS_OF_INTEREST if f in have]
    return info


def machine(device: Optional[torch.device] = None) -> Dict:
    """The fields every benchmark line carries: :func:`cpu_info`, threads, cores, versions, and
    the GPU's name when ``device`` is a CUDA device."""
    out = cpu_info()
    out.update(threads=torch.get_num_threads(), cores=os.cpu_count(), torch=torch.__version__,
               python=platform.python_version())
    if device is not None and torch.device(device).type == 'cuda':
        out.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return out


def _rate(fn, flop: float, repeats: int, sync) -> float:
    """GFLOP/s of the fastest of ``repeats`` timed calls (after two warm-ups).

    The best call, not the mean: a peak should not move with a neighbour's load on a shared host
    (the mean of 10 calls moved by up to 40% between runs on the CI machine kind)."""
    fn()
    fn()
    sync()
    best = float('inf')
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9


@torch.no_grad()
def peak_rates(device='cpu', dtype: torch.dtype = torch.float32, size: int = 2048,
               conv_batch: int = 2, repeats: int = 10) -> Dict[str, float]:
    """GFLOP/s of a ``size``^3 matmul and of a VQGAN-sized 3x3 convolution (128 -> 128 channels
    at 128x128, batch ``conv_batch``), NCHW and channels-last: the best these kernels reach here.

    On a CUDA device TF32 stays as the caller set it (off for the fp32 figures)."""
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    g = torch.Generator(device='cpu').manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device, dtype)
    b = torch.randn(size, size, generator=g).to(device, dtype)
    rates = dict(matmul_gflop_per_s=round(_rate(lambda: a @ b, 2 * size**3, repeats, sync), 1))
    x = torch.randn(conv_batch, 128, 128, 128, generator=g).to(device, dtype)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).to(device, dtype)
    flop = 2 * x.numel() * 128 * 9
    conv_repeats = max(repeats // 2, 1)
    rates['conv3x3_gflop_per_s'] = round(_rate(lambda: conv(x), flop, conv_repeats, sync), 1)
    x, conv = x.to(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)
    rates['conv3x3_channels_last_gflop_per_s'] = round(
        _rate(lambda: conv(x), flop, conv_repeats, sync), 1)
    return rates


def flop_split(counter) -> Dict[str, float]:
    """Matmul and convolution operations of a ``torch.utils.flop_counter.FlopCounterMode`` run
    (attention products count as matmul), in TFLOP."""
    conv = matmul = 0
    for op, n in counter.get_flop_counts().get('Global', {}).items():
        if 'conv' in str(op):
            conv += n
        else:
            matmul += n
    return dict(tflop_matmul=round(matmul / 1e12, 6), tflop_conv=round(conv / 1e12, 6))


def floor(split: Dict[str, float], rates: Dict[str, float]) -> Dict[str, float]:
    """``floor_s`` = matmul operations / matmul rate + convolution operations / the faster
    convolution rate: no run of the same math is faster with these kernels on this machine."""
    conv_rate = max(rates['conv3x3_gflop_per_s'], rates['conv3x3_channels_last_gflop_per_s'])
    seconds = (split['tflop_matmul'] * 1e3 / rates['matmul_gflop_per_s'] +
               split['tflop_conv'] * 1e3 / conv_rate)
    return dict(floor_s=round(seconds, 3), peak=rates)


def flop_report(counter, seconds: float, rates: Dict[str, float]) -> Dict:
    """The ``--flops`` fields of a run counted by ``counter`` (a ``FlopCounterMode``) and timed
    at ``seconds``: achieved ``gflop_per_s``, the matmul / convolution split (:func:`flop_split`),
    ``floor_s`` and ``peak`` against ``rates`` (:func:`floor`) and ``over_floor`` (seconds /
    floor)."""
    out = dict(gflop_per_s=round(counter.get_total_flops() / 1e9 / seconds, 1),
               **flop_split(counter))
    out.update(floor(out, rates))
    out['over_floor'] = round(seconds / out['floor_s'], 3)
    return out


def sync(device: torch.device) -> None:
    """Wait for a CUDA device's queued work (a timer stops only after it); no-op on a CPU."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def peak_rss_gib() -> float:
    """The process's peak resident memory so far, in GiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def build_pretrain_model(arch: str) -> torch.nn.Module:
    """The ADDP pre-training model of ``arch`` at its real size, with random weights (the frozen
    VQGAN and token predictor too: no checkpoint is read).

    Args:
        arch (str): ``'base'`` (ViT-B + MAGE-B) or ``'large'`` (ViT-L + MAGE-L).

    Returns:
        nn.Module: The model, initialised, on the CPU.
    """
    cfg = Config.fromfile(osp.join(REPO, PRETRAIN_MODEL_CONFIG.format(arch=arch)))
    cfg.model.target_generator.vqgan.checkpoint = None
    cfg.model.target_generator.predictor.checkpoint = None
    model = MODELS.build(cfg.model)
    init_quietly(model)
    return model


def make_train_step(model: torch.nn.Module, precision: str, device: torch.device,
                    forward_context: Callable = contextlib.nullcontext,
                    phase: Optional[Callable] = None) -> Callable:
    """One full pre-training step as the configs run it, shared by the benchmarks.

    Autocast in ``precision`` (fp32: none), fused AdamW (lr 1.6e-3, betas (0.9, 0.95), wd 0.05),
    gradient clipping at 3.0, and for fp16 a GradScaler with the official growth interval 500.

    Args:
        model (nn.Module): An ADDP pre-training model in train mode.
        precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device (torch.device): Where it runs (autocast's device type).
        forward_context (callable): Makes a context entered around the forward pass (e.g. an
            SDPA kernel restriction).
        phase (callable, optional): ``phase(name)`` makes a context around the ``'backward'``
            and ``'optimizer'`` phases (e.g. a profiler range).

    Returns:
        callable: ``step(images) -> loss``: one step on (B, 3, H, W) images, its loss tensor.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1.6e-3, betas=(0.9, 0.95), weight_decay=0.05,
                              fused=True)
    scaler = torch.amp.GradScaler(device.type, growth_interval=500) \
        if precision == 'fp16' else None
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(precision)
    phase = phase or (lambda name: contextlib.nullcontext())

    def step(images: torch.Tensor) -> torch.Tensor:
        with forward_context(), torch.autocast(device.type, dtype=dtype,
                                               enabled=dtype is not None):
            loss = model.loss([images], [])['loss']
        with phase('backward'):
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optim)
            else:
                loss.backward()
        with phase('optimizer'):
            torch.nn.utils.clip_grad_norm_(params, 3.0)
            if scaler is not None:
                scaler.step(optim)
                scaler.update()
            else:
                optim.step()
            optim.zero_grad(set_to_none=True)
        return loss

    return step
