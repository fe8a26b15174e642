"""Gains, fans and the standard deviations of the classic initializers.

Backend-independent arithmetic shared by ``course_lib.numpy.init`` and
``course_lib.torch.init``. Every formula is written with the same floating-point
operations, in the same order, as ``torch.nn.init``, so that both backends compute
bit-identical bounds.
"""
from __future__ import annotations

import math
import numbers

from course_lib.core.validate import check_choice

LINEAR_FUNCTIONS = ("linear", "conv1d", "conv2d", "conv3d",
                    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
NONLINEARITIES = LINEAR_FUNCTIONS + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")
FAN_MODES = ("fan_in", "fan_out")


def calculate_gain(nonlinearity, param=None):
    r"""Recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    ================= =========================================
    nonlinearity      gain
    ================= =========================================
    linear, conv*     :math:`1`
    sigmoid           :math:`1`
    tanh              :math:`5/3`
    relu              :math:`\sqrt{2}`
    leaky_relu        :math:`\sqrt{2 / (1 + \text{negative\_slope}^2)}`
    selu              :math:`3/4`
    ================= =========================================

    Parameters
    ----------
    nonlinearity : str
        The ``torch.nn.functional`` name of the nonlinearity.
    param : int or float, optional
        The negative slope of ``"leaky_relu"`` (default 0.01); ignored otherwise.

    Returns
    -------
    float
        The gain :math:`g` that multiplies the standard deviation of an initializer.

    Notes
    -----
    Only the rectifier gains are derived. For :math:`z \sim \mathcal{N}(0, \sigma^2)`
    (symmetric about 0), ReLU keeps half of the second moment,
    :math:`\mathbb{E}[\mathrm{relu}(z)^2] = \mathrm{Var}[z]/2`, so a layer that should
    preserve :math:`\mathbb{E}[h^2]` needs its weight variance multiplied by 2, a gain of
    :math:`\sqrt2` (He et al., 2015, "Delving deep into rectifiers"); a leaky ReLU of
    slope :math:`a` keeps :math:`(1 + a^2)/2` of it, hence
    :math:`\sqrt{2/(1 + a^2)}`. The gain is about the second moment
    :math:`\mathbb{E}[f(z)^2]`, not the variance: :math:`\mathrm{relu}(z)` has a nonzero
    mean. The others are conventions, not derivations: tanh's :math:`5/3` is an empirical
    choice, sigmoid's 1 is PyTorch's convention, and SELU's :math:`3/4` was found
    empirically (PyTorch's documentation of ``calculate_gain``; pytorch/pytorch#50664).
    Self-normalizing SELU networks use ``nonlinearity="linear"`` (gain 1, LeCun normal;
    Klambauer et al., 2017), as PyTorch's documentation advises.

    Raises
    ------
    ValueError
        For an unknown ``nonlinearity`` or a non-numeric ``param``.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity in LINEAR_FUNCTIONS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError("param must be a number (the negative slope of leaky_relu), "
                             f"got {param!r}")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    return 3.0 / 4  # selu: found empirically, pytorch/pytorch#50664


def calculate_fan_in_and_fan_out(shape):
    r"""Fan-in and fan-out of a weight of shape ``shape``, as torch computes them.

    For a weight ``(out_features, in_features, *kernel)``, with receptive field
    :math:`r = \prod \text{kernel}` (1 for a Linear weight):
    :math:`\text{fan\_in} = \text{in\_features} \cdot r`,
    :math:`\text{fan\_out} = \text{out\_features} \cdot r`.

    Parameters
    ----------
    shape : tuple of int, or an array/tensor (its ``.shape`` is used)
        At least two dimensions.

    Returns
    -------
    (int, int)
        ``(fan_in, fan_out)``.

    Raises
    ------
    ValueError
        If ``shape`` has fewer than two dimensions.
    """
    shape = tuple(getattr(shape, "shape", shape))
    if len(shape) < 2:
        raise ValueError("shape must have at least 2 dimensions to compute fan in and "
                         f"fan out, got {shape}")
    receptive_field_size = 1
    for s in shape[2:]:
        receptive_field_size *= s
    return shape[1] * receptive_field_size, shape[0] * receptive_field_size


def calculate_correct_fan(shape, mode):
    """``fan_in`` or ``fan_out`` of ``shape`` according to ``mode`` (case-insensitive)."""
    if not isinstance(mode, str):
        raise ValueError(f"mode must be one of 'fan_in', 'fan_out', got {mode!r}")
    mode = check_choice("mode", mode.lower(), FAN_MODES)
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


def uniform_bound(std):
    r"""Half-width :math:`a = \sqrt{3}\,\sigma` of :math:`\mathcal{U}(-a, a)`, whose
    standard deviation is :math:`\sigma`."""
    return math.sqrt(3.0) * std


def xavier_std(shape, gain=1.0):
    r"""Glorot & Bengio (2010): :math:`\sigma = g \sqrt{2 / (\text{fan\_in} +
    \text{fan\_out})}`."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def kaiming_std(shape, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    r"""He et al. (2015): :math:`\sigma = g / \sqrt{\text{fan\_mode}}`, with
    :math:`g` = ``calculate_gain(nonlinearity, a)``."""
    fan = calculate_correct_fan(shape, mode)
    if nonlinearity == "leaky_relu" and a is not None and (
            isinstance(a, bool) or not isinstance(a, numbers.Real) or math.isnan(a)):
        raise ValueError(f"a must be a number (the negative slope of leaky_relu), got {a!r}")
    gain = calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan)


def normal_cdf(x):
    r"""Standard normal CDF :math:`\Phi(x) = (1 + \operatorname{erf}(x/\sqrt2))/2`,
    written as ``torch.nn.init.trunc_normal_`` writes it."""
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def lecun_std(shape):
    r"""LeCun et al. (1998), "Efficient BackProp": :math:`\sigma = 1/\sqrt{\text{fan\_in}}`
    (the Kaiming formula with the linear gain 1; the init of SELU networks,
    Klambauer et al. 2017)."""
    return kaiming_std(shape, 0, "fan_in", "linear")
