r"""Loss functions and weight penalties in NumPy, the twins of ``torch.nn.functional``.

Functions return the loss (a float64/float32 scalar array for ``reduction="mean"`` or
``"sum"``, an array of per-element losses for ``"none"``). The classes remember their
inputs: ``loss = crit(input, target)``, then ``crit.backward()`` returns
:math:`\partial\,\text{loss}/\partial\,\text{input}` (for ``reduction="none"`` pass the
upstream gradient: ``crit.backward(dout)``).

Penalties: ``l1_penalty(params)`` :math:`= \sum |w|` and ``l2_penalty(params)``
:math:`= \tfrac12 \sum w^2`, with gradients ``sign(w)`` and ``w``. The factor
:math:`\tfrac12` makes torch's ``weight_decay=lambda`` (which adds :math:`\lambda w` to
each gradient) exactly the gradient of :math:`\lambda \cdot` ``l2_penalty``.
"""
from __future__ import annotations

import numpy as np

from course_lib.core.validate import check_choice, check_number
from course_lib.numpy.activations import log_softmax, sigmoid, softmax

__all__ = ["mse_loss", "l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "cross_entropy", "l1_penalty", "l2_penalty",
           "l1_penalty_grad", "l2_penalty_grad", "MSELoss", "L1Loss", "HuberLoss", "BCELoss",
           "BCEWithLogitsLoss", "CrossEntropyLoss"]

REDUCTIONS = ("mean", "sum", "none")


def _pair(input, target):
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(input.dtype, np.floating):
        raise TypeError(f"input must be a floating-point array, got dtype {input.dtype}")
    if target.shape != input.shape:
        raise ValueError(f"target must have the shape of input {input.shape}, "
                         f"got {target.shape}")
    return input, target.astype(input.dtype, copy=False)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _reduce_grad(grad, reduction, dout=1.0):
    """Chain the elementwise ``grad`` through the reduction (``dout`` is upstream)."""
    if reduction == "mean":
        return grad * (np.asarray(dout) / grad.size)
    return grad * dout


# -- regression -------------------------------------------------------------------------

def _mse(input, target):
    d = input - target
    return d * d, 2 * d


def _l1(input, target):
    d = input - target
    return np.abs(d), np.sign(d)


def _huber(input, target, delta):
    d = input - target
    ad = np.abs(d)
    small = ad < delta
    loss = np.where(small, 0.5 * d * d, delta * (ad - 0.5 * delta))
    grad = np.where(small, d, delta * np.sign(d))
    return loss, grad


def mse_loss(input, target, reduction="mean"):
    r"""Mean squared error :math:`\ell_i = (x_i - y_i)^2`, reduced by ``reduction``.
    ``input`` and ``target`` have the same shape."""
    check_choice("reduction", reduction, REDUCTIONS)
    return _reduce(_mse(*_pair(input, target))[0], reduction)


def l1_loss(input, target, reduction="mean"):
    r"""Mean absolute error :math:`\ell_i = |x_i - y_i|`."""
    check_choice("reduction", reduction, REDUCTIONS)
    return _reduce(_l1(*_pair(input, target))[0], reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    r"""Huber loss (Huber, 1964): :math:`\tfrac12 d^2` if :math:`|d| < \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)`, :math:`d = x - y`; ``delta > 0``."""
    check_choice("reduction", reduction, REDUCTIONS)
    check_number("delta", delta, low=0.0, low_open=True)
    return _reduce(_huber(*_pair(input, target), delta)[0], reduction)


# -- classification ---------------------------------------------------------------------

def _bce(input, target):
    if np.any((input < 0) | (input > 1)):
        raise ValueError("input must hold probabilities in [0, 1] for binary_cross_entropy")
    # torch clamps each log at -100 so that a confident mistake costs 100, not inf.
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(input), -100)
        log_1mp = np.maximum(np.log1p(-input), -100)
    loss = -(target * log_p + (1 - target) * log_1mp)
    grad = (input - target) / np.maximum((1 - input) * input, 1e-12)
    return loss, grad


