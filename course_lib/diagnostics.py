"""Is training healthy? Activation and gradient statistics, learning-curve verdicts.

Works for both backends: a ``course_lib.numpy`` ``Sequential`` (run layer by layer) or a
``torch.nn.Module`` (forward hooks). The statistics are returned as plain Python
floats in lists of dicts, ready for :mod:`course_lib.plotting`.
"""
from __future__ import annotations

import sys

import numpy as np

from course_lib.core.validate import check_number

__all__ = ["activation_stats", "gradient_stats", "update_to_data_ratio",
           "GradientNormHistory", "diagnose_learning_curves", "bias_variance_verdict"]

_SATURATING = ("Sigmoid", "Tanh")
_RECTIFIERS = ("ReLU",)


def _is_torch_module(model) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        return a.detach().to("cpu").double().numpy()
    return np.asarray(a, dtype=np.float64)


def _children(model):
    """The layers of a NumPy ``Sequential`` (or a list of layers), in order."""
    if isinstance(model, (list, tuple)):
        return list(model)
    if hasattr(model, "__iter__"):
        return list(model)
    inner = getattr(model, "_modules", None)
    if isinstance(inner, dict) and inner:
        return list(inner.values())
    raise TypeError("model must be a Sequential (iterable over its layers), a list of "
                    f"layers or a torch.nn.Module, got {type(model).__name__}")


def _layer_stats(name, kind, a, saturation_threshold, keep_activations):
    a = _to_numpy(a)
    flat = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1)
    stats = {"name": name, "layer": kind, "mean": float(flat.mean()), "std": float(flat.std()),
             "saturated": None, "dead": None}
    if kind == "Tanh":
        stats["saturated"] = float(np.mean(np.abs(flat) > saturation_threshold))
    elif kind == "Sigmoid":
        stats["saturated"] = float(np.mean(np.abs(2.0 * flat - 1.0) > saturation_threshold))
    elif kind in _RECTIFIERS:
        stats["dead"] = float(np.mean(np.all(flat == 0.0, axis=0)))
    if keep_activations:
        stats["activations"] = a
    return stats


def activation_stats(model, x, *, saturation_threshold: float = 0.99,
                     keep_activations: bool = False, layers=None):
    """Statistics of each layer's output on the batch ``x`` (one forward pass, eval mode
    is *not* forced: call ``model.eval()`` first if you want it).

    For every layer (every leaf module of a torch model, every element of a NumPy
    ``Sequential``), the output ``a`` of shape ``(N, ...)`` gives:

    - ``mean``, ``std`` over all entries;
    - ``saturated`` (``Tanh``, ``Sigmoid``): the fraction of entries in the flat ends,
      ``|a| > t`` for tanh and ``|2a - 1| > t`` for the sigmoid (its output rescaled to
      ``[-1, 1]``), ``t = saturation_threshold``. For ``t = 0.99`` the local derivative
      there is below 2% of its maximum (``tanh' = 1 - a^2``, ``sigmoid' = a(1 - a)``), so
      almost no gradient flows back through these units;
    - ``dead`` (``ReLU``): the fraction of units (features) that are zero for **every**
      example of the batch; such a unit passes no gradient to its weights for this batch.

    Parameters
    ----------
    model : NumPy Sequential, list of NumPy layers, or torch.nn.Module
    x : array or tensor, shape (N, in_features)
        For a torch model, an array is converted to a tensor on the device and in the
        dtype of the model's parameters.
    saturation_threshold : float in (0, 1)
    keep_activations : bool
        Also return the outputs (as float64 arrays) under ``"activations"`` (for
        :func:`course_lib.plotting.plot_layer_histograms`).
    layers : sequence of str or None
        Only layers of these kinds (class names, e.g. ``("Tanh",)``); ``None``: all.

    Returns
    -------
    list of dict
        One dict per layer, in forward order: ``name`` (index path, as torch names
        modules), ``layer`` (class name), ``mean``, ``std``, ``saturated`` and ``dead``
        (``None`` where they do not apply).

    References
    ----------
    Glorot & Bengio (2010), *Understanding the difficulty of training deep feedforward
    neural networks*, AISTATS (the saturation histograms); Lu et al. (2019), *Dying ReLU
    and Initialization*.
    """
    check_number("saturation_threshold", saturation_threshold, low=0.0, high=1.0,
                 low_open=True, high_open=True)
    results = []

    def record(name, module, out):
        kind = type(module).__name__
        if layers is None or kind in layers:
            results.append(_layer_stats(name, kind, out, saturation_threshold, keep_activations))

    if _is_torch_module(model):
        import torch

        if not isinstance(x, torch.Tensor):
            param = next(model.parameters(), None)
            x = torch.as_tensor(np.asarray(x), device=param.device if param is not None else None,
                                dtype=param.dtype if param is not None else None)
        leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
        handles = [m.register_forward_hook(
            lambda mod, inp, out, name=n: record(name, mod, out)) for n, m in leaves]
        try:
            with torch.no_grad():
                model(x)
        finally:
            for h in handles:
                h.remove()
    else:
        out = x
        for i, layer in enumerate(_children(model)):
            out = layer(out)
            record(str(i), layer, out)
    return results


