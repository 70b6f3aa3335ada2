"""ADDPGenerator on a toy model: mmagic outputs, seeding, inpainting, strict weight loading."""
import pytest
import torch

from addp_mm.generation.sampling import image_seeds

from .helpers import TOY_PRETRAIN_CONFIG, build_toy_generator


def test_forward_returns_one_bgr_datasample_per_image(toy_generator):
    outs = toy_generator(inputs=dict(num_batches=2, sample_kwargs=dict(seed=3, indices=[0, 1])))
    assert len(outs) == 2
    ref = toy_generator.sample(image_seeds(3, [0, 1]))['images']  # RGB in [0, 1]
    for i, out in enumerate(outs):
        fake = out.fake_img
        assert fake.shape == (3, 64, 64)
        assert 0 <= float(fake.min()) and float(fake.max()) <= 255
        assert torch.equal(fake, ref[i][[2, 1, 0]] * 255)  # BGR, 0-255, as mmagic metrics read
        assert int(out.noise) == int(image_seeds(3, [i])[0])
        assert out.sample_kwargs == dict(seed=3, indices=[0, 1])


def test_images_depend_only_on_their_seed(toy_generator):
    seeds = image_seeds(0, [0, 1, 2])
    a = toy_generator.sample(seeds)
    b = toy_generator.sample(seeds)
    assert torch.equal(a['images'], b['images']) and torch.equal(a['ids'], b['ids'])
    # the same image whether generated in a batch of 3 or alone: the same tokens; pixels equal up
    # to float rounding (convolution kernels depend on the batch size)
    alone = toy_generator.sample(seeds[2:])
    assert torch.equal(alone['ids'], a['ids'][2:])
    assert torch.equal(alone['mask'], a['mask'][2:])
    assert torch.allclose(alone['images'], a['images'][2:], atol=1e-4)
    # different seeds, different images
    assert not torch.equal(a['ids'][0], a['ids'][1])


def test_seed_in_sample_kwargs_enumerates_indices_like_the_tool(toy_generator):
    """Successive calls with sample_kwargs['seed'] make images 0, 1, 2, ... of that seed (what
    mmagic's metric sampler does), the same images as tools/generate.py --seed."""
    model = build_toy_generator()
    first = model(inputs=dict(num_batches=2, sample_kwargs=dict(seed=5)))
    second = model(inputs=dict(num_batches=2, sample_kwargs=dict(seed=5)))
    got = torch.stack([o.fake_img for o in first + second])
    ref = model.sample(image_seeds(5, [0, 1, 2, 3]))['images'][:, [2, 1, 0]] * 255
    assert torch.allclose(got, ref, atol=1e-4 * 255)  # batches of 2 vs 4: float rounding only


def test_noise_fn_seeds_reproduce_images(toy_generator):
    torch.manual_seed(0)
    seeds = toy_generator.noise_fn(num_batches=2)
    assert seeds.dtype == torch.int64 and seeds.shape == (2, )
    a = toy_generator(inputs=dict(noise=seeds))
    b = toy_generator(inputs=dict(noise=seeds.clone(), num_batches=2))
    assert all(torch.equal(x.fake_img, y.fake_img) for x, y in zip(a, b))
    assert torch.equal(torch.stack([x.noise for x in a]), seeds)


def test_sampling_options_change_the_result(toy_generator):
    seeds = image_seeds(0, [0])
    base = toy_generator.sample(seeds)['ids']
    assert not torch.equal(toy_generator.sample(seeds, sampling='argmax')['ids'], base)
    assert toy_generator.sample(seeds, num_steps=3)['mask'].sum() == 1  # last step keeps one
    with pytest.raises(ValueError, match='unknown sample_kwargs'):
        toy_generator(inputs=dict(num_batches=1, sample_kwargs=dict(steps=3)))
    with pytest.raises(ValueError, match='unknown schedule'):
        toy_generator.sample(seeds, schedule='exp')


