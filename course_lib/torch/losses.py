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
           "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "l1_penalty",
           "l2_penalty", "MSELoss", "L1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
           "CrossEntropyLoss", "NLLLoss"]

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


def _log_sigmoid(x):
    """:math:`\\log\\sigma(x) = \\min(x, 0) - \\log(1 + e^{-|x|})`, stable, with the right
    derivative (1/2) at 0."""
    nonneg = x >= 0
    neg_abs = torch.where(nonneg, -x, x)
    return torch.where(nonneg, torch.zeros_like(x), x) - torch.log1p(torch.exp(neg_abs))


# aten's EPSILON, the float32 constant 1e-12f, floors x(1 - x) in the BCE gradient
BCE_EPSILON = 9.999999960041972e-13


class _BinaryCrossEntropy(torch.autograd.Function):
    r"""Binary cross-entropy with torch's own backward.

    aten does not differentiate its forward formula: the clamps of the logs at -100 get
    no zero gradient; the gradient is :math:`(x - y)/\max(x(1 - x), 10^{-12})` everywhere
    (and :math:`-\mathrm{logit}(x)` for the target). Autograd of the clamped formula
    would give 0 at :math:`x \in \{0, 1\}`, so this one function spells out its backward,
    in aten's order of operations.
    """

    @staticmethod
    def forward(ctx, input, target, reduction):
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction
        loss = ((target - 1) * torch.clamp(torch.log1p(-input), min=-100)
                - target * torch.clamp(torch.log(input), min=-100))
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_input = grad * (input - target) / torch.clamp((1 - input) * input,
                                                               min=BCE_EPSILON)
            if ctx.reduction == "mean":
                grad_input = grad_input / input.numel()
        if ctx.needs_input_grad[1]:
            grad_target = -torch.logit(input) * grad
            if ctx.reduction == "mean":
                grad_target = grad_target / target.numel()
        return grad_input, grad_target, None


def binary_cross_entropy(input, target, reduction="mean"):
    r"""Binary cross-entropy of probabilities,
    :math:`-(y\log x + (1 - y)\log(1 - x))`, each log clamped at :math:`-100` (torch).

    ``input`` and ``target`` in :math:`[0, 1]`; NaN raises, as in torch. The gradient is
    torch's, :math:`(x - y)/\max(x(1 - x), 10^{-12})`, also where a log was clamped (see
    ``_BinaryCrossEntropy``): ``x = 0`` with ``y = 1`` gives :math:`-10^{12}`, as a
    float32 ``sigmoid(20) == 1`` does in practice.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _pair(input, target)
    # written so that NaN fails too (NaN >= 0 is False), as torch's check
    if not bool(((input >= 0) & (input <= 1)).all()):
        raise ValueError("input must hold probabilities in [0, 1] for binary_cross_entropy "
                         "(all elements of input should be between 0 and 1)")
    if not bool(((target >= 0) & (target <= 1)).all()):
        raise ValueError("target must hold probabilities in [0, 1] for binary_cross_entropy"
                         " (all elements of target should be between 0 and 1)")
    return _BinaryCrossEntropy.apply(input, target, reduction)


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


def _flatten_classes(input, target, weight, ignore_index):
    """The torch twin of ``course_lib.numpy.losses._flatten_classes``: check, then bring
    the classes (dimension 1, or 0 for a 1-D input) to the last axis of ``(M, C)`` rows."""
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    if input.dim() == 0:
        raise ValueError("input must have shape (C,), (N, C) or (N, C, d1, ...), got a "
                         "0-dimensional tensor")
    class_dim = 0 if input.dim() == 1 else 1
    C = input.shape[class_dim]
    batch_shape = tuple(input.shape[:class_dim]) + tuple(input.shape[class_dim + 1:])
    probabilities = target.is_floating_point()
    check_number("ignore_index", ignore_index, integer=True)
    if probabilities:
        if target.shape != input.shape:
            raise ValueError(f"target must have shape {batch_shape} (class indices) or the "
                             f"shape of input {tuple(input.shape)} (class probabilities), "
                             f"got {tuple(target.shape)}")
        if ignore_index != -100:
            raise ValueError("ignore_index is not supported for class-probability targets "
                             f"(as in torch), got ignore_index={ignore_index}")
    else:
        if target.dtype == torch.bool or target.is_complex():
            raise TypeError("target must hold integer class indices or floating class "
                            f"probabilities, got dtype {target.dtype}")
        if tuple(target.shape) != batch_shape:
            raise ValueError(f"target must have shape {batch_shape} (class indices) or "
                             f"{tuple(input.shape)} (class probabilities), "
                             f"got {tuple(target.shape)}")
        bad = (target != ignore_index) & ((target < 0) | (target >= C))
        if bool(bad.any()):
            raise ValueError(f"target must hold class indices in [0, {C}) or ignore_index "
                             f"({ignore_index}), got {target[bad].flatten()[0].item()}")
    weight_given = weight is not None
    if weight_given:
        if not isinstance(weight, torch.Tensor):
            weight = torch.as_tensor(weight, dtype=input.dtype, device=input.device)
        if tuple(weight.shape) != (C,):
            raise ValueError(f"weight must have shape ({C},) (one per class), got "
                             f"{tuple(weight.shape)}")
        weight = weight.to(input.dtype)

    def to_rows(t):
        return t.movedim(class_dim, -1).reshape(-1, C)

    def unflatten(t):
        return t.reshape(batch_shape)

    target_rows = to_rows(target).to(input.dtype) if probabilities else target.reshape(-1)
    return to_rows(input), target_rows, weight, probabilities, unflatten


def _reduce_rows(loss, reduction, denominator):
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / denominator
    return loss


def _class_index_loss(logp, target, weight, ignore_index, label_smoothing, reduction):
    """Weighted, smoothed NLL of ``logp`` (M, C) and indices ``target`` (M,), in the
    operations of aten's ``nll_loss`` and ``cross_entropy_loss_label_smoothing``."""
    M, C = logp.shape
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    picked = logp.gather(1, safe.unsqueeze(1)).squeeze(1)
    if weight is None:
        nll = torch.where(valid, -picked, zero)
        denominator = valid.sum().to(logp.dtype)  # the counted samples
    else:
        w_target = torch.where(valid, weight[safe], zero)
        nll = torch.where(valid, -(w_target * picked), zero)
        denominator = w_target.sum()  # their total weight
    eps = label_smoothing
    if eps == 0:
        return _reduce_rows(nll, reduction, denominator)
    smooth = -(logp * weight).sum(dim=1) if weight is not None else -logp.sum(dim=1)
    smooth = torch.where(valid, smooth, zero)
    return ((1 - eps) * _reduce_rows(nll, reduction, denominator)
            + _reduce_rows(smooth, reduction, denominator) * (eps / C))


