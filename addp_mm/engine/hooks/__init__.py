"""Hooks (registered in mmengine's root registry)."""
from .check_pretrained_keys_hook import CheckPretrainedKeysHook, check_pretrained_keys

__all__ = ['CheckPretrainedKeysHook', 'check_pretrained_keys']