def _named_parameters(model):
    if isinstance(model, dict):
        return list(model.items())
    if hasattr(model, "named_parameters"):
        return list(model.named_parameters())
    raise TypeError("model must have named_parameters() (a torch or course_lib module) or be "
                    f"a dict name -> parameter, got {type(model).__name__}")


def gradient_stats(model):
    """Statistics of each parameter's gradient, after a backward pass.

    Returns
    -------
    list of dict
        One per parameter that has a gradient: ``name``, ``shape``, ``mean``, ``std``,
        ``norm`` (Frobenius norm ``||g||``) and ``grad_to_data`` (``||g|| / ||W||``,
        ``inf`` for an all-zero parameter).
    """
    out = []
    for name, p in _named_parameters(model):
        if p.grad is None:
            continue
        g, w = _to_numpy(p.grad), _to_numpy(p.data)
        g_norm, w_norm = float(np.linalg.norm(g)), float(np.linalg.norm(w))
        out.append({"name": name, "shape": tuple(g.shape), "mean": float(g.mean()),
                    "std": float(g.std()), "norm": g_norm,
                    "grad_to_data": g_norm / w_norm if w_norm > 0 else float("inf")})
    return out


def update_to_data_ratio(params_before, params_after):
    """Relative size of one update, per parameter: ``||W_after - W_before|| / ||W_before||``.

    Karpathy's rule of thumb: about ``1e-3`` is healthy; much smaller means the learning
    rate is too low, much larger (``1e-1``) that it is too high.

    Parameters
    ----------
    params_before, params_after : dict name -> array/tensor, or sequences of arrays/tensors
        Copies of the parameters before and after the step (e.g. two ``state_dict()``
        copies).

    Returns
    -------
    dict name -> float (sequence positions as names for sequences); ``inf`` where
    ``W_before`` is all zeros and the update is not.

    References
    ----------
    Karpathy, *CS231n: Neural Networks Part 3* (2016), "Ratio of weights:updates".
    """
    def as_items(params, what):
        if isinstance(params, dict):
            return list(params.items())
        if isinstance(params, (list, tuple)):
            return [(str(i), p) for i, p in enumerate(params)]
        raise TypeError(f"{what} must be a dict or a sequence of arrays, "
                        f"got {type(params).__name__}")

    before, after = as_items(params_before, "params_before"), as_items(params_after, "params_after")
    if [k for k, _ in before] != [k for k, _ in after]:
        raise ValueError("params_before and params_after must have the same names, got "
                         f"{[k for k, _ in before]} and {[k for k, _ in after]}")
    ratios = {}
    for (name, w0), (_, w1) in zip(before, after):
        w0 = _to_numpy(getattr(w0, "data", w0))
        w1 = _to_numpy(getattr(w1, "data", w1))
        if w0.shape != w1.shape:
            raise ValueError(f"params_after[{name!r}] must have shape {w0.shape}, got {w1.shape}")
        num, den = float(np.linalg.norm(w1 - w0)), float(np.linalg.norm(w0))
        ratios[name] = num / den if den > 0 else (0.0 if num == 0 else float("inf"))
    return ratios


