"""tools/dist_train.sh with 2 CPU processes (gloo) on the toy ADDP config: one run stopped by a
SIGTERM that reaches only rank 1 (and its DataLoader worker), then the same command again, whose
final weights are those of an uninterrupted run, bit for bit; and Ctrl-C (SIGINT) on every rank,
which saves, then the same command to the end, then once more: "already finished"."""
import re
import signal
import sys

from mmengine.dataset import InfiniteSampler

from addp_mm.checkpoints import load_checkpoint_file

from .conftest import ROOT, free_port, read_records, run_tool, toy_run_config
from .helpers import state_dict_sha

WORLD, BATCH, NUM_IMAGES = 2, 2, 12


def _expected_ids(seed: int, rank: int, num_iters: int):
    """The batches ``InfiniteSampler`` gives ``rank`` in an uninterrupted run with ``seed``."""
    sampler = InfiniteSampler(list(range(NUM_IMAGES)), shuffle=True, seed=seed)
    sampler.rank, sampler.world_size = rank, WORLD
    stream = sampler._indices_of_rank()
    return [[next(stream) for _ in range(BATCH)] for _ in range(num_iters)]


#: The DataLoader worker restarts its generators from the launch's seed, so random crops drawn
#: there cannot continue as in an uninterrupted run; this test crops deterministically. The random
#: masks and dropout are drawn in the trainer processes, whose generator states every checkpoint
#: holds per rank.
FIXED_PIPELINE = ("pipeline=[dict(type='LoadImageFromFile'), dict(type='CenterCrop', "
                  "crop_size=64), dict(type='PackInputs')]")


def _config(tmp_path, image_folder, name, randomness, kill=True, max_iters=6,
             plan="[dict(iter=3, signal='SIGTERM', rank=1, group=True)]"):
    kill_hook = f", dict(type='ScheduledKillHook', plan={plan})" if kill else ''
    return toy_run_config(
        tmp_path, image_folder, name, loader=f'batch_size={BATCH}, num_workers=1',
        dataset=FIXED_PIPELINE,
        train_cfg=f'dict(max_iters={max_iters})',
        default_hooks='dict(checkpoint=dict(interval=2), logger=dict(interval=1))',
        custom_hooks="[dict(type='FaultToleranceHook'), dict(type='RecordTrainingHook')"
        + kill_hook + ']',
        randomness=randomness)


def _rank_exit_codes(output: str) -> dict:
    """{rank: exit status} of the failed ranks in torchrun's error summary."""
    return {int(rank): int(code) for rank, code in
            re.findall(r'rank\s*:\s*(\d+)[^\n]*\n[^\n]*exitcode\s*:\s*(-?\d+)', output)}


def _assert_stopped(output: str, code: int) -> None:
    """Every rank ended with ``code`` after the save, except that torchrun ends a rank still
    shutting down when another has exited with SIGTERM (its handler is no longer installed then,
    and the checkpoint was written before any rank could exit)."""
    codes = _rank_exit_codes(output)
    assert code in codes.values(), output[-6000:]
    assert set(codes.values()) <= {code, -signal.SIGTERM}, output[-6000:]