def _probability_loss(logp, target, weight, label_smoothing, reduction):
    r""":math:`-\sum_c w_c q_c \log p_c`, :math:`q = (1 - \varepsilon)t + \varepsilon/C`,
    as aten's ``cross_entropy_loss_prob_target``; the mean divides by ``M``."""
    M, C = logp.shape
    eps = label_smoothing
    q = target * (1 - eps) + (eps / C) if eps > 0 else target
    per_element = logp * q if weight is None else logp * q * weight
    if reduction == "none":
        return -per_element.sum(dim=1)
    if reduction == "sum":
        return -per_element.sum()
    if M == 0:
        return -per_element.sum() * float("nan")
    return -per_element.sum() / M


def _classification(input, target, weight, ignore_index, label_smoothing, reduction,
                    logits):
    check_choice("reduction", reduction, REDUCTIONS)
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    rows, target_rows, weight, probabilities, unflatten = _flatten_classes(
        input, target, weight, ignore_index)
    logp = log_softmax(rows, dim=1) if logits else rows
    if probabilities:
        loss = _probability_loss(logp, target_rows, weight, label_smoothing, reduction)
    else:
        loss = _class_index_loss(logp, target_rows, weight, ignore_index, label_smoothing,
                                 reduction)
    return unflatten(loss) if reduction == "none" else loss


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, *, weight=None,
                  ignore_index=-100):
    r"""Cross-entropy of logits, as ``torch.nn.functional.cross_entropy``; the equations
    are those of :func:`course_lib.numpy.losses.cross_entropy`.

    ``input``: logits ``(N, C)`` (or ``(C,)``, or ``(N, C, d1, ...)``); ``target``: class
    indices ``(N,)`` or class probabilities of the input's shape. ``weight`` (``(C,)``)
    weighs the classes, samples whose index is ``ignore_index`` count for nothing, and
    ``label_smoothing`` mixes the target with the uniform distribution;
    ``reduction="mean"`` divides by the total weight of the counted samples (by ``N``
    for probabilities). ``weight`` and ``ignore_index`` are keyword-only.
    """
    return _classification(input, target, weight, ignore_index, label_smoothing,
                           reduction, logits=True)


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood :math:`-w_{y_n} x_{n, y_n}` of log-probabilities ``input``
    ``(N, C)`` and class indices ``target`` ``(N,)``, as ``torch.nn.functional.nll_loss``
    (0 where the target is ``ignore_index``; the mean divides by the total weight)."""
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        raise TypeError("target must hold integer class indices for nll_loss, got dtype "
                        f"{target.dtype}")
    return _classification(input, target, weight, ignore_index, 0.0, reduction,
                           logits=False)


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
    """:func:`cross_entropy` as a module; ``weight`` is a buffer, as in torch."""

    def __init__(self, reduction="mean", label_smoothing=0.0, *, weight=None,
                 ignore_index=-100):
        super().__init__(reduction)
        self.label_smoothing = check_number("label_smoothing", label_smoothing,
                                            low=0.0, high=1.0)
        self.register_buffer("weight", weight)
        self.ignore_index = check_number("ignore_index", ignore_index, integer=True)

    def forward(self, input, target):
        return cross_entropy(input, target, self.reduction, self.label_smoothing,
                             weight=self.weight, ignore_index=self.ignore_index)


class NLLLoss(_Loss):
    """:func:`nll_loss` as a module (torch's argument order, without the deprecated
    ``size_average``/``reduce``)."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = check_number("ignore_index", ignore_index, integer=True)

    def forward(self, input, target):
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)
