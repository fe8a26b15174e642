r"""Activation functions in torch tensor math, with autograd derivatives.

The twins of :mod:`course_lib.numpy.activations`, written with elementary tensor
operations (``exp``, ``log1p``, ``erf``, ``tanh``, ``where``) so that autograd derives
the backward pass. ``f_grad(x, ...)`` returns the elementwise derivative :math:`f'(x)`
computed by ``torch.autograd.grad``; ``softmax_backward`` / ``log_softmax_backward``
apply the Jacobian-vector products of the chapter. Stable for ``|x| = 1000``; every
``where`` chooses between branches that are finite, so no NaN leaks into a gradient.
"""
from __future__ import annotations

import math

import torch

from course_lib.core.validate import check_choice, check_number

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
           "softplus", "softmax", "log_softmax", "sigmoid_grad", "tanh_grad", "relu_grad",
           "leaky_relu_grad", "elu_grad", "selu_grad", "gelu_grad", "silu_grad",
           "softplus_grad", "softmax_backward", "log_softmax_backward"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def _check_tensor(x, name="x"):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(torch.get_default_dtype())
    return x


def _neg_abs(x):
    # -|x| with derivative -sign(x) and -1 (not 0) at x = 0.
    return torch.where(x >= 0, -x, x)


def _elementwise_grad(f, x, *args):
    """:math:`f'(x)` elementwise, by autograd (``f`` acts elementwise)."""
    x = _check_tensor(x).detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x, *args)
        (g,) = torch.autograd.grad(y.sum(), x)
    return g


def sigmoid(x):
    r""":math:`\sigma(x) = 1/(1 + e^{-x})`, from :math:`e^{-|x|}` (never overflows)."""
    x = _check_tensor(x)
    z = torch.exp(_neg_abs(x))
    return torch.where(x >= 0, 1 / (1 + z), z / (1 + z))


def tanh(x):
    r""":math:`\tanh(x)`."""
    return torch.tanh(_check_tensor(x))


def relu(x):
    r""":math:`\max(x, 0)`; derivative 0 at 0, as torch (Nair & Hinton, 2010; Glorot,
    Bordes & Bengio, 2011)."""
    x = _check_tensor(x)
    # where, not x * (x > 0): -inf * 0 would be NaN. NaN <= 0 is False, so NaN stays NaN
    # (with derivative 1) and the derivative at 0 is 0, as in torch.
    return torch.where(x <= 0, torch.zeros_like(x), x)


def leaky_relu(x, negative_slope=0.01):
    r""":math:`x` if :math:`x > 0` else :math:`\text{negative\_slope}\cdot x`
    (Maas et al., 2013)."""
    x = _check_tensor(x)
    check_number("negative_slope", negative_slope)
    return torch.where(x > 0, x, x * negative_slope)


def elu(x, alpha=1.0):
    r""":math:`x` if :math:`x > 0` else :math:`\alpha (e^x - 1)` (Clevert et al., 2016)."""
    x = _check_tensor(x)
    check_number("alpha", alpha)
    neg = torch.clamp(x, max=0)
    # e^x - 1: expm1 is exact near 0; below -1, exp(x) - 1 is exact too and its autograd
    # derivative e^x keeps full precision (expm1's, result + 1, cancels to 0 for x << 0).
    em1 = torch.where(neg < -1, torch.exp(neg) - 1, torch.expm1(neg))
    return torch.where(x > 0, x, alpha * em1)