class GradientNormHistory:
    """A :func:`course_lib.training.fit` callback recording the gradient norm of each step.

    ``total`` gets the global norm ``sqrt(sum_p ||g_p||^2)`` (what
    ``clip_grad_norm_`` computes) of every step; with ``per_parameter=True``,
    ``per_parameter[name]`` gets each parameter's norm. For torch the norms stay on the
    device and are read back once per epoch. Measured in ``on_after_backward``, before the
    optimizer step (and before any clipping done by a callback listed after this one).
    """

    def __init__(self, per_parameter: bool = False):
        self.per_parameter_enabled = bool(per_parameter)
        self.total = []
        self.per_parameter = {}
        self._pending = []

    def on_train_begin(self, logs):
        self.total, self.per_parameter, self._pending = [], {}, []

    def on_after_backward(self, step, logs):
        named = [(n, p.grad) for n, p in logs["model"].named_parameters() if p.grad is not None]
        if not named:
            return
        if hasattr(named[0][1], "detach"):
            import torch

            norms = torch.stack([g.detach().norm().to(torch.float64) for _, g in named])
        else:
            norms = np.array([np.linalg.norm(g) for _, g in named])
        self._pending.append(([n for n, _ in named], norms))

    def on_epoch_end(self, epoch, logs):
        self._flush()

    def on_train_end(self, logs):
        self._flush()

    def _flush(self):
        if not self._pending:
            return
        first = self._pending[0][1]
        if hasattr(first, "detach"):
            import torch

            # one host sync per epoch: concatenate then read back
            values = torch.cat([n for _, n in self._pending]).tolist()
        else:
            values = np.concatenate([n for _, n in self._pending]).tolist()
        pos = 0
        for names, norms in self._pending:
            chunk = values[pos:pos + len(names)]
            pos += len(names)
            self.total.append(float(np.sqrt(np.sum(np.square(chunk)))))
            if self.per_parameter_enabled:
                for n, v in zip(names, chunk):
                    self.per_parameter.setdefault(n, []).append(v)
        self._pending = []


def _tail_mean(values, window):
    return float(np.mean(values[-window:]))


def diagnose_learning_curves(train_loss, val_loss, *, window: int = 3, rise_tol: float = 0.1,
                             below_tol: float = 0.1, improving_tol: float = 0.05,
                             target_loss=None, gap_tol=None) -> str:
    """A verdict on a pair of learning curves (losses per epoch).

    Let ``train_end`` and ``val_end`` be the means of the last ``window`` epochs. The
    rules, checked in this order:

    1. ``"overfit"`` if the validation loss went back up: its minimum lies before the
       last ``window`` epochs and ``val_end > (1 + rise_tol) * min(val_loss)``; or, when
       ``gap_tol`` is given, ``val_end - train_end > gap_tol * val_end``.
    2. ``"unrepresentative validation"`` if ``val_end < (1 - below_tol) * train_end``: the
       validation set is substantially *easier* than the training set (too small, not
       from the same distribution, leaking, or regularization active only in training).
    3. ``"underfit"`` if the training loss still falls: it dropped by more than
       ``improving_tol`` (relative) over the last ``window`` epochs, so more training (or
       a larger learning rate) would help; or, when ``target_loss`` is given,
       ``train_end > target_loss`` (flat at a high loss: the model is too small).
    4. ``"good fit"`` otherwise: both curves flattened, validation close above training.

    Parameters
    ----------
    train_loss, val_loss : sequences of float, same length >= window + 1

    Returns
    -------
    str: ``"overfit"``, ``"unrepresentative validation"``, ``"underfit"`` or ``"good fit"``

    References
    ----------
    Goodfellow, Bengio & Courville (2016), *Deep Learning*, sec. 5.2 and 7.8.
    """
    train = np.asarray(train_loss, dtype=np.float64)
    val = np.asarray(val_loss, dtype=np.float64)
    check_number("window", window, low=1, integer=True)
    for name, v in (("rise_tol", rise_tol), ("below_tol", below_tol),
                    ("improving_tol", improving_tol)):
        check_number(name, v, low=0.0)
    if train.ndim != 1 or val.shape != train.shape:
        raise ValueError("train_loss and val_loss must be 1-D with the same length, got "
                         f"shapes {train.shape} and {val.shape}")
    if len(train) < window + 1:
        raise ValueError(f"train_loss must have at least window + 1 = {window + 1} epochs, "
                         f"got {len(train)}")
    if not (np.all(np.isfinite(train)) and np.all(np.isfinite(val))):
        raise ValueError("train_loss and val_loss must be finite")
    train_end, val_end = _tail_mean(train, window), _tail_mean(val, window)

    best = int(np.argmin(val))
    if best < len(val) - window and val_end > (1.0 + rise_tol) * val[best]:
        return "overfit"
    if gap_tol is not None:
        if val_end - train_end > check_number("gap_tol", gap_tol, low=0.0) * val_end:
            return "overfit"
    if val_end < (1.0 - below_tol) * train_end:
        return "unrepresentative validation"
    before = train[-window - 1]
    if before - train[-1] > improving_tol * abs(before):
        return "underfit"
    if target_loss is not None and train_end > check_number("target_loss", target_loss):
        return "underfit"
    return "good fit"


