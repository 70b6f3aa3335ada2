"""Tiny model, dataset, metric and hook for the tests (imported by configs via ``custom_imports``).

Registered in mmengine's root registries, so configs of any default scope find them (a scope's
registry falls back to its parents, and mmengine's root is everyone's parent).
"""
import os.path as osp

import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from torch import nn
from torch.utils.data import Dataset


@MODELS.register_module(force=True)
class ToyLinearModel(BaseModel):
    """``y = Wx + b`` with an MSE loss."""

    def __init__(self, in_dim=4, out_dim=2, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        # default_collate stacks; mmengine's pseudo_collate gives lists.
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        out = self.linear(inputs)
        if mode == 'tensor':
            return out
        if isinstance(data_samples, (list, tuple)):
            data_samples = torch.stack(list(data_samples))
        if mode == 'loss':
            return dict(loss=((out - data_samples)**2).mean())
        if mode == 'predict':
            return [dict(pred=o, target=t) for o, t in zip(out, data_samples)]
        raise ValueError(f'unknown mode {mode!r}')


@DATASETS.register_module(force=True)
class ToyRegressionDataset(Dataset):
    """``num`` random (x, y) pairs, fixed by ``seed``."""

    def __init__(self, num=16, in_dim=4, out_dim=2, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num, in_dim, generator=g)
        self.y = torch.randn(num, out_dim, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.y[i])


@METRICS.register_module(force=True)
class ToyMSEMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float(((sample['pred'] - sample['target'])**2).mean()))

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


@HOOKS.register_module(force=True)
class ToyDoneHook(Hook):
    """Writes ``<work_dir>/done_rank<R>_iter<I>_world<W>`` after the run, on every rank."""

    def after_run(self, runner):
        name = f'done_rank{runner.rank}_iter{runner.iter}_world{runner.world_size}'
        with open(osp.join(runner.work_dir, name), 'w') as f:
            f.write('ok\n')
