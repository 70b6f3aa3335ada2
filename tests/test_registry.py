"""`import addp_mm` registers its mmpretrain-side modules where configs look for them."""
import addp_mm  # noqa: F401
from mmpretrain.registry import MODELS

from addp_mm.models import (ADDP, ADDPHead, ADDPTargetGenerator, ADDPTokenDecoder, ADDPViT,
                            MAGETokenPredictor, VQGANTokenizer)


def test_models_registered_in_mmpretrain():
    for cls in (ADDP, ADDPViT, ADDPTokenDecoder, ADDPHead, ADDPTargetGenerator, VQGANTokenizer,
                MAGETokenPredictor):
        assert MODELS.get(cls.__name__) is cls, cls.__name__
        # also reachable with the scope prefix, as mmdet/mmseg configs refer to them
        assert MODELS.get(f'mmpretrain.{cls.__name__}') is cls


def test_local_checkpoint_loader_is_ours():
    from mmengine.runner.checkpoint import CheckpointLoader
    loader = CheckpointLoader._get_checkpoint_loader('/some/local/file.pth')
    assert loader.__module__ == 'addp_mm.utils.checkpoint'
