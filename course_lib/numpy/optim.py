"""Optimizers for the NumPy backend, the twins of ``torch.optim``.

``Optimizer`` mirrors ``torch.optim.Optimizer``: it holds ``param_groups`` (a list of
dicts, each with ``"params"``, ``"lr"`` and the other options) and ``state`` (a dict of
running quantities per :class:`~course_lib.numpy.parameter.Parameter`). Each subclass
only says which update rule to apply; the rules themselves (``sgd_step``,
``adam_step``, ...) live once in :mod:`course_lib.core.optim` and serve both backends.

Typical loop::

    opt = Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss = criterion(model(x), y)
        model.backward(criterion.backward())
        opt.step()
"""
from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from course_lib.core.optim import (  # noqa: F401  (the functional steps are public here too)
    adagrad_defaults, adagrad_step, adam_defaults, adam_step, adamax_defaults, adamax_step,
    nadam_defaults, nadam_step, rmsprop_defaults, rmsprop_step, sgd_defaults, sgd_step,
)
from course_lib.numpy.parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "Adamax",
           "sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "nadam_step",
           "adamax_step"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``step``, ``zero_grad`` and
    ``state_dict``, as in ``torch.optim.Optimizer``.

    Parameters
    ----------
    params : iterable of Parameter, or iterable of dict
        The parameters to optimize, or parameter groups: dicts with a ``"params"`` entry
        and any options that override ``defaults`` for that group.
    defaults : dict
        The options of every group that does not set its own.
    """

    def __init__(self, params, defaults):
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError("params must be an iterable of Parameters or of dicts, "
                            f"got a single {type(params).__name__}")
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError("params is empty: the optimizer got no parameters")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (missing ones: ``defaults``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError("params must contain Parameters (course_lib.numpy.parameter"
                                f".Parameter), got {type(p).__name__}")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError("params: a parameter appears more than once")
        param_group["params"] = params
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True):
        """Reset every gradient: to ``None`` (default, as torch) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient (``grad is None``: skipped).

        ``closure``, if given, is called first and its return value (the loss) returned.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p.data, p.grad, self.state[p], group)
        return loss

    def _update(self, param, grad, state, group):
        raise NotImplementedError

    def state_dict(self):
        """A copy of the optimizer's state, parameters replaced by their index.

        ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, the
        layout of ``torch.optim.Optimizer.state_dict``; indices count the parameters
        across groups in order. Arrays are copied, so later steps do not change it.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``: the same number of groups and of parameters per
        group; the group options and the state are copied in."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        by_index = {}
        for group, saved in zip(self.param_groups, saved_groups):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError("state_dict has a parameter group whose size differs "
                                 "from the optimizer's")
            by_index.update(zip(saved["params"], group["params"]))
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            self.state[by_index[i]] = copy.deepcopy(s)
        self.param_groups = [
            {**copy.deepcopy({k: v for k, v in saved.items() if k != "params"}),
             "params": group["params"]}
            for group, saved in zip(self.param_groups, saved_groups)]

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v!r}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {options}")
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Update rule and paper: :func:`course_lib.core.optim.sgd_step`.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, sgd_defaults(lr, momentum, dampening, weight_decay,
                                              nesterov, maximize))

    def _update(self, param, grad, state, group):
        sgd_step(param, grad, state, lr=group["lr"], momentum=group["momentum"],
                 dampening=group["dampening"], weight_decay=group["weight_decay"],
                 nesterov=group["nesterov"], maximize=group["maximize"])


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``. Rule: :func:`course_lib.core.optim.adagrad_step`."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, *, maximize=False):
        super().__init__(params, adagrad_defaults(lr, lr_decay, weight_decay,
                                                  initial_accumulator_value, eps, maximize))

    def _update(self, param, grad, state, group):
        adagrad_step(param, grad, state, lr=group["lr"], lr_decay=group["lr_decay"],
                     weight_decay=group["weight_decay"],
                     initial_accumulator_value=group["initial_accumulator_value"],
                     eps=group["eps"], maximize=group["maximize"])


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``. Rule: :func:`course_lib.core.optim.rmsprop_step`."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        super().__init__(params, rmsprop_defaults(lr, alpha, eps, weight_decay, momentum,
                                                  centered, maximize))

    def _update(self, param, grad, state, group):
        rmsprop_step(param, grad, state, lr=group["lr"], alpha=group["alpha"],
                     eps=group["eps"], weight_decay=group["weight_decay"],
                     momentum=group["momentum"], centered=group["centered"],
                     maximize=group["maximize"])


class Adam(Optimizer):
    """Adam (AMSGrad with ``amsgrad=True``), as ``torch.optim.Adam``.

    Rule: :func:`course_lib.core.optim.adam_step`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        super().__init__(params, adam_defaults(lr, betas, eps, weight_decay, amsgrad,
                                               maximize, decoupled_weight_decay))

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        adam_step(param, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2,
                  eps=group["eps"], weight_decay=group["weight_decay"],
                  amsgrad=group["amsgrad"], decoupled=group["decoupled_weight_decay"],
                  maximize=group["maximize"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``:
    :math:`\\theta \\leftarrow (1-\\gamma\\lambda)\\theta` before each Adam step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


class NAdam(Optimizer):
    """NAdam (NAdamW with ``decoupled_weight_decay=True``), as ``torch.optim.NAdam``.

    Rule: :func:`course_lib.core.optim.nadam_step`.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False):
        super().__init__(params, nadam_defaults(lr, betas, eps, weight_decay, momentum_decay,
                                                decoupled_weight_decay, maximize))

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        nadam_step(param, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2,
                   eps=group["eps"], weight_decay=group["weight_decay"],
                   momentum_decay=group["momentum_decay"],
                   decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])


class Adamax(Optimizer):
    """Adamax, as ``torch.optim.Adamax``. Rule: :func:`course_lib.core.optim.adamax_step`."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *,
                 maximize=False):
        super().__init__(params, adamax_defaults(lr, betas, eps, weight_decay, maximize))

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        adamax_step(param, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2,
                    eps=group["eps"], weight_decay=group["weight_decay"],
                    maximize=group["maximize"])
