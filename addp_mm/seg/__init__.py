"""mmseg side of addp_mm (UperNet segmentation with the ADDP encoder).

The segmentation configs import this module (``custom_imports=dict(imports=['addp_mm.seg'])``)
instead of the top-level package so that the import names the task; ``import addp_mm`` itself
never pulls in mmseg. Nothing new has to be registered in mmseg: the ADDP fine-tuning ViT *is*
mmpretrain's ``VisionTransformer`` (SPEC 5), whose ``featmap`` outputs feed mmseg's
``Feature2Pyramid`` and ``UPerHead`` directly, and its parameter names are those of the converted
``backbone.*`` file. What the configs need from addp_mm comes with the parent package: the
layer-decay optimizer constructor (``ADDPLayerDecayOptimWrapperConstructor``), the
``CheckPretrainedKeysHook`` that fails training when the pre-trained file misses a backbone tensor,
and the safe checkpoint loader.
"""
import addp_mm  # noqa: F401  (registers the engine parts; documents the dependency)

__all__: list = []
