r"""Cyclical learning-rate schedules, written once for both backends: warm restarts
(SGDR), Smith's cyclical learning rates and the one-cycle policy.

They follow the conventions of :mod:`course_lib.core.schedules` (build after the
optimizer, ``step()`` after ``optimizer.step()``; here usually once per *batch*), and
``torch.optim.lr_scheduler``'s arguments and arithmetic. None of them is chainable: each
step sets the learning rate from the base rates and the position in the cycle, so a
learning rate set by hand lasts until the next step, as in torch. ``CyclicLR`` and
``OneCycleLR`` also cycle the momentum (SGD's ``momentum`` or Adam's :math:`\beta_1`)
the opposite way: high momentum while the learning rate is low.
"""
from __future__ import annotations

import copy
import math
import types

from course_lib.core.schedules import (
    LRScheduler, _check_optimizer, _group_values, _per_group, _set_group_value, cosine_anneal,
    linear_anneal,
)
from course_lib.core.validate import check_choice, check_flag, check_number

__all__ = ["CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR"]


def _momentum_key(optimizer):
    """``True`` when the momentum to cycle is Adam's beta1 (``betas``), ``False`` for
    SGD's ``momentum``; an error naming ``cycle_momentum`` when there is neither."""
    defaults = getattr(optimizer, "defaults", optimizer.param_groups[0])
    if "momentum" not in defaults and "betas" not in defaults:
        raise ValueError("cycle_momentum=True needs an optimizer with momentum or betas "
                         "(SGD, RMSprop, Adam, ...); pass cycle_momentum=False")
    return "betas" in defaults


def _set_momentum(group, use_beta1, value):
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR):

    .. math::

        \gamma = \eta_{min} + (\gamma_0 - \eta_{min})\,
                 \bigl(1 + \cos(\pi\, T_{cur} / T_i)\bigr) / 2

    where :math:`T_{cur}` counts the steps since the last restart and the :math:`i`-th
    cycle lasts :math:`T_i = T_0\, T_{mult}^{\,i}` steps; at the end of a cycle the
    learning rate jumps back to :math:`\gamma_0`. ``step(epoch)`` with a fractional epoch
    (``epoch + batch / batches``) anneals within an epoch. Loshchilov & Hutter (2017),
    "SGDR: stochastic gradient descent with warm restarts", ICLR.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        self.T_0 = check_number("T_0", T_0, low=1, integer=True)
        self.T_i = T_0
        self.T_mult = check_number("T_mult", T_mult, low=1, integer=True)
        self.eta_min = check_number("eta_min", eta_min, low=0.0)
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None):
        """Advance one step, or go to ``epoch`` (a number >= 0, fractions allowed)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            check_number("epoch", epoch, low=0)
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            _set_group_value(group, "lr", lr)
        self._last_lr = _group_values(self.optimizer, "lr")


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates: the lr goes linearly from ``base_lr`` up to ``max_lr``
    in ``step_size_up`` steps, back down in ``step_size_down`` (default: the same), and
    again. Call ``step()`` after every batch.

    With :math:`c = \lfloor 1 + t/S \rfloor` the cycle (:math:`S` the cycle length) and
    :math:`h \in [0, 1]` the height in the triangle,
    :math:`\gamma = \gamma_{base} + (\gamma_{max} - \gamma_{base})\, h\, s`, where the
    amplitude scale :math:`s` is 1 (``"triangular"``), :math:`1/2^{c-1}`
    (``"triangular2"``: halved every cycle) or :math:`\text{gamma}^{t}` (``"exp_range"``),
    or a custom ``scale_fn`` of the cycle (``scale_mode="cycle"``) or of the step
    (``"iterations"``). With ``cycle_momentum`` the momentum goes from ``max_momentum``
    down to ``base_momentum`` while the lr rises. Smith (2017), "Cyclical learning rates
    for training neural networks", WACV. Arguments are
    ``torch.optim.lr_scheduler.CyclicLR``'s; ``state_dict()`` saves a custom
    ``scale_fn`` as ``None`` (a function) or its attributes (a callable object).
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _check_optimizer(optimizer)
        check_number("last_epoch", last_epoch, low=-1, integer=True)
        base_lrs = _per_group("base_lr", base_lr, optimizer)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                _set_group_value(group, "lr", lr)
        self.max_lrs = _per_group("max_lr", max_lr, optimizer)
        up = float(check_number("step_size_up", step_size_up, low=1))
        down = up if step_size_down is None else float(
            check_number("step_size_down", step_size_down, low=1))
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if scale_fn is None:
            check_choice("mode", mode, ("triangular", "triangular2", "exp_range"))
        elif not callable(scale_fn):
            raise TypeError(f"scale_fn must be a function or None, got {type(scale_fn).__name__}")
        self.mode = mode
        self.gamma = check_number("gamma", gamma, low=0.0)
        self._scale_fn_custom = scale_fn
        self.scale_mode = check_choice("scale_mode", scale_mode, ("cycle", "iterations"))
        self._init_scale_mode()
        self.cycle_momentum = check_flag("cycle_momentum", cycle_momentum)
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer)
            self.base_momentums = _per_group("base_momentum", base_momentum, optimizer)
            self.max_momentums = _per_group("max_momentum", max_momentum, optimizer)
            if last_epoch == -1:
                for m_max, m_base, group in zip(self.max_momentums, self.base_momentums,
                                                optimizer.param_groups, strict=True):
                    _set_momentum(group, self.use_beta1, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_mode(self):
        if self._scale_fn_custom is None:  # each built-in mode fixes its scale mode
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x):
        """The amplitude scale at ``x`` (the cycle, or the step for ``exp_range``)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        at = cycle if self.scale_mode == "cycle" else self.last_epoch
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * self.scale_fn(at)
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True)]
        if self.cycle_momentum:
            for group, m_base, m_max in zip(self.optimizer.param_groups, self.base_momentums,
                                            self.max_momentums, strict=True):
                momentum = m_max - (m_max - m_base) * scale_factor * self.scale_fn(at)
                _set_momentum(group, self.use_beta1, momentum)
        return lrs

    def state_dict(self):
        state = super().state_dict()
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = (None if fn is None or isinstance(fn, types.FunctionType)
                                     else copy.deepcopy(fn.__dict__))
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        saved = state_dict.pop("_scale_fn_custom")
        fn = self._scale_fn_custom
        super().load_state_dict(state_dict)
        self._scale_fn_custom = fn
        if saved is not None:
            fn.__dict__.update(copy.deepcopy(saved))
        self._init_scale_mode()


