"""The array operations of the optimizers' update rules, for both backends.

:mod:`course_lib.core.optim` writes each rule once with these operations, named after
torch's in-place tensor methods; :func:`ops_for` picks the table of ``param``'s backend
once per call. On a tensor each operation is one torch kernel (the optimizer step is
memory-bound: fewer passes over the parameters means a faster step), on an ndarray the
formula torch's kernel computes. The choice never looks at intermediate results: NumPy
arithmetic on 0-d arrays returns NumPy scalars, which are neither ndarrays nor tensors.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NumpyOps", "TorchOps", "ops_for", "read_scalar", "torch_scalar_dtype"]


class NumpyOps:
    """The operations on ndarrays. Results that go into ``state`` are ndarrays (0-d ones
    included), so the in-place updates of later steps write into them."""

    @staticmethod
    def copy(x):
        return np.array(x, copy=True)

    @staticmethod
    def full_like(param, value):
        return np.full_like(param, value)

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    @staticmethod
    def add(x, y, alpha):
        return x + alpha * y

    @staticmethod
    def add_(x, y, alpha):
        x += alpha * y
        return x

    @staticmethod
    def addcmul(x, a, b, value):
        return x + value * a * b

    @staticmethod
    def addcmul_(x, a, b, value):
        x += value * a * b
        return x

    @staticmethod
    def addcdiv_(x, a, b, value):
        x += value * a / b
        return x

    @staticmethod
    def lerp_(average, value, weight):
        # torch's formula: the form with the smaller coefficient is the more accurate one
        if abs(weight) < 0.5:
            average += weight * (value - average)
        else:
            average[...] = value - (value - average) * (1 - weight)
        return average

    @staticmethod
    def maximum_(x, other):
        np.maximum(x, other, out=x)
        return x

    @staticmethod
    def rdiv(scalar, x):
        """``scalar / x`` as torch computes it for a tensor: ``x.reciprocal() * scalar``."""
        return np.reciprocal(x) * scalar

    @staticmethod
    def new_step(param):
        return 0

    @staticmethod
    def new_scalar(param, value):
        """A 0-d array for a running scalar (NAdam's momentum product): float32 for a
        float32 parameter, as torch keeps it under its default dtype, else float64."""
        return np.array(value, dtype=np.float32 if param.dtype == np.float32 else np.float64)

    @staticmethod
    def mul_scalar_(x, value):
        x *= x.dtype.type(value)  # in the scalar's own dtype, as torch multiplies it
        return x


class TorchOps:
    """The operations on tensors: torch's in-place methods."""

    @staticmethod
    def copy(x):
        return x.detach().clone()

    @staticmethod
    def full_like(param, value):
        import torch  # only reached with tensors
        return torch.full_like(param, value, memory_format=torch.preserve_format)

    @staticmethod
    def sqrt(x):
        return x.sqrt()

    @staticmethod
    def add(x, y, alpha):
        return x.add(y, alpha=alpha)

    @staticmethod
    def add_(x, y, alpha):
        return x.add_(y, alpha=alpha)

    @staticmethod
    def addcmul(x, a, b, value):
        return x.addcmul(a, b, value=value)

    @staticmethod
    def addcmul_(x, a, b, value):
        return x.addcmul_(a, b, value=value)

    @staticmethod
    def addcdiv_(x, a, b, value):
        return x.addcdiv_(a, b, value=value)

    @staticmethod
    def lerp_(average, value, weight):
        return average.lerp_(value, weight)

    @staticmethod
    def maximum_(x, other):
        import torch
        return torch.maximum(x, other, out=x)

    @staticmethod
    def rdiv(scalar, x):
        return scalar / x

    @staticmethod
    def new_step(param):
        import torch
        return torch.tensor(0.0, dtype=torch_scalar_dtype())

    @staticmethod
    def new_scalar(param, value):
        import torch
        return torch.tensor(value, dtype=torch_scalar_dtype())

    @staticmethod
    def mul_scalar_(x, value):
        return x.mul_(value)


def torch_scalar_dtype():
    """The dtype of torch.optim's step counters: float64 if that is torch's default
    dtype, else float32 (``torch.optim.optimizer._get_scalar_dtype``)."""
    import torch
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def ops_for(param):
    """The operations of ``param``'s backend: NumPy for an ndarray, else torch."""
    return NumpyOps if isinstance(param, np.ndarray) else TorchOps


def read_scalar(x):
    """A Python number from a stored scalar: an int, or a 0-d tensor/array read with
    ``.item()`` as torch.optim reads its step counters (``_get_value``)."""
    return x.item() if hasattr(x, "item") else x
