"""A token bank: a fixed set of augmented crops, tokenized once by the frozen tokenizer.

MAGE and ADDP pre-training read images only through the frozen VQGAN's token ids (ADDP renders its
input x_t from tokens and predictor probabilities, never from the crop itself). The tokenizer is
deterministic, so tokenizing a crop every time it is drawn repeats work. A token bank draws
``crops_per_image`` crops of every image once, with the training pipeline, tokenizes them once and
stores the ids; :class:`TokenBankDataset` serves them, and the models take integer inputs as ids
(``MAGE.tokenize``, ``ADDPTargetGenerator.tokenize``). The method is unchanged; the augmentation
becomes a fixed sample of the pipeline's distribution (``crops_per_image`` crops per image instead
of a new one per draw). docs/method.md §7 lists it among the differences.
"""
import os.path as osp
from typing import Callable, Dict, Optional

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.dataset.utils import default_collate
from mmpretrain.registry import DATASETS
from mmpretrain.structures import DataSample

from ..utils.errors import ConfigError, MissingPathError

#: Format version of a bank file (bumped when its fields change).
BANK_VERSION = 1


@torch.no_grad()
def build_token_bank(dataset,
                     preprocess: Callable[[dict], torch.Tensor],
                     tokenize: Callable[[torch.Tensor], torch.Tensor],
                     out_file: str,
                     crops_per_image: int,
                     seed: int = 0,
                     batch_size: int = 256,
                     info: Optional[dict] = None) -> Dict[str, object]:
    """Draw ``crops_per_image`` crops of every image of ``dataset``, tokenize them, save the ids.

    Args:
        dataset: The pre-training dataset (its pipeline makes one random crop per ``__getitem__``
            and ends with ``PackInputs``).
        preprocess (callable): ``preprocess(collated batch) -> (B, 3, H, W)`` images as the model
            sees them (the model's data preprocessor with ``training=True``).
        tokenize (callable): ``tokenize(images) -> (B, L)`` ids (the frozen tokenizer).
        out_file (str): Where to save the bank (``torch.save``).
        crops_per_image (int): Crops of each image.
        seed (int): Seeds numpy's and torch's global generators while drawing (the pipeline's
            transforms use them), restored afterwards.
        batch_size (int): Crops per tokenizer call.
        info (dict, optional): Extra provenance stored with the bank (e.g. the tokenizer file).

    Returns:
        dict: what was saved: ``ids`` (N * crops_per_image, L) int16, ``image_index`` (same N * k)
        int64, ``crops_per_image``, ``seed``, ``num_images``, ``version``, ``info``.
    """
    if crops_per_image < 1:
        raise ValueError(f'crops_per_image must be at least 1, got {crops_per_image}.')
    n = len(dataset)
    if n == 0:
        raise ValueError('the dataset of the token bank is empty: check its data_root.')
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    np.random.seed(seed)
    torch.manual_seed(seed)
    ids, index = [], []
    try:
        order = [(i, k) for k in range(crops_per_image) for i in range(n)]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = default_collate([dataset[i] for i, _ in chunk])
            ids.append(tokenize(preprocess(batch)).to(torch.int16).cpu())
            index += [i for i, _ in chunk]
    finally:
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
    bank = dict(ids=torch.cat(ids), image_index=torch.tensor(index),
                crops_per_image=crops_per_image,
                seed=seed, num_images=n, version=BANK_VERSION, info=dict(info or {}))
    torch.save(bank, out_file)
    return bank


@DATASETS.register_module()
class TokenBankDataset(BaseDataset):
    """Token ids of a token bank (:func:`build_token_bank`), one crop per item.

    Each item is ``dict(inputs=[ids], data_samples=DataSample())`` with ids (L,) int64, what
    ``PackInputs`` gives for an image; use it with ``collate_fn=dict(type='default_collate')`` and
    a data preprocessor that leaves integers alone (``dict(type='BaseDataPreprocessor')``).

    Args:
        bank_file (str): The bank (``torch.save`` output of :func:`build_token_bank`).
        num_codes (int, optional): Codebook size of the model; ids outside it are refused.
        **kwargs: ``BaseDataset`` arguments (``pipeline`` is ignored: the items are final).
    """

    def __init__(self, bank_file: str, num_codes: Optional[int] = None, **kwargs) -> None:
        self.bank_file = bank_file
        self.num_codes = num_codes
        kwargs['pipeline'] = []
        super().__init__(ann_file='', data_root='', serialize_data=False, **kwargs)

    def load_data_list(self):
        if not osp.isfile(self.bank_file):
            raise MissingPathError(
                f'token bank {self.bank_file!r} not found: build it with '
                'addp_mm.datasets.build_token_bank (benchmarks/mini_paper.py writes one per run).')
        bank = torch.load(self.bank_file, map_location='cpu', weights_only=True)
        if not isinstance(bank, dict) or bank.get('version') != BANK_VERSION:
            raise ConfigError(f'{self.bank_file!r} is not a token bank of version {BANK_VERSION}; '
                             'build it again with addp_mm.datasets.build_token_bank.')
        ids = bank['ids'].long()
        if self.num_codes is not None and len(ids) and int(ids.max()) >= self.num_codes:
            raise ConfigError(f'{self.bank_file!r} holds ids up to {int(ids.max())}, but the model '
                             f'has {self.num_codes} codes: it was made by another tokenizer.')
        self.bank_info = {k: v for k, v in bank.items() if k not in ('ids', 'image_index')}
        # one tensor, rows served by index: BaseDataset.get_data_info deep-copies its items, and
        # a deep copy of a row (a view) would copy the whole bank
        self.ids = ids
        return [dict(index=i) for i in range(len(ids))]

    def prepare_data(self, idx: int) -> dict:
        return dict(inputs=[self.ids[idx]], data_samples=DataSample())