class OneCycleLR(LRScheduler):
    r"""The one-cycle policy: lr up from ``max_lr / div_factor`` to ``max_lr`` during the
    first ``pct_start`` of the steps, then down to ``initial_lr / final_div_factor``;
    the momentum (SGD's ``momentum`` or Adam's :math:`\beta_1`) moves the opposite way
    between ``max_momentum`` and ``base_momentum``. Call ``step()`` after every batch.

    With ``three_phase=True``: up, back down to the initial lr (symmetric), then the
    final annihilation. Smith & Topin (2019), "Super-convergence: very fast training of
    neural networks using large learning rates", arXiv:1708.07120; Smith (2018), "A
    disciplined approach to neural network hyper-parameters", arXiv:1803.09820.

    Arguments and phase boundaries are ``torch.optim.lr_scheduler.OneCycleLR``'s; in a
    phase from step :math:`a` to :math:`b` the value is ``anneal(start, end, (t-a)/(b-a))``
    with :func:`~course_lib.core.schedules.cosine_anneal` or
    :func:`~course_lib.core.schedules.linear_anneal`. Stepping past ``total_steps``
    raises ``ValueError``.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None,
                 steps_per_epoch=None, pct_start=0.3, anneal_strategy="cos",
                 cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            self.total_steps = check_number("total_steps", total_steps, low=1, integer=True)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (check_number("epochs", epochs, low=1, integer=True)
                                * check_number("steps_per_epoch", steps_per_epoch, low=1,
                                               integer=True))
        else:
            raise ValueError("give total_steps, or epochs and steps_per_epoch")
        check_number("pct_start", pct_start, low=0.0, high=1.0)
        self._anneal_func_type = check_choice("anneal_strategy", anneal_strategy,
                                              ("cos", "linear"))
        check_number("div_factor", div_factor, low=0.0, low_open=True)
        check_number("final_div_factor", final_div_factor, low=0.0, low_open=True)
        self.cycle_momentum = check_flag("cycle_momentum", cycle_momentum)

        # torch's phase table (the same keys, so state dicts load either way)
        def phase(end_step, start_lr, end_lr, start_momentum, end_momentum):
            return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
                    "start_momentum": start_momentum, "end_momentum": end_momentum}

        up_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                phase(float(2 * pct_start * self.total_steps) - 2,
                      "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                phase(self.total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                      "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                phase(self.total_steps - 1, "max_lr", "min_lr", "base_momentum",
                      "max_momentum"),
            ]

        groups = optimizer.param_groups
        max_lrs = _per_group("max_lr", max_lr, optimizer)
        if last_epoch == -1:
            for group, lr in zip(groups, max_lrs):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer)
            if last_epoch == -1:
                for group, m_max, m_base in zip(
                        groups, _per_group("max_momentum", max_momentum, optimizer),
                        _per_group("base_momentum", base_momentum, optimizer)):
                    _set_momentum(group, self.use_beta1, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {step} times; total_steps is "
                             f"{self.total_steps}")
        anneal = cosine_anneal if self._anneal_func_type == "cos" else linear_anneal
        phases = self._schedule_phases
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        _set_momentum(group, self.use_beta1,
                                      anneal(group[phase["start_momentum"]],
                                             group[phase["end_momentum"]], pct))
                    break
                start_step = end_step
        return lrs
