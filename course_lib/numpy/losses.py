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
from course_lib.numpy.activations import log_softmax, log_softmax_backward, sigmoid

__all__ = ["mse_loss", "l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "l1_penalty",
           "l2_penalty", "l1_penalty_grad", "l2_penalty_grad", "MSELoss", "L1Loss",
           "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"]

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

def _check_probabilities(input, target):
    # written so that NaN fails too (NaN >= 0 is False), as torch's check
    if not np.all((input >= 0) & (input <= 1)):
        raise ValueError("input must hold probabilities in [0, 1] for binary_cross_entropy "
                         "(all elements of input should be between 0 and 1)")
    if not np.all((target >= 0) & (target <= 1)):
        raise ValueError("target must hold probabilities in [0, 1] for binary_cross_entropy"
                         " (all elements of target should be between 0 and 1)")


# torch's floor of the denominator x(1 - x) in the gradient of binary cross-entropy: aten's
# EPSILON is the float32 constant 1e-12f, 9.99999996e-13 in float64.
BCE_EPSILON = float(np.float32(1e-12))


def _bce(input, target):
    """Elementwise loss, and the numerator and denominator of its gradient, each in the
    floating-point operations of torch's CPU kernels (aten ``binary_cross_entropy`` and
    ``binary_cross_entropy_backward``)."""
    _check_probabilities(input, target)
    # torch clamps each log at -100 so that a confident mistake costs 100, not inf.
    with np.errstate(divide="ignore"):
        loss = ((target - 1) * np.maximum(np.log1p(-input), -100)
                - target * np.maximum(np.log(input), -100))
    # The gradient is (x - y) / max(x (1 - x), 1e-12), also where a log was clamped: torch
    # does not differentiate the clamp, so x = 0 with y = 1 gives -1e12, not 0.
    return loss, input - target, np.maximum((1 - input) * input, BCE_EPSILON)


def binary_cross_entropy(input, target, reduction="mean"):
    r"""Binary cross-entropy of probabilities:
    :math:`\ell_i = -(y_i \log x_i + (1 - y_i)\log(1 - x_i))`, each log clamped at
    :math:`-100` as torch does. ``input`` and ``target`` in :math:`[0, 1]` (NaN raises,
    as in torch), same shape.

    The gradient (``BCELoss.backward``) is torch's:
    :math:`\partial\ell_i/\partial x_i = (x_i - y_i)/\max(x_i(1 - x_i), 10^{-12})`,
    even where a log was clamped (at :math:`x_i \in \{0, 1\}` or
    :math:`x_i < e^{-100}`).
    """
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


