"""Weight initializers for NumPy arrays, the twins of ``torch.nn.init``.

Each function fills ``tensor`` (an ndarray) in place and returns it. Random ones take
``generator=`` (a ``numpy.random.Generator``; ``None`` draws fresh entropy). The
bounds and standard deviations come from :mod:`course_lib.core.init_math`, so they are
bit-identical to the torch backend's; the random draws themselves come from NumPy.
"""
from __future__ import annotations

import warnings

import numpy as np

from course_lib.core import init_math
from course_lib.core.init_math import calculate_fan_in_and_fan_out, calculate_gain
from course_lib.core.validate import check_number, numpy_generator

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "constant_", "zeros_", "ones_",
           "uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "lecun_uniform_", "lecun_normal_", "glorot_uniform_",
           "glorot_normal_", "he_uniform_", "he_normal_", "orthogonal_", "trunc_normal_"]


def _check_array(tensor):
    if not isinstance(tensor, np.ndarray):
        raise TypeError(f"tensor must be a numpy.ndarray, got {type(tensor).__name__}")
    if not np.issubdtype(tensor.dtype, np.floating):
        raise TypeError(f"tensor must have a floating dtype, got {tensor.dtype}")
    return tensor


def constant_(tensor, val):
    """Fill ``tensor`` with ``val``; returns ``tensor``."""
    _check_array(tensor)
    check_number("val", val)
    tensor.fill(val)
    return tensor