def bias_variance_verdict(train_error, val_error, human_error=0.0, *, tolerance: float = 0.02):
    """Bias/variance analysis from three error rates (Andrew Ng's recipe).

    With human-level error as a proxy for the Bayes (optimal) error:

    - avoidable bias ``= train_error - human_error``;
    - variance ``= val_error - train_error``.

    Each is *high* when it exceeds ``tolerance`` (a value equal to it, up to rounding
    error, is not). The verdict is ``"high bias"``,
    ``"high variance"``, ``"high bias and high variance"`` or ``"good fit"``; ``focus``
    names the larger of the two, the one to work on first (bias on a tie: a model that
    does not fit the training set yet tells little about variance). The classic cases (human
    error ~0%, tolerance 2%): train 1% / val 11% -> high variance; 15% / 16% -> high
    bias; 15% / 30% -> both; 0.5% / 1% -> good fit.

    Remedies: for bias, a bigger model, longer training, a better optimizer or
    architecture; for variance, more data, regularization (weight decay, dropout, data
    augmentation), early stopping.

    Parameters
    ----------
    train_error, val_error, human_error : float in [0, 1]
        Error rates as fractions (0.08 for 8%).
    tolerance : float >= 0

    Returns
    -------
    dict with ``avoidable_bias``, ``variance`` (floats), ``verdict`` (str), ``focus``
    (``"bias"``, ``"variance"`` or ``None`` for a good fit) and ``remedies`` (list of str).

    References
    ----------
    Ng, *Machine Learning Yearning* (2018), ch. 20-28; Deep Learning Specialization,
    course 3, "Avoidable bias" and "Understanding human-level performance".
    """
    for name, v in (("train_error", train_error), ("val_error", val_error),
                    ("human_error", human_error)):
        check_number(name, v, low=0.0, high=1.0)
    check_number("tolerance", tolerance, low=0.0)
    bias = float(train_error - human_error)
    variance = float(val_error - train_error)
    # rounded so that 0.10 - 0.08 (= 0.020000000000000004) is not above a 0.02 tolerance
    high_bias, high_var = round(bias, 12) > tolerance, round(variance, 12) > tolerance
    if high_bias and high_var:
        verdict = "high bias and high variance"
    elif high_bias:
        verdict = "high bias"
    elif high_var:
        verdict = "high variance"
    else:
        verdict = "good fit"
    focus = None if verdict == "good fit" else ("bias" if bias >= variance else "variance")
    remedies = []
    if high_bias:
        remedies += ["bigger model", "train longer / better optimizer", "better architecture"]
    if high_var:
        remedies += ["more data", "regularization (weight decay, dropout, augmentation)",
                     "early stopping"]
    return {"avoidable_bias": bias, "variance": variance, "verdict": verdict,
            "focus": focus, "remedies": remedies}