def binary_cross_entropy(input, target, reduction="mean"):
    r"""Binary cross-entropy of probabilities:
    :math:`\ell_i = -(y_i \log x_i + (1 - y_i)\log(1 - x_i))`, each log clamped at
    :math:`-100` as torch does. ``input`` in :math:`[0, 1]`, same shape as ``target``."""
    check_choice("reduction", reduction, REDUCTIONS)
    return _reduce(_bce(*_pair(input, target))[0], reduction)


def _check_pos_weight(pos_weight, input):
    if pos_weight is None:
        return None
    pos_weight = np.asarray(pos_weight, dtype=input.dtype)
    try:
        np.broadcast_shapes(pos_weight.shape, input.shape)
    except ValueError:
        raise ValueError(f"pos_weight of shape {pos_weight.shape} must broadcast to input "
                         f"of shape {input.shape}") from None
    return pos_weight


def _bce_logits(input, target, pos_weight):
    # log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): stable for any x.
    log_sig = np.minimum(input, 0) - np.log1p(np.exp(-np.abs(input)))
    weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input - weight * log_sig
    pos = target if pos_weight is None else pos_weight * target
    grad = weight * sigmoid(input) - pos
    return loss, grad


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):
    r"""Binary cross-entropy of logits :math:`x`, stable for any :math:`x`:

    .. math:: \ell_i = -\big(p\, y_i \log\sigma(x_i) + (1 - y_i)\log(1 - \sigma(x_i))\big)
              = (1 - y_i)x_i - (1 + (p - 1)y_i)\log\sigma(x_i),

    ``p`` = ``pos_weight`` (broadcast over the last dimension, the classes), 1 if ``None``.
    Gradient: :math:`(1 + (p-1)y)\sigma(x) - p\,y`.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _pair(input, target)
    return _reduce(_bce_logits(input, target, _check_pos_weight(pos_weight, input))[0],
                   reduction)


def _check_classes(input, target, label_smoothing):
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(input.dtype, np.floating):
        raise TypeError(f"input must be a floating-point array, got dtype {input.dtype}")
    if input.ndim != 2:
        raise ValueError(f"input must have shape (N, C) (logits), got {input.shape}")
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != input.shape[:1]:
        raise ValueError(f"target must have shape ({input.shape[0]},), got {target.shape}")
    C = input.shape[1]
    if target.size and (target.min() < 0 or target.max() >= C):
        raise ValueError(f"target must hold class indices in [0, {C}), got values in "
                         f"[{target.min()}, {target.max()}]")
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    return input, target


def _cross_entropy(input, target, label_smoothing):
    N, C = input.shape
    rows = np.arange(N)
    logp = log_softmax(input, dim=1)
    loss = -(1 - label_smoothing) * logp[rows, target]
    smooth_target = np.full_like(input, label_smoothing / C)
    smooth_target[rows, target] += 1 - label_smoothing
    if label_smoothing > 0:
        loss = loss - label_smoothing / C * logp.sum(axis=1)
    return loss, softmax(input, dim=1) - smooth_target


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    r"""Cross-entropy of logits ``input`` ``(N, C)`` and class indices ``target`` ``(N,)``:

    .. math:: \ell_n = -(1 - \varepsilon)\log \mathrm{softmax}(x_n)_{y_n}
              - \frac{\varepsilon}{C}\sum_c \log \mathrm{softmax}(x_n)_c

    with :math:`\varepsilon` = ``label_smoothing`` (Szegedy et al., 2016). Gradient with
    respect to the logits: :math:`\mathrm{softmax}(x_n) - q_n`, :math:`q_n` the smoothed
    one-hot target. ``reduction="mean"`` averages over the ``N`` samples.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    input, target = _check_classes(input, target, label_smoothing)
    return _reduce(_cross_entropy(input, target, label_smoothing)[0], reduction)


# -- penalties --------------------------------------------------------------------------

def _arrays(params):
    if isinstance(params, np.ndarray) or hasattr(params, "data") and not isinstance(
            params, (list, tuple)):
        params = [params]
    arrays = [np.asarray(getattr(p, "data", p)) for p in params]
    if not arrays:
        raise ValueError("params must hold at least one array or Parameter")
    return arrays


