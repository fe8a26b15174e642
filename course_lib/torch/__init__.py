"""The PyTorch backend: tensor math, autograd does the backward pass, CUDA when present.

Modules: ``init``, ``activations``, ``layers``, ``losses``, ``device``, ``optim``, ``clip``,
``schedules``. The last three are imported on first use, so that
``course_lib.torch.optim`` works as an attribute and the rest of the backend does not
depend on them.
"""
import importlib

from course_lib.torch import activations, device, init, layers, losses
from course_lib.torch.device import default_device, to_device

_LAZY = ("optim", "clip", "schedules")

__all__ = ["activations", "device", "init", "layers", "losses", "default_device",
           "to_device", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