def _flatten_classes(input, target, weight, ignore_index, name="input"):
    """Check a classification input and bring it to ``(M, C)`` rows.

    ``input`` is ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)`` (the classes along dimension
    1, as torch); ``target`` holds class indices of shape ``input.shape`` without the
    class dimension, or class probabilities of the shape of ``input``. Returns
    ``(rows (M, C), target rows (M,) or (M, C), weight (C,), probabilities?, unflatten)``
    where ``unflatten`` maps ``(M,)`` or ``(M, C)`` arrays back to the input's layout.
    """
    input, target = np.asarray(input), np.asarray(target)
    if not np.issubdtype(input.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {input.dtype}")
    if input.ndim == 0:
        raise ValueError(f"{name} must have shape (C,), (N, C) or (N, C, d1, ...), "
                         "got a 0-dimensional array")
    class_dim = 0 if input.ndim == 1 else 1
    C = input.shape[class_dim]
    batch_shape = input.shape[:class_dim] + input.shape[class_dim + 1:]
    probabilities = np.issubdtype(target.dtype, np.floating)
    if probabilities:
        if target.shape != input.shape:
            raise ValueError(f"target must have shape {batch_shape} (class indices) or the "
                             f"shape of {name} {input.shape} (class probabilities), "
                             f"got {target.shape}")
        check_number("ignore_index", ignore_index, integer=True)
        if ignore_index != -100:
            raise ValueError("ignore_index is not supported for class-probability targets "
                             f"(as in torch), got ignore_index={ignore_index}")
    else:
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError("target must hold integer class indices or floating class "
                            f"probabilities, got dtype {target.dtype}")
        if target.shape != batch_shape:
            raise ValueError(f"target must have shape {batch_shape} (class indices) or "
                             f"{input.shape} (class probabilities), got {target.shape}")
        check_number("ignore_index", ignore_index, integer=True)
        bad = (target != ignore_index) & ((target < 0) | (target >= C))
        if np.any(bad):
            raise ValueError(f"target must hold class indices in [0, {C}) or ignore_index "
                             f"({ignore_index}), got {target[bad].ravel()[0]}")
    if weight is None:
        weight_given = False
        weight = np.ones(C, dtype=input.dtype)
    else:
        weight_given = True
        weight = np.asarray(weight)
        if weight.shape != (C,):
            raise ValueError(f"weight must have shape ({C},) (one per class), got "
                             f"{weight.shape}")
        weight = weight.astype(input.dtype, copy=False)

    def to_rows(a):
        return np.moveaxis(a, class_dim, -1).reshape(-1, C)

    def unflatten(a):
        if a.ndim == 1:
            return a.reshape(batch_shape)
        return np.moveaxis(a.reshape(batch_shape + (C,)), -1, class_dim)

    rows = to_rows(input)
    target_rows = to_rows(target).astype(input.dtype, copy=False) if probabilities \
        else target.reshape(-1)
    return rows, target_rows, weight, weight_given, probabilities, unflatten


def _reduce_rows(loss, reduction, denominator):
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() / denominator
    return loss


def _class_index_loss(logp, target, weight, weight_given, ignore_index, label_smoothing,
                      reduction):
    r"""Weighted, smoothed negative log-likelihood of log-probabilities ``logp`` (M, C)
    with class indices ``target`` (M,), in torch's operations
    (``nll_loss`` and ``cross_entropy_loss_label_smoothing`` in aten). Returns the
    reduced loss and ``grad(dout)``, the gradient with respect to ``logp``."""
    M, C = logp.shape
    rows = np.arange(M)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    w_target = np.where(valid, weight[safe], 0)          # w_{y_n}, 0 where ignored
    nll = np.where(valid, -w_target * logp[rows, safe], 0)
    # the mean divides by the total weight of the counted samples (their number unweighted)
    denominator = w_target.sum() if weight_given else valid.sum().astype(logp.dtype)
    eps = label_smoothing
    if eps > 0:
        smooth = -(logp * weight).sum(axis=1) if weight_given else -logp.sum(axis=1)
        smooth = np.where(valid, smooth, 0)
        loss = ((1 - eps) * _reduce_rows(nll, reduction, denominator)
                + _reduce_rows(smooth, reduction, denominator) * (eps / C))
    else:
        loss = _reduce_rows(nll, reduction, denominator)

    def grad(dout):
        dout = np.asarray(dout, dtype=logp.dtype)
        if reduction == "none":
            scale = dout.reshape(-1)
        elif reduction == "mean":
            with np.errstate(divide="ignore"):
                scale = np.full(M, dout / denominator)
        else:
            scale = np.full(M, dout)
        g = np.zeros_like(logp)
        nll_scale = (1 - eps) * scale if eps > 0 else scale
        with np.errstate(invalid="ignore"):  # 0 * inf in ignored rows: dropped by where
            g[rows, safe] = np.where(valid, -w_target * nll_scale, 0)
            if eps > 0:
                smooth_scale = np.where(valid, scale * (eps / C), 0)
                g -= smooth_scale[:, None] * weight
        return g

    return loss, grad


def _probability_loss(logp, target, weight, weight_given, label_smoothing, reduction):
    r"""Cross-entropy :math:`-\sum_c w_c q_c \log p_c` with class probabilities ``target``
    (M, C), :math:`q = (1 - \varepsilon) t + \varepsilon/C`, in torch's operations
    (``cross_entropy_loss_prob_target``); the mean divides by ``M``."""
    M, C = logp.shape
    eps = label_smoothing
    q = target * (1 - eps) + (eps / C) if eps > 0 else target
    wq = q * weight if weight_given else q
    per_element = logp * wq
    if reduction == "none":
        loss = -per_element.sum(axis=1)
    elif reduction == "sum":
        loss = -per_element.sum()
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = -per_element.sum() / M if M else np.array(np.nan, logp.dtype)

    def grad(dout):
        dout = np.asarray(dout, dtype=logp.dtype)
        if reduction == "none":
            scale = dout.reshape(-1, 1)
        elif reduction == "mean":
            scale = dout / M if M else dout
        else:
            scale = dout
        return -wq * scale

    return loss, grad


def _classification(input, target, weight, ignore_index, label_smoothing, reduction,
                    logits):
    """Loss and ``grad(dout)`` (with respect to ``input``) of ``cross_entropy``
    (``logits=True``) or ``nll_loss`` (``logits=False``, no smoothing)."""
    check_choice("reduction", reduction, REDUCTIONS)
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    rows, target_rows, w, weight_given, probabilities, unflatten = _flatten_classes(
        input, target, weight, ignore_index)
    logp = log_softmax(rows, dim=1) if logits else rows
    if probabilities:
        loss, grad_logp = _probability_loss(logp, target_rows, w, weight_given,
                                            label_smoothing, reduction)
    else:
        loss, grad_logp = _class_index_loss(logp, target_rows, w, weight_given,
                                            ignore_index, label_smoothing, reduction)
    if reduction == "none":
        loss = unflatten(loss)

    def grad(dout=1.0):
        dout = np.asarray(dout)
        if reduction == "none":
            expected = unflatten(np.empty(len(rows))).shape
            if dout.shape != expected:
                raise ValueError(f"dout must have shape {expected} for reduction='none', "
                                 f"got {dout.shape}")
            dout = dout.reshape(-1)
        elif dout.ndim != 0:
            raise ValueError(f"dout must be a scalar for reduction={reduction!r}, "
                             f"got shape {dout.shape}")
        g = grad_logp(dout)
        if logits:  # through log_softmax: dx = g - softmax(x) * sum_c g
            g = log_softmax_backward(g, logp, dim=1)
        return unflatten(g)

    return loss, grad


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0, *, weight=None,
                  ignore_index=-100):
    r"""Cross-entropy of logits, as ``torch.nn.functional.cross_entropy``.

    ``input`` holds logits, ``(N, C)`` (or ``(C,)``, or ``(N, C, d1, ...)`` with the
    classes along dimension 1). ``target`` holds either class indices, shape ``(N,)``
    (the input's shape without the class dimension), or class probabilities of the
    input's shape. With :math:`\log p = \mathrm{log\_softmax}(x)` over the classes,
    :math:`w` = ``weight`` (ones if ``None``), :math:`\varepsilon` = ``label_smoothing``
    (Szegedy et al., 2016):

    .. math:: \ell_n = (1 - \varepsilon)\,\bigl(-w_{y_n} \log p_{n, y_n}\bigr)
              + \frac{\varepsilon}{C}\sum_c \bigl(-w_c \log p_{n, c}\bigr)

    for class indices, 0 for samples whose target is ``ignore_index``;
    ``reduction="mean"`` divides the sum by :math:`\sum_n w_{y_n}` over the counted
    samples (their number when ``weight`` is ``None``). For class probabilities
    :math:`t_n`: :math:`\ell_n = -\sum_c w_c q_{n,c}\log p_{n,c}` with
    :math:`q = (1 - \varepsilon) t + \varepsilon/C`, and the mean divides by ``N``
    (``ignore_index`` is not supported there, as in torch).

    The gradient with respect to the logits (``CrossEntropyLoss.backward``) is
    :math:`g - \mathrm{softmax}(x)\sum_c g_c` with :math:`g = \partial\ell/\partial\log p`;
    without weights or ignored samples, :math:`\mathrm{softmax}(x_n) - q_n`.

    ``reduction`` and ``label_smoothing`` come first, as in earlier versions of this
    function; ``weight`` and ``ignore_index`` are keyword-only.
    """
    return _classification(input, target, weight, ignore_index, label_smoothing,
                           reduction, logits=True)[0]


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    r"""Negative log-likelihood of log-probabilities, as ``torch.nn.functional.nll_loss``.

    ``input`` holds log-probabilities (say ``log_softmax`` outputs), ``(N, C)`` (or
    ``(C,)`` or ``(N, C, d1, ...)``), ``target`` class indices of shape ``(N,)``:

    .. math:: \ell_n = -w_{y_n}\, x_{n, y_n},

    0 where :math:`y_n` = ``ignore_index``; ``"mean"`` divides by
    :math:`\sum_n w_{y_n}` over the counted samples. Gradient:
    :math:`\partial\ell_n/\partial x_{n,c} = -w_{y_n}[c = y_n]`.
    ``cross_entropy(x, y)`` equals ``nll_loss(log_softmax(x, dim=1), y)``.
    """
    return _nll(input, target, weight, ignore_index, reduction)[0]


