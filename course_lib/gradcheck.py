r"""Numerical gradients by centred differences, to check hand-written backward passes.

For a scalar function, :math:`\partial f/\partial x_i \approx
(f(x + h e_i) - f(x - h e_i)) / 2h`, with error :math:`O(h^2)` from truncation and
:math:`O(\epsilon_{\text{mach}} |f| / h)` from rounding; :math:`h = 10^{-6}` balances them
in float64 (relative errors around :math:`10^{-9}`). Always check in float64.
"""
from __future__ import annotations

import numpy as np

from course_lib.core.validate import check_number

__all__ = ["numerical_gradient", "numerical_gradient_array", "rel_error",
           "check_module_gradients"]


def _check_x(x):
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError("x must be a floating-point numpy.ndarray (perturbed in place), got "
                        f"{type(x).__name__}")
    return x


def numerical_gradient(f, x, h=1e-6):
    r"""Gradient of a scalar function ``f`` at ``x`` by centred differences.

    Each entry of ``x`` is perturbed in place by :math:`\pm h` and restored exactly
    afterwards, so ``f`` may close over ``x``.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a scalar.
    x : ndarray (floating, any shape)
    h : float
        Step, > 0.

    Returns
    -------
    ndarray
        Same shape as ``x``: :math:`(f(x + h e_i) - f(x - h e_i)) / 2h`.
    """
    return numerical_gradient_array(f, x, None, h)


def numerical_gradient_array(f, x, dout, h=1e-6):
    r"""Gradient of :math:`\sum f(x) \odot \text{dout}` at ``x``: what ``backward(dout)``
    must return for an array-valued ``f``.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns an array of ``dout``'s shape (or a scalar if ``dout`` is ``None``).
    x : ndarray, perturbed in place and restored
    dout : ndarray or None
        The upstream gradient.
    h : float

    Returns
    -------
    ndarray, same shape as ``x``.
    """
    _check_x(x)
    check_number("h", h, low=0.0, low_open=True)

    def value(x):
        # a copy: f may return an array it reuses (a module's cache)
        out = np.array(f(x), dtype=np.float64, copy=True)
        if dout is None and out.size != 1:
            raise ValueError(f"f must return a scalar, got shape {out.shape}")
        if dout is not None and out.shape != np.shape(dout):
            raise ValueError(f"dout must have the shape of f(x) {out.shape}, "
                             f"got {np.shape(dout)}")
        return out

    weights = 1.0 if dout is None else np.asarray(dout, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = value(x)
        x[ix] = old - h
        minus = value(x)
        x[ix] = old
        # Difference first, then weight: outputs that x[ix] does not touch cancel exactly
        # instead of adding their rounding errors to the sum.
        grad[ix] = np.sum((plus - minus) * weights) / (2 * h)
    return grad


def rel_error(a, b):
    r"""Largest elementwise relative error, as in CS231n:
    :math:`\max_i |a_i - b_i| / \max(10^{-8}, |a_i| + |b_i|)`.

    Below about :math:`10^{-7}` a float64 backward pass is right; above
    :math:`10^{-3}` it is wrong.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"b must have the shape of a {a.shape}, got {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def check_module_gradients(module, x, dout=None, h=1e-6, generator=None):
    r"""Gradient-check a NumPy module: ``dx`` and every parameter's gradient.

    Runs ``module.forward(x)`` and ``module.backward(dout)`` once (on zeroed gradients),
    then compares ``dx`` and each ``parameter.grad`` with centred differences of
    :math:`\sum \text{module}(x) \odot \text{dout}`. The module's state (parameters,
    running statistics, gradients) is restored afterwards. The module must be
    deterministic (put dropout in ``eval()`` mode or re-seed it).

    Parameters
    ----------
    module : course_lib.numpy.layers.Module
    x : ndarray, float64
    dout : ndarray, optional
        Upstream gradient of the output's shape; standard normal draws by default.
    h : float
    generator : numpy.random.Generator, optional
        For the default ``dout``.

    Returns
    -------
    dict
        ``{"x": rel_error(dx), "<param name>": rel_error(grad), ...}``.
    """
    x = _check_x(np.array(x, copy=True))
    state = module.state_dict()
    saved_grads = {n: (None if p.grad is None else p.grad.copy())
                   for n, p in module.named_parameters()}
    try:
        out = module.forward(x)
        if dout is None:
            rng = np.random.default_rng() if generator is None else generator
            dout = rng.standard_normal(np.shape(out))
        module.zero_grad()
        dx = module.backward(dout)
        errors = {"x": rel_error(dx, numerical_gradient_array(module.forward, x, dout, h))}
        for name, p in module.named_parameters():
            numeric = numerical_gradient_array(lambda _: module.forward(x), p.data, dout, h)
            analytic = np.zeros_like(p.data) if p.grad is None else p.grad
            errors[name] = rel_error(analytic, numeric)
    finally:
        module.load_state_dict(state)
        for name, p in module.named_parameters():
            p.grad = saved_grads[name]
    return errors
