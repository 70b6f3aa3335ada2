"""Reading weights from the official and addp_mm checkpoint layouts into modules, strictly.

Key renaming here is data only (names of tensors), so the bottom layer ``addp_mm.checkpoints``
needs no model code to convert a file.
"""
import re
from typing import Callable, Dict, Iterable, Optional

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from ..utils.errors import CheckpointMismatchError, ConfigError
from .loading import LegacyObject, load_checkpoint_file

StateDict = Dict[str, torch.Tensor]

# official (timm) block parameter names -> ours (= mmpretrain VisionTransformer's, and those of
# addp_mm.models.utils.transformer.TransformerBlock)
_TIMM_BLOCK_RENAMES = (
    ('.norm1.', '.ln1.'),
    ('.norm2.', '.ln2.'),
    ('.mlp.fc1.', '.ffn.layers.0.0.'),
    ('.mlp.fc2.', '.ffn.layers.1.'),
)


def timm_to_mmpretrain_block_key(key: str, src_prefix: str = 'blocks.',
                                 dst_prefix: str = 'layers.') -> Optional[str]:
    """Rename one block parameter from the official layout to ours.

    Args:
        key (str): e.g. ``'blocks.3.mlp.fc1.weight'``.
        src_prefix (str): Prefix of the block list in the official file.
        dst_prefix (str): Prefix of the block list in ours.

    Returns:
        str | None: e.g. ``'layers.3.ffn.layers.0.0.weight'``, or None if ``key`` is not a block
        key.
    """
    m = re.match(rf'^{re.escape(src_prefix)}(\d+)(\..*)$', key)
    if m is None:
        return None
    rest = m.group(2)
    for old, new in _TIMM_BLOCK_RENAMES:
        if rest.startswith(old):
            rest = new + rest[len(old):]
            break
    return f'{dst_prefix}{m.group(1)}{rest}'


def extract_state_dict(ckpt: object, filename: str = '<checkpoint>') -> StateDict:
    """Return the tensor dict of a checkpoint in any of the known layouts.

    Accepts ``{'state_dict': ...}`` (mmengine, taming/Lightning VQGAN), ``{'model': ...}`` (official
    ADDP and MAGE releases, MAE-family ``save_model`` files with ``'args'``, ``'optimizer'``, ...
    beside it), raw state dicts and ``.safetensors`` contents (see
    :func:`~addp_mm.checkpoints.loading.load_checkpoint_file`).
    """
    if isinstance(ckpt, dict):
        for key in ('state_dict', 'model'):
            if key in ckpt and isinstance(ckpt[key], LegacyObject):
                raise ConfigError(
                    f"{filename}: '{key}' is a whole pickled {ckpt[key].legacy_class} object, "
                    'not a state dict; addp_mm does not rebuild objects from files (that would '
                    'run code from it). Load it in its own code base and save '
                    '`{"state_dict": model.state_dict()}`.')
            if key in ckpt and isinstance(ckpt[key], dict):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ConfigError(f'{filename} is not a checkpoint of tensors (expected a state dict, '
                          "{'state_dict': ...} or {'model': ...}).")
    return ckpt


def rename_official_blocks(sd: StateDict, block_prefixes: Iterable[str]) -> StateDict:
    """Map official (timm) block names ``norm1/mlp.fc1/...`` to ours under the given list prefixes.

    Args:
        sd (dict): State dict.
        block_prefixes (Iterable[str]): e.g. ``('blocks.', 'decoder_blocks.')``; the list prefix
            itself is kept.
    """
    out = {}
    for k, v in sd.items():
        for p in block_prefixes:
            new = timm_to_mmpretrain_block_key(k, p, p)
            if new is not None:
                k = new
                break
        out[k] = v
    return out


def load_strict(module: nn.Module, sd: StateDict, name: str, source: str) -> None:
    """Load ``sd`` into ``module``: every module key must be present with the right shape.

    Keys of ``sd`` that the module does not have are ignored (official files carry unused tensors).

    Raises:
        CheckpointMismatchError: listing missing keys, when the file is not a checkpoint of this
            module (a ``KeyError``).
        ConfigError: listing shape mismatches, when the config's sizes differ from the file's (a
            ``ValueError``).
    """
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise CheckpointMismatchError(
            f'{source} does not hold the weights of the {name}: {len(missing)} of {len(own)} '
            f'tensors are missing (first: {missing[:5]}). Check that the file is the right '
            'checkpoint for this field of the config.')
    wrong = [f'{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}' for k, v in own.items()
             if sd[k].shape != v.shape]
    if wrong:
        raise ConfigError(f'{source} does not match the {name} sizes in the config '
                          f'({len(wrong)} tensors differ, first: {wrong[:3]}). Set the sizes of '
                          'the config (embed_dims, depth, ch, ...) to those of the checkpoint.')
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(sd[k])


def load_frozen_weights(module: nn.Module,
                        filename: str,
                        prefixes: Iterable[str],
                        name: str,
                        convert: Optional[Callable[[StateDict], StateDict]] = None) -> None:
    """Load a frozen sub-module's weights from a file that may hold it under one of ``prefixes``.

    The first prefix under which every tensor of the module is found wins, so a MAGE release file
    (no prefix), an ADDP release file (``token_predictor.``) and an addp_mm checkpoint
    (``target_generator.predictor.``) all work for the same module.

    Args:
        module (nn.Module): The module to fill.
        filename (str): Local checkpoint path.
        prefixes (Iterable[str]): Candidate key prefixes, most specific first.
        name (str): Human-readable module name for messages.
        convert (callable, optional): Renames keys (after the prefix is stripped).
    """
    sd = extract_state_dict(load_checkpoint_file(filename), filename)
    own = set(module.state_dict())
    prefixes = sorted(prefixes, key=len, reverse=True)
    best = None
    for prefix in prefixes:
        sub = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if convert is not None:
            sub = convert(sub)
        found = len(own & set(sub))
        if best is None or found > best[1]:
            best = (prefix, found, sub)
        if found == len(own):
            break
    prefix, _, sub = best
    load_strict(module, sub, name, f'{filename!r} (prefix {prefix!r})')
    MMLogger.get_current_instance().info(
        f'loaded the {name} from {filename} (prefix {prefix!r}, {len(own)} tensors; '
        f'{len(sub) - len(own)} unused tensors under that prefix ignored)')