def _nll(input, target, weight, ignore_index, reduction):
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        raise TypeError("target must hold integer class indices for nll_loss, got dtype "
                        f"{np.asarray(target).dtype}")
    return _classification(input, target, weight, ignore_index, 0.0, reduction,
                           logits=False)


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
    """:func:`binary_cross_entropy` as an object with ``backward``; the gradient is
    torch's, ``dout * (x - y) / max(x (1 - x), 1e-12)``, divided by the number of
    elements for ``"mean"`` (in this order, as aten)."""

    def _compute(self, input, target):
        loss, self._numerator, self._denominator = _bce(*_pair(input, target))
        return loss, self._numerator

    def backward(self, dout=1.0):
        if self._grad is None:
            raise RuntimeError("BCELoss.backward called before the loss")
        dout = np.asarray(dout)
        if self.reduction != "none" and dout.ndim != 0:
            raise ValueError(f"dout must be a scalar for reduction={self.reduction!r}, "
                             f"got shape {dout.shape}")
        dtype = self._numerator.dtype
        grad = dout.astype(dtype) * self._numerator / self._denominator
        if self.reduction == "mean":
            grad = grad / dtype.type(grad.size)
        return grad


class BCEWithLogitsLoss(_Loss):
    """:func:`binary_cross_entropy_with_logits` as an object with ``backward``."""

    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def _compute(self, input, target):
        input, target = _pair(input, target)
        return _bce_logits(input, target, _check_pos_weight(self.pos_weight, input))


