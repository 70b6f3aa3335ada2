"""The optional ``torch.compile`` switch: same keys, same numbers within the fixture tolerance.

Compiled with inductor (the default backend) on the toy sizes; the pre-training model also takes
one training step through the compiled network (forward and backward).
"""
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import addp_mm  # noqa: F401
from tools.train import merge_args, parse_args

from ..test_generation.helpers import REPO_ROOT, TOY_PRETRAIN_CONFIG, build_toy_generator

TOL = 1e-4  # the conformance fixtures' relative tolerance


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def build_toy_addp(**overrides):
    cfg = Config.fromfile(TOY_PRETRAIN_CONFIG).model.to_dict()
    cfg['target_generator']['vqgan']['checkpoint'] = None
    cfg['target_generator']['predictor']['checkpoint'] = None
    cfg.update(overrides)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.init_weights()
    return model


def test_compiled_pretraining_network_matches_eager():
    eager, compiled = build_toy_addp(), build_toy_addp(compile=True)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # nothing renamed
    for k, v in eager.state_dict().items():
        assert torch.equal(v, compiled.state_dict()[k]), k
    assert compiled.backbone._compiled_call_impl is not None
    assert eager.backbone._compiled_call_impl is None

    B, L = 2, eager.neck.num_tokens
    x = torch.rand(B, 3, 64, 64)
    ids = torch.randint(0, 16, (B, L))
    mask = torch.zeros(B, L)
    mask[:, :L // 2] = 1
    eager.eval(), compiled.eval()
    with torch.no_grad():
        ref = eager.forward_logits(x, ids, mask)
        out = compiled.forward_logits(x, ids, mask)
    assert out.shape == ref.shape
    assert rel_err(out, ref) < TOL

    # backward through the compiled network gives the same gradients (eval mode: dropout draws
    # its masks from another generator under inductor, so train-mode steps differ by design)
    grads = []
    for model in (eager, compiled):
        model.zero_grad()
        logits = model.forward_logits(x, ids, mask)
        logits.float().square().mean().backward()
        grads.append(model.backbone.patch_embed.projection.weight.grad.clone())
    assert rel_err(grads[1], grads[0]) < TOL


def test_compiled_generator_matches_eager():
    eager, compiled = build_toy_generator(), build_toy_generator(compile=True)
    assert compiled.vqgan.decoder._compiled_call_impl is not None
    seeds = torch.tensor([3, 4])
    ref = eager.sample(seeds, num_steps=2, sampling='argmax')
    out = compiled.sample(seeds, num_steps=2, sampling='argmax')
    assert torch.equal(out['ids'], ref['ids'])
    assert rel_err(out['images'], ref['images']) < TOL


def test_train_compile_flag_reaches_the_model():
    cfg = merge_args(Config.fromfile(TOY_PRETRAIN_CONFIG),
                     parse_args([TOY_PRETRAIN_CONFIG, '--compile', '--work-dir', 'unused']))
    assert cfg.model.compile is True and not cfg.get('compile', False)
    cfg = merge_args(Config.fromfile(TOY_PRETRAIN_CONFIG),
                     parse_args([TOY_PRETRAIN_CONFIG, '--work-dir', 'unused']))
    assert not cfg.model.get('compile', False)
    # a model without the switch (a fine-tuning classifier): mmengine's own cfg.compile
    cls_config = str(REPO_ROOT / 'configs/addp/mini'
                     / 'cls_vit-tiny-p4_1xb64-cpu-coslr-600iter_digits-32px.py')
    cfg = merge_args(Config.fromfile(cls_config),
                     parse_args([cls_config, '--compile', '--work-dir', 'unused']))
    assert cfg.compile is True and 'compile' not in cfg.model
