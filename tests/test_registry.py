"""`import addp_mm` registers its modules where configs look for them."""
import pytest
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

import addp_mm  # noqa: F401
from addp_mm.engine.optimizers import (ADDPLayerDecayOptimWrapperConstructor,
                                       SubmoduleOptimWrapperConstructor)
from addp_mm.models import (ADDP, MAGE, ADDPHead, ADDPTargetGenerator, ADDPTokenDecoder, ADDPViT,
                            MAGETokenPredictor, MAGEViT, VQGANTokenizer, VQGANTrainer)


def test_models_registered_in_mmpretrain():
    for cls in (ADDP, ADDPViT, ADDPTokenDecoder, ADDPHead, ADDPTargetGenerator, VQGANTokenizer,
                MAGETokenPredictor, MAGEViT, MAGE, VQGANTrainer):
        assert MODELS.get(cls.__name__) is cls, cls.__name__
        # also reachable with the scope prefix, as mmdet/mmseg configs refer to them
        assert MODELS.get(f'mmpretrain.{cls.__name__}') is cls


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmengine'])
def test_optimizer_constructors_resolve_from_the_root_registry(scope):
    """The engine's constructors live in mmengine's root registry; a config of mmpretrain's scope
    (the from-scratch VQGAN config names SubmoduleOptimWrapperConstructor) finds them there."""
    with DefaultScope.overwrite_default_scope(scope):
        for cls in (SubmoduleOptimWrapperConstructor, ADDPLayerDecayOptimWrapperConstructor):
            assert OPTIM_WRAPPER_CONSTRUCTORS.get(cls.__name__) is cls, cls.__name__


def test_local_checkpoint_loader_is_ours():
    loader = CheckpointLoader._get_checkpoint_loader('/some/local/file.pth')
    assert loader.__module__ == 'addp_mm.checkpoints.loading'
