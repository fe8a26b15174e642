r"""Learning-rate schedules, written once for both backends.

A scheduler only reads and writes ``optimizer.param_groups[i]["lr"]`` (one-cycle and
cyclic also ``"momentum"`` or ``"betas"``), so the same classes drive a
``course_lib.numpy.optim`` optimizer, a ``course_lib.torch.optim`` one or any
``torch.optim`` one. Usage follows ``torch.optim.lr_scheduler``: build the scheduler after
the optimizer (this sets the step-0 learning rate), then call ``scheduler.step()`` once
per epoch (or per batch for one-cycle and cyclic), *after* ``optimizer.step()``.

As in PyTorch, most schedules are *chainable*: ``get_lr()`` computes the next learning
rate from the group's current one (``StepLR`` multiplies it by ``gamma`` at each
multiple of ``step_size``, ``CosineAnnealingLR`` moves it along the cosine by the ratio
of two consecutive cosine values, ...). So a learning rate changed by hand mid-run is
the starting point of the next steps, and two schedulers on one optimizer compose: each
step multiplies in its factor. The closed form of each, a function of the step count
:math:`t` and the initial learning rate :math:`\gamma_0` only, is
``_get_closed_form_lr()`` (the module-level functions ``step_lr``,
``cosine_annealing_lr``, ... compute it, handy for plotting); without interference both
agree to a few roundings. ``LambdaLR``, ``CyclicLR``, ``OneCycleLR`` and
``CosineAnnealingWarmRestarts`` set the value from the base rate at every step, as in
torch. The schedulers in :mod:`course_lib.core.cyclic_schedules` follow the same rules.
"""
from __future__ import annotations

import copy
import math
import numbers
import types
from bisect import bisect_right
from collections import Counter

from course_lib.core.validate import check_choice, check_number

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR",
           "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
           "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau",
           "step_lr", "multistep_lr", "constant_lr", "exponential_lr", "cosine_annealing_lr",
           "linear_lr", "polynomial_lr", "cosine_anneal", "linear_anneal"]


# --- the closed forms -------------------------------------------------------------------

def step_lr(base_lr, epoch, step_size, gamma):
    r""":math:`\gamma_0\, \text{gamma}^{\lfloor t / \text{step\_size} \rfloor}`."""
    return base_lr * gamma ** (epoch // step_size)


def multistep_lr(base_lr, epoch, milestones, gamma):
    r""":math:`\gamma_0\, \text{gamma}^{k}`, :math:`k` = number of milestones
    :math:`\le t` (``milestones`` sorted; a repeated milestone counts twice)."""
    return base_lr * gamma ** bisect_right(milestones, epoch)


def constant_lr(base_lr, epoch, factor, total_iters):
    r""":math:`\gamma_0\,\text{factor}` for :math:`t < T`, then :math:`\gamma_0`."""
    return base_lr * (factor + (epoch >= total_iters) * (1 - factor))


def exponential_lr(base_lr, epoch, gamma):
    r""":math:`\gamma_0\, \text{gamma}^{t}`."""
    return base_lr * gamma ** epoch


def cosine_annealing_lr(base_lr, epoch, T_max, eta_min=0.0):
    r""":math:`\eta_{min} + (\gamma_0 - \eta_{min})\,(1 + \cos(\pi t / T_{max}))/2`.

    Loshchilov & Hutter (2017), "SGDR: stochastic gradient descent with warm restarts",
    ICLR (without the restarts; past ``T_max`` the cosine goes back up, as in torch).
    """
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2


def linear_lr(base_lr, epoch, start_factor, end_factor, total_iters):
    r""":math:`\gamma_0\,(s + (e - s)\,\min(t, T)/T)`: a linear ramp of the factor from
    ``start_factor`` :math:`s` to ``end_factor`` :math:`e` over ``total_iters`` :math:`T`
    steps (a warm-up when :math:`s < e`, Goyal et al. 2017, "Accurate, large minibatch
    SGD: training ImageNet in 1 hour", arXiv:1706.02677)."""
    return base_lr * (start_factor
                      + (end_factor - start_factor) * min(total_iters, epoch) / total_iters)


def polynomial_lr(base_lr, epoch, total_iters, power):
    r""":math:`\gamma_0\,(1 - \min(t, T)/T)^{p}`: down to 0 at step :math:`T`."""
    return base_lr * (1.0 - min(total_iters, epoch) / total_iters) ** power


def cosine_anneal(start, end, pct):
    """Cosine interpolation from ``start`` (``pct = 0``) to ``end`` (``pct = 1``)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def linear_anneal(start, end, pct):
    """Linear interpolation from ``start`` (``pct = 0``) to ``end`` (``pct = 1``)."""
    return (end - start) * pct + start


# --- shared machinery -------------------------------------------------------------------

def _check_optimizer(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g
                                               for g in groups):
        raise TypeError("optimizer must have param_groups, a list of dicts with an 'lr' "
                        f"entry (an Optimizer), got {type(optimizer).__name__}")
    return optimizer


def _copy_value(value):
    """A group's lr (a float, or a tensor in a torch.optim group), not aliased."""
    return value.clone() if hasattr(value, "clone") else value


def _group_values(optimizer, key):
    return [_copy_value(group[key]) for group in optimizer.param_groups]


def _set_group_value(group, key, value):
    """Set ``group[key]``; a tensor lr is filled in place, as torch does."""
    if hasattr(group[key], "fill_"):
        group[key].fill_(float(value))
    else:
        group[key] = value


def _per_group(name, value, optimizer, low=0.0):
    """A scalar repeated for every group, or a list/tuple with one value per group."""
    groups = optimizer.param_groups
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"{name} must have one value per param group ({len(groups)}), "
                             f"got {len(value)}")
        return [check_number(f"{name}[{i}]", v, low=low) for i, v in enumerate(value)]
    return [check_number(name, value, low=low)] * len(groups)


