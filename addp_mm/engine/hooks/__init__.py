"""Hooks (registered in mmengine's root registry)."""
from .check_load_from_hook import CheckLoadFromHook
from .check_pretrained_init_hook import CheckPretrainedInitHook
from .check_pretrained_keys_hook import CheckPretrainedKeysHook
from .check_resume_hook import CheckResumeHook
from .fault_tolerance_hook import FaultToleranceHook, TrainingInterrupted
from ..weight_checks import check_pretrained_keys

__all__ = ['CheckLoadFromHook', 'CheckPretrainedInitHook', 'CheckPretrainedKeysHook',
           'CheckResumeHook', 'check_pretrained_keys', 'FaultToleranceHook',
           'TrainingInterrupted']
