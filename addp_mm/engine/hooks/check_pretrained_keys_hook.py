"""Fail fast when a run does not load what its model needs.

mmengine's ``PretrainedInit`` and ``load_from`` load with ``strict=False`` and only log missing
keys (mmengine's ``load_state_dict`` warns and goes on), so a wrong checkpoint, prefix or an
unconverted official file silently trains from random weights; and auto-resume continues whatever
run is in the work directory, even one made with other data. :class:`CheckPretrainedKeysHook`
stops such runs before the first iteration:

* :func:`check_pretrained_keys` re-reads each ``Pretrained`` source the way ``PretrainedInit``
  does and compares its keys with the module's;
* :func:`check_load_from_keys` checks that a ``load_from`` checkpoint holds every trainable
  backbone weight (every trainable weight for a model without a backbone), naming the layout the
  file looks like (:func:`describe_layout`) and the converter command that fixes it;
* :func:`addp_mm.engine.resume.resume_differences` compares the data and model settings stored in
  the checkpoint a run resumes from with the current ones.

``tools/train.py`` and ``tools/test.py`` add the hook to every config that lacks it
(``require_pretrained=False``).
"""
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModule, is_model_wrapper
from mmengine.registry import HOOKS

from ...checkpoints.loading import load_checkpoint_file
from ..resume import check_resume_settings

CONVERTER = 'tools/model_converters/convert_addp.py'
CONVERT_HINT = ('For ADDP weights make the file with tools/model_converters/convert_addp.py SRC '
                'DST --backbone-only (add --keep-norms for a backbone with pre_norm/final_norm, '
                'e.g. the linear probe), and check that the config arch (embed_dims, num_layers) '
                'matches it.')


def mmengine_state_dict(checkpoint) -> dict:
    """The dict mmengine's ``load_checkpoint`` / ``PretrainedInit`` load weights from.

    mmengine takes ``checkpoint['state_dict']`` if present, else the whole object: an official
    ``{'model': ...}`` release file then loads nothing at all.
    """
    if not isinstance(checkpoint, dict):
        return {}
    sd = checkpoint.get('state_dict', checkpoint)
    return sd if isinstance(sd, dict) else {}


def describe_layout(checkpoint) -> Tuple[str, str]:
    """Guess which release / code base a checkpoint comes from.

    Args:
        checkpoint: The loaded file.

    Returns:
        tuple: (layout name, what to do with such a file).
    """
    inner = checkpoint
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                inner = checkpoint[key]
                break
    keys = set(inner) if isinstance(inner, dict) else set()

    def has(prefix):
        return any(k.startswith(prefix) for k in keys)

    if 'tokenizer_norm.weight' in keys and 'decoder_pos_mask_embed' in keys:
        return ('the official ADDP release (addp-vit-*-16.pth, keys blocks.*, tokenizer_norm.*)',
                f'convert it first: `python {CONVERTER} SRC.pth DST.pth --backbone-only` for a '
                'classification/detection/segmentation backbone (init_cfg Pretrained with '
                f"prefix='backbone.'), or `python {CONVERTER} SRC.pth DST.pth` for an ADDP "
                'pre-training model; then give DST.pth.')
    if has('encoder.conv_in.') or has('quantize.embedding') or has('vqgan.encoder.') \
            or has('target_generator.encoder.'):
        return ('a VQGAN tokenizer (taming / MAGE release or addp_mm VQGANTrainer)',
                'it holds no ViT weights: give it to a config as the frozen tokenizer, '
                'model.target_generator.vqgan.checkpoint (ADDP) or '
                'model.target_generator.checkpoint (MAGE).')
    if 'token_emb.weight' in keys and has('decoder_blocks.') and has('blocks.'):
        return ('a MAGE token predictor release (mage-vit*.pth)',
                'it is not an ADDP backbone: give it to an ADDP pre-training config as '
                'model.target_generator.predictor.checkpoint.')
    if has('backbone.') and (has('neck.') or has('target_generator.')):
        return ('an addp_mm pre-training checkpoint (backbone.*, neck.*, head.*, '
                'target_generator.*)',
                f'for a downstream backbone use init_cfg=dict(type=\'Pretrained\', checkpoint=..., '
                f"prefix='backbone.'), or `python {CONVERTER} SRC.pth DST.pth --backbone-only`; "
                'check that the config arch (embed_dims, num_layers, patch size) matches it.')
    if has('backbone.'):
        return ('an addp_mm / mmpretrain backbone checkpoint (backbone.*)',
                "load it with init_cfg=dict(type='Pretrained', checkpoint=..., "
                "prefix='backbone.') and check that the config arch matches it.")
    if has('blocks.') or has('patch_embed.proj.'):
        return ('a timm / MAE-style ViT (blocks.*, patch_embed.proj.*)',
                f'its key names are not mmpretrain\'s; for ADDP files use `python {CONVERTER} '
                'SRC.pth DST.pth --backbone-only`.')
    return ('an unknown layout', CONVERT_HINT)


