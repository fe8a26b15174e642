"""Optimizers for the torch backend: ``torch.optim.Optimizer`` subclasses.

They inherit ``param_groups``, ``state``, ``zero_grad``, ``state_dict``,
``load_state_dict`` and ``add_param_group`` from ``torch.optim.Optimizer``, so they work
with any PyTorch training loop and learning-rate scheduler. The arithmetic is the
course's own: each ``step`` applies an update rule of :mod:`course_lib.core.optim`
(``sgd_step``, ``adam_step``, ...; the same functions the NumPy backend uses) to each
parameter, with tensor operations under ``torch.no_grad()``.
"""
from __future__ import annotations

import torch

from course_lib.core.optim import (  # noqa: F401  (the functional steps are public here too)
    adadelta_defaults, adadelta_step, adagrad_defaults, adagrad_init_state,
    adagrad_step, adam_defaults, adam_step, adamax_defaults, adamax_step, check_flag,
    nadam_defaults, nadam_step, radam_defaults, radam_step, rmsprop_defaults, rmsprop_step,
    sgd_defaults, sgd_step,
)
from course_lib.core.optim_ops import TorchOps, read_scalar

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "Adamax",
           "RAdam", "Adadelta",
           "sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "nadam_step",
           "adamax_step", "radam_step", "adadelta_step", "adam_step_foreach"]


class Optimizer(torch.optim.Optimizer):
    """Base class: ``step`` calls ``self._update(param, grad, state, group)`` for every
    parameter that has a gradient (``grad is None``: skipped).

    ``params`` may be ``model.parameters()``, ``model.named_parameters()`` (the names go
    to each group's ``"param_names"``) or a list of group dicts, as for any
    ``torch.optim.Optimizer``. The state holds what torch.optim's holds, with the same
    types (the step count a 0-d tensor), so state dicts move between the two.
    """

    @torch.no_grad()
    def step(self, closure=None):
        """Update the parameters; ``closure`` (re-computing the loss) is optional."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse "
                                       "gradients")
                self._update(p, p.grad, self._state(p, group), group)
        return loss

    def _state(self, p, group):
        """``p``'s state dict (created on first use, as torch.optim's)."""
        return self.state[p]

    def _update(self, param, grad, state, group):
        raise NotImplementedError


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
                adagrad_init_state(p.detach(), self.state[p], initial_accumulator_value)

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

    Rule: :func:`course_lib.core.optim.adam_step`. With ``foreach=True`` (the default
    when every parameter is on a GPU, as in torch.optim) each step applies the same rule
    to all parameters of a group at once with torch's multi-tensor ``_foreach_*``
    kernels (see :func:`adam_step_foreach`): the same numbers, far fewer kernel launches.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False,
                 decoupled_weight_decay=False):
        defaults = adam_defaults(lr, betas, eps, weight_decay, amsgrad, maximize,
                                 decoupled_weight_decay)
        defaults["foreach"] = None if foreach is None else check_flag("foreach", foreach)
        super().__init__(params, defaults)

    def _options(self, group):
        beta1, beta2 = group["betas"]
        return dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
                    decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])

    @torch.no_grad()
    def step(self, closure=None):
        """Update the parameters; ``closure`` (re-computing the loss) is optional."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            foreach = group.get("foreach")
            if foreach is None:
                foreach = bool(params) and all(p.device.type == "cuda" for p in params)
            if foreach:
                adam_step_foreach(params, [p.grad for p in params],
                                  [self.state[p] for p in params], **self._options(group))
            else:
                for p in params:
                    adam_step(p, p.grad, self.state[p], **self._options(group))
        return loss


def adam_step_foreach(params, grads, states, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                      weight_decay=0.0, amsgrad=False, decoupled=False, maximize=False):
    """:func:`course_lib.core.optim.adam_step` for a list of tensors at once.

    The same operations in the same order, each applied to the whole list by one
    ``torch._foreach_*`` call (as ``torch.optim.Adam(foreach=True)`` does), so on a GPU a
    step costs a handful of kernel launches instead of a handful per parameter.
    ``states[i]`` is the state dict of ``params[i]``, with ``adam_step``'s layout.
    """
    by_device = {}
    for p, g, state in zip(params, grads, states, strict=True):
        if "step" not in state:
            state["step"] = TorchOps.new_step(p)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        by_device.setdefault((p.device, p.dtype), []).append((p, g, state))

    for triples in by_device.values():
        ps = [p for p, _, _ in triples]
        gs = [g for _, g, _ in triples]
        sts = [s for _, _, s in triples]
        if maximize:
            gs = torch._foreach_neg(gs)
        if weight_decay != 0:
            if decoupled:
                torch._foreach_mul_(ps, 1 - lr * weight_decay)
            else:
                gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        exp_avgs = [s["exp_avg"] for s in sts]
        exp_avg_sqs = [s["exp_avg_sq"] for s in sts]
        torch._foreach_lerp_(exp_avgs, gs, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, gs, gs, 1 - beta2)
        if amsgrad:
            second_moments = [s["max_exp_avg_sq"] for s in sts]
            torch._foreach_maximum_(second_moments, exp_avg_sqs)
        else:
            second_moments = exp_avg_sqs
        denoms = torch._foreach_sqrt(second_moments)
        steps = [read_scalar(s["step"]) for s in sts]  # read with .item(), as torch.optim
        torch._foreach_div_(denoms, [(1 - beta2 ** t) ** 0.5 for t in steps])
        torch._foreach_add_(denoms, eps)
        torch._foreach_addcdiv_(ps, exp_avgs, denoms, [-(lr / (1 - beta1 ** t)) for t in steps])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``:
    :math:`\\theta \\leftarrow (1-\\gamma\\lambda)\\theta` before each Adam step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, foreach=None, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, decoupled_weight_decay=True)


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
