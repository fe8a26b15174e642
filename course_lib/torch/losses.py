r"""Loss functions and weight penalties in torch tensor math (autograd does backward).

The twins of :mod:`course_lib.numpy.losses`, same equations and arguments. The penalties
return differentiable tensors: ``l1_penalty(params)`` :math:`= \sum |w|`,
``l2_penalty(params)`` :math:`= \tfrac12 \sum w^2`, so that the gradient of
:math:`\lambda` ``l2_penalty`` is :math:`\lambda w`, what ``weight_decay=lambda`` adds.
"""
from __future__ import annotations

import torch
from torch import nn

from course_lib.core.validate import check_choice, check_number
from course_lib.torch.activations import log_softmax

__all__ = ["mse_loss", "l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "cross_entropy", "l1_penalty", "l2_penalty",
           "MSELoss", "L1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
           "CrossEntropyLoss"]

REDUCTIONS = ("mean", "sum", "none")


def _pair(input, target):
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    if target.shape != input.shape:
        raise ValueError(f"target must have the shape of input {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    return input, target.to(input.dtype)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input, target, reduction="mean"):
    r"""Mean squared error :math:`\ell_i = (x_i - y_i)^2`."""
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _pair(input, target)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    r"""Mean absolute error :math:`\ell_i = |x_i - y_i|`."""
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _pair(input, target)
    return _reduce(torch.abs(input - target), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    r"""Huber loss: :math:`\tfrac12 d^2` if :math:`|d| < \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)`, :math:`d = x - y`."""
    check_choice("reduction", reduction, REDUCTIONS)
    check_number("delta", delta, low=0.0, low_open=True)
    input, target = _pair(input, target)
    d = input - target
    ad = torch.abs(d)
    loss = torch.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
    return _reduce(loss, reduction)


def _clamped_log(x, log=torch.log, zero_at=0.0):
    """``max(log(x), -100)`` where ``x > zero_at`` (the argument of log is positive),
    ``-100`` elsewhere, with a finite gradient (0) at the pole."""
    ok = x > zero_at
    safe = torch.where(ok, x, torch.full_like(x, zero_at + 1))
    return torch.where(ok, torch.clamp(log(safe), min=-100), torch.full_like(x, -100.0))


def _log_sigmoid(x):
    """:math:`\\log\\sigma(x) = \\min(x, 0) - \\log(1 + e^{-|x|})`, stable, with the right
    derivative (1/2) at 0."""
    nonneg = x >= 0
    neg_abs = torch.where(nonneg, -x, x)
    return torch.where(nonneg, torch.zeros_like(x), x) - torch.log1p(torch.exp(neg_abs))


def binary_cross_entropy(input, target, reduction="mean"):
    r"""Binary cross-entropy of probabilities,
    :math:`-(y\log x + (1 - y)\log(1 - x))`, each log clamped at :math:`-100` (torch)."""
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _pair(input, target)
    if bool(((input < 0) | (input > 1)).any()):
        raise ValueError("input must hold probabilities in [0, 1] for binary_cross_entropy")
    log_p = _clamped_log(input)
    log_1mp = _clamped_log(-input, torch.log1p, -1.0)  # log(1 - x), accurate for small x
    return _reduce(-(target * log_p + (1 - target) * log_1mp), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):
    r"""Binary cross-entropy of logits, stable for any :math:`x`:
    :math:`(1 - y)x - (1 + (p - 1)y)\log\sigma(x)`, ``p`` = ``pos_weight`` (1 if ``None``),
    with :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`."""
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _pair(input, target)
    log_sig = _log_sigmoid(input)
    if pos_weight is None:
        weight = 1.0
    else:
        if not isinstance(pos_weight, torch.Tensor):
            pos_weight = torch.as_tensor(pos_weight, dtype=input.dtype, device=input.device)
        try:
            torch.broadcast_shapes(pos_weight.shape, input.shape)
        except RuntimeError:
            raise ValueError(f"pos_weight of shape {tuple(pos_weight.shape)} must broadcast "
                             f"to input of shape {tuple(input.shape)}") from None
        weight = 1 + (pos_weight - 1) * target
    return _reduce((1 - target) * input - weight * log_sig, reduction)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    r"""Cross-entropy of logits ``(N, C)`` and class indices ``(N,)``:
    :math:`-(1 - \varepsilon)\log\mathrm{softmax}(x_n)_{y_n}
    - \tfrac{\varepsilon}{C}\sum_c\log\mathrm{softmax}(x_n)_c`, averaged over ``N`` for
    ``"mean"``; :math:`\varepsilon` = ``label_smoothing``."""
    check_choice("reduction", reduction, REDUCTIONS)
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if input.dim() != 2:
        raise ValueError(f"input must have shape (N, C) (logits), got {tuple(input.shape)}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    N, C = input.shape
    if tuple(target.shape) != (N,):
        raise ValueError(f"target must have shape ({N},), got {tuple(target.shape)}")
    if target.numel() and bool((target < 0).any() or (target >= C).any()):
        raise ValueError(f"target must hold class indices in [0, {C})")
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    logp = log_softmax(input, dim=1)
    loss = -(1 - label_smoothing) * logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    if label_smoothing > 0:
        loss = loss - label_smoothing / C * logp.sum(dim=1)
    return _reduce(loss, reduction)


def _tensors(params):
    if isinstance(params, torch.Tensor):
        params = [params]
    tensors = list(params)
    if not tensors:
        raise ValueError("params must hold at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"params[{i}] must be a torch.Tensor, got {type(t).__name__}")
    return tensors


def l1_penalty(params):
    r""":math:`\sum_w |w|` over all entries of ``params`` (differentiable)."""
    return sum(t.abs().sum() for t in _tensors(params))


def l2_penalty(params):
    r""":math:`\tfrac12\sum_w w^2` over all entries of ``params`` (differentiable); the
    gradient of :math:`\lambda` ``l2_penalty`` is :math:`\lambda w` = torch's
    ``weight_decay=lambda`` term."""
    return sum(0.5 * (t * t).sum() for t in _tensors(params))


class _Loss(nn.Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """:func:`mse_loss` as a module."""

    def forward(self, input, target):
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """:func:`l1_loss` as a module."""

    def forward(self, input, target):
        return l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """:func:`huber_loss` as a module."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = check_number("delta", delta, low=0.0, low_open=True)

    def forward(self, input, target):
        return huber_loss(input, target, self.reduction, self.delta)


class BCELoss(_Loss):
    """:func:`binary_cross_entropy` as a module."""

    def forward(self, input, target):
        return binary_cross_entropy(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """:func:`binary_cross_entropy_with_logits` as a module."""

    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.reduction,
                                                self.pos_weight)


class CrossEntropyLoss(_Loss):
    """:func:`cross_entropy` as a module."""

    def __init__(self, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.label_smoothing = check_number("label_smoothing", label_smoothing,
                                            low=0.0, high=1.0)

    def forward(self, input, target):
        return cross_entropy(input, target, self.reduction, self.label_smoothing)