def trainable_backbone_keys(model: nn.Module) -> List[str]:
    """Names of the trainable parameters ``load_from`` must fill: those of ``model.backbone``
    when there is one, else every trainable parameter."""
    if is_model_wrapper(model):
        model = model.module
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if isinstance(getattr(model, 'backbone', None), nn.Module):
        names = [n for n in names if n.startswith('backbone.')]
    return names


def check_load_from_keys(model: nn.Module, checkpoint, filename: str,
                         allowed_missing: Sequence[str] = ()) -> List[str]:
    """Raise if loading ``checkpoint`` as ``load_from`` leaves trainable backbone weights unloaded.

    Keys are read as mmengine's ``Runner.load_checkpoint`` reads them (``state_dict`` or the whole
    object, a leading ``module.`` removed).

    Args:
        model (nn.Module): The model (wrappers are unwrapped).
        checkpoint: The loaded checkpoint object.
        filename (str): Its path, for the message.
        allowed_missing (Sequence[str]): Regexes (``re.fullmatch``) of names that may be absent.

    Returns:
        list[str]: The checked parameter names.

    Raises:
        RuntimeError: Naming the file, how many weights it lacks, the layout it looks like and
            the command that converts it.
    """
    sd = mmengine_state_dict(checkpoint)
    keys = {re.sub(r'^module\.', '', k) for k in sd}
    wanted = trainable_backbone_keys(model)
    patterns = [re.compile(p) for p in allowed_missing]
    missing = [k for k in wanted if k not in keys and not any(p.fullmatch(k) for p in patterns)]
    if missing:
        layout, fix = describe_layout(checkpoint)
        raise RuntimeError(
            f'load_from={filename!r} does not hold {len(missing)} of the {len(wanted)} trainable '
            f'backbone weights of this model (first: {missing[:5]}), so they would train from '
            f'random initialisation. The file looks like {layout}: {fix}')
    MMLogger.get_current_instance().info(
        f'load_from {filename}: all {len(wanted)} trainable backbone weights are in the file')
    return wanted


def _pretrained_cfgs(module: nn.Module) -> List[dict]:
    init_cfg = getattr(module, 'init_cfg', None)
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return [c for c in cfgs if isinstance(c, dict) and c.get('type') == 'Pretrained']


def pretrained_sources(model: nn.Module) -> Dict[str, dict]:
    """Submodules of ``model`` whose ``init_cfg`` loads a ``Pretrained`` checkpoint.

    Args:
        model (nn.Module): Any model (wrappers are unwrapped).

    Returns:
        dict[str, dict]: ``{module name ('' for the model itself): Pretrained init_cfg}``.
    """
    if is_model_wrapper(model):
        model = model.module
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, BaseModule):
            for cfg in _pretrained_cfgs(module):
                found[name] = cfg
    return found


def check_pretrained_keys(model: nn.Module,
                          allowed_missing: Sequence[str] = (),
                          allow_unexpected: bool = True) -> Dict[str, dict]:
    """Check that every ``Pretrained`` init_cfg of ``model`` covers all of its module's weights.

    Keys are read as ``PretrainedInit`` reads them: the ``state_dict`` (or ``model``) of the file,
    restricted to ``prefix`` and stripped of it when a prefix is set, else stripped of a leading
    ``module.``. Shapes are not compared, because backbones legitimately resize ``pos_embed`` or
    relative-position tables at load time.

    Args:
        model (nn.Module): The model, after or before ``init_weights``.
        allowed_missing (Sequence[str]): Regular expressions (``re.fullmatch``) of full parameter
            names (e.g. ``r'backbone\\.ln2\\..*'``) that may be absent from the checkpoint because
            they are new layers of the downstream model.
        allow_unexpected (bool): Only log (True) or also fail on (False) checkpoint keys the module
            does not have.

    Returns:
        dict[str, dict]: Per module name: ``checkpoint``, ``missing`` and ``unexpected`` key lists
        (full names) and ``allowed_missing`` (missing keys matched by ``allowed_missing``).

    Raises:
        FileNotFoundError: If a Pretrained checkpoint path does not exist.
        RuntimeError: If a module misses weights that ``allowed_missing`` does not cover (or has
            unexpected keys with ``allow_unexpected=False``).
    """
    if is_model_wrapper(model):
        model = model.module
    patterns = [re.compile(p) for p in allowed_missing]
    modules = dict(model.named_modules())
    reports: Dict[str, dict] = {}
    problems: List[str] = []
    for name, cfg in pretrained_sources(model).items():
        path = cfg.get('checkpoint')
        if not path or not osp.isfile(path):
            raise FileNotFoundError(
                f'the Pretrained checkpoint {path!r} of {name or "the model"} does not exist. Set '
                f'model.{name + "." if name else ""}init_cfg.checkpoint to a local file. '
                + CONVERT_HINT)
        loaded = load_checkpoint_file(path)
        sd = mmengine_state_dict(loaded)
        prefix = cfg.get('prefix')
        if prefix:
            prefix = prefix if prefix.endswith('.') else prefix + '.'
            keys = {k[len(prefix):] for k in sd if k.startswith(prefix)}
        else:
            keys = {re.sub(r'^module\.', '', k) for k in sd}
        own = set(modules[name].state_dict())
        full = (lambda k: f'{name}.{k}') if name else (lambda k: k)
        missing = sorted(full(k) for k in own - keys)
        allowed = [k for k in missing if any(p.fullmatch(k) for p in patterns)]
        missing = [k for k in missing if k not in allowed]
        unexpected = sorted(full(k) for k in keys - own)
        reports[name] = dict(checkpoint=path, missing=missing, unexpected=unexpected,
                             allowed_missing=allowed)
        where = f'{name or "model"} <- {path}' + (f" (prefix '{prefix}')" if prefix else '')
        if missing:
            layout, fix = describe_layout(loaded)
            problems.append(f'{where}: {len(missing)} of {len(own)} weights are not in the '
                            f'checkpoint (first: {missing[:6]}). The file looks like {layout}: '
                            f'{fix}')
        if unexpected and not allow_unexpected:
            problems.append(f'{where}: {len(unexpected)} checkpoint keys are not in the model '
                            f'(first: {unexpected[:6]})')
    logger = MMLogger.get_current_instance()
    for name, r in reports.items():
        logger.info(f'pretrained weights of {name or "model"} from {r["checkpoint"]}: '
                    f'{len(r["missing"])} missing, {len(r["allowed_missing"])} new layers '
                    f'{r["allowed_missing"]}, {len(r["unexpected"])} unused checkpoint keys'
                    + (f' {r["unexpected"][:6]}' if r['unexpected'] else ''))
    if problems:
        raise RuntimeError('pretrained weights do not match the model, so training would start '
                           'from random weights for them:\n  ' + '\n  '.join(problems) + '\n'
                           + CONVERT_HINT)
    return reports


