r"""Activation functions and their derivatives, in NumPy.

Each ``f(x, ...)`` matches ``torch.nn.functional.f`` (same formula, same defaults);
``f_grad(x, ...)`` is the elementwise derivative :math:`f'(x)` (so the backward pass of
an activation layer is ``dout * f_grad(x)``), with torch's choice at the kinks (the
derivative of ``relu`` at 0 is 0). ``softmax`` and ``log_softmax`` act along ``dim``;
their backward passes take the upstream gradient and the forward *output*.

All functions are stable for large ``|x|`` (no overflow at ``|x| = 1000``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from course_lib.core.validate import check_choice, check_number

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
           "softplus", "softmax", "log_softmax", "sigmoid_grad", "tanh_grad", "relu_grad",
           "leaky_relu_grad", "elu_grad", "selu_grad", "gelu_grad", "silu_grad",
           "softplus_grad", "softmax_backward", "log_softmax_backward"]

# Klambauer et al. (2017), "Self-Normalizing Neural Networks"; torch's constants.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _as_float(x, name="x"):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
            raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")
        x = x.astype(np.float64)
    return x


def _neg_abs(x):
    return np.where(x >= 0, -x, x)


def sigmoid(x):
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`, computed from :math:`e^{-|x|}` so that it
    never overflows. Shape: any, kept."""
    x = _as_float(x)
    z = np.exp(_neg_abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def sigmoid_grad(x):
    r""":math:`\sigma'(x) = \sigma(x)(1 - \sigma(x))`."""
    # sigma(-x) = 1 - sigma(x), without the cancellation of 1 - sigma(x) for large x
    return sigmoid(x) * sigmoid(-_as_float(x))


def tanh(x):
    r""":math:`\tanh(x)`."""
    return np.tanh(_as_float(x))


def tanh_grad(x):
    r""":math:`\tanh'(x) = 1 - \tanh^2(x)`."""
    t = tanh(x)
    return 1 - t * t


def relu(x):
    r""":math:`\mathrm{relu}(x) = \max(x, 0)`.

    Used as a unit of deep networks since Nair & Hinton (2010), "Rectified linear units
    improve restricted Boltzmann machines", and Glorot, Bordes & Bengio (2011), "Deep
    sparse rectifier neural networks"; the function itself goes back to Fukushima (1969).
    """
    x = _as_float(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_grad(x):
    r""":math:`\mathbb{1}[x > 0]` (0 at the kink, as torch)."""
    x = _as_float(x)
    return np.where(x <= 0, 0, 1).astype(x.dtype)  # NaN passes the gradient, as in torch


def leaky_relu(x, negative_slope=0.01):
    r""":math:`x` if :math:`x > 0` else :math:`\text{negative\_slope}\cdot x`
    (Maas et al., 2013)."""
    x = _as_float(x)
    check_number("negative_slope", negative_slope)
    return np.where(x > 0, x, x * negative_slope).astype(x.dtype, copy=False)


def leaky_relu_grad(x, negative_slope=0.01):
    r""":math:`1` if :math:`x > 0` else :math:`\text{negative\_slope}`."""
    x = _as_float(x)
    check_number("negative_slope", negative_slope)
    return np.where(x > 0, 1.0, negative_slope).astype(x.dtype)


def elu(x, alpha=1.0):
    r""":math:`x` if :math:`x > 0` else :math:`\alpha (e^x - 1)` (Clevert et al., 2016)."""
    x = _as_float(x)
    check_number("alpha", alpha)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def elu_grad(x, alpha=1.0):
    r""":math:`1` if :math:`x > 0` else :math:`\alpha e^x`."""
    x = _as_float(x)
    check_number("alpha", alpha)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype, copy=False)


def selu(x):
    r""":math:`\lambda\,\mathrm{elu}(x, \alpha)` with :math:`\lambda \approx 1.0507`,
    :math:`\alpha \approx 1.6733` (Klambauer et al., 2017, "Self-Normalizing Neural
    Networks")."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


def selu_grad(x):
    r""":math:`\lambda` if :math:`x > 0` else :math:`\lambda\alpha e^x`."""
    return SELU_SCALE * elu_grad(x, SELU_ALPHA)


_SQRT1_2 = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


def gelu(x, approximate="none"):
    r"""Gaussian error linear unit (Hendrycks & Gimpel, 2016).

    ``approximate="none"``: :math:`x\,\Phi(x) = \tfrac12 x (1 + \mathrm{erf}(x/\sqrt2))`;
    ``"tanh"``: :math:`\tfrac12 x (1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`.
    """
    x = _as_float(x)
    check_choice("approximate", approximate, ("none", "tanh"))
    if approximate == "none":
        return x * 0.5 * (1 + erf(x * _SQRT1_2))
    inner = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
    return 0.5 * x * (1 + np.tanh(inner))


def gelu_grad(x, approximate="none"):
    r""":math:`\Phi(x) + x\,\varphi(x)` (exact) or the derivative of the tanh form."""
    x = _as_float(x)
    check_choice("approximate", approximate, ("none", "tanh"))
    if approximate == "none":
        cdf = 0.5 * (1 + erf(x * _SQRT1_2))
        pdf = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return cdf + x * pdf
    inner = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
    t = np.tanh(inner)
    d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner


def silu(x):
    r"""Sigmoid linear unit :math:`x\,\sigma(x)` (Elfwing, Uchibe & Doya, 2018; "swish"
    of Ramachandran et al., 2017). As torch: NaN at :math:`x = -\infty`."""
    x = _as_float(x)
    return x * sigmoid(x)


def silu_grad(x):
    r""":math:`\sigma(x)(1 + x(1 - \sigma(x)))`, with :math:`1 - \sigma(x) = \sigma(-x)`."""
    x = _as_float(x)
    s = sigmoid(x)
    return s * (1 + x * sigmoid(-x))


def _softplus_core(z):
    # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): never overflows.
    return np.where(z >= 0, z, 0) + np.log1p(np.exp(_neg_abs(z)))


def softplus(x, beta=1.0, threshold=20.0):
    r""":math:`\tfrac{1}{\beta}\log(1 + e^{\beta x})`, and :math:`x` where
    :math:`\beta x > \text{threshold}` (torch's switch to the linear function)."""
    x = _as_float(x)
    check_number("beta", beta)
    check_number("threshold", threshold)
    z = x * beta
    return np.where(z > threshold, x, _softplus_core(z) / beta).astype(x.dtype, copy=False)


def softplus_grad(x, beta=1.0, threshold=20.0):
    r""":math:`\sigma(\beta x)`, and 1 where :math:`\beta x > \text{threshold}`."""
    x = _as_float(x)
    check_number("beta", beta)
    check_number("threshold", threshold)
    z = x * beta
    return np.where(z > threshold, 1.0, sigmoid(z)).astype(x.dtype, copy=False)


def _check_dim(x, dim):
    check_number("dim", dim, integer=True)
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"dim must be in [{-x.ndim}, {x.ndim}) for an input of shape "
                         f"{x.shape}, got {dim}")
    return dim


def softmax(x, dim=-1):
    r""":math:`\mathrm{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m}` along ``dim``,
    with :math:`m = \max_j x_j` (subtracting it changes nothing but prevents overflow)."""
    x = _as_float(x)
    _check_dim(x, dim)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / np.sum(e, axis=dim, keepdims=True)


def log_softmax(x, dim=-1):
    r""":math:`x_i - m - \log\sum_j e^{x_j - m}` along ``dim``, :math:`m = \max_j x_j`."""
    x = _as_float(x)
    _check_dim(x, dim)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def _check_same_shape(dout, y):
    dout, y = _as_float(dout, "dout"), _as_float(y, "y")
    if dout.shape != y.shape:
        raise ValueError(f"dout must have the shape of y {y.shape}, got {dout.shape}")
    return dout, y


def softmax_backward(dout, y, dim=-1):
    r"""Backward of ``y = softmax(x, dim)``:
    :math:`\partial L/\partial x = y \odot (g - \sum_j g_j y_j)`, ``g = dout``."""
    dout, y = _check_same_shape(dout, y)
    _check_dim(y, dim)
    return y * (dout - np.sum(dout * y, axis=dim, keepdims=True))


def log_softmax_backward(dout, y, dim=-1):
    r"""Backward of ``y = log_softmax(x, dim)``:
    :math:`\partial L/\partial x = g - e^{y} \sum_j g_j`, ``g = dout``."""
    dout, y = _check_same_shape(dout, y)
    _check_dim(y, dim)
    return dout - np.exp(y) * np.sum(dout, axis=dim, keepdims=True)
