"""``Parameter``: an array the optimizer updates, with its gradient beside it."""
from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array, the NumPy twin of ``torch.nn.Parameter``.

    Attributes
    ----------
    data : ndarray
        The values, any shape (a Linear weight is ``(out_features, in_features)``).
    grad : ndarray or None
        ``d loss / d data``, same shape as ``data``; ``None`` until a backward pass
        writes it. Backward passes *accumulate* into it, as autograd does, so call
        ``zero_grad()`` between steps.
    """

    def __init__(self, data, requires_grad: bool = True):
        data = np.asarray(data)
        # Keep a float array as it is (float32 or float64); anything else becomes float64.
        self.data = data if np.issubdtype(data.dtype, np.floating) else data.astype(np.float64)
        self.grad = None
        self.requires_grad = requires_grad

    @property
    def shape(self):
        return self.data.shape

    def accumulate_grad(self, grad) -> None:
        """Add ``grad`` to ``self.grad`` (creating it on first use)."""
        if grad.shape != self.data.shape:
            raise ValueError(f"grad must have shape {self.data.shape}, got {grad.shape}")
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradient (``None``, torch's default) or fill it with zeros."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad.fill(0)

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
