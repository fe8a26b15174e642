"""Gradient clipping for the NumPy backend, the twin of ``torch.nn.utils.clip_grad_*``.

Both functions change gradients *in place* and take

- a :class:`~course_lib.numpy.parameter.Parameter` or an iterable of them (their
  ``.grad`` is clipped; parameters whose ``grad`` is ``None`` are skipped), or
- plain ndarrays, which are taken to *be* gradients and clipped in place (handy to clip
  a list of gradient arrays that are not attached to Parameters).
"""
from __future__ import annotations

import math

import numpy as np

from course_lib.core.validate import check_norm_type, check_number
from course_lib.numpy.parameter import Parameter

__all__ = ["clip_grad_value_", "clip_grad_norm_"]


def _gradients(parameters):
    """The gradient arrays to clip, in order (``None`` gradients left out)."""
    if isinstance(parameters, (Parameter, np.ndarray)):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if isinstance(p, Parameter):
            if p.grad is not None:
                grads.append(p.grad)
        elif isinstance(p, np.ndarray):
            grads.append(p)
        else:
            raise TypeError("parameters must hold Parameters or ndarrays, got "
                            f"{type(p).__name__}")
    return grads


def _vector_norm(v, p):
    """``np.linalg.norm(v, p)`` of a 1-D array, with torch's shortcut for one entry
    (``|v_0|``, which does not overflow through ``|v_0|^p``)."""
    if v.size == 1:
        return np.abs(v[0])
    return np.linalg.norm(v, ord=p)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place.

    Parameters
    ----------
    parameters : Parameter, ndarray, or iterable of them
        See the module docstring.
    clip_value : float
        ``>= 0``: the largest magnitude an entry keeps. Unlike norm clipping this changes the
        gradient's direction.
    """
    clip_value = float(check_number("clip_value", clip_value, low=0.0))
    for g in _gradients(parameters):
        np.clip(g, -clip_value, clip_value, out=g)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    r"""Rescale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradient entries at once (the norm of
    the per-array norms),

    .. math::

        \|g\|_p = \Bigl(\sum_i \|g_i\|_p^p\Bigr)^{1/p}, \qquad
        \|g\|_\infty = \max_i \|g_i\|_\infty,

    and every gradient is multiplied by :math:`\min\bigl(1,\ \text{max\_norm} /
    (\|g\|_p + 10^{-6})\bigr)`: the direction is kept, only the length shrinks. Pascanu,
    Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks",
    ICML.

    Parameters
    ----------
    parameters : Parameter, ndarray, or iterable of them
        See the module docstring.
    max_norm : float
        The largest total norm allowed, ``>= 0``.
    norm_type : float, default 2.0
        ``p`` of the norm: a positive number, ``math.inf``, or a string such as ``"inf"``
        (read with ``float``, as torch does).
    error_if_nonfinite : bool, default False
        Raise ``RuntimeError`` when the total norm is NaN or infinite. When False, as
        torch does, the gradients are multiplied by the resulting coefficient anyway
        (NaN for a NaN norm, 0 for an infinite one, which makes infinite entries NaN).

    Returns
    -------
    numpy.float64
        The total norm *before* clipping (0.0 when there are no gradients).
    """
    max_norm = float(check_number("max_norm", max_norm, low=0.0))
    norm_type = check_norm_type("norm_type", norm_type)
    grads = _gradients(parameters)
    if norm_type == math.inf and any(g.size == 0 for g in grads):
        # a maximum over nothing: torch raises as well
        raise ValueError("parameters hold an empty gradient, whose inf-norm (a maximum "
                         "over no entries) is undefined")
    if not grads:
        return np.float64(0.0)
    norms = np.array([_vector_norm(g.ravel(), norm_type) for g in grads])
    total_norm = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {norm_type} of the gradients is non-finite "
            f"({total_norm}), so it cannot be clipped; pass error_if_nonfinite=False "
            "to scale the gradients by the non-finite norm anyway")
    # np.minimum, not min(): a NaN coefficient must propagate as in torch.clamp.
    clip_coef = np.minimum(max_norm / (total_norm + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN, silently, as in torch
        for g in grads:
            g *= clip_coef
    return np.float64(total_norm)
