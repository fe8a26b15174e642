"""Argument checks with errors that name the argument.

Every public function of course_lib checks its input with these helpers, so a student
who passes a wrong shape or value reads *which* argument is wrong and why.
"""
from __future__ import annotations

import math
import numbers


def check_number(name: str, value, *, low=None, high=None, low_open=False,
                 high_open=False, integer=False):
    """Check that ``value`` is a real number in a range; return it.

    Raises ``TypeError`` naming ``name`` for a non-number, ``ValueError`` for NaN or a
    value outside ``[low, high]`` (``(low, ...`` with ``low_open``, ``..., high)`` with
    ``high_open``).
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a real number"
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


def check_flag(name: str, value):
    """Check that ``value`` is a bool (or a NumPy bool); return it as a Python bool."""
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_probability(name: str, value, *, allow_one: bool = False):
    """Check a probability such as dropout's ``p``: in ``[0, 1)`` (``[0, 1]`` with
    ``allow_one``)."""
    return check_number(name, value, low=0.0, high=1.0, high_open=not allow_one)


def check_norm_type(name: str, value):
    """Check the order ``p`` of a norm: a number > 0, ``inf``, or a string that ``float``
    reads as one (``"inf"``, ``"2"``), as torch's ``clip_grad_norm_`` accepts; return it
    as a float."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number > 0 or 'inf', got {value!r}") from None
    else:
        number = float(check_number(name, value))
    if not number > 0:  # also catches NaN
        raise ValueError(f"{name} must be a number > 0 or 'inf', got {value!r}")
    return number


def check_choice(name: str, value, choices):
    """Check that ``value`` is one of ``choices``; the error lists them."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_shape(name: str, shape, expected, *, where: str = ""):
    """Check an array shape against ``expected`` (a tuple; ``None`` entries match any
    size). ``where`` says what the shape belongs to, for the message."""
    shape = tuple(shape)
    ok = len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        suffix = f" {where}" if where else ""
        raise ValueError(f"{name} must have shape {want}{suffix}, got {shape}")
    return shape


def check_ndim(name: str, array, ndims):
    """Check that ``array.ndim`` is in ``ndims`` (an int or a tuple of ints)."""
    ndims = (ndims,) if isinstance(ndims, int) else tuple(ndims)
    if array.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name} must be {want}-dimensional, got shape {tuple(array.shape)}")
    return array


def check_betas(name: str, betas):
    """Check Adam-style ``betas``: two numbers, each in ``[0, 1)``."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        check_number(f"{name}[{i}]", b, low=0.0, high=1.0, high_open=True)
    return tuple(betas)


def numpy_generator(generator, name: str = "generator"):
    """The ``numpy.random.Generator`` to draw from: ``generator`` itself, or a fresh one
    (new entropy, no global seed) for ``None``."""
    import numpy as np

    if generator is None:
        return np.random.default_rng()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator or None, "
                        f"got {type(generator).__name__}")
    return generator


def torch_generator(generator, name: str = "generator"):
    """Check that ``generator`` is a ``torch.Generator`` or ``None`` (torch's default
    generator, as ``torch.nn.init`` uses); return it."""
    import torch

    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, "
                        f"got {type(generator).__name__}")
    return generator