def test_inpainting_keeps_unmasked_tokens_exactly(toy_generator):
    from addp_mm.generation.api import inpaint
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    pixel_mask = torch.zeros(64, 64, dtype=torch.bool)
    pixel_mask[10:30, 20:50] = True  # touches token rows 0-1, columns 1-3
    out = inpaint(toy_generator, image, pixel_mask=pixel_mask, seed=0, indices=[0, 1])
    token_mask = out['token_mask'].bool()
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0:2, 1:4] = True
    assert torch.equal(token_mask, expected.flatten())
    _, image_ids = toy_generator.vqgan.encode(image[None])
    assert torch.equal(out['input_ids'], image_ids.expand(2, -1))
    assert torch.equal(out['ids'][:, ~token_mask], image_ids.expand(2, -1)[:, ~token_mask])
    # the masked tokens are generated (the two variations differ there)
    assert not torch.equal(out['ids'][0, token_mask], out['ids'][1, token_mask])


def test_loads_pretraining_checkpoint_strictly(toy_generator, toy_checkpoint, tmp_path):
    loaded = build_toy_generator(checkpoint=toy_checkpoint)
    for (k, a), b in zip(loaded.state_dict().items(), toy_generator.state_dict().values()):
        assert torch.equal(a, b), k

    with pytest.raises(FileNotFoundError, match='not found'):
        build_toy_generator(checkpoint=str(tmp_path / 'missing.pth'))

    sd = torch.load(toy_checkpoint, weights_only=True)['state_dict']
    del sd['neck.mask_token']
    torch.save(dict(state_dict=sd), tmp_path / 'incomplete.pth')
    with pytest.raises(KeyError, match='neck.mask_token'):
        build_toy_generator(checkpoint=str(tmp_path / 'incomplete.pth'))


def test_runner_style_loading_is_strict_too(toy_checkpoint, tmp_path):
    """mmengine's load_checkpoint (Runner load_from, mmagic inferencer) uses strict=False; the
    generator still refuses a checkpoint without its weights."""
    from mmengine.runner import load_checkpoint
    model = build_toy_generator(seed=1)
    load_checkpoint(model, toy_checkpoint, map_location='cpu')
    assert torch.equal(model.neck.mask_token, build_toy_generator().neck.mask_token)

    sd = torch.load(toy_checkpoint, weights_only=True)['state_dict']
    sd = {k: v for k, v in sd.items() if not k.startswith('target_generator.vqgan.')}
    torch.save(dict(state_dict=sd), tmp_path / 'no_vqgan.pth')
    with pytest.raises(KeyError, match='does not hold the weights of the ADDP generator'):
        load_checkpoint(model, str(tmp_path / 'no_vqgan.pth'), map_location='cpu')


def test_a_checkpoint_of_other_sizes_is_refused(toy_checkpoint, tmp_path):
    """A tensor of another size is named, with the fix (the config of the same sizes)."""
    sd = torch.load(toy_checkpoint, weights_only=True)['state_dict']
    sd['neck.mask_token'] = torch.zeros(1, 1, 32)
    torch.save(dict(state_dict=sd), tmp_path / 'narrow.pth')
    with pytest.raises(ValueError, match=r'ADDP generator .* sizes in the config \(1 tensors '
                                         r'differ, first: \[.neck.mask_token: file \(1, 1, 32\)'):
        build_toy_generator(checkpoint=str(tmp_path / 'narrow.pth'))


def test_toy_pretraining_checkpoint_loads_into_the_toy_generator(tmp_path):
    """The toy generation config has the sizes of the toy pre-training config, so what
    tools/train.py writes for it (ADDP state dict with the token predictor) loads strictly."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(TOY_PRETRAIN_CONFIG)
    addp = MODELS.build(cfg.model)
    addp.init_weights()
    torch.save(dict(state_dict=addp.state_dict()), tmp_path / 'iter_50.pth')
    gen = build_toy_generator(checkpoint=str(tmp_path / 'iter_50.pth'))
    assert torch.equal(gen.neck.mask_token, addp.neck.mask_token)
    assert torch.equal(gen.vqgan.codebook, addp.target_generator.vqgan.codebook)
    assert gen.sample(image_seeds(0, [0]), num_steps=2)['images'].shape == (1, 3, 64, 64)


def test_precision_checks(monkeypatch):
    from addp_mm.generation import generator as gen_module
    model = build_toy_generator(precision='bf16')
    monkeypatch.setattr(gen_module, 'cpu_has_native_bf16', lambda: False)
    with pytest.warns(UserWarning, match='without native bf16'):
        model.autocast()
    model.precision = 'fp16'
    with pytest.raises(ValueError, match='needs a CUDA device'):
        model.autocast()
    with pytest.raises(ValueError, match='precision must be one of'):
        build_toy_generator(precision='int8')
