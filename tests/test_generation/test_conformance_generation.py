"""Generation conformance: two deterministic steps of the official loop (outputs.generation).

The fixture ran the official ``engine_generate`` step with argmax instead of sampling and choice
temperature 0 on a cosine schedule (``gen_num_iter`` steps in config.json); each step is replayed
here from its recorded inputs, and our loop is run from the start with step 0's outputs feeding
step 1, with the generator built from the fixture's ``addp.pth`` through the converter.
"""
import functools

import pytest
import torch
import torch.nn.functional as F

from addp_mm.checkpoints.loading import load_checkpoint_file
from addp_mm.checkpoints.convert import convert_official_addp
from addp_mm.checkpoints.weights import extract_state_dict

from ..conftest import assert_close_rel, assert_equal_or_tie, reference_model_cfg


def generator_cfg(config: dict, checkpoint: str, channels_last: bool = False) -> dict:
    """An ADDPGenerator config with the fixture's sizes and generation settings."""
    parts = reference_model_cfg(config)
    return dict(type='ADDPGenerator', backbone=parts['backbone'], neck=parts['neck'],
                head=parts['head'], vqgan=parts['target_generator']['vqgan'],
                checkpoint=checkpoint, num_steps=config['gen_num_iter'],
                schedule=config['gen_schedule'], sampling='argmax', choice_temperature=0.,
                channels_last=channels_last)


@pytest.fixture(scope='module')
def converted(reference, tmp_path_factory):
    sd = extract_state_dict(load_checkpoint_file(reference.path('addp.pth')))
    out, _, unknown = convert_official_addp(sd)
    assert unknown == []
    path = tmp_path_factory.mktemp('gen_conv') / 'addp_mm.pth'
    torch.save(dict(state_dict=out), path)
    return str(path)


@pytest.fixture(scope='module', params=[False, True], ids=['nchw', 'channels_last'])
def generator(reference, converted, request):
    """The generator; also with the channels-last VQGAN decoder the configs use."""
    from mmagic.registry import MODELS
    import addp_mm.generation  # noqa: F401
    return MODELS.build(dict(generator_cfg(reference.config, converted,
                                           channels_last=request.param), _scope_='mmagic'))


@pytest.mark.parametrize('step', [1])  # step 0 from its recorded inputs is the chained run's step 0
def test_denoise_step_matches_official(reference, generator, step):
    from addp_mm.generation.sampling import SamplingOptions, denoise_step
    ref = reference.outputs['generation'][f'step{step}']
    cfg = reference.config
    L = ref['mask_in'].shape[1]
    u = torch.rand(ref['mask_in'].shape[0], 2, L)  # unused by argmax and temperature 0
    options = SamplingOptions(num_steps=cfg['gen_num_iter'], schedule=cfg['gen_schedule'],
                              choice_temperature=0., sampling='argmax')
    state = dict(x=ref['x_in'], ids=ref['tokens_in'], mask=ref['mask_in'])
    logits_fn = functools.partial(generator.forward_logits, num_codes=generator.vqgan.n_embed)
    with torch.no_grad():
        out = denoise_step(logits_fn, generator.vqgan, state, step, L, u, options)
    assert_close_rel(out['logits'], ref['logits'], name=f'step{step} logits')
    assert_equal_or_tie(out['ids'], ref['argmax_tokens'], ref['logits'], True,
                        f'step{step} argmax tokens')
    # unmasked positions keep their tokens
    kept = ~ref['mask_in'].bool()
    assert torch.equal(out['ids'][kept], ref['tokens_in'][kept])
    assert torch.equal(out['mask'].sum(1), ref['mask_next'].sum(1))
    conf = F.log_softmax(ref['logits'].double(), -1).gather(
        -1, ref['argmax_tokens'][..., None])[..., 0].masked_fill(kept, float('inf'))
    assert_equal_or_tie(out['mask'], ref['mask_next'], conf, False, f'step{step} mask_next')
    assert_close_rel(out['x'], ref['x_next'], name=f'step{step} x_next')


class _Stop(Exception):
    pass


def test_chained_steps_match_official(reference, generator):
    """Our loop from the start: step 0's own outputs (not the recorded inputs) feed step 1, and
    both steps equal the reference (argmax, choice temperature 0). It runs the generator's own
    ``sample``, so the logits options the generator binds for its loop are the ones checked."""
    cfg, gen = reference.config, reference.outputs['generation']
    B, L = gen['step0']['mask_in'].shape
    states = {}

    def record(step, state):
        states[step] = {k: v.clone() for k, v in state.items()}
        if step == 1:
            raise _Stop  # two steps are enough; the rest of the loop is not recorded

    with pytest.raises(_Stop):  # argmax and temperature 0: the seeds' draws are not used
        generator.sample(torch.arange(B), callback=record, num_steps=cfg['gen_num_iter'],
                         schedule=cfg['gen_schedule'], choice_temperature=0., sampling='argmax')
    for step in (0, 1):
        ours, ref = states[step], gen[f'step{step}']
        assert_close_rel(ours['logits'], ref['logits'], name=f'chained step{step} logits')
        # the chain is exact (no near-tie resolved differently), so ids and masks are equal
        assert torch.equal(ours['ids'], ref['argmax_tokens']), f'chained step{step} ids'
        assert torch.equal(ours['mask'], ref['mask_next'].to(ours['mask'].dtype)), \
            f'chained step{step} mask'
        assert_close_rel(ours['x'], ref['x_next'], name=f'chained step{step} x_next')
    # step 1 read our step 0's state, which is the recorded input of step 1
    assert_close_rel(states[0]['x'], gen['step1']['x_in'], name='step1 x_in')
    assert torch.equal(states[0]['mask'], gen['step1']['mask_in'].to(states[0]['mask'].dtype))


def test_first_step_skips_the_encoder(reference, generator, monkeypatch):
    """With every position masked the logits ignore x: the encoder must not run."""
    ref = reference.outputs['generation']['step0']
    assert bool(ref['mask_in'].bool().all())

    def fail(*args, **kwargs):
        raise AssertionError('the encoder ran although every position is masked')

    monkeypatch.setattr(generator.backbone, 'forward', fail)
    with torch.no_grad():
        logits = generator.forward_logits(None, ref['tokens_in'], ref['mask_in'],
                                          num_codes=generator.vqgan.n_embed,
                                          share_all_masked=True)
    assert_close_rel(logits, ref['logits'], name='step0 logits without encoder')


def test_official_release_loads_directly(reference, generator):
    """The official ADDP file (not converted) gives the same generator weights."""
    from mmagic.registry import MODELS
    direct = MODELS.build(dict(generator_cfg(reference.config, reference.path('addp.pth')),
                               _scope_='mmagic'))
    for (k, a), b in zip(direct.state_dict().items(), generator.state_dict().values()):
        assert torch.equal(a, b), k