def test_dist_train_sigterm_on_one_rank_then_resume(tmp_path, image_folder):
    work = tmp_path / 'work'
    # a seed drawn at start-up, as in the ADDP recipe: a relaunch draws another one
    config = _config(tmp_path, image_folder, 'dist', 'dict(seed=None)')
    command = ['bash', ROOT / 'tools' / 'dist_train.sh', config, str(WORLD), '--work-dir', work,
               '--resume']
    env = dict(PYTHON=sys.executable, PORT=str(free_port()))

    # 1) SIGTERM to rank 1's process group after iteration 3: both ranks stop there, rank 0
    #    saves, the ranks exit 143 (128 + SIGTERM: "stopped", not "finished"; torchrun then
    #    reports them as failed and exits 1); DataLoader workers survive the signal.
    first = run_tool(command, cwd=tmp_path, extra_env=env)
    assert first.returncode != 0, first.stdout[-6000:]
    _assert_stopped(first.stdout, 128 + signal.SIGTERM)
    assert 'Distributed training: True' in first.stdout and 'GPU number: 2' in first.stdout
    assert 'stopped by SIGTERM on another rank after iteration 3' in first.stdout  # rank 0
    assert 'killed by signal' not in first.stdout
    stopped = {rank: read_records(work, rank) for rank in range(WORLD)}
    for rank in range(WORLD):
        assert [r['iter'] for r in stopped[rank]] == [1, 2, 3]
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_3.pth')
    ckpt = load_checkpoint_file(work / 'iter_3.pth')
    assert ckpt['meta']['iter'] == 3
    assert state_dict_sha(ckpt['state_dict']) == stopped[0][-1]['sha'] == stopped[1][-1]['sha']
    assert len(ckpt['resume_state']['rng_per_rank']) == WORLD  # each rank's generators
    first_seed = ckpt['meta']['seed']  # rank 0's runner seed (diff_rank_seed: rank r has + r)

    # 2) the same command: resumes at iteration 3 and finishes
    second = run_tool(command, cwd=tmp_path, extra_env=env)
    assert second.returncode == 0, second.stdout[-6000:]
    assert 'resumed epoch: 0, iter: 3' in second.stdout
    assert 'restoring the sampler seed' in second.stdout
    records = {rank: read_records(work, rank) for rank in range(WORLD)}
    for rank in range(WORLD):
        assert [r['iter'] for r in records[rank]] == [1, 2, 3, 4, 5, 6]
        assert len({r['sampler_seed'] for r in records[rank]}) == 1
    # DDP keeps the ranks identical after every step, and rank 0 saved exactly that
    for r0, r1 in zip(records[0], records[1]):
        assert r0['sha'] == r1['sha'], r0['iter']
    final = load_checkpoint_file(work / 'iter_6.pth')
    assert state_dict_sha(final['state_dict']) == records[0][-1]['sha']

    # rank-dependent sampling: within each pass over the 12 images (3 iterations x 2 ranks x 2)
    # the ranks see disjoint halves; and the batches, including those after the resume, are
    # exactly those of an uninterrupted run with the recorded seed
    seed = records[0][0]['sampler_seed']
    assert records[1][0]['sampler_seed'] == seed
    for first_iter in (0, 3):
        seen = [i for rank in range(WORLD) for r in records[rank][first_iter:first_iter + 3]
                for i in r['ids']]
        assert sorted(seen) == list(range(NUM_IMAGES)), seen
    for rank in range(WORLD):
        assert [r['ids'] for r in records[rank]] == _expected_ids(seed, rank, 6)

    # 3) an uninterrupted run of the same 6 iterations, seeded with the seed the first launch drew
    #    (same initial weights and sampler seed): the same weights after every step, and at the end
    ref_work = tmp_path / 'reference'
    ref_config = _config(tmp_path, image_folder, 'dist_ref', f'dict(seed={first_seed})',
                         kill=False)
    ref = run_tool(['bash', ROOT / 'tools' / 'dist_train.sh', ref_config, str(WORLD),
                    '--work-dir', ref_work], cwd=tmp_path,
                   extra_env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    assert ref.returncode == 0, ref.stdout[-6000:]
    reference = read_records(ref_work, 0)
    assert reference[0]['sampler_seed'] == seed
    assert [r['sha'] for r in reference] == [r['sha'] for r in records[0]]
    ref_final = load_checkpoint_file(ref_work / 'iter_6.pth')
    assert state_dict_sha(ref_final['state_dict']) == state_dict_sha(final['state_dict'])


def test_dist_train_ctrl_c_on_every_rank_saves_then_finishes(tmp_path, image_folder):
    """Ctrl-C reaches every rank (a terminal's SIGINT, or torchrun passing it on): each process
    group gets SIGINT after iteration 2; both ranks stop there, rank 0 saves, each exits 130
    without a KeyboardInterrupt traceback. The same command finishes the run; once more, each rank
    says in one line that it is already finished, trains nothing, and the job exits 0."""
    work = tmp_path / 'work'
    plan = ("[dict(iter=2, signal='SIGINT', rank=0, group=True), "
            "dict(iter=2, signal='SIGINT', rank=1, group=True)]")
    config = _config(tmp_path, image_folder, 'ctrl_c', 'dict(seed=0)', max_iters=4, plan=plan)
    command = ['bash', ROOT / 'tools' / 'dist_train.sh', config, str(WORLD), '--work-dir', work,
               '--resume']
    env = dict(PYTHON=sys.executable, PORT=str(free_port()))

    first = run_tool(command, cwd=tmp_path, extra_env=env)
    assert first.returncode != 0, first.stdout[-6000:]
    _assert_stopped(first.stdout, 128 + signal.SIGINT)
    assert 'stopped by SIGINT after iteration 2' in first.stdout
    assert 'KeyboardInterrupt' not in first.stdout and 'killed by signal' not in first.stdout
    for rank in range(WORLD):
        assert [r['iter'] for r in read_records(work, rank)] == [1, 2]
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert load_checkpoint_file(work / 'iter_2.pth')['meta']['iter'] == 2

    second = run_tool(command, cwd=tmp_path, extra_env=env)
    assert second.returncode == 0, second.stdout[-6000:]
    for rank in range(WORLD):
        assert [r['iter'] for r in read_records(work, rank)] == [1, 2, 3, 4]

    third = run_tool(command, cwd=tmp_path, extra_env=env)
    assert third.returncode == 0, third.stdout[-6000:]
    assert 'already finished' in third.stdout and 'Advance dataloader' not in third.stdout
    for rank in range(WORLD):
        assert [r['iter'] for r in read_records(work, rank)] == [1, 2, 3, 4]
