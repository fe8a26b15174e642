"""Weight initializers for torch tensors, drawing exactly as ``torch.nn.init``.

Each function fills ``tensor`` in place (under ``torch.no_grad()``) and returns it. The
random ones make the same single call (``tensor.uniform_`` or ``tensor.normal_``) with
the same bounds as ``torch.nn.init``, so with an equally seeded ``torch.Generator`` the
results are bit-identical. ``generator=None`` uses torch's default generator, as
``torch.nn.init`` does. If ``generator`` lives on another device than ``tensor`` (a CPU
generator for a CUDA weight), the numbers are drawn on the generator's device and copied,
so a model gets the same initial weights on every device.
"""
from __future__ import annotations

import warnings

import torch

from course_lib.core import init_math
from course_lib.core.init_math import calculate_fan_in_and_fan_out, calculate_gain
from course_lib.core.validate import check_number, torch_generator

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "constant_", "zeros_", "ones_",
           "uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "lecun_uniform_", "lecun_normal_", "glorot_uniform_",
           "glorot_normal_", "he_uniform_", "he_normal_"]


def _check_tensor(tensor):
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    return tensor


def _same_device(generator, tensor):
    return generator is None or generator.device.type == tensor.device.type


@torch.no_grad()
def _draw(tensor, method, p1, p2, generator):
    """``tensor.<method>_(p1, p2, generator=generator)``, drawing on the generator's device
    when it differs from the tensor's."""
    torch_generator(generator)
    if _same_device(generator, tensor):
        return getattr(tensor, method)(p1, p2, generator=generator)
    draw = torch.empty(tensor.shape, dtype=tensor.dtype, device=generator.device)
    tensor.copy_(getattr(draw, method)(p1, p2, generator=generator))
    return tensor


def constant_(tensor, val):
    """Fill ``tensor`` with ``val``; returns ``tensor``."""
    _check_tensor(tensor)
    check_number("val", val)
    with torch.no_grad():
        return tensor.fill_(val)


def zeros_(tensor):
    """Fill ``tensor`` with 0; returns ``tensor``."""
    _check_tensor(tensor)
    with torch.no_grad():
        return tensor.zero_()


def ones_(tensor):
    """Fill ``tensor`` with 1; returns ``tensor``."""
    return constant_(tensor, 1.0)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    r"""Fill ``tensor`` with draws from :math:`\mathcal{U}(a, b)`; returns ``tensor``.

    Parameters
    ----------
    tensor : Tensor, any shape
    a, b : float
        Lower and upper bound, ``a <= b``.
    generator : torch.Generator, optional
    """
    _check_tensor(tensor)
    check_number("a", a)
    check_number("b", b, low=a)
    return _draw(tensor, "uniform_", a, b, generator)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    r"""Fill ``tensor`` with draws from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`;
    returns ``tensor``."""
    _check_tensor(tensor)
    check_number("mean", mean)
    check_number("std", std, low=0.0)
    return _draw(tensor, "normal_", mean, std, generator)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    r"""Glorot/Xavier uniform: :math:`\mathcal{U}(-a, a)`,
    :math:`a = g\sqrt{6/(\text{fan\_in} + \text{fan\_out})}`.

    Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
    neural networks". ``tensor`` is ``(out_features, in_features, *kernel)``.
    """
    _check_tensor(tensor)
    check_number("gain", gain)
    a = init_math.uniform_bound(init_math.xavier_std(tensor.shape, gain))
    return _draw(tensor, "uniform_", -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    r"""Glorot/Xavier normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = g\sqrt{2/(\text{fan\_in} + \text{fan\_out})}` (Glorot & Bengio, 2010)."""
    _check_tensor(tensor)
    check_number("gain", gain)
    return _draw(tensor, "normal_", 0.0, init_math.xavier_std(tensor.shape, gain), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    r"""He/Kaiming uniform: :math:`\mathcal{U}(-b, b)`,
    :math:`b = g\sqrt{3/\text{fan\_mode}}`, :math:`g` = ``calculate_gain(nonlinearity, a)``.

    He et al. (2015), "Delving deep into rectifiers". ``a`` is the negative slope of a
    leaky ReLU (used only with ``nonlinearity="leaky_relu"``); ``mode="fan_in"`` keeps the
    forward variance, ``"fan_out"`` the backward one. An empty tensor is left as it is,
    with a warning, as torch does.
    """
    if 0 in _check_tensor(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    std = init_math.kaiming_std(tensor.shape, a, mode, nonlinearity)
    bound = init_math.uniform_bound(std)
    return _draw(tensor, "uniform_", -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    r"""He/Kaiming normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = g/\sqrt{\text{fan\_mode}}` (He et al., 2015)."""
    if 0 in _check_tensor(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    std = init_math.kaiming_std(tensor.shape, a, mode, nonlinearity)
    return _draw(tensor, "normal_", 0, std, generator)


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