class _ClassificationLoss(_Loss):
    def backward(self, dout=1.0):
        r""":math:`\partial\,\text{loss}/\partial\,\text{input}`, times ``dout`` (a
        scalar, or an array of the per-sample losses' shape for ``reduction="none"``)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss")
        return self._grad(dout)


class CrossEntropyLoss(_ClassificationLoss):
    """:func:`cross_entropy` as an object with ``backward``; for ``"mean"`` without
    weights the gradient is ``(softmax(x) - q) / N``. ``weight`` and ``ignore_index`` are
    keyword-only (``reduction`` and ``label_smoothing`` keep their earlier positions)."""

    def __init__(self, reduction="mean", label_smoothing=0.0, *, weight=None,
                 ignore_index=-100):
        super().__init__(reduction)
        self.label_smoothing = check_number("label_smoothing", label_smoothing,
                                            low=0.0, high=1.0)
        self.weight = None if weight is None else np.asarray(weight)
        self.ignore_index = check_number("ignore_index", ignore_index, integer=True)

    def __call__(self, input, target):
        loss, self._grad = _classification(input, target, self.weight, self.ignore_index,
                                           self.label_smoothing, self.reduction, True)
        return loss

    forward = __call__


class NLLLoss(_ClassificationLoss):
    """:func:`nll_loss` as an object with ``backward`` (torch's argument order, without
    the deprecated ``size_average``/``reduce``)."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight = None if weight is None else np.asarray(weight)
        self.ignore_index = check_number("ignore_index", ignore_index, integer=True)

    def __call__(self, input, target):
        loss, self._grad = _nll(input, target, self.weight, self.ignore_index,
                                self.reduction)
        return loss

    forward = __call__
