"""Hooks (registered in mmengine's root registry)."""
from .check_pretrained_keys_hook import CheckPretrainedKeysHook, check_pretrained_keys
from .fault_tolerance_hook import FaultToleranceHook, TrainingInterrupted

__all__ = ['CheckPretrainedKeysHook', 'check_pretrained_keys', 'FaultToleranceHook',
           'TrainingInterrupted']
