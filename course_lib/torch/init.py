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
           "glorot_normal_", "he_uniform_", "he_normal_", "orthogonal_", "trunc_normal_"]


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
    check_number("gain", gain, low=0.0)
    a = init_math.uniform_bound(init_math.xavier_std(tensor.shape, gain))
    return _draw(tensor, "uniform_", -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    r"""Glorot/Xavier normal: :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = g\sqrt{2/(\text{fan\_in} + \text{fan\_out})}` (Glorot & Bengio, 2010)."""
    _check_tensor(tensor)
    check_number("gain", gain, low=0.0)
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


def _on_generator_device(tensor, generator, fill):
    """Run ``fill(t)`` on ``tensor`` itself, or on a scratch tensor on the generator's
    device that is then copied into ``tensor``."""
    with torch.no_grad():
        if _same_device(generator, tensor):
            fill(tensor)
        else:
            scratch = torch.empty(tensor.shape, dtype=tensor.dtype, device=generator.device)
            tensor.copy_(fill(scratch))
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    r"""Fill ``tensor`` with draws from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`
    truncated to :math:`[a, b]`; returns ``tensor``.

    The density is :math:`\varphi((x-\mu)/\sigma) / (\sigma Z)` on :math:`[a, b]`, with
    :math:`Z = \Phi((b-\mu)/\sigma) - \Phi((a-\mu)/\sigma)`. The draws are exactly
    ``torch.nn.init.trunc_normal_``'s: when :math:`Z > 0.3`, normal draws outside
    :math:`[a, b]` are redrawn; otherwise uniform proposals on :math:`[a, b]` are accepted
    with probability :math:`\exp(-\tfrac12((x-\mu)/\sigma)^2)` relative to the peak.

    Parameters
    ----------
    tensor : Tensor, any shape
    mean, std : float
        Mean and standard deviation (``std > 0``) of the normal before truncation.
    a, b : float
        The cut-offs, ``a <= b``.
    generator : torch.Generator, optional
    """
    _check_tensor(tensor)
    torch_generator(generator)
    check_number("mean", mean)
    check_number("std", std, low=0.0, low_open=True)
    check_number("a", a)
    check_number("b", b, low=a)
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    if tensor.is_meta:
        return tensor
    p = init_math.normal_cdf((b - mean) / std) - init_math.normal_cdf((a - mean) / std)

    def fill(t):
        if p > 0.3:  # plain rejection of normal draws: fewer than 1/0.3 rounds expected
            lo = t.new_tensor(a, device="cpu").item()  # the bounds in t's dtype
            hi = t.new_tensor(b, device="cpu").item()
            result = t.normal_(mean, std, generator=generator)
            while True:
                outside = (result < lo) | (result > hi)
                if not outside.any():
                    break
                redraw = torch.empty_like(result).normal_(mean, std, generator=generator)
                result = torch.where(outside, redraw, result)
            if t is not result:
                t.copy_(result)
            return t
        # uniform proposals on [a, b], accepted with the normal density over its peak
        mode = max(a, min(mean, b))
        log_peak = -0.5 * ((mode - mean) / std) ** 2
        candidates = torch.empty_like(t)
        accept = torch.empty_like(t)
        t.uniform_(a, b, generator=generator)
        candidates.copy_(t)
        candidates.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)
        pending = accept.uniform_(generator=generator).log_().gt(candidates)
        if pending.any():
            result = t
            while True:
                candidates.uniform_(a, b, generator=generator)
                result = torch.where(pending, candidates, result)
                candidates.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)
                pending = torch.where(
                    pending, accept.uniform_(generator=generator).log_().gt(candidates),
                    pending)
                if not pending.any():
                    break
            t.copy_(result)
        return t

    return _on_generator_device(tensor, generator, fill)


def orthogonal_(tensor, gain=1, generator=None):
    r"""Fill ``tensor`` with a (semi-)orthogonal matrix times ``gain``; returns ``tensor``.

    Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks". ``tensor`` is ``(rows, *rest)`` and is
    viewed as a ``rows x cols`` matrix, ``cols = prod(rest)``. A standard normal matrix
    :math:`A` (transposed when ``rows < cols``) is factored :math:`A = QR`; the columns of
    :math:`Q` are multiplied by :math:`\operatorname{sign}(\operatorname{diag} R)`, which
    makes :math:`Q` uniformly (Haar) distributed (Mezzadri 2007, "How to generate random
    matrices from the classical compact groups"). Then :math:`W W^\top = g^2 I` if
    ``rows <= cols``, else :math:`W^\top W = g^2 I`. The draws are exactly
    ``torch.nn.init.orthogonal_``'s.

    Parameters
    ----------
    tensor : Tensor, at least 2-dimensional
    gain : float
        Scale :math:`g \ge 0`.
    generator : torch.Generator, optional
    """
    _check_tensor(tensor)
    torch_generator(generator)
    check_number("gain", gain, low=0.0)
    if tensor.ndim < 2:
        raise ValueError("tensor must have at least 2 dimensions for orthogonal_, "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    with torch.no_grad():
        draw_device = tensor.device if generator is None else generator.device
        flattened = torch.empty((rows, cols), dtype=tensor.dtype, device=draw_device)
        flattened = flattened.normal_(0, 1, generator=generator).to(tensor.device)
        if rows < cols:
            flattened.t_()
        q, r = torch.linalg.qr(flattened)
        q *= torch.diag(r, 0).sign()
        if rows < cols:
            q.t_()
        tensor.view_as(q).copy_(q)
        tensor.mul_(gain)
    return tensor


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
