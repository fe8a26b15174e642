"""The NumPy backend: every forward and backward pass written by hand.

Modules: ``init``, ``activations``, ``layers``, ``losses``, ``optim``, ``clip``,
``schedules``. The last three are imported on first use, so that
``course_lib.numpy.optim`` works as an attribute and the rest of the backend does not
depend on them.
"""
import importlib

from course_lib.numpy import activations, init, layers, losses
from course_lib.numpy.parameter import Parameter

_LAZY = ("optim", "clip", "schedules")

__all__ = ["activations", "init", "layers", "losses", "Parameter", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
