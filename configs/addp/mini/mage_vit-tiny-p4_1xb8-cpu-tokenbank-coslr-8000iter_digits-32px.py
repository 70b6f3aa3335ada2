# Mini paper, stage 2 (issue #20): the tiny MAGE token predictor (width 128, 4 + 2 blocks, 64 codes,
# width-aware embedding init) trained long enough to be worth distilling: batch 8 for 8,000
# steps (the cap of its head loosens with optimizer steps, not images: docs/method.md §3.9), on a
# token bank of the train digits (addp_mm.datasets.TokenBankDataset: a fixed set of random crops,
# tokenized once by the frozen stage-1 tokenizer; the step is the same as on the crops).
# Batch, steps and lr were chosen on a split of the train digits
# (benchmarks/mini_paper/README.md, "The token predictor"). benchmarks/mini_paper.py writes the
# bank and sets `bank_file` and the tokenizer checkpoint.
_base_ = ['./mage_vit-tiny-p4_1xb32-cpu-coslr-400iter_digits-32px.py']

max_iters = 8000
bank_file = 'work_dirs/mini_paper/tokens/bank.pth'
# the ids enter the model as they are (no image normalisation)
data_preprocessor = dict(_delete_=True, type='BaseDataPreprocessor')
train_dataloader = dict(
    batch_size=8,
    dataset=dict(_delete_=True, type='TokenBankDataset', bank_file=bank_file, num_codes=64))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=800),
    dict(type='CosineAnnealingLR', T_max=max_iters - 800, eta_min=0., by_epoch=False, begin=800,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=500), checkpoint=dict(interval=max_iters // 4))
