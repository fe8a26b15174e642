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
    adadelta_defaults, adadelta_step, adagrad_defaults, adagrad_init_state, adagrad_step,
    adam_defaults, adam_step, adamax_defaults, adamax_step, nadam_defaults, nadam_step,
    radam_defaults, radam_step, rmsprop_defaults, rmsprop_step, sgd_defaults, sgd_step,
)
from course_lib.numpy.parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "Adamax",
           "RAdam", "Adadelta",
           "sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "nadam_step",
           "adamax_step", "radam_step", "adadelta_step"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``step``, ``zero_grad`` and
    ``state_dict``, as in ``torch.optim.Optimizer``.

    Parameters
    ----------
    params : iterable of Parameter, of (name, Parameter) pairs, or of dict
        The parameters to optimize (``model.parameters()``, or
        ``model.named_parameters()``: the names are kept in each group's
        ``"param_names"``, as torch does), or parameter groups: dicts with a ``"params"``
        entry and any options that override ``defaults`` for that group.
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
        """Add a group of parameters with its own options (missing ones: ``defaults``).

        ``param_group["params"]`` holds Parameters or ``(name, Parameter)`` pairs (all of
        one kind, in every group, as torch requires); the names go to
        ``param_group["param_names"]``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError("params must be an ordered collection (a list), not a set: a "
                            "set's order changes between runs")
        params = [params] if isinstance(params, Parameter) else list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise ValueError("params: give every parameter a name (named_parameters()) "
                             "or none")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError("params must contain Parameters (course_lib.numpy.parameter"
                                f".Parameter), got {type(p).__name__}")
        if self.param_groups and bool(names) != ("param_names" in self.param_groups[0]):
            raise ValueError("params: all parameter groups must be with names or all "
                             "without names (named_parameters() or parameters())")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError("params: a parameter appears more than once")
        param_group["params"] = params
        if names:
            param_group["param_names"] = names
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
        for g, group in enumerate(self.param_groups):
            for i, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if np.shape(p.grad) != p.data.shape:
                    raise ValueError(
                        f"param_groups[{g}]['params'][{i}].grad has shape "
                        f"{np.shape(p.grad)}, its parameter {p.data.shape}: a gradient "
                        "must have its parameter's shape")
                # in the parameter's dtype, so the buffers made from it are too
                grad = np.asarray(p.grad, dtype=p.data.dtype)
                self._update(p.data, grad, self._state(p, group), group)
        return loss

    def _state(self, p, group):
        """``p``'s state dict (created on first use, as torch.optim's)."""
        return self.state[p]

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
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items()}
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
        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]
            groups.append(new)
        self.param_groups = groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v!r}" for k, v in group.items()
                                if k not in ("params", "param_names"))
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

    def _state(self, p, group):
        # without momentum SGD keeps no state, and torch.optim.SGD creates no entry
        return self.state[p] if group["momentum"] != 0 else {}

    def _update(self, param, grad, state, group):
        sgd_step(param, grad, state, lr=group["lr"], momentum=group["momentum"],
                 dampening=group["dampening"], weight_decay=group["weight_decay"],
                 nesterov=group["nesterov"], maximize=group["maximize"])


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``. Rule: :func:`course_lib.core.optim.adagrad_step`.

    As in torch, the state of every parameter given to the constructor is created at
    once (step 0, the sum at ``initial_accumulator_value``), and that value is used for
    every group: a group's own ``initial_accumulator_value`` is stored but not used.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, *, maximize=False):
        super().__init__(params, adagrad_defaults(lr, lr_decay, weight_decay,
                                                  initial_accumulator_value, eps, maximize))
        for group in self.param_groups:
            for p in group["params"]:
                adagrad_init_state(p.data, self.state[p], initial_accumulator_value)

    def _update(self, param, grad, state, group):
        # a group added later starts from the constructor's initial_accumulator_value
        # (self.defaults), not the group's own: torch.optim.Adagrad does the same
        adagrad_step(param, grad, state, lr=group["lr"], lr_decay=group["lr_decay"],
                     weight_decay=group["weight_decay"],
                     initial_accumulator_value=self.defaults["initial_accumulator_value"],
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


class RAdam(Optimizer):
    """RAdam (Liu et al. 2020), as ``torch.optim.RAdam``; ``decoupled_weight_decay=True``
    decays the weights as AdamW. Rule: :func:`course_lib.core.optim.radam_step`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, maximize=False):
        super().__init__(params, radam_defaults(lr, betas, eps, weight_decay,
                                                decoupled_weight_decay, maximize))

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        radam_step(param, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2,
                   eps=group["eps"], weight_decay=group["weight_decay"],
                   decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

    Rule: :func:`course_lib.core.optim.adadelta_step`.
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *,
                 maximize=False):
        super().__init__(params, adadelta_defaults(lr, rho, eps, weight_decay, maximize))

    def _update(self, param, grad, state, group):
        adadelta_step(param, grad, state, lr=group["lr"], rho=group["rho"], eps=group["eps"],
                      weight_decay=group["weight_decay"], maximize=group["maximize"])
