"""What every benchmark JSON line says about the machine, and the floor of a counted run.

The CI machine kind is not one processor (a Zen 3 EPYC with AVX2 only on one draw, a Zen 5 with
AVX-512 and native bf16 on another), so a figure means nothing without the processor it came from.
:func:`machine` gives the CPU model, its family and the flags that change speed and numerics;
:func:`peak_rates` measures what this machine's kernels reach at best (the ``bench_peak.py``
figures); :func:`floor` divides a run's counted operations (``--flops``) by those rates. Shared by
``bench_pretrain.py``, ``bench_generate.py``, ``bench_peak.py`` and ``gpu_check.py``; not part of
the library.
"""
import os
import platform
import time
from typing import Dict, Optional

import torch

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