def l1_penalty(params):
    r""":math:`\sum_w |w|` over all entries of ``params`` (Parameters or arrays); add
    :math:`\lambda` times it to a loss for L1 regularization (Tibshirani, 1996)."""
    return sum(np.abs(a).sum() for a in _arrays(params))


def l2_penalty(params):
    r""":math:`\tfrac12\sum_w w^2` over all entries of ``params``; the gradient of
    :math:`\lambda` ``l2_penalty`` is :math:`\lambda w`, exactly what torch's
    ``weight_decay=lambda`` adds to each gradient."""
    return sum(0.5 * (a * a).sum() for a in _arrays(params))


def l1_penalty_grad(params):
    """Gradients of ``l1_penalty``: a list of ``sign(w)`` (0 at 0), one per parameter."""
    return [np.sign(a) for a in _arrays(params)]


def l2_penalty_grad(params):
    """Gradients of ``l2_penalty``: a list of copies of ``w``, one per parameter."""
    return [a.copy() for a in _arrays(params)]


# -- classes ----------------------------------------------------------------------------

class _Loss:
    """A loss that remembers its last call; ``backward(dout=1.0)`` returns
    ``d loss / d input``."""

    def __init__(self, reduction="mean"):
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self._grad = None

    def _compute(self, input, target):
        raise NotImplementedError

    def __call__(self, input, target):
        loss, self._grad = self._compute(input, target)
        return _reduce(loss, self.reduction)

    forward = __call__

    def backward(self, dout=1.0):
        r""":math:`\partial\,\text{loss}/\partial\,\text{input}`, times ``dout`` (the
        upstream gradient: a scalar, or an array of the input's shape for
        ``reduction="none"``)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss")
        dout = np.asarray(dout)
        if self.reduction != "none" and dout.ndim != 0:
            raise ValueError(f"dout must be a scalar for reduction={self.reduction!r}, "
                             f"got shape {dout.shape}")
        return _reduce_grad(self._grad, self.reduction, dout)


class MSELoss(_Loss):
    """:func:`mse_loss` as an object with ``backward``."""

    def _compute(self, input, target):
        return _mse(*_pair(input, target))


class L1Loss(_Loss):
    """:func:`l1_loss` as an object with ``backward``."""

    def _compute(self, input, target):
        return _l1(*_pair(input, target))


class HuberLoss(_Loss):
    """:func:`huber_loss` as an object with ``backward``."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = check_number("delta", delta, low=0.0, low_open=True)

    def _compute(self, input, target):
        return _huber(*_pair(input, target), self.delta)


class BCELoss(_Loss):
    """:func:`binary_cross_entropy` as an object with ``backward``."""

    def _compute(self, input, target):
        return _bce(*_pair(input, target))


class BCEWithLogitsLoss(_Loss):
    """:func:`binary_cross_entropy_with_logits` as an object with ``backward``."""

    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def _compute(self, input, target):
        input, target = _pair(input, target)
        return _bce_logits(input, target, _check_pos_weight(self.pos_weight, input))


class CrossEntropyLoss(_Loss):
    """:func:`cross_entropy` as an object with ``backward``; for ``"mean"`` the gradient is
    ``(softmax(x) - q) / N``."""

    def __init__(self, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.label_smoothing = check_number("label_smoothing", label_smoothing,
                                            low=0.0, high=1.0)

    def _compute(self, input, target):
        input, target = _check_classes(input, target, self.label_smoothing)
        loss, grad = _cross_entropy(input, target, self.label_smoothing)
        # the reduction is over samples: scale the (N, C) gradient by 1/N, not 1/(N C)
        self._rows = loss.shape[0]
        return loss, grad

    def backward(self, dout=1.0):
        if self._grad is None:
            raise RuntimeError("CrossEntropyLoss.backward called before the loss")
        dout = np.asarray(dout)
        if self.reduction == "none":
            return self._grad * dout.reshape(-1, 1)
        if dout.ndim != 0:
            raise ValueError(f"dout must be a scalar for reduction={self.reduction!r}, "
                             f"got shape {dout.shape}")
        scale = dout / self._rows if self.reduction == "mean" else dout
        return self._grad * scale
