"""``Module``: the NumPy twin of ``torch.nn.Module``, with a hand-written backward pass.

A module computes ``forward(x)`` and caches what its ``backward(dout)`` needs;
``backward`` returns ``d loss / d x`` and *adds* ``d loss / d parameter`` into each
parameter's ``.grad`` (as autograd accumulates), so gradients of several backward passes
sum until ``zero_grad()``. Parameters, buffers and sub-modules assigned as attributes
are registered automatically, in order, and named as torch names them
(``"0.weight"``, ``"1.running_mean"``), so state dicts are interchangeable with torch's.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from course_lib.numpy.parameter import Parameter


class Module:
    """Base class of the NumPy layers.

    Subclasses implement ``forward(x)`` (caching what they need) and ``backward(dout)``
    (returning ``dx`` and accumulating parameter gradients).
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration --------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, value):
        """Register a non-trainable array (such as BatchNorm's ``running_mean``) that
        belongs to the state dict; ``None`` registers an absent buffer."""
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)
        setattr(self, name, value)

    # -- the forward/backward protocol ---------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal -----------------------------------------------------------------
    def named_modules(self, prefix=""):
        """Yield ``(name, module)`` for this module and all its descendants."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self):
        """Iterate over the direct sub-modules."""
        return iter(self._modules.values())

    def modules(self):
        """Iterate over this module and all its descendants."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """Yield ``(name, Parameter)`` pairs, torch's names (``"0.weight"``)."""
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        """Iterate over all parameters (the list an optimizer receives)."""
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix=""):
        """Yield ``(name, ndarray)`` for all buffers that are not ``None``."""
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    # -- modes and gradients -------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout active, batch statistics) recursively; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Set evaluation mode recursively; returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's ``.grad`` (to ``None``, torch's default, or zeros)."""
        for p in self.parameters():
            p.zero_grad(set_to_none)

    # -- state ---------------------------------------------------------------------
    def state_dict(self):
        """An ordered dict ``name -> copy of the array`` of parameters, then buffers,
        module by module, in torch's order and with torch's keys."""
        state = OrderedDict()
        for mod_name, module in self.named_modules():
            for name, p in module._parameters.items():
                state[f"{mod_name}.{name}" if mod_name else name] = p.data.copy()
            for name, b in module._buffers.items():
                if b is not None:
                    state[f"{mod_name}.{name}" if mod_name else name] = np.array(b, copy=True)
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of ``state_dict`` into the parameters and buffers, in place.

        Accepts a dict of ndarrays (or of CPU tensors, such as a torch module's state
        dict). With ``strict``, missing or unexpected keys raise ``ValueError``; a shape
        mismatch always does.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        targets = {}
        for mod_name, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name in registry:
                    if registry[name] is not None:
                        targets[f"{mod_name}.{name}" if mod_name else name] = (module, name)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(f"state_dict does not match the module: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        for key, (module, name) in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
            current = getattr(module, name)
            array = current.data if isinstance(current, Parameter) else current
            if value.shape != array.shape:
                raise ValueError(f"state_dict[{key!r}] must have shape {array.shape}, "
                                 f"got {value.shape}")
            array[...] = value
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + ("\n)" if self._modules else ")")
