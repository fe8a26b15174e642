"""Gradient clipping for the torch backend, the twin of ``torch.nn.utils.clip_grad_*``.

Both functions change the ``.grad`` of the given tensors in place; tensors whose
``grad`` is ``None`` are skipped. The norm arithmetic is written here with tensor
operations (``torch.linalg.vector_norm``, ``clamp``); the result equals
``torch.nn.utils.clip_grad_norm_``'s.
"""
from __future__ import annotations

import math

import torch

from course_lib.core.validate import check_norm_type, check_number

__all__ = ["clip_grad_value_", "clip_grad_norm_"]


def _gradients(parameters):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"parameters must hold tensors, got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


@torch.no_grad()
def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Tensors whose ``.grad`` is clipped.
    clip_value : float
        ``>= 0``: the largest magnitude an entry keeps (the gradient's direction changes).
    """
    clip_value = float(check_number("clip_value", clip_value, low=0.0))
    for g in _gradients(parameters):
        g.clamp_(min=-clip_value, max=clip_value)


@torch.no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    r"""Rescale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of the per-tensor norms (the norm of all
    entries at once); every gradient is multiplied by
    :math:`\min\bigl(1,\ \text{max\_norm} / (\|g\|_p + 10^{-6})\bigr)`, which keeps its
    direction. Pascanu, Mikolov & Bengio (2013), "On the difficulty of training
    recurrent neural networks", ICML.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
        Tensors whose ``.grad`` is clipped.
    max_norm : float
        The largest total norm allowed, ``>= 0``.
    norm_type : float, default 2.0
        ``p`` of the norm: a positive number, ``math.inf``, or a string such as ``"inf"``
        (read with ``float``, as torch does).
    error_if_nonfinite : bool, default False
        Raise ``RuntimeError`` for a NaN or infinite total norm; when False, as torch,
        scale by the resulting coefficient anyway (NaN, or 0 for an infinite norm).

    Returns
    -------
    Tensor
        The total norm before clipping, a 0-dim tensor on the first gradient's device
        (``tensor(0.)`` when there are no gradients).
    """
    max_norm = float(check_number("max_norm", max_norm, low=0.0))
    norm_type = check_norm_type("norm_type", norm_type)
    grads = _gradients(parameters)
    if norm_type == math.inf and any(g.numel() == 0 for g in grads):
        # a maximum over nothing: torch raises as well
        raise ValueError("parameters hold an empty gradient, whose inf-norm (a maximum "
                         "over no entries) is undefined")
    if not grads:
        return torch.tensor(0.0)
    device = grads[0].device
    norms = [torch.linalg.vector_norm(g, norm_type).to(device) for g in grads]
    total_norm = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not torch.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {norm_type} of the gradients is non-finite "
            f"({total_norm.item()}), so it cannot be clipped; pass error_if_nonfinite=False "
            "to scale the gradients by the non-finite norm anyway")
    # No `if coef < 1` test: that would wait for the GPU; multiplying by 1 is harmless.
    clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(clip_coef.to(g.device))
    return total_norm
