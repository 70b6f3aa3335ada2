"""Mixed precision without a loss scaler: bf16 autocast on CPU or GPU."""
from contextlib import contextmanager
from typing import Optional, Union

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn


def _model_device_type(model: nn.Module) -> str:
    """``'cuda'``, ``'cpu'``, ... from the model's first parameter (``'cpu'`` without any)."""
    param = next(model.parameters(), None)
    return param.device.type if param is not None else 'cpu'


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Runs the forward pass (data preprocessor + loss) under ``torch.autocast`` in bfloat16.

    mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA device and always carries a
    ``GradScaler``. bfloat16 has fp32's exponent range, so gradients cannot underflow and no loss
    scaling is needed; this wrapper therefore works on CPUs too (``tools/train.py --amp`` picks it
    on CPU-only machines). Parameters, gradients and optimizer state stay fp32 (the "master
    weights"): autocast only lowers the precision of the ops it lists (matmul, linear, conv);
    reductions such as softmax, log-softmax and layer norm stay fp32.

    Args:
        dtype (str | torch.dtype): Autocast dtype. Only ``'bfloat16'``: float16 needs a loss
            scaler, use ``AmpOptimWrapper`` (CUDA) for it. Defaults to ``'bfloat16'``.
        device_type (str, optional): Autocast device type (``'cpu'``, ``'cuda'``, ...). Defaults to
            None: the device of the model's parameters.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype in (torch.float16, torch.half):
            raise ValueError('AutocastOptimWrapper has no loss scaler, which float16 needs: use '
                             "`optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16', ...)` "
                             "on a GPU, or dtype='bfloat16'.")
        if dtype is not torch.bfloat16:
            raise ValueError(f"AutocastOptimWrapper: dtype must be 'bfloat16', got {dtype!r}.")
        self.cast_dtype = dtype
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` plus bf16 autocast.

        Args:
            model (nn.Module): The model being trained (possibly DDP-wrapped).
        """
        device_type = self.device_type or _model_device_type(model)
        if device_type == 'cuda' and not torch.cuda.is_bf16_supported():
            raise RuntimeError("this GPU does not support bfloat16; use `optim_wrapper.type="
                               "'AmpOptimWrapper'` (float16 with loss scaling).")
        with super().optim_context(model), torch.autocast(device_type, dtype=self.cast_dtype):
            yield
