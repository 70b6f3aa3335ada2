"""What the machine's processor can do (used to warn before a very slow precision), and the
fp32 precision of CUDA matmuls and convolutions."""
import contextlib
from typing import Iterator, Tuple

import torch

#: Appended to warnings about bf16 on a CPU without native support.
EMULATED_BF16_HINT = (
    'this CPU has no native bf16 (AVX512-BF16 / AMX), so oneDNN emulates it, which is many times '
    'slower than fp32 (measured 19x for an ADDP ViT-B pre-training step on an AVX2 machine; see '
    'benchmarks/README.md)')


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 matmuls/convolutions natively on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def set_tf32(enabled: bool) -> Tuple[bool, bool]:
    """Allow or forbid TF32 for CUDA matmuls and cuDNN convolutions; returns the previous
    ``(matmul, cudnn)`` flags.

    Every official ADDP entry point sets both ``allow_tf32`` flags to False: with TF32 an fp32
    GPU run rounds the matmul inputs to 10 mantissa bits and cannot meet the conformance
    tolerance (1e-4 of each tensor's magnitude). The flags only concern CUDA; setting them on a
    machine without a GPU is harmless.
    """
    previous = (bool(torch.backends.cuda.matmul.allow_tf32),
                bool(torch.backends.cudnn.allow_tf32))
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)
    return previous


@contextlib.contextmanager
def fp32_without_tf32() -> Iterator[None]:
    """Context manager: TF32 off inside (true fp32 on CUDA), the previous flags restored after."""
    matmul, cudnn = set_tf32(False)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn
