"""benchmarks/gpu_check.sh --dry-run (every path of the GPU check on the CPU at tiny size), the
fixture packing that carries the conformance fixtures to the GPU machine, and the machine fields
every benchmark line carries and the floor of a counted run (benchmarks/_common.py)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ..conftest import DEFAULT_REFERENCE_DIRS, REPO_ROOT

BENCH = osp.join(REPO_ROOT, 'benchmarks')


@pytest.fixture
def bench_path(monkeypatch):
    """benchmarks/ first on sys.path for one test, as when a script runs from there."""
    monkeypatch.syspath_prepend(BENCH)


def _fixtures_or_skip():
    if not all(osp.isfile(osp.join(d, 'reference.pt')) for d in DEFAULT_REFERENCE_DIRS):
        msg = 'conformance fixtures not found beside the checkout'
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(msg)
        pytest.skip(msg)


def test_gpu_check_dry_run(tmp_path):
    """Every section of the GPU check runs on the CPU and lands in the JSON file."""
    _fixtures_or_skip()
    out = tmp_path / 'out'
    no_wheels = tmp_path / 'no_wheels'  # the installed packages, the shared fixtures
    no_wheels.mkdir()
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_WHEELS=str(no_wheels),
               NO_ALBUMENTATIONS_UPDATE='1')
    proc = subprocess.run(['bash', osp.join(BENCH, 'gpu_check.sh'), '--dry-run', str(out)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    with open(out / 'gpu_check.json') as f:
        result = json.load(f)
    assert result['dry_run'] is True and result['device'] == 'cpu'
    assert result['errors'] == {}
    assert result['machine']['cpu'] and 'cpu_flags' in result['machine']
    assert result['tf32'] == dict(matmul=False, cudnn=False)
    # both fixtures, every check within the fixture tolerance
    assert sorted(result['conformance']) == ['addp_reference', 'addp_reference_c']
    for name, fixture in result['conformance'].items():
        assert fixture['ok'], (name, fixture)
        for check in ('vq_z0', 'vq_decoded', 'tp_probs_mask_t', 'x_t', 'encoder_out',
                      'decoder_logits', 'loss', 'gen_step1_logits', 'gen_chain_step1_x'):
            assert fixture['checks'][check]['ok'], (name, check)
    # pre-training: 2 models x (bf16, fp16) x (fp32 attention, flash attention)
    runs = result['pretrain']
    assert len(runs) == 8
    assert {(r['precision'], r['attention']) for r in runs} == {
        (p, a) for p in ('bf16', 'fp16') for a in ('fp32', 'flash')}
    for r in runs:
        assert 'error' not in r, r
        assert r['batch'] == 2 and len(r['step_times']) == 2 and r['img_per_s'] > 0
    gen = result['generation']
    assert 'error' not in gen, gen
    assert gen['batch'] == 2 and gen['steps'] == 2 and gen['precision'] == 'bf16'
    assert gen['img_per_s'] > 0


def test_fixture_pack_roundtrip(tmp_path, bench_path):
    """pack keeps the first images of every per-image tensor, exactly; unpack restores the
    fixture layout the conformance code reads."""
    _fixtures_or_skip()
    from gpu_check_fixtures import pack, unpack
    src = DEFAULT_REFERENCE_DIRS[0]
    packed = tmp_path / 'fixtures.pt'
    pack([src], 1, str(packed))
    (root, ) = unpack(str(packed), str(tmp_path / 'out'))
    ref = torch.load(osp.join(src, 'reference.pt'), map_location='cpu', weights_only=True)
    got = torch.load(osp.join(root, 'reference.pt'), map_location='cpu', weights_only=True)
    assert torch.equal(got['inputs']['images'], ref['inputs']['images'][:1])
    assert torch.equal(got['outputs']['decoder_logits'], ref['outputs']['decoder_logits'][:1])
    assert torch.equal(got['outputs']['generation']['step1']['x_in'],
                       ref['outputs']['generation']['step1']['x_in'][:1])
    assert 'loss' not in got['outputs']  # a batch mean: no reference for one image
    with open(osp.join(root, 'config.json')) as f:
        config = json.load(f)
    assert config['batch'] == 1 and config['trimmed_from_batch'] == ref['inputs']['images'].shape[0]
    release = torch.load(osp.join(root, 'addp.pth'), map_location='cpu', weights_only=True)
    from addp_mm.checkpoints.loading import load_checkpoint_file
    from addp_mm.checkpoints.weights import extract_state_dict
    original = extract_state_dict(load_checkpoint_file(osp.join(src, 'addp.pth')))
    assert sorted(release['model']) == sorted(original)
    assert all(torch.equal(release['model'][k], v) for k, v in original.items())


def test_machine_fields_and_floor(tmp_path, bench_path):
    from torch.utils.flop_counter import FlopCounterMode

    from _common import cpu_info, flop_report, flop_split, floor, machine
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n'
                       'model\t\t: 2\nmodel name\t: AMD EPYC 9R45\n'
                       'flags\t\t: fpu sse avx2 fma avx512f avx512_bf16 avx512_vnni\n\n'
                       'processor\t: 1\nflags\t\t: amx_bf16\n')
    info = cpu_info(str(cpuinfo))
    assert info == dict(cpu='AMD EPYC 9R45', cpu_vendor='AuthenticAMD', cpu_family=26,
                        cpu_model=2, cpu_flags=['avx2', 'fma', 'avx512f', 'avx512_bf16',
                                                'avx512_vnni'])
    m = machine()
    for key in ('cpu', 'cpu_family', 'cpu_flags', 'threads', 'torch'):
        assert key in m
    rates = dict(matmul_gflop_per_s=100., conv3x3_gflop_per_s=50.,
                 conv3x3_channels_last_gflop_per_s=200.)
    # 1 TFLOP of matmul at 100 GFLOP/s + 2 TFLOP of convolution at the faster 200 GFLOP/s
    assert floor(dict(tflop_matmul=1., tflop_conv=2.), rates)['floor_s'] == pytest.approx(20.)
    counter = FlopCounterMode(display=False)
    with counter:
        torch.randn(128, 256) @ torch.randn(256, 512)
        torch.nn.functional.conv2d(torch.randn(1, 64, 34, 34), torch.randn(64, 64, 3, 3))
    split = flop_split(counter)
    assert split['tflop_matmul'] == pytest.approx(2 * 128 * 256 * 512 / 1e12, rel=0.05)
    assert split['tflop_conv'] == pytest.approx(2 * 64 * 32 * 32 * 64 * 9 / 1e12, rel=0.05)
    # the --flops fields of bench_pretrain / bench_generate, in their order: a run of these
    # operations taking 4x the floor (slow rates: a floor of seconds, above the JSON's rounding)
    slow = dict(matmul_gflop_per_s=.01, conv3x3_gflop_per_s=.005,
                conv3x3_channels_last_gflop_per_s=.02)
    floor_s = split['tflop_matmul'] * 1e3 / .01 + split['tflop_conv'] * 1e3 / .02
    report = flop_report(counter, 4 * floor_s, slow)
    assert list(report) == ['gflop_per_s', 'tflop_matmul', 'tflop_conv', 'floor_s', 'peak',
                            'over_floor']
    assert report['floor_s'] == pytest.approx(floor_s, abs=1e-3) and report['peak'] == slow
    assert report['over_floor'] == pytest.approx(4., rel=1e-3)
    # the achieved rate of the same operations in 1 ms
    assert flop_report(counter, 1e-3, rates)['gflop_per_s'] == pytest.approx(
        counter.get_total_flops() / 1e9 / 1e-3, rel=1e-3)
