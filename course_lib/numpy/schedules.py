"""Learning-rate schedules and weight averaging for the NumPy backend.

The schedulers and the range test are backend-independent (they only touch
``optimizer.param_groups``) and live once in :mod:`course_lib.core.schedules`,
:mod:`course_lib.core.cyclic_schedules` and :mod:`course_lib.core.lr_finder`; they are
re-exported here. :class:`AveragedModel` (stochastic weight averaging) and
:func:`update_bn` are the NumPy twins of ``torch.optim.swa_utils``'s.
"""
from __future__ import annotations

import copy

import numpy as np

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


class AveragedModel:
    r"""A copy of a model whose parameters are the running average of the model's.

    Stochastic weight averaging (Izmailov et al. 2018, "Averaging weights leads to wider
    optima and better generalization", UAI): after each of the last epochs, call
    ``swa.update_parameters(model)``; after :math:`n` calls each parameter of
    ``swa.module`` is the equal-weight mean :math:`\bar\theta_n = \frac1n \sum_k
    \theta_k`, updated as :math:`\bar\theta_{n} = \bar\theta_{n-1} +
    (\theta_n - \bar\theta_{n-1})/n`. Use ``swa(x)`` for predictions (with batch norm,
    first recompute its statistics under the averaged weights).

    Parameters
    ----------
    model : Module
        A ``course_lib.numpy`` module (anything with ``parameters()`` returning
        Parameters); it is deep-copied.

    Attributes
    ----------
    module : Module
        The averaged copy.
    n_averaged : int
        How many snapshots the average holds.

    Notes
    -----
    As torch's default (``use_buffers=False``), entries of ``model.state_dict()`` that are
    not parameters (batch-norm running statistics) are copied, not averaged, when the
    model has ``named_parameters()`` and ``state_dict()``.
    """

    def __init__(self, model):
        if not callable(getattr(model, "parameters", None)):
            raise TypeError(f"model must have parameters(), got {type(model).__name__}")
        self.module = copy.deepcopy(model)
        self.n_averaged = 0

    def forward(self, x):
        return self.module(x)

    __call__ = forward

    def parameters(self):
        return self.module.parameters()

    def update_parameters(self, model):
        """Add ``model``'s current parameters to the average."""
        averaged, current = list(self.module.parameters()), list(model.parameters())
        if len(averaged) != len(current):
            raise ValueError(f"model has {len(current)} parameters, the averaged model "
                             f"{len(averaged)}")
        for p_avg, p in zip(averaged, current):
            if p_avg.data.shape != p.data.shape:
                raise ValueError(f"model's parameter shapes {p.data.shape} and "
                                 f"{p_avg.data.shape} differ")
            if self.n_averaged == 0:
                p_avg.data[...] = p.data
            else:
                p_avg.data += (p.data - p_avg.data) / (self.n_averaged + 1)
        self._copy_buffers(model)
        self.n_averaged += 1

    def _copy_buffers(self, model):
        if not all(callable(getattr(m, name, None)) for m in (model, self.module)
                   for name in ("named_parameters", "state_dict", "load_state_dict")):
            return
        source = model.state_dict()
        names = {name for name, _ in model.named_parameters()}
        if not names <= set(source):  # state_dict keys unlike parameter names: do nothing
            return
        buffers = {k: copy.deepcopy(v) for k, v in source.items() if k not in names}
        if buffers:
            target = self.module.state_dict()
            target.update(buffers)
            self.module.load_state_dict(target)


def _is_batch_norm(module):
    return (isinstance(getattr(module, "running_mean", None), np.ndarray)
            and isinstance(getattr(module, "running_var", None), np.ndarray)
            and hasattr(module, "momentum"))


def update_bn(loader, model):
    r"""Recompute the batch-norm running statistics of ``model`` with one pass over
    ``loader`` (after weight averaging, the stored statistics belong to other weights).

    The running mean and variance are reset and become the plain average over the
    batches: batch :math:`k` (from 1) is blended in with momentum :math:`1/k`, as torch's
    ``update_bn`` does with ``momentum=None``. The model's mode and the momenta are
    restored afterwards.

    Parameters
    ----------
    loader : iterable
        Batches: arrays ``(N, features)``, or tuples/lists whose first entry is the input.
    model : Module
        A ``course_lib.numpy`` module; its ``BatchNorm1d`` layers (any sub-module with
        ``running_mean``, ``running_var`` and ``momentum``) are updated.
    """
    bns = [m for m in model.modules() if _is_batch_norm(m)]
    if not bns:
        return
    momenta = {id(m): m.momentum for m in bns}
    for m in bns:
        m.running_mean[...] = 0
        m.running_var[...] = 1
        if isinstance(getattr(m, "num_batches_tracked", None), np.ndarray):
            m.num_batches_tracked[...] = 0
    was_training = model.training
    model.train()
    for k, batch in enumerate(loader, start=1):
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        for m in bns:
            m.momentum = 1.0 / k
        model(batch)
    for m in bns:
        m.momentum = momenta[id(m)]
    model.train(was_training)
