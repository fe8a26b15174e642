"""Where tensors live: the GPU when there is one."""
from __future__ import annotations

import torch

__all__ = ["default_device", "to_device"]


def default_device():
    """``torch.device("cuda")`` when a CUDA GPU is available, else ``torch.device("cpu")``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(x, device=None):
    """Move ``x`` to ``device`` (default: :func:`default_device`).

    ``x`` may be a tensor or a ``torch.nn.Module`` (moved with ``.to``), or a list, tuple
    or dict of them (moved element by element, keeping the container type); anything
    else is returned unchanged.
    """
    device = default_device() if device is None else torch.device(device)
    if isinstance(x, (torch.Tensor, torch.nn.Module)):
        return x.to(device)
    if isinstance(x, dict):
        return type(x)((k, to_device(v, device)) for k, v in x.items())
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, tuple):  # a namedtuple
        return type(x)(*(to_device(v, device) for v in x))
    return x
