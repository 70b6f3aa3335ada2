"""Checkpoint files in the layouts real releases use, built from a fixture's tensors.

* ``raw``: the state dict itself;
* ``state_dict`` / ``model``: ``{'state_dict': sd}`` (mmengine, taming) / ``{'model': sd}`` (ADDP,
  MAGE releases);
* ``mae_save_model``: what MAE-family ``misc.save_model`` writes (MAE, MAGE, ADDP's own training):
  ``{'model', 'optimizer', 'epoch', 'scaler', 'args': argparse.Namespace}``;
* ``lightning``: a PyTorch-Lightning checkpoint (the taming/MAGE VQGAN): ``state_dict``,
  ``hyper_parameters`` (an omegaconf ``DictConfig``), ``callbacks`` keyed by callback class,
  optimizer/scheduler states, a pickled callback object;
* ``safetensors``.

The foreign classes (``DictConfig``, Lightning's ``ModelCheckpoint``) are stand-ins with the real
module and class names and the same pickled structure (``__getstate__`` dicts, nested metadata
objects, ``typing.Any`` values), so the files look to an unpickler as the real ones do without
omegaconf or Lightning installed. They are only importable while a file is written.
"""
import argparse
import contextlib
import pathlib
import sys
import types
import typing
from typing import Dict

import torch

LAYOUTS = ('raw', 'state_dict', 'model', 'mae_save_model', 'lightning', 'safetensors')


class _ContainerMetadata:
    """Like omegaconf.base.ContainerMetadata (a dataclass)."""

    def __init__(self):
        self.ref_type = typing.Any
        self.object_type = dict
        self.optional = True
        self.key = None
        self.flags = {}
        self.flags_root = False
        self.resolver_cache = {}
        self.key_type = typing.Any
        self.element_type = typing.Any


class _AnyNode:
    """Like omegaconf.nodes.AnyNode."""

    def __init__(self, value, parent=None):
        self._val = value
        self._parent = parent
        self._metadata = _ContainerMetadata()


class _DictConfig:
    """Like omegaconf.DictConfig: pickled through ``__getstate__`` (a dict of nodes and
    metadata)."""

    def __init__(self, content: dict):
        self.__dict__['_metadata'] = _ContainerMetadata()
        self.__dict__['_parent'] = None
        self.__dict__['_content'] = {
            k: (_DictConfig(v) if isinstance(v, dict) else _AnyNode(v)) for k, v in content.items()}

    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)


class _ModelCheckpoint:
    """Like pytorch_lightning.callbacks.ModelCheckpoint."""

    def __init__(self):
        self.monitor = 'val/rec_loss'
        self.save_top_k = 3
        self.best_model_score = torch.tensor(0.25)
        self.dirpath = pathlib.PurePosixPath('/logs/2021-01-01/checkpoints')


_FAKE = {  # stand-in -> (module, name) of the real class
    _ContainerMetadata: ('omegaconf.base', 'ContainerMetadata'),
    _AnyNode: ('omegaconf.nodes', 'AnyNode'),
    _DictConfig: ('omegaconf.dictconfig', 'DictConfig'),
    _ModelCheckpoint: ('pytorch_lightning.callbacks.model_checkpoint', 'ModelCheckpoint'),
}


@contextlib.contextmanager
def _foreign_classes():
    """Give the stand-ins their real names while pickling (modules only exist in this block)."""
    added = []
    saved = {cls: (cls.__module__, cls.__qualname__) for cls in _FAKE}
    try:
        for cls, (mod, name) in _FAKE.items():
            parts = mod.split('.')
            for i in range(1, len(parts) + 1):  # pickle imports the module and its parents
                sub = '.'.join(parts[:i])
                if sub not in sys.modules:
                    sys.modules[sub] = types.ModuleType(sub)
                    added.append(sub)
            setattr(sys.modules[mod], name, cls)
            cls.__module__, cls.__qualname__ = mod, name
        yield
    finally:
        for cls, (mod, name) in saved.items():
            cls.__module__, cls.__qualname__ = mod, name
        for mod in added:
            del sys.modules[mod]


def _optimizer_state(sd: Dict[str, torch.Tensor]) -> dict:
    first = next(iter(sd.values()))
    return dict(state={0: dict(step=torch.tensor(10.), exp_avg=torch.zeros_like(first),
                               exp_avg_sq=torch.zeros_like(first))},
                param_groups=[dict(lr=1.5e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.05,
                                   amsgrad=False, params=[0], lr_scale=1.0)])


def mae_args() -> argparse.Namespace:
    return argparse.Namespace(model='addp_vit_base_patch16', batch_size=64, epochs=1600,
                              blr=1.5e-4, output_dir=pathlib.PosixPath('./output_dir'),
                              vqgan_ckpt_path='vqgan_jax_strongaug.ckpt', mask_ratio_min=0.5,
                              dist_url='env://', resume='', seed=0)


def save_layout(sd: Dict[str, torch.Tensor], layout: str, path) -> str:
    """Write ``sd`` to ``path`` in ``layout`` (one of :data:`LAYOUTS`); returns the path."""
    path = str(path)
    if layout == 'safetensors':
        from safetensors.torch import save_file
        save_file({k: v.contiguous().clone() for k, v in sd.items()}, path)
        return path
    if layout == 'raw':
        obj = dict(sd)
    elif layout in ('state_dict', 'model'):
        obj = {layout: dict(sd)}
    elif layout == 'mae_save_model':
        obj = dict(model=dict(sd), optimizer=_optimizer_state(sd), epoch=1599,
                   scaler=dict(scale=65536.0, growth_factor=2.0, backoff_factor=0.5,
                               growth_interval=2000, _growth_tracker=12),
                   args=mae_args())
    elif layout == 'lightning':
        hparams = _DictConfig(dict(embed_dim=256, n_embed=1024,
                                   ddconfig=dict(ch=128, ch_mult=[1, 1, 2, 2, 4]),
                                   lossconfig=dict(target='taming.modules.losses.VQLPIPS')))
        obj = {
            'epoch': 3, 'global_step': 12000, 'pytorch-lightning_version': '1.0.8',
            'state_dict': dict(sd),
            'callbacks': {_ModelCheckpoint: dict(best_model_score=torch.tensor(0.25),
                                                 best_model_path='/logs/last.ckpt')},
            'checkpoint_callback_best_model_path': '/logs/last.ckpt',
            'callback_object': _ModelCheckpoint(),
            'optimizer_states': [_optimizer_state(sd)], 'lr_schedulers': [],
            'hparams_name': 'kwargs', 'hyper_parameters': hparams,
        }
    else:
        raise ValueError(layout)
    with _foreign_classes():
        torch.save(obj, path)
    return path


#: class names each layout's file holds besides tensors and containers
FOREIGN_CLASSES = {
    'mae_save_model': {'argparse.Namespace'},
    'lightning': {'omegaconf.dictconfig.DictConfig',
                  'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint'},
}
