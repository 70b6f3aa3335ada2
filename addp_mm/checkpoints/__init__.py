"""Checkpoint files: loading them safely, telling their layouts apart, converting and checking them.

Modules, bottom first:

* :mod:`~addp_mm.checkpoints.loading`: :func:`load_checkpoint_file`, the unpickler that never runs
  code from a file (any release layout, Runner checkpoints, Lightning, safetensors);
* :mod:`~addp_mm.checkpoints.weights`: the tensor dict of a loaded file, official (timm) block
  names to ours, strict loading of frozen modules;
* :mod:`~addp_mm.checkpoints.layouts`: which release or code base a file comes from
  (:func:`guess_layout`) and what to do with it;
* :mod:`~addp_mm.checkpoints.convert`: the official ADDP release to addp_mm, and addp_mm to the
  targets of ``tools/model_converters/convert_addp.py``;
* :mod:`~addp_mm.checkpoints.model_check`: ``convert_addp.py --check``: build a config's model with
  a file and report every tensor that would not come from it.

A layer of its own beside ``addp_mm.utils``: it imports no model code (models import it).
"""
from .layouts import Layout, describe_layout, guess_layout, is_official_addp
from .loading import LegacyObject, legacy_objects, load_checkpoint_file
from .weights import StateDict, extract_state_dict, load_frozen_weights, load_strict

__all__ = ['Layout', 'LegacyObject', 'StateDict', 'describe_layout', 'extract_state_dict',
           'guess_layout', 'is_official_addp', 'legacy_objects', 'load_checkpoint_file',
           'load_frozen_weights', 'load_strict']