def selu(x):
    r""":math:`\lambda\,\mathrm{elu}(x, \alpha)`, :math:`\lambda \approx 1.0507`,
    :math:`\alpha \approx 1.6733` (Klambauer et al., 2017)."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


def gelu(x, approximate="none"):
    r"""GELU (Hendrycks & Gimpel, 2016): :math:`\tfrac12 x(1 + \mathrm{erf}(x/\sqrt2))`, or
    with ``approximate="tanh"``
    :math:`\tfrac12 x (1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`."""
    x = _check_tensor(x)
    check_choice("approximate", approximate, ("none", "tanh"))
    if approximate == "none":
        return x * 0.5 * (1 + torch.erf(x * _SQRT1_2))
    inner = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
    return 0.5 * x * (1 + torch.tanh(inner))


def silu(x):
    r"""Sigmoid linear unit :math:`x\,\sigma(x)` (Elfwing, Uchibe & Doya, 2018; "swish"
    of Ramachandran et al., 2017). As torch: NaN at :math:`x = -\infty`."""
    x = _check_tensor(x)
    return x * sigmoid(x)


def softplus(x, beta=1.0, threshold=20.0):
    r""":math:`\tfrac{1}{\beta}\log(1 + e^{\beta x})`, and :math:`x` where
    :math:`\beta x > \text{threshold}`."""
    x = _check_tensor(x)
    check_number("beta", beta)
    check_number("threshold", threshold)
    z = x * beta
    # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}); the derivative at z = 0 is 1/2.
    core = torch.where(z >= 0, z, torch.zeros_like(z)) + torch.log1p(torch.exp(_neg_abs(z)))
    return torch.where(z > threshold, x, core / beta)


def _check_dim(x, dim):
    check_number("dim", dim, integer=True)
    n = max(x.dim(), 1)
    if not -n <= dim < n:
        raise ValueError(f"dim must be in [{-n}, {n}) for an input of shape "
                         f"{tuple(x.shape)}, got {dim}")
    return dim


def softmax(x, dim=-1):
    r""":math:`e^{x_i - m}/\sum_j e^{x_j - m}` along ``dim``, :math:`m = \max_j x_j`
    (a constant for autograd: the result does not depend on it)."""
    x = _check_tensor(x)
    _check_dim(x, dim)
    e = torch.exp(x - x.amax(dim=dim, keepdim=True).detach())
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x, dim=-1):
    r""":math:`x_i - m - \log\sum_j e^{x_j - m}` along ``dim``."""
    x = _check_tensor(x)
    _check_dim(x, dim)
    shifted = x - x.amax(dim=dim, keepdim=True).detach()
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def sigmoid_grad(x):
    r""":math:`\sigma'(x) = \sigma(x)(1 - \sigma(x))`, by autograd."""
    return _elementwise_grad(sigmoid, x)


def tanh_grad(x):
    r""":math:`1 - \tanh^2(x)`, by autograd."""
    return _elementwise_grad(tanh, x)


def relu_grad(x):
    r""":math:`\mathbb{1}[x > 0]`, by autograd."""
    return _elementwise_grad(relu, x)


def leaky_relu_grad(x, negative_slope=0.01):
    r""":math:`1` if :math:`x > 0` else ``negative_slope``, by autograd."""
    return _elementwise_grad(leaky_relu, x, negative_slope)


def elu_grad(x, alpha=1.0):
    r""":math:`1` if :math:`x > 0` else :math:`\alpha e^x`, by autograd."""
    return _elementwise_grad(elu, x, alpha)


def selu_grad(x):
    r""":math:`\lambda` if :math:`x > 0` else :math:`\lambda\alpha e^x`, by autograd."""
    return _elementwise_grad(selu, x)


def gelu_grad(x, approximate="none"):
    r""":math:`\Phi(x) + x\varphi(x)` (or the tanh form's derivative), by autograd."""
    return _elementwise_grad(gelu, x, approximate)


def silu_grad(x):
    r""":math:`\sigma(x)(1 + x(1 - \sigma(x)))`, by autograd."""
    return _elementwise_grad(silu, x)


def softplus_grad(x, beta=1.0, threshold=20.0):
    r""":math:`\sigma(\beta x)`, and 1 where :math:`\beta x > \text{threshold}`, by
    autograd."""
    return _elementwise_grad(softplus, x, beta, threshold)


def _check_same_shape(dout, y):
    dout, y = _check_tensor(dout, "dout"), _check_tensor(y, "y")
    if dout.shape != y.shape:
        raise ValueError(f"dout must have the shape of y {tuple(y.shape)}, "
                         f"got {tuple(dout.shape)}")
    return dout, y


def softmax_backward(dout, y, dim=-1):
    r"""Backward of ``y = softmax(x, dim)``:
    :math:`y \odot (g - \sum_j g_j y_j)`, ``g = dout``."""
    dout, y = _check_same_shape(dout, y)
    _check_dim(y, dim)
    return y * (dout - (dout * y).sum(dim=dim, keepdim=True))


def log_softmax_backward(dout, y, dim=-1):
    r"""Backward of ``y = log_softmax(x, dim)``: :math:`g - e^{y}\sum_j g_j`."""
    dout, y = _check_same_shape(dout, y)
    _check_dim(y, dim)
    return dout - torch.exp(y) * dout.sum(dim=dim, keepdim=True)
