"""Recognition: linear probe, 10-shot linear probe and fine-tuning of one initialisation.

One recipe per protocol for every row (configs/addp/mini/cls_*), through mmpretrain's Runner and
``Accuracy`` on the test split. The rows differ only in the backbone's weights: ADDP's and MAE's
encoders as mmpretrain ``VisionTransformer`` weights, random init, and MAGE (the paper's MAGE row:
image -> frozen tokenizer -> frozen MAGE encoder -> mean feature, ``MAGETokenEncoder``; linear
probes only, its encoder reads tokens and is not fine-tuned as a ViT).
"""
import os
import os.path as osp
from typing import Dict, Optional

from .stages import run
from .weights import backbone_file

PROTOCOLS = ('linear_probe', 'linear_probe_10shot', 'finetune')
LINEAR_PROTOCOLS = PROTOCOLS[:2]


def protocol_options(kind: str, protocol: str, data_root: str, work_dir: str,
                     pretrain: Optional[dict]) -> dict:
    """``--cfg-options`` of one (row, protocol) run.

    Args:
        kind (str): ``addp``, ``mae``, ``random`` or ``mage``.
        protocol (str): One of :data:`PROTOCOLS`.
        data_root (str): The digits folder.
        work_dir (str): Folder of the converted weights.
        pretrain (dict, optional): ``checkpoint`` (ADDP, MAE); for MAGE ``tokenizer`` and
            ``predictor`` configs with their checkpoints.
    """
    linear = protocol in LINEAR_PROTOCOLS
    options = {'train_dataloader.dataset.data_root': data_root,
               'test_dataloader.dataset.data_root': data_root}
    if kind == 'random':  # nothing to load, so no CheckPretrainedKeysHook
        options['custom_hooks'] = [dict(type='FaultToleranceHook')]
    elif kind == 'mage':
        if not linear:
            raise ValueError('the MAGE row has linear probes only.')
        options['model.backbone'] = dict(_delete_=True, type='MAGETokenEncoder',
                                         tokenizer=pretrain['tokenizer'],
                                         predictor=pretrain['predictor'])
        # the tokenizer reads images in [0, 1]
        options['data_preprocessor.mean'] = [0., 0., 0.]
        options['data_preprocessor.std'] = [255., 255., 255.]
        options['custom_hooks'] = [dict(type='FaultToleranceHook')]
    else:
        os.makedirs(work_dir, exist_ok=True)
        dst = osp.join(work_dir, f'{kind}_backbone{"_norms" if linear else ""}.pth')
        if not osp.isfile(dst):
            backbone_file(kind, pretrain['checkpoint'], dst, keep_norms=linear)
        options['model.backbone.init_cfg'] = dict(_delete_=True, type='Pretrained',
                                                  checkpoint=dst, prefix='backbone.')
        if kind == 'addp' and linear:
            # ADDP's encoder has the tokenizer norm (pre_norm) after the patch embedding
            options['model.backbone.pre_norm'] = True
    return options


def recognition(kind: str, pretrain: Optional[dict], data_root: str, work_dir: str, seed: int,
                configs: Dict[str, str], iters: Optional[dict] = None,
                protocols=PROTOCOLS) -> Dict[str, float]:
    """Top-1 (%) of one row under each protocol.

    Args:
        configs (dict): protocol -> config path.
        iters (dict, optional): protocol -> iterations (None: the configs').
    """
    out = {}
    for protocol in protocols:
        options = protocol_options(kind, protocol, data_root, osp.join(work_dir, 'weights'),
                                   pretrain)
        rec = run(f'{protocol}-{kind}', configs[protocol], osp.join(work_dir, f'{protocol}_{kind}'),
                  seed, options, None if iters is None else iters.get(protocol), test=True)
        out[protocol] = rec['metrics']['accuracy/top1']  # mmpretrain reports percent
    return out