def _lambdas(optimizer, lr_lambda):
    groups = optimizer.param_groups
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != len(groups):
            raise ValueError(f"lr_lambda must have one function per param group "
                             f"({len(groups)}), got {len(lr_lambda)}")
        fns = list(lr_lambda)
    else:
        fns = [lr_lambda] * len(groups)
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"lr_lambda must be a function (of the step count) or a list of "
                            f"them, got {type(fn).__name__} {fn!r}")
    return fns


def _check_schedulers(optimizer, schedulers, who):
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError("schedulers must hold at least one scheduler")
    for i, s in enumerate(schedulers):
        if isinstance(s, ReduceLROnPlateau) or not hasattr(s, "optimizer"):
            raise TypeError(f"schedulers[{i}] must be a step-count scheduler "
                            f"(not {type(s).__name__}): {who} calls step() without a metric")
        if optimizer is not None and s.optimizer is not optimizer:
            raise ValueError(f"schedulers[{i}] drives a different optimizer")
    return schedulers


class _SchedulerState:
    """What every scheduler keeps: the last learning rates and a state dict."""

    def get_last_lr(self):
        """The learning rates set by the last ``step()``, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (save the optimizer's own state separately), as
        torch's; a copy, so later steps do not change it."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(copy.deepcopy(state_dict))


class _LambdaState:
    """State dicts without the lambdas (functions do not pickle); a callable object's
    attributes are saved instead, as torch does."""

    def state_dict(self):
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType)
                               else copy.deepcopy(fn.__dict__) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        saved = state_dict.pop("lr_lambdas")
        super().load_state_dict(state_dict)
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(copy.deepcopy(attributes))


# --- the schedulers ---------------------------------------------------------------------

class LRScheduler(_SchedulerState):
    """Base class, torch's ``LRScheduler``: ``step()`` advances ``last_epoch`` and sets
    every group's ``lr`` to ``get_lr()``.

    The constructor takes the first step (``last_epoch`` -1 -> 0) in an "initial" mode
    (``_is_initial``), in which the chainable rules leave the learning rate as it is
    unless the schedule starts elsewhere (``LinearLR``'s ``start_factor``).
    ``_step_count`` counts the calls to ``step()`` including that one.

    Parameters
    ----------
    optimizer : Optimizer
        Anything with ``param_groups``. Each group's starting ``lr`` is remembered as
        ``group["initial_lr"]`` (``base_lrs``).
    last_epoch : int, default -1
        The last step already taken: -1 starts fresh; a value >= 0 resumes and needs
        ``initial_lr`` in the groups.
    """

    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = _check_optimizer(optimizer)
        check_number("last_epoch", last_epoch, low=-1, integer=True)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy_value(group["lr"]))
        elif any("initial_lr" not in g for g in optimizer.param_groups):
            raise ValueError(f"last_epoch={last_epoch} resumes a schedule, but the "
                             "optimizer's param_groups have no 'initial_lr'")
        self.base_lrs = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """The learning rates for the new ``last_epoch`` (the chainable rule)."""
        raise NotImplementedError

    def step(self):
        """Advance one step and set the groups' learning rates."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch=None):
        """One step (``epoch=None``), or a jump to ``epoch`` with the closed form where
        there is one (``SequentialLR`` restarts a scheduler with ``epoch=0``)."""
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _set_group_value(group, "lr", lr)
        self._last_lr = _group_values(self.optimizer, "lr")

    def _current(self):
        return _group_values(self.optimizer, "lr")

    def _scaled(self, factor):
        return [group["lr"] * factor for group in self.optimizer.param_groups]


class LambdaLR(_LambdaState, LRScheduler):
    r""":math:`\gamma_t = \gamma_0\, \lambda(t)` for a function ``lr_lambda`` of the step
    count (one per group, or one for all). Not chainable (set from the base rate).

    ``state_dict()`` saves a lambda as ``None`` and a callable object's attributes.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * fn(self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class MultiplicativeLR(_LambdaState, LRScheduler):
    r""":math:`\gamma_t = \gamma_{t-1}\, \lambda(t)`: multiply the current learning rate by
    ``lr_lambda(t)`` at every step after the first (chainable)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current()
        return [group["lr"] * fn(self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps; closed form
    :func:`step_lr`."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = check_number("step_size", step_size, low=1, integer=True)
        self.gamma = check_number("gamma", gamma, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current()
        return self._scaled(self.gamma)

    def _get_closed_form_lr(self):
        return [step_lr(b, self.last_epoch, self.step_size, self.gamma) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone (twice at a milestone
    listed twice); closed form :func:`multistep_lr`."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        for i, m in enumerate(milestones):
            check_number(f"milestones[{i}]", m, low=0, integer=True)
        self.milestones = Counter(milestones)
        self.gamma = check_number("gamma", gamma, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current()
        return self._scaled(self.gamma ** self.milestones[self.last_epoch])

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [multistep_lr(b, self.last_epoch, milestones, self.gamma)
                for b in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply the learning rate by ``factor`` for the first ``total_iters`` steps, then
    divide it back; closed form :func:`constant_lr`.

    ``factor`` must be in (0, 1]: torch accepts 0 and then divides by it at step
    ``total_iters``.
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor = check_number("factor", factor, low=0.0, low_open=True, high=1.0)
        self.total_iters = check_number("total_iters", total_iters, low=1, integer=True)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self._scaled(self.factor)
        if self.last_epoch != self.total_iters:
            return self._current()
        return self._scaled(1.0 / self.factor)

    def _get_closed_form_lr(self):
        return [constant_lr(b, self.last_epoch, self.factor, self.total_iters)
                for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Ramp the lr factor linearly from ``start_factor`` to ``end_factor`` in
    ``total_iters`` steps, then hold it (a warm-up by default); closed form
    :func:`linear_lr`. Each step multiplies the current rate by the ratio of two
    consecutive factors."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor = check_number("start_factor", start_factor, low=0.0,
                                         low_open=True, high=1.0)
        self.end_factor = check_number("end_factor", end_factor, low=0.0, high=1.0)
        self.total_iters = check_number("total_iters", total_iters, low=1, integer=True)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self._scaled(self.start_factor)
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current()
        change = self.end_factor - self.start_factor
        return self._scaled(1.0 + change / (self.total_iters * self.start_factor
                                            + (self.last_epoch - 1) * change))

    def _get_closed_form_lr(self):
        return [linear_lr(b, self.last_epoch, self.start_factor, self.end_factor,
                          self.total_iters) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every step; closed form
    :func:`exponential_lr`."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = check_number("gamma", gamma, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self._current() if self._is_initial else self._scaled(self.gamma)

    def _get_closed_form_lr(self):
        return [exponential_lr(b, self.last_epoch, self.gamma) for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay the learning rate polynomially to 0 in ``total_iters`` steps, then hold it;
    closed form :func:`polynomial_lr` (``power=1``: linear)."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = check_number("total_iters", total_iters, low=1, integer=True)
        self.power = check_number("power", power, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current()
        decay = ((1.0 - self.last_epoch / self.total_iters)
                 / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return self._scaled(decay)

    def _get_closed_form_lr(self):
        return [polynomial_lr(b, self.last_epoch, self.total_iters, self.power)
                for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Half a cosine from the initial lr down to ``eta_min`` over ``T_max`` steps (then
    back up); closed form :func:`cosine_annealing_lr`. Each step moves the current rate
    by the ratio :math:`(1+\cos(\pi t/T))/(1+\cos(\pi(t-1)/T))` of the distances to
    ``eta_min``, as torch; at the bottom of the cosine (where that ratio is 0/0) it
    adds the closed form's increment instead."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = check_number("T_max", T_max, low=1, integer=True)
        self.eta_min = check_number("eta_min", eta_min, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self._is_initial:
            return self._current()
        if self._step_count == 1 and self.last_epoch > 0:  # resumed with last_epoch > 0
            return [self.eta_min + (base_lr - self.eta_min)
                    * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                    for base_lr in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max))
                    / 2 for base_lr, group in zip(self.base_lrs, groups, strict=True)]
        ratio = ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                 / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]

    def _get_closed_form_lr(self):
        return [cosine_annealing_lr(b, self.last_epoch, self.T_max, self.eta_min)
                for b in self.base_lrs]


class _NestedState(_SchedulerState):
    """State dicts of a scheduler of schedulers: each child's own state dict inside."""

    def state_dict(self):
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items()
                 if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        for s, saved in zip(self._schedulers, state_dict.pop("_schedulers"), strict=True):
            s.load_state_dict(saved)
        self.__dict__.update(copy.deepcopy(state_dict))


class SequentialLR(_NestedState):
    """Run ``schedulers`` one after the other, switching at ``milestones`` (step counts).

    At each milestone the next scheduler restarts at its own step 0 (with its closed
    form where it has one), e.g. ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
    CosineAnnealingLR(opt, 95)], milestones=[5])`` is a 5-step linear warm-up followed by
    a cosine decay. The schedulers must be built on the same optimizer; the steps their
    constructors took are undone here, as in ``torch.optim.lr_scheduler.SequentialLR``.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        self.optimizer = _check_optimizer(optimizer)
        schedulers = _check_schedulers(optimizer, schedulers, "SequentialLR")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones must have len(schedulers) - 1 = "
                             f"{len(schedulers) - 1} entries, got {len(milestones)}")
        for i, m in enumerate(milestones):
            check_number(f"milestones[{i}]", m, low=1, integer=True)
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            _set_group_value(group, "lr", group["initial_lr"])
        self._undo_steps(self)
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def _undo_steps(self, scheduler):
        """Undo the step every constructor took, inside nested schedulers too."""
        if hasattr(scheduler, "_schedulers"):
            for s in scheduler._schedulers:
                self._undo_steps(s)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_NestedState):
    """Step several schedulers at once: each ``step()`` steps every one of them in order,
    so their factors multiply (chainable schedules) on the same optimizer, e.g.
    ``ChainedScheduler([ConstantLR(opt, 0.1, total_iters=2), ExponentialLR(opt, 0.9)])``.
    Arguments (``schedulers`` first) are ``torch.optim.lr_scheduler.ChainedScheduler``'s.
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if optimizer is None and schedulers:
            optimizer = getattr(schedulers[0], "optimizer", None)
        self._schedulers = _check_schedulers(optimizer, schedulers, "ChainedScheduler")
        self.optimizer = _check_optimizer(optimizer)
        self._last_lr = _group_values(self.optimizer, "lr")

    def step(self):
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _group_values(self.optimizer, "lr")


class ReduceLROnPlateau(_SchedulerState):
    """Divide the learning rate when a metric stops improving.

    ``step(metric)`` after each validation: when the metric has not improved by more than
    ``threshold`` for more than ``patience`` steps, every group's lr becomes
    ``max(lr * factor, min_lr)`` (changes smaller than ``eps`` are skipped), then
    ``cooldown`` steps pass before bad steps count again. "Improved" in mode ``"min"``
    with ``threshold_mode="rel"`` means ``metric < best * (1 - threshold)``; ``"abs"``:
    ``metric < best - threshold``; mode ``"max"`` mirrors both. A scalar ``min_lr`` also
    covers groups added to the optimizer later; a list must then be extended by hand
    (``min_lrs``). Arguments and behaviour are
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        self.optimizer = _check_optimizer(optimizer)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.factor = check_number("factor", factor, low=0.0, high=1.0, high_open=True)
        self.patience = check_number("patience", patience, low=0, integer=True)
        self.threshold = check_number("threshold", threshold, low=0.0)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_number("cooldown", cooldown, low=0, integer=True)
        self.eps = check_number("eps", eps, low=0.0)
        groups = optimizer.param_groups
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group("min_lr", min_lr, optimizer)
        else:
            self.default_min_lr = check_number("min_lr", min_lr, low=0.0)
            self.min_lrs = [self.default_min_lr] * len(groups)
        self.last_epoch = 0
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = _group_values(optimizer, "lr")

    def _is_better(self, metric):
        if self.mode == "min":
            bar = (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                   else self.best - self.threshold)
            return metric < bar
        bar = (self.best * (self.threshold + 1.0) if self.threshold_mode == "rel"
               else self.best + self.threshold)
        return metric > bar

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics):
        """Record one value of the monitored metric (a number, or a 0-d array/tensor)."""
        if isinstance(metrics, (str, bytes, bool)) or not (
                isinstance(metrics, numbers.Real) or getattr(metrics, "ndim", None) == 0
                or getattr(metrics, "shape", None) == (1,)):
            raise TypeError("metrics must be a number (a float, or a 0-d array or tensor), "
                            f"got {type(metrics).__name__} {metrics!r}")
        current = float(metrics.detach() if hasattr(metrics, "detach") else metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_values(self.optimizer, "lr")

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"the optimizer has {len(groups)} param groups, min_lr had "
                    f"{len(self.min_lrs)} values (a group was added): set min_lrs, one "
                    "per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                _set_group_value(group, "lr", new_lr)
