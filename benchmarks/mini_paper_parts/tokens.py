"""The token bank stage: crops of the train digits, tokenized once by the stage-1 tokenizer.

The predictor and ADDP stages train on it (``TokenBankDataset``); the pipeline, the data
preprocessor and the tokenizer are those of the configs, so the ids are exactly what the frozen
tokenizer would give for those crops at every step.
"""
import os
import os.path as osp
import time

from mmengine.config import Config
from mmpretrain.registry import DATASETS, MODELS

from addp_mm.datasets import build_token_bank
from addp_mm.utils.provenance import file_sha256, write_json_atomic
from .stages import log, read_done


def token_bank(image_config: str, tokenizer_config: str, tokenizer_ckpt: str, data_root: str,
               out_dir: str, crops_per_image: int, seed: int) -> dict:
    """Write ``out_dir/bank.pth`` unless it was made before with the same settings.

    Args:
        image_config (str): A config whose ``train_dataloader.dataset`` and ``data_preprocessor``
            read the train images (the image pre-training of stage 2, e.g. the MAGE 400-iteration
            config).
        tokenizer_config (str): A config with the tokenizer sizes as ``model.target_generator``
            (the same MAGE config).
        tokenizer_ckpt (str): The stage-1 checkpoint.
        data_root (str): The digits folder.
        out_dir (str): Folder of the bank.
        crops_per_image (int): Crops of each train image.
        seed (int): Seed of the crops.

    Returns:
        dict: ``bank_file``, ``seconds``, ``settings``.
    """
    settings = dict(crops_per_image=crops_per_image, seed=seed,
                    tokenizer_sha256=file_sha256(tokenizer_ckpt))
    rec = read_done('token bank', out_dir, settings)
    if rec is not None:
        return rec
    start = time.time()
    cfg = Config.fromfile(image_config)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=data_root,
                                  _scope_='mmpretrain'))
    preprocessor = MODELS.build(dict(cfg.data_preprocessor, _scope_='mmpretrain'))
    tok_cfg = Config.fromfile(tokenizer_config).model.target_generator
    tokenizer = MODELS.build(dict(tok_cfg, checkpoint=tokenizer_ckpt, _scope_='mmpretrain'))
    tokenizer.init_weights()  # loads the frozen checkpoint
    log(f'token bank: {crops_per_image} crops of each of {len(dataset)} train images -> '
        f'{out_dir}')
    os.makedirs(out_dir, exist_ok=True)
    bank_file = osp.join(out_dir, 'bank.pth')
    tmp = bank_file + '.tmp'
    build_token_bank(dataset, lambda batch: preprocessor(batch, True)['inputs'],
                     lambda images: tokenizer.encode(images)[1], tmp, crops_per_image, seed=seed,
                     info=settings)
    os.replace(tmp, bank_file)
    rec = dict(bank_file=bank_file, seconds=time.time() - start, settings=settings)
    write_json_atomic(osp.join(out_dir, 'done.json'), rec)
    return rec
