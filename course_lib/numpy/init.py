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
           "glorot_normal_", "he_uniform_", "he_normal_"]


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
    check_number("gain", gain)
    a = init_math.uniform_bound(init_math.xavier_std(tensor.shape, gain))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    r"""Glorot/Xavier normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = g\sqrt{2/(\text{fan\_in} + \text{fan\_out})}` (Glorot & Bengio, 2010)."""
    _check_array(tensor)
    check_number("gain", gain)
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


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