def zeros_(tensor):
    """Fill ``tensor`` with 0; returns ``tensor``."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill ``tensor`` with 1; returns ``tensor``."""
    return constant_(tensor, 1.0)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    r"""Fill ``tensor`` with draws from :math:`\mathcal{U}(a, b)`; returns ``tensor``.

    Parameters
    ----------
    tensor : ndarray, any shape, floating dtype
    a, b : float
        Lower and upper bound, ``a <= b``.
    generator : numpy.random.Generator, optional
    """
    _check_array(tensor)
    check_number("a", a)
    check_number("b", b, low=a)
    # Draw in float64 and round once into the array's dtype.
    tensor[...] = numpy_generator(generator).uniform(a, b, size=tensor.shape)
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    r"""Fill ``tensor`` with draws from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`;
    returns ``tensor``."""
    _check_array(tensor)
    check_number("mean", mean)
    check_number("std", std, low=0.0)
    tensor[...] = numpy_generator(generator).normal(mean, std, size=tensor.shape)
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    r"""Glorot/Xavier uniform: :math:`\mathcal{U}(-a, a)`,
    :math:`a = g\sqrt{6/(\text{fan\_in} + \text{fan\_out})}`.

    Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
    neural networks". ``tensor`` is ``(out_features, in_features, *kernel)``.
    """
    _check_array(tensor)
    check_number("gain", gain, low=0.0)
    a = init_math.uniform_bound(init_math.xavier_std(tensor.shape, gain))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    r"""Glorot/Xavier normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = g\sqrt{2/(\text{fan\_in} + \text{fan\_out})}` (Glorot & Bengio, 2010)."""
    _check_array(tensor)
    check_number("gain", gain, low=0.0)
    return normal_(tensor, 0.0, init_math.xavier_std(tensor.shape, gain), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    _check_array(tensor)
    std = init_math.kaiming_std(tensor.shape, a, mode, nonlinearity)
    return std


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    r"""He/Kaiming uniform: :math:`\mathcal{U}(-b, b)`,
    :math:`b = g\sqrt{3/\text{fan\_mode}}`, :math:`g` = ``calculate_gain(nonlinearity, a)``.

    He et al. (2015), "Delving deep into rectifiers". ``a`` is the negative slope of a
    leaky ReLU (used only with ``nonlinearity="leaky_relu"``); ``mode="fan_in"`` keeps the
    forward variance, ``"fan_out"`` the backward one. An empty array is left as it is
    (with a warning, as torch does).
    """
    if 0 in _check_array(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = init_math.uniform_bound(_kaiming_std(tensor, a, mode, nonlinearity))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    r"""He/Kaiming normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = g/\sqrt{\text{fan\_mode}}` (He et al., 2015)."""
    if 0 in _check_array(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def lecun_uniform_(tensor, generator=None):
    r"""LeCun uniform: :math:`\mathcal{U}(-b, b)`, :math:`b = \sqrt{3/\text{fan\_in}}`
    (LeCun et al., 1998, "Efficient BackProp"); equals
    ``kaiming_uniform_(tensor, nonlinearity="linear")``."""
    return kaiming_uniform_(tensor, 0, "fan_in", "linear", generator)


def lecun_normal_(tensor, generator=None):
    r"""LeCun normal: :math:`\mathcal{N}(0, 1/\text{fan\_in})`, the init of SELU networks
    (Klambauer et al., 2017); equals ``kaiming_normal_(tensor, nonlinearity="linear")``."""
    return kaiming_normal_(tensor, 0, "fan_in", "linear", generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    r"""Fill ``tensor`` with draws from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`
    truncated to :math:`[a, b]`; returns ``tensor``.

    The density is :math:`\varphi((x-\mu)/\sigma) / (\sigma Z)` on :math:`[a, b]`, with
    :math:`Z = \Phi((b-\mu)/\sigma) - \Phi((a-\mu)/\sigma)`. The same method as
    ``torch.nn.init.trunc_normal_``: when :math:`Z > 0.3`, normal draws outside
    :math:`[a, b]` are redrawn; otherwise uniform proposals on :math:`[a, b]` are accepted
    with probability :math:`\exp(-\tfrac12((x-\mu)/\sigma)^2)` relative to the peak.

    Parameters
    ----------
    tensor : ndarray, any shape, floating dtype
    mean, std : float
        Mean and standard deviation (``std > 0``) of the normal before truncation.
    a, b : float
        The cut-offs, ``a <= b``.
    generator : numpy.random.Generator, optional
    """
    _check_array(tensor)
    check_number("mean", mean)
    check_number("std", std, low=0.0, low_open=True)
    check_number("a", a)
    check_number("b", b, low=a)
    rng = numpy_generator(generator)
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    dtype = tensor.dtype
    p = init_math.normal_cdf((b - mean) / std) - init_math.normal_cdf((a - mean) / std)
    if p > 0.3:  # plain rejection of normal draws: fewer than 1/0.3 rounds expected
        lo, hi = dtype.type(a), dtype.type(b)  # compare in the array's dtype, as torch
        result = rng.normal(mean, std, size=tensor.shape).astype(dtype)
        outside = (result < lo) | (result > hi)
        while outside.any():
            result[outside] = rng.normal(mean, std, size=int(outside.sum())).astype(dtype)
            outside = (result < lo) | (result > hi)
    else:  # uniform proposals on [a, b], accepted with the density over its peak
        mode = max(a, min(mean, b))
        log_peak = -0.5 * ((mode - mean) / std) ** 2
        result = np.empty(tensor.shape)
        pending = np.ones(tensor.shape, dtype=bool)
        while pending.any():
            n = int(pending.sum())
            x = rng.uniform(a, b, size=n)
            accepted = np.log(rng.uniform(size=n)) <= -0.5 * ((x - mean) / std) ** 2 - log_peak
            where = np.flatnonzero(pending)[accepted]
            result.flat[where] = x[accepted]
            pending.flat[where] = False
    tensor[...] = result
    return tensor


def orthogonal_(tensor, gain=1, generator=None):
    r"""Fill ``tensor`` with a (semi-)orthogonal matrix times ``gain``; returns ``tensor``.

    Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks". ``tensor`` is ``(rows, *rest)`` and is
    viewed as a ``rows x cols`` matrix, ``cols = prod(rest)``. A standard normal matrix
    :math:`A` (transposed when ``rows < cols``) is factored :math:`A = QR`; the columns of
    :math:`Q` are multiplied by :math:`\operatorname{sign}(\operatorname{diag} R)`, which
    makes :math:`Q` uniformly (Haar) distributed (Mezzadri 2007, "How to generate random
    matrices from the classical compact groups"). Then :math:`W W^\top = g^2 I` if
    ``rows <= cols``, else :math:`W^\top W = g^2 I`; the method of
    ``torch.nn.init.orthogonal_``.

    Parameters
    ----------
    tensor : ndarray, at least 2-dimensional, floating dtype
    gain : float
        Scale :math:`g \ge 0`.
    generator : numpy.random.Generator, optional
    """
    _check_array(tensor)
    check_number("gain", gain, low=0.0)
    rng = numpy_generator(generator)
    if tensor.ndim < 2:
        raise ValueError("tensor must have at least 2 dimensions for orthogonal_, "
                         f"got shape {tensor.shape}")
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.size // rows
    flattened = rng.standard_normal((rows, cols))
    if rows < cols:
        flattened = flattened.T
    q, r = np.linalg.qr(flattened)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    tensor[...] = (gain * q).reshape(tensor.shape)
    return tensor


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
