"""Datasets of addp_mm (registered in mmpretrain's DATASETS)."""
from .token_bank import TokenBankDataset, build_token_bank

__all__ = ['TokenBankDataset', 'build_token_bank']