@HOOKS.register_module()
class CheckPretrainedKeysHook(Hook):
    """Stop a run, before its first iteration, that would not start from the weights it names.

    * ``Pretrained`` init_cfgs must cover all weights of their module (``before_train``);
    * a ``load_from`` checkpoint must hold every trainable backbone weight (the model's own
      ``load_state_dict`` is trusted for models with ``checks_loaded_keys = True``);
    * a resumed checkpoint must come from a run with the same data and model settings
      (:func:`~addp_mm.engine.resume.resume_differences`); ``train_cfg`` (e.g. a larger
      ``max_iters`` to extend the run), the optimizer and hooks may change;
    * an auto-resume with no checkpoint in the work directory starts fresh without mmengine's
      "Auto resumed from the latest checkpoint None".

    Registered in mmengine's root ``HOOKS`` registry, so it resolves under any default scope.

    Example::

        custom_hooks = [dict(type='CheckPretrainedKeysHook',
                             allowed_missing=[r'backbone\\.ln2\\..*'])]

    Args:
        allowed_missing (Sequence[str]): Regexes of full parameter names that are new in the
            downstream model (e.g. the fc_norm ``backbone.ln2`` of ``out_type='avg_featmap'``).
        allow_unexpected (bool): Tolerate checkpoint keys the module lacks. Defaults to True.
        require_pretrained (bool): Also fail when no module has a ``Pretrained`` init_cfg.
            Defaults to True.
        check_load_from (bool): Check ``load_from`` checkpoints. Defaults to True.
        check_resume (bool): Check the settings of a resumed checkpoint. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 allowed_missing: Iterable[str] = (),
                 allow_unexpected: bool = True,
                 require_pretrained: bool = True,
                 check_load_from: bool = True,
                 check_resume: bool = True) -> None:
        self.allowed_missing = tuple(allowed_missing)
        self.allow_unexpected = allow_unexpected
        self.require_pretrained = require_pretrained
        self.check_load_from = check_load_from
        self.check_resume = check_resume
        self.reports: Optional[Dict[str, dict]] = None

    def before_run(self, runner) -> None:
        """Auto-resume without any checkpoint in the work directory: a fresh start, said once."""
        if not (getattr(runner, '_resume', False) and runner._load_from is None):
            return
        if not osp.isfile(osp.join(runner.work_dir, 'last_checkpoint')):
            runner._resume = False
            runner.logger.info(f'no checkpoint to resume from in {runner.work_dir}: training '
                               'starts from scratch.')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Runs for ``load_from`` and resume, before the weights are put into the model."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(runner, '_resume', False):
            if self.check_resume:
                check_resume_settings(runner.cfg, checkpoint, runner._load_from, runner.work_dir)
        elif self.check_load_from and not getattr(model, 'checks_loaded_keys', False):
            check_load_from_keys(model, checkpoint, runner._load_from, self.allowed_missing)

    def before_train(self, runner) -> None:
        """Runs after the Runner initialised the weights and before the first iteration."""
        if self.require_pretrained and not pretrained_sources(runner.model):
            raise RuntimeError(
                'CheckPretrainedKeysHook: no module of the model has '
                "init_cfg=dict(type='Pretrained', checkpoint=...); set the backbone's init_cfg, or "
                'remove this hook (or set require_pretrained=False) to train from scratch.')
        self.reports = check_pretrained_keys(runner.model, self.allowed_missing,
                                             self.allow_unexpected)
