"""Which release or code base a checkpoint file comes from, and what to do with it.

The one place that knows the key layouts of the files a user may hand to addp_mm. Every message
that names a file's layout (the ``load_from`` / ``Pretrained`` / resume checks, the converter)
asks :func:`guess_layout`, so they cannot disagree:

=======================  ========================================================================
kind                     keys (after ``state_dict`` / ``model`` is taken out)
=======================  ========================================================================
``addp-official``        ``tokenizer_norm.*``, ``decoder_pos_mask_embed``, ``blocks.*`` (timm
                         names): ``addp-vit-*-16.pth``
``mage-official``        ``token_emb.word_embeddings.*``, ``blocks.*``, ``decoder_blocks.*``,
                         ``vqgan.*``: ``mage-vit*.pth``
``mage``                 ``backbone.token_emb.word_embeddings.*``, ``backbone.blocks.*``,
                         ``target_generator.encoder.*``: an addp_mm ``MAGE`` Runner checkpoint
                         (e.g. ``work_dirs/demo/predictor/iter_300.pth``)
``addp_mm``              ``backbone.*``, ``neck.*``, ``head.*``, ``target_generator.*``: an addp_mm
                         ``ADDP`` Runner checkpoint or the converter's ``--to addp_mm`` output
``vqgan``                ``encoder.conv_in.*``, ``quantize.embedding.*`` at the top level or under
                         ``vqgan.``: taming / MaskGIT (``vqgan_jax_strongaug.ckpt``), a
                         Lightning ``last.ckpt``, an addp_mm ``VQGANTrainer`` Runner checkpoint
``backbone``             ``backbone.*`` only: the converter's ``--to mmpretrain`` output, an
                         mmpretrain classifier
``mmseg-mae``            ``layers.N.gamma_1``, ``patch_embed.projection.*`` without a prefix: the
                         converter's ``--to mmseg-mae`` output
``mae-pretrain``         ``blocks.*``, ``decoder_blocks.*``, ``decoder_pred.*`` (timm names, no
                         token embedding): an MAE pre-training checkpoint
``timm-vit``             ``blocks.*``, ``patch_embed.proj.*``: a timm / MAE ViT encoder, the
                         converter's ``--to timm`` / ``--to vitdet`` output
``unknown``              anything else
=======================  ========================================================================
"""
from typing import Any, Mapping, NamedTuple, Set, Tuple

CONVERTER = 'tools/model_converters/convert_addp.py'
CONVERT_HINT = (f'For ADDP weights make the file with {CONVERTER} SRC DST --backbone-only (add '
                '--keep-norms for a backbone with pre_norm/final_norm, e.g. the linear probe), '
                'and check that the config arch (embed_dims, num_layers) matches it.')
# Where a frozen part's weights go, in the configs of addp_mm.
PREDICTOR_FIELD = 'model.target_generator.predictor.checkpoint'
TOKENIZER_FIELDS = ('model.target_generator.vqgan.checkpoint (ADDP) or '
                    'model.target_generator.checkpoint (MAGE)')
# What to do with a MAGE file (a release or an addp_mm stage checkpoint) given for a backbone.
_PREDICTOR_ADVICE = ('it is the frozen token predictor of ADDP, not a ViT backbone, and needs no '
                     f'conversion: give it to an ADDP pre-training config as {PREDICTOR_FIELD}.')
# Prefixes under which a VQGAN's own keys (encoder.conv_in.weight, ...) sit in the files above.
_VQGAN_PREFIXES = ('', 'vqgan.', 'target_generator.', 'target_generator.vqgan.')


class Layout(NamedTuple):
    """What :func:`guess_layout` found.

    Attributes:
        kind (str): Short name, one of the kinds in the table of this module.
        name (str): What the file is, for messages (``'a MAGE token predictor ...'``).
        advice (str): What to do with such a file, one sentence that names the field or command.
    """
    kind: str
    name: str
    advice: str


def inner_state_dict(checkpoint: Any) -> Mapping:
    """The tensor dict of a loaded file: its ``state_dict`` or ``model`` entry, or the file itself
    (an empty dict for anything else)."""
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), Mapping):
                return checkpoint[key]
        return checkpoint
    return {}


def mmengine_state_dict(checkpoint: Any) -> Mapping:
    """The dict mmengine's ``load_checkpoint`` / ``PretrainedInit`` load weights from.

    mmengine takes ``checkpoint['state_dict']`` if present, else the whole object: an official
    ``{'model': ...}`` release file then loads nothing at all.
    """
    if not isinstance(checkpoint, Mapping):
        return {}
    sd = checkpoint.get('state_dict', checkpoint)
    return sd if isinstance(sd, Mapping) else {}


def is_official_addp(sd: Mapping) -> bool:
    """Whether a state dict is in the official ADDP release layout (``addp-vit-*-16.pth``)."""
    return 'tokenizer_norm.weight' in sd and 'decoder_pos_mask_embed' in sd


