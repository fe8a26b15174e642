"""Learning-rate schedules and weight averaging for the torch backend.

The schedulers and the range test are backend-independent (they only touch
``optimizer.param_groups``, so they also drive ``torch.optim`` optimizers) and live once
in :mod:`course_lib.core.schedules`, :mod:`course_lib.core.cyclic_schedules` and
:mod:`course_lib.core.lr_finder`; they are re-exported here. :class:`AveragedModel` and
:func:`update_bn` follow ``torch.optim.swa_utils``.
"""
from __future__ import annotations

import copy

import torch

from course_lib.core.lr_finder import lr_range_test, suggest_lr
from course_lib.core.cyclic_schedules import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from course_lib.core.schedules import (
    ChainedScheduler, ConstantLR, CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR,
    LRScheduler, MultiplicativeLR, MultiStepLR, PolynomialLR, ReduceLROnPlateau, SequentialLR,
    StepLR,
)

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR",
           "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau",
           "SequentialLR", "ChainedScheduler", "lr_range_test", "suggest_lr",
           "AveragedModel", "update_bn"]


class AveragedModel(torch.nn.Module):
    r"""A copy of a model whose parameters are the running average of the model's.

    Stochastic weight averaging (Izmailov et al. 2018, "Averaging weights leads to wider
    optima and better generalization", UAI): after each of the last epochs, call
    ``swa.update_parameters(model)``; after :math:`n` calls each parameter is the
    equal-weight mean :math:`\bar\theta_n = \frac1n \sum_k \theta_k`, updated as
    :math:`\bar\theta_{n} = \bar\theta_{n-1} + (\theta_n - \bar\theta_{n-1})/n`.
    Buffers (batch-norm statistics) are copied from the model, not averaged; recompute
    them for the averaged weights with :func:`update_bn`. Same state-dict layout as
    ``torch.optim.swa_utils.AveragedModel`` (``module.*`` and ``n_averaged``).

    Parameters
    ----------
    model : torch.nn.Module
        Deep-copied into ``self.module``.
    device : torch.device or str, optional
        Where the averaged copy lives (default: where the model is).
    """

    def __init__(self, model, device=None):
        super().__init__()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=device))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update_parameters(self, model):
        """Add ``model``'s current parameters to the average."""
        n = int(self.n_averaged)
        averaged, current = list(self.module.parameters()), list(model.parameters())
        if len(averaged) != len(current):
            raise ValueError(f"model has {len(current)} parameters, the averaged model "
                             f"{len(averaged)}")
        for p_avg, p in zip(averaged, current):
            p = p.detach().to(p_avg.device)
            if n == 0:
                p_avg.copy_(p)
            else:
                p_avg.add_((p - p_avg) / (n + 1))
        for b_avg, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_avg.copy_(b.detach().to(b_avg.device))
        self.n_averaged += 1


def _is_batch_norm(module):
    return (isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
            or (isinstance(getattr(module, "running_mean", None), torch.Tensor)
                and isinstance(getattr(module, "running_var", None), torch.Tensor)
                and hasattr(module, "momentum")))


@torch.no_grad()
def update_bn(loader, model, device=None):
    r"""Recompute the batch-norm running statistics of ``model`` with one pass over
    ``loader`` (after weight averaging, the stored statistics belong to other weights).

    The running mean and variance are reset and become the plain average over the
    batches: batch :math:`k` (from 1) is blended in with momentum :math:`1/k`, which is
    what torch's ``momentum=None`` does. Works with ``torch.nn`` batch norm and with any
    module that has ``running_mean``, ``running_var`` and ``momentum``.

    Parameters
    ----------
    loader : iterable
        Batches: tensors, or tuples/lists whose first entry is the input.
    model : torch.nn.Module
    device : torch.device or str, optional
        Where to move each batch first.
    """
    bns = [m for m in model.modules() if _is_batch_norm(m)]
    if not bns:
        return
    momenta = {}
    for m in bns:
        momenta[m] = m.momentum
        m.running_mean.zero_()
        m.running_var.fill_(1)
        if isinstance(getattr(m, "num_batches_tracked", None), torch.Tensor):
            m.num_batches_tracked.zero_()
    was_training = model.training
    model.train()
    for k, batch in enumerate(loader, start=1):
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        for m in bns:
            m.momentum = 1.0 / k
        model(batch)
    for m in bns:
        m.momentum = momenta[m]
    model.train(was_training)
