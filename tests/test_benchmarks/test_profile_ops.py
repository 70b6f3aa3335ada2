"""benchmarks/profile_ops.py (where the time goes) and bench_suspects.py at tiny size: the parts,
their operations and times are attributed, and every suspect is measured."""
import json
import os
import os.path as osp
import subprocess
import sys

from ..conftest import REPO_ROOT

BENCH = osp.join(REPO_ROOT, 'benchmarks')
TOY_GEN = ('configs/addp/generation/'
           'addp_vit-toy-p16_1xb4-cpu-8steps-cosine_imagefolder-64px.py')


def _run(*args, **env) -> dict:
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, **env))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    assert len(lines) == 1, proc.stdout[-3000:]
    return json.loads(lines[0]), proc.stdout


def test_profile_generation_splits_time_and_operations():
    result, stdout = _run(osp.join(BENCH, 'profile_ops.py'), 'generate', '--config', TOY_GEN,
                          '--batch', '2', '--steps', '3', '--markdown')
    parts = {p['part']: p for p in result['parts']}
    assert {'vqgan_decode', 'encoder', 'token_decoder', 'head'} <= set(parts)
    assert any(name.startswith('rest') for name in parts)
    # the parts do not overlap: their times add up to at most the whole run (each time is
    # rounded to 1 ms in the JSON: up to 0.5 ms per part, which matters at this tiny size)
    rounding = 0.0005 * len(parts)
    assert sum(p['seconds'] for p in parts.values()) <= result['seconds'] * 1.01 + rounding
    assert parts['vqgan_decode']['gflop_conv'] > 0 and parts['vqgan_decode']['gflop_matmul'] == 0
    assert parts['encoder']['gflop_matmul'] > 0 and parts['token_decoder']['gflop_matmul'] > 0
    # operators land in their part (times are rounded to ms: too short to compare at this size)
    assert any(op == 'aten::conv2d' for op, _ in parts['vqgan_decode']['top_ops'])
    assert any(op == 'aten::linear' for op, _ in parts['encoder']['top_ops'])
    assert not any(op == 'aten::conv2d' for op, _ in parts['token_decoder']['top_ops'])
    assert result['floor_s'] > 0  # the JSON values are rounded: compare within 5%
    assert abs(result['over_floor'] * result['floor_s'] / result['seconds'] - 1) < 0.05
    assert result['cpu_flags'] is not None and '| vqgan_decode |' in stdout


def test_bench_suspects_measures_every_suspect():
    result, _ = _run(osp.join(BENCH, 'bench_suspects.py'), REPEATS='1')
    s = result['suspects']
    for key in ('attention_encoder', 'attention_decoder', 'group_norm_silu_128x256',
                'generators_2', 'generators_64', 'layout_copy'):
        assert s[key]['a_ms'] > 0 and s[key]['b_ms'] > 0, key
    assert s['threads']['intra_op'] >= 1
    assert s['kernel_rates']['matmul_514x768x3072'] > 0
    assert s['kernel_rates']['conv3x3_128ch_256px_cl'] > 0
