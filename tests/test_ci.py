"""CI never turns a missing conformance fixture into skipped tests, and the fixture-driven suite
runs on every fixture folder."""
import os
import os.path as osp
import subprocess

import pytest

from .conftest import DEFAULT_REFERENCE_DIRS, REPO_ROOT, _missing_fixture, reference_dirs


def test_ci_script_exports_ci_true(tmp_path):
    """.ci/run sets CI=true itself (a stand-in `make` reports what it sees)."""
    fake_bin = tmp_path / 'bin'
    fake_bin.mkdir()
    make = fake_bin / 'make'
    make.write_text('#!/usr/bin/env bash\necho "make sees CI=${CI:-unset} args=$*"\n'
                    'echo "1 passed in 0.01s"\n')
    make.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != 'CI'}
    env['PATH'] = f'{fake_bin}{os.pathsep}{env.get("PATH", "")}'
    proc = subprocess.run(['bash', osp.join(REPO_ROOT, '.ci', 'run')], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'make sees CI=true args=test' in proc.stdout
    assert proc.stdout.rstrip().endswith('1 passed in 0.01s')


def test_missing_fixture_fails_under_ci_and_skips_otherwise(monkeypatch, tmp_path):
    monkeypatch.setenv('CI', 'true')
    with pytest.raises(pytest.fail.Exception, match='conformance fixture not found'):
        _missing_fixture(str(tmp_path))
    monkeypatch.delenv('CI')
    with pytest.raises(pytest.skip.Exception, match='conformance fixture not found'):
        _missing_fixture(str(tmp_path))


def test_reference_dir_selects_one_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('ADDP_REFERENCE_DIR', str(tmp_path))
    assert reference_dirs() == (str(tmp_path), )
    monkeypatch.delenv('ADDP_REFERENCE_DIR')
    assert reference_dirs() == DEFAULT_REFERENCE_DIRS
    assert [osp.basename(d) for d in DEFAULT_REFERENCE_DIRS] == ['addp_reference',
                                                                 'addp_reference_c']


def test_fixture_sizes_agree_with_config(reference):
    """What the tests derive from config.json (batch, grid, sizes, vocabulary) is what the
    tensors hold, for each fixture folder."""
    c, out = reference.config, reference.outputs
    B, L, D = reference.batch, reference.num_tokens, c['dim']
    assert B == c['batch'] and reference.inputs['images'].shape == (B, 3, reference.img_size,
                                                                     reference.img_size)
    assert out['vq_tokens'].shape == (B, L)
    assert out['encoder_out'].shape == (B, 1 + L, D)
    assert out['tp_probs_mask_t'].shape == (B, c['vqgan']['n_embed'], reference.grid,
                                            reference.grid)
    assert int(reference.inputs['mask_t'][0].sum()) == c['mask_t_count']
    n_reliable = L - c['mask_t_count']
    assert out['decoder_logits'].shape == (B, 1 + L + n_reliable, reference.ids['vocab_size'])
    assert out['generation']['step0']['logits'].shape == (B, L, c['vqgan']['n_embed'])


def test_suite_runs_every_fixture_folder(request):
    """Every collected test that uses ``reference`` runs once per folder of reference_dirs()."""
    seen = {}
    for item in request.session.items:
        params = getattr(getattr(item, 'callspec', None), 'params', {})
        if 'reference' in params:
            seen.setdefault(item.originalname, set()).add(params['reference'])
    assert 'test_fixture_sizes_agree_with_config' in seen  # the test above, at least
    for name, dirs in seen.items():
        assert dirs == set(reference_dirs()), name
