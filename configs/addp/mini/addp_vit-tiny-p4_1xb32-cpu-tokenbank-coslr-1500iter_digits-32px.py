# Mini paper, stage 3 (issue #20): ADDP pre-training of the tiny ViT (width 128, 4 blocks, 4x4
# patches; 2-block token decoder; width-aware embedding init) with the stage-1 tokenizer and the
# stage-2 token predictor frozen, on the token bank of the train digits that stage 2 read
# (ADDP reads images only through their token ids: x_t is rendered from tokens and the
# predictor's probabilities). Same ViT, batch and iterations as the MAE baseline
# (mae_vit-tiny-p4_1xb32-cpu-coslr-1500iter_digits-32px.py): both see 48,000 crops.
# benchmarks/mini_paper.py sets the bank and both frozen checkpoints.
_base_ = ['./addp_vit-tiny-p4_1xb32-cpu-coslr-600iter_digits-32px.py']

max_iters = 1500
bank_file = 'work_dirs/mini_paper/tokens/bank.pth'
data_preprocessor = dict(_delete_=True, type='BaseDataPreprocessor')
train_dataloader = dict(
    dataset=dict(_delete_=True, type='TokenBankDataset', bank_file=bank_file, num_codes=64))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=125),
    dict(type='CosineAnnealingLR', T_max=max_iters - 125, eta_min=0., by_epoch=False, begin=125,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=max_iters))
