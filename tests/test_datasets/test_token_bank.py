"""The token bank: crops drawn once by the training pipeline, tokenized once, served as ids.

Faithfulness is the point: a MAGE or ADDP step on the bank's ids must equal the step on the crops
they were made from, and the bank's ids must be what the frozen tokenizer gives for those crops.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset.utils import default_collate
from mmpretrain.registry import DATASETS, MODELS
from PIL import Image

import addp_mm  # noqa: F401
from addp_mm.datasets import TokenBankDataset, build_token_bank

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MINI = osp.join(REPO, 'configs', 'addp', 'mini')
PREDICTOR_CFG = osp.join(MINI, 'mage_vit-tiny-p4_1xb32-cpu-coslr-400iter_digits-32px.py')
ADDP_CFG = osp.join(MINI, 'addp_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('bank_images')
    rng = np.random.default_rng(0)
    for i in range(6):
        (root / 'train').mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            root / 'train' / f'{i}.png')
    return str(root)


def _mage(folder):
    cfg = Config.fromfile(PREDICTOR_CFG)
    cfg.model.target_generator.checkpoint = None  # random frozen tokenizer (test only)
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, _scope_='mmpretrain'))
    model.init_weights()
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=folder,
                                  _scope_='mmpretrain'))
    return model, dataset


def _bank(model, dataset, path, k=3, seed=5):
    return build_token_bank(dataset, lambda b: model.data_preprocessor(b, True)['inputs'],
                            lambda x: model.target_generator.encode(x)[1], path, k, seed=seed,
                            batch_size=4)


def test_bank_holds_the_tokenizers_ids_of_the_pipelines_crops(folder, tmp_path):
    model, dataset = _mage(folder)
    bank = _bank(model, dataset, str(tmp_path / 'bank.pth'))
    assert bank['ids'].shape == (6 * 3, 64) and bank['ids'].dtype == torch.int16
    assert bank['image_index'].tolist() == list(range(6)) * 3
    # redraw the same crops with the same seed: the ids are the tokenizer's for them
    np.random.seed(5)
    torch.manual_seed(5)
    crops = default_collate([dataset[i] for _ in range(3) for i in range(6)])
    images = model.data_preprocessor(crops, True)['inputs']
    assert torch.equal(model.target_generator.encode(images)[1], bank['ids'].long())
    # and they are crops (not the same crop three times)
    assert not torch.equal(bank['ids'][:6], bank['ids'][6:12])
    # the build leaves the global random state as it found it
    state = torch.get_rng_state()
    _bank(model, dataset, str(tmp_path / 'again.pth'))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.load(str(tmp_path / 'again.pth'))['ids'], bank['ids'])


def test_dataset_serves_ids_and_steps_equal_the_image_steps(folder, tmp_path):
    model, dataset = _mage(folder)
    path = str(tmp_path / 'bank.pth')
    bank = _bank(model, dataset, path, k=1, seed=7)
    tokens = TokenBankDataset(path, num_codes=64)
    assert len(tokens) == 6
    batch = default_collate([tokens[i] for i in range(6)])
    assert torch.equal(batch['inputs'][0], bank['ids'].long())
    np.random.seed(7)
    torch.manual_seed(7)
    images = model.data_preprocessor(default_collate([dataset[i] for i in range(6)]),
                                     True)['inputs']
    torch.manual_seed(1)
    from_images = model.loss(images, None)['loss']
    torch.manual_seed(1)
    from_ids = model.loss(batch['inputs'], None)['loss']
    assert torch.equal(from_images, from_ids)
    # ADDP: the frozen target generator takes the ids for the image (x_t, target, ids equal)
    cfg = Config.fromfile(ADDP_CFG)
    cfg.model.target_generator.vqgan.checkpoint = None
    cfg.model.target_generator.predictor.checkpoint = None
    torch.manual_seed(0)
    addp = MODELS.build(dict(cfg.model, _scope_='mmpretrain'))
    addp.init_weights()
    addp.target_generator.vqgan.load_state_dict(model.target_generator.state_dict())
    torch.manual_seed(2)
    loss_images = addp.loss([images], None)['loss']
    torch.manual_seed(2)
    loss_ids = addp.loss(batch['inputs'], None)['loss']
    assert torch.equal(loss_images, loss_ids)


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match='build_token_bank'):
        TokenBankDataset(str(tmp_path / 'missing.pth'))
    torch.save(dict(ids=torch.zeros(2, 4, dtype=torch.int16)), str(tmp_path / 'old.pth'))
    with pytest.raises(ValueError, match='not a token bank'):
        TokenBankDataset(str(tmp_path / 'old.pth'))
    torch.save(dict(ids=torch.full((2, 4), 70, dtype=torch.int16), version=1),
               str(tmp_path / 'other.pth'))
    with pytest.raises(ValueError, match='another tokenizer'):
        TokenBankDataset(str(tmp_path / 'other.pth'), num_codes=64)
