"""What the machine's processor can do (used to warn before a very slow precision)."""
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
