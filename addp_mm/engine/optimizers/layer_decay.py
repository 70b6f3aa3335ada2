"""Layer-wise learning-rate decay for ViT backbones, in any OpenMMLab framework.

One constructor for classification (mmpretrain ``ImageClassifier``), detection (mmdet
``TwoStageDetector`` e.g. ``MaskRCNN``) and segmentation (mmseg ``EncoderDecoder``). The framework
constructors each cover only part of that: mmpretrain's needs ``model.get_layer_depth`` (detectors
and segmentors lack it), mmdet core's is ConvNeXt-only, ViTDet's expects ``.blocks.`` names and
mmseg's checks the backbone class name for 'BEiT'/'MAE'.

It is registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``. The registries of mmpretrain,
mmdet and mmseg are children of it, and an unprefixed lookup falls back from the current scope to
its parents, so ``constructor='ADDPLayerDecayOptimWrapperConstructor'`` resolves under
``default_scope`` mmpretrain, mmdet, mmseg and mmengine alike without importing any of them here.
"""
import inspect
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

# Parameters that get no weight decay besides 1-D tensors (biases, norms): the ViT embeddings that
# MAE/ADDP list in ``no_weight_decay()`` (timm: pos_embed, cls_token) plus the MIM mask token.
DEFAULT_NO_DECAY_NAMES = ('pos_embed', 'cls_token', 'mask_token')
# Backbone parameters of the stem (layer id 0), as in BEiT/MAE/ADDP ``get_layer_id_for_vit``.
_STEM_NAMES = ('cls_token', 'pos_embed', 'mask_token', 'absolute_pos_embed')
_STEM_PREFIXES = ('patch_embed.', )
# Transformer block lists: mmpretrain/mmseg naming first, timm/ViTDet naming second.
_BLOCK_LISTS = ('layers', 'blocks')
_KNOWN_KEYS = ('layer_decay_rate', 'num_layers', 'no_decay_names')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ADDPLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay (BEiT/MAE/ADDP fine-tuning) for a ViT backbone inside any model.

    With ``L`` transformer blocks, every parameter gets a layer id in ``0 .. L + 1``:

    * ``0``: the stem, i.e. ``backbone.patch_embed.*``, ``backbone.cls_token``,
      ``backbone.pos_embed`` (and ``mask_token`` / ``absolute_pos_embed`` if the backbone has them);
    * ``i + 1``: ``backbone.layers.i.*`` (or ``backbone.blocks.i.*``);
    * ``L + 1``: every other parameter: the backbone's own norms after the blocks (e.g. ``ln2``, the
      fc_norm of ``out_type='avg_featmap'``), necks and heads.

    and the learning rate ``lr = base_lr * layer_decay_rate ** (L + 1 - layer_id)``, so necks and
    heads train with ``base_lr`` and the patch embedding with ``base_lr * rate ** (L + 1)``. This
    is the official ADDP/MAE ``param_groups_lrd`` (``num_layers = L + 1``, scale
    ``rate ** (num_layers - layer_id)``) and mmpretrain's
    ``LearningRateDecayOptimWrapperConstructor`` (``max_id = L + 2``, scale
    ``rate ** (max_id - layer_id - 1)``).

    The layer id of a backbone parameter comes from ``model.backbone.get_layer_depth(name,
    'backbone.')`` when the backbone has it (mmpretrain ``VisionTransformer``, ``ViTSAM``, and
    addp_mm's ``ADDPViT`` and ``ADDPViTDet``, which inherit ``VisionTransformer``'s), and only
    otherwise is read from the parameter name as above (a fallback for backbones without it:
    mmseg ``MAE``/``BEiT``, window-attention ViTs with ``layers.N`` naming). A model without a
    ``backbone`` attribute is treated as the backbone itself.

    No weight decay for 1-D parameters (biases, norm weights), for ``*.bias`` and for the parameters
    named in ``no_decay_names``. Parameters with ``requires_grad=False`` are left out of the
    optimizer. Parameters are grouped by (layer id, decay or not); each group also carries
    ``lr_scale``, ``layer_id`` and ``param_names``.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float, required): decay per block, in (0, 1] (ADDP: 0.65 for ViT-B, 0.8
      for ViT-L).
    - ``num_layers`` (int, optional): ``L``. Inferred from the backbone; if given it must agree.
    - ``no_decay_names`` (Sequence[str], optional): parameter names without weight decay. An entry
      matches the full name or its last dotted parts (``'pos_embed'`` matches
      ``backbone.pos_embed``). Defaults to ``('pos_embed', 'cls_token', 'mask_token')``.

    Example::

        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=4e-3, betas=(0.9, 0.999), weight_decay=0.05),
            constructor='ADDPLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.65))

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config (``type``, ``optimizer``, ...).
        paramwise_cfg (dict): The keys above.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        cfg = self.paramwise_cfg
        unknown = sorted(set(cfg) - set(_KNOWN_KEYS))
        if unknown:
            hint = (" (mmseg/ViTDet's 'decay_rate' is called 'layer_decay_rate' here)"
                    if 'decay_rate' in unknown else '')
            raise ValueError(f'ADDPLayerDecayOptimWrapperConstructor got unknown paramwise_cfg '
                             f'keys {unknown}{hint}; it accepts {list(_KNOWN_KEYS)}.')
        if 'layer_decay_rate' not in cfg:
            raise ValueError('ADDPLayerDecayOptimWrapperConstructor needs '
                             'paramwise_cfg.layer_decay_rate (e.g. 0.65 for ViT-B, 0.8 for ViT-L).')
        if self.base_lr is None:
            raise ValueError('ADDPLayerDecayOptimWrapperConstructor needs optimizer.lr (the lr of '
                             'the top layer: heads, necks).')
        self.layer_decay_rate = float(cfg['layer_decay_rate'])
        if not 0 < self.layer_decay_rate <= 1:
            raise ValueError(f'paramwise_cfg.layer_decay_rate must be in (0, 1], got '
                             f'{self.layer_decay_rate}.')
        self.num_layers = cfg.get('num_layers')
        if self.num_layers is not None and (not isinstance(self.num_layers, int)
                                            or self.num_layers < 1):
            raise ValueError(f'paramwise_cfg.num_layers must be a positive int (the number of '
                             f'transformer blocks), got {self.num_layers!r}.')
        no_decay = cfg.get('no_decay_names', DEFAULT_NO_DECAY_NAMES)
        if isinstance(no_decay, str):
            no_decay = (no_decay, )
        self.no_decay_names = tuple(no_decay)

    # ------------------------------------------------------------------ layer ids
    @staticmethod
    def _split_backbone(model: nn.Module) -> Tuple[nn.Module, str]:
        """The ViT whose layers decay and the prefix of its parameter names in ``model``."""
        backbone = getattr(model, 'backbone', None)
        if isinstance(backbone, nn.Module):
            return backbone, 'backbone.'
        return model, ''

    @staticmethod
    def _block_index(name: str) -> Optional[int]:
        """``i`` for ``layers.i.*`` / ``blocks.i.*`` (name relative to the backbone), else None."""
        parts = name.split('.')
        if len(parts) > 2 and parts[0] in _BLOCK_LISTS and parts[1].isdigit():
            return int(parts[1])
        return None

    def _infer_num_layers(self, backbone: nn.Module) -> int:
        """Number of transformer blocks of a backbone without ``get_layer_depth``."""
        found = {self._block_index(n) for n, _ in backbone.named_parameters()} - {None}
        counted = max(found) + 1 if found else None
        attr = getattr(backbone, 'num_layers', None)
        inferred = attr if isinstance(attr, int) else counted
        if inferred is None:
            raise ValueError(
                f'cannot find the transformer blocks of {type(backbone).__name__}: expected '
                "parameters named 'layers.N.*' or 'blocks.N.*' or a 'get_layer_depth' method. Set "
                'paramwise_cfg.num_layers, or use a ViT backbone.')
        return inferred

    def _stem_or_block_id(self, name: str) -> Optional[int]:
        """Layer id of a backbone parameter by name (0 or block + 1), None for the rest."""
        if name in _STEM_NAMES or name.startswith(_STEM_PREFIXES):
            return 0
        index = self._block_index(name)
        return None if index is None else index + 1

    def layer_ids(self, model: nn.Module) -> Tuple[Dict[str, int], int]:
        """Layer id of every trainable parameter of ``model``.

        Args:
            model (nn.Module): The whole model (classifier, detector, segmentor) or a bare backbone.

        Returns:
            tuple[dict[str, int], int]: ``{param_name: layer_id}`` with ids in ``0 .. L + 1``, and
            ``L``, the number of transformer blocks.
        """
        backbone, prefix = self._split_backbone(model)
        get_depth = getattr(backbone, 'get_layer_depth', None)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        ids: Dict[str, int] = {}
        if callable(get_depth):
            depths = {n: get_depth(n, prefix) for n in names if n.startswith(prefix)}
            if depths:
                num_layers = next(iter(depths.values()))[1] - 2
            else:
                num_layers = self._infer_num_layers(backbone)
            for n, (layer_id, _) in depths.items():
                ids[n] = layer_id
        else:
            num_layers = self._infer_num_layers(backbone)
            for n in names:
                if n.startswith(prefix):
                    layer_id = self._stem_or_block_id(n[len(prefix):])
                    ids[n] = num_layers + 1 if layer_id is None else layer_id
        if self.num_layers is not None and self.num_layers != num_layers:
            raise ValueError(
                f'paramwise_cfg.num_layers={self.num_layers} but the backbone '
                f'{type(backbone).__name__} has {num_layers} transformer blocks; remove num_layers '
                'from paramwise_cfg (it is inferred) or set it to the backbone depth.')
        for n in names:
            # necks, heads and anything outside the backbone: the top layer, lr x 1
            ids.setdefault(n, num_layers + 1)
        bad = {n: i for n, i in ids.items() if not 0 <= i <= num_layers + 1}
        if bad:
            raise ValueError(f'layer ids outside 0..{num_layers + 1} for {list(bad.items())[:3]}; '
                             f'{type(backbone).__name__}.get_layer_depth disagrees with its depth.')
        return ids, num_layers

    # ------------------------------------------------------------------ groups
    def _no_decay(self, name: str, param: nn.Parameter) -> bool:
        if param.ndim <= 1 or name.endswith('.bias'):
            return True
        return any(name == n or name.endswith('.' + n) for n in self.no_decay_names)

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        """Append the layer-decayed parameter groups of ``module`` to ``params``.

        Args:
            params (list[dict]): Param groups, extended in place. Each new group has ``params``,
                ``param_names``, ``lr``, ``lr_scale``, ``layer_id`` and (if the optimizer has a
                weight decay) ``weight_decay``.
            module (nn.Module): The model.
        """
        ids, num_layers = self.layer_ids(module)
        groups: Dict[Tuple[int, bool], dict] = OrderedDict()
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id = ids[name]
            no_decay = self._no_decay(name, param)
            key = (layer_id, no_decay)
            if key not in groups:
                scale = self.layer_decay_rate**(num_layers + 1 - layer_id)
                group = dict(params=[], param_names=[], lr=self.base_lr * scale, lr_scale=scale,
                             layer_id=layer_id)
                if self.base_wd is not None:
                    group['weight_decay'] = 0. if no_decay else self.base_wd
                groups[key] = group
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        if not groups:
            raise ValueError(f'{type(module).__name__} has no trainable parameters to optimize.')
        ordered = [groups[k] for k in sorted(groups)]
        params.extend(ordered)

        logger = MMLogger.get_current_instance()
        lines = [f'layer-wise lr decay: rate {self.layer_decay_rate}, {num_layers} blocks, '
                 f'{len(ordered)} param groups']
        for g in ordered:
            wd = g.get('weight_decay')
            lines.append(f'  layer {g["layer_id"]:>2}: lr {g["lr"]:.3e} (x{g["lr_scale"]:.4g}), '
                         f'weight_decay {wd if wd is None else f"{wd:g}"}, '
                         f'{len(g["params"])} params (first {g["param_names"][0]})')
        logger.info('\n'.join(lines))

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer wrapper with layer-decayed parameter groups.

        Unlike the default constructor this always builds groups (so frozen parameters stay out of
        the optimizer even without other paramwise options).

        Args:
            model (nn.Module): The model, possibly wrapped (``model.module`` is used).

        Returns:
            OptimWrapper: The wrapper built from ``optim_wrapper_cfg``.
        """
        if hasattr(model, 'module'):
            model = model.module
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cls)
        if optimizer_cls is None:
            raise ValueError(f'optimizer type {self.optimizer_cfg["type"]!r} is not registered.')
        params: List[dict] = []
        self.add_params(params, model)
        # e.g. colossalai's HybridAdam names its first argument ``model_params``
        first_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        optimizer_cfg[first_arg] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg, default_args=dict(optimizer=optimizer))

