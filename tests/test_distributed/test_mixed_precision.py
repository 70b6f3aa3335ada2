"""bf16 mixed precision (AutocastOptimWrapper) on the CPU: what runs in bf16, what stays fp32."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from torch import nn

import addp_mm  # noqa: F401
from addp_mm.engine import AutocastOptimWrapper
from addp_mm.models.utils import transformer

from .conftest import TOY_CONFIG


def test_wrapper_builds_from_config_and_autocasts_bf16():
    from mmengine.optim import build_optim_wrapper
    model = nn.Linear(4, 2)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(model, dict(
            type='AutocastOptimWrapper', optimizer=dict(type='AdamW', lr=1e-3),
            clip_grad=dict(max_norm=3.0)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    assert not torch.is_autocast_enabled('cpu')
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        assert model(torch.ones(3, 4)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match='loss scaler'):
        AutocastOptimWrapper(dtype='float16', optimizer=optimizer)
    with pytest.raises(ValueError, match="must be 'bfloat16'"):
        AutocastOptimWrapper(dtype='float32', optimizer=optimizer)


def test_attention_softmax_runs_in_fp32_under_bf16(monkeypatch):
    seen = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype, torch.is_autocast_enabled('cpu')))
        return sdpa(q, k, v, **kwargs)

    # transformer.F is torch.nn.functional: patched for the duration of this test only
    monkeypatch.setattr(transformer.F, 'scaled_dot_product_attention', spy)
    torch.manual_seed(0)
    attn = transformer.Attention(64, 4).eval()
    x = torch.randn(2, 16, 64)
    with torch.no_grad():
        ref = attn(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = attn(x)
    assert seen[0] == (torch.float32, ) * 3 + (False, )  # plain fp32 call
    assert seen[1] == (torch.float32, ) * 3 + (False, )  # under autocast: fp32, autocast off
    assert out.dtype == torch.bfloat16  # the projections do run in bf16
    err = (out.float() - ref).abs().max() / ref.abs().max()
    assert err < 2e-2, err

    attn.fp32_softmax = False  # the check above would notice a bf16 softmax
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        attn(x)
    assert seen[2][0] == torch.bfloat16


def _forward_dtype_recorder(module: nn.Module, types, records: list):
    handles = []
    for name, sub in module.named_modules():
        if isinstance(sub, types):
            handles.append(sub.register_forward_hook(
                lambda m, args, out, name=name: records.append((name, out.dtype,
                                                                out.requires_grad))))
    return handles


def test_toy_addp_trains_in_bf16_with_fp32_master_weights():
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(TOY_CONFIG))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.AdamW(params, lr=1e-3),
                                   clip_grad=dict(max_norm=3.0))
    tg = model.target_generator
    vq_convs, tp_linears = [], []
    handles = (_forward_dtype_recorder(tg.vqgan, nn.Conv2d, vq_convs) +
               _forward_dtype_recorder(tg.predictor, nn.Linear, tp_linears))
    trainable_before = {n: p.detach().clone() for n, p in model.named_parameters()
                        if p.requires_grad}
    frozen_before = {k: v.clone() for k, v in tg.state_dict().items()}

    torch.manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    data = dict(inputs=[images], data_samples=[DataSample(), DataSample()])
    log_vars = model.train_step(data, wrapper)  # preprocess + loss under autocast, then step
    for handle in handles:
        handle.remove()

    assert np.isfinite(float(log_vars['loss'].detach()))
    # the frozen VQGAN and token predictor ran in bf16, without building a graph
    assert vq_convs and all(dtype == torch.bfloat16 and not grad for _, dtype, grad in vq_convs)
    assert tp_linears and all(dtype == torch.bfloat16 and not grad
                              for _, dtype, grad in tp_linears)
    assert all(p.grad is None for p in tg.parameters())
    for key, value in tg.state_dict().items():
        assert torch.equal(value, frozen_before[key]), key
    # fp32 master weights and optimizer state, and they were updated
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(s['exp_avg'].dtype == torch.float32 for s in wrapper.optimizer.state.values())
    changed = [n for n, p in model.named_parameters()
               if p.requires_grad and not torch.equal(p, trainable_before[n])]
    assert any(n.startswith('backbone.') for n in changed)
    assert any(n.startswith('neck.') for n in changed)