def _has(keys: Set[str], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def _has_vqgan(keys: Set[str]) -> bool:
    return any(f'{p}encoder.conv_in.weight' in keys and f'{p}quantize.embedding.weight' in keys
               for p in _VQGAN_PREFIXES)


def guess_layout(checkpoint: Any) -> Layout:
    """Guess which release / code base a checkpoint comes from (see the table of this module).

    Args:
        checkpoint: The loaded file (``{'state_dict': ...}``, ``{'model': ...}`` or a state dict).

    Returns:
        Layout: kind, description and advice.
    """
    keys = {str(k) for k in inner_state_dict(checkpoint)}
    if is_official_addp(keys):
        return Layout(
            'addp-official',
            'the official ADDP release (addp-vit-*-16.pth, keys blocks.*, tokenizer_norm.*)',
            f'convert it first: `python {CONVERTER} SRC.pth DST.pth --backbone-only` for a '
            'classification/detection/segmentation backbone (init_cfg Pretrained with '
            f"prefix='backbone.'), or `python {CONVERTER} SRC.pth DST.pth` for an ADDP "
            'pre-training model; then give DST.pth.')
    if 'token_emb.word_embeddings.weight' in keys and _has(keys, 'blocks.'):
        return Layout(
            'mage-official',
            'a MAGE token predictor release (mage-vit*.pth, keys token_emb.*, blocks.*, '
            'decoder_blocks.*, vqgan.*)',
            _PREDICTOR_ADVICE)
    if 'backbone.token_emb.word_embeddings.weight' in keys:
        return Layout(
            'mage',
            'an addp_mm MAGE checkpoint (a token predictor: backbone.token_emb.*, '
            'backbone.blocks.*; its frozen tokenizer under target_generator.*)',
            _PREDICTOR_ADVICE)
    if _has(keys, 'backbone.') and (_has(keys, 'neck.') or _has(keys, 'target_generator.')):
        return Layout(
            'addp_mm',
            'an addp_mm pre-training checkpoint (backbone.*, neck.*, head.*, target_generator.*)',
            "for a downstream backbone use init_cfg=dict(type='Pretrained', checkpoint=..., "
            f"prefix='backbone.'), or `python {CONVERTER} SRC.pth DST.pth --backbone-only`; "
            'check that the config arch (embed_dims, num_layers, patch size) matches it.')
    if _has_vqgan(keys) and not _has(keys, 'backbone.') and not _has(keys, 'blocks.'):
        return Layout(
            'vqgan',
            'a VQGAN tokenizer (taming / MaskGIT release, a Lightning last.ckpt or an addp_mm '
            'VQGANTrainer checkpoint; keys encoder.*, decoder.*, quantize.*)',
            f'it holds no ViT weights and needs no conversion: give it to a config as the frozen '
            f'tokenizer, {TOKENIZER_FIELDS}.')
    if _has(keys, 'backbone.'):
        return Layout(
            'backbone',
            'an addp_mm / mmpretrain backbone checkpoint (backbone.*)',
            "load it with init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.') "
            'and check that the config arch matches it.')
    if 'patch_embed.projection.weight' in keys and _has(keys, 'layers.'):
        return Layout(
            'mmseg-mae',
            "a backbone converted for mmseg's MAE/BEiT (layers.*, no prefix)",
            "give it to mmseg's MAE as model.pretrained; for another consumer convert the ADDP "
            f'file again with `python {CONVERTER} SRC.pth DST.pth --to ...`.')
    timm = _has(keys, 'blocks.') and 'patch_embed.proj.weight' in keys
    if timm and _has(keys, 'decoder_blocks.') and _has(keys, 'decoder_pred.'):
        return Layout(
            'mae-pretrain',
            'an MAE pre-training checkpoint (timm names: blocks.*, decoder_blocks.*, '
            'decoder_pred.*)',
            "it is not an ADDP file: mmdet's ViTDet ViT reads its encoder (timm names) as it is; "
            "mmpretrain's VisionTransformer needs mmpretrain names (layers.N.ln1, ...), which "
            f'{CONVERTER} makes from ADDP files only.')
    if timm:
        return Layout(
            'timm-vit',
            'a timm / MAE-style ViT (blocks.*, patch_embed.proj.*)',
            "its key names are timm's: mmdet's ViTDet ViT reads them as they are; mmpretrain's "
            'VisionTransformer needs mmpretrain names (layers.N.ln1, ...): for ADDP files use '
            f'`python {CONVERTER} SRC.pth DST.pth --backbone-only`.')
    return Layout('unknown', 'an unknown layout', CONVERT_HINT)


def describe_layout(checkpoint: Any) -> Tuple[str, str]:
    """``(what the file is, what to do with it)`` for messages; see :func:`guess_layout`."""
    layout = guess_layout(checkpoint)
    return layout.name, layout.advice
