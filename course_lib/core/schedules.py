r"""Learning-rate schedules, written once for both backends.

A scheduler only reads and writes ``optimizer.param_groups[i]["lr"]`` (one-cycle also
``"momentum"`` or ``"betas"``), so the same classes drive a ``course_lib.numpy.optim``
optimizer, a ``course_lib.torch.optim`` one or any ``torch.optim`` one. Usage follows
``torch.optim.lr_scheduler``: build the scheduler after the optimizer (this sets the
epoch-0 learning rate), then call ``scheduler.step()`` once per epoch (or per batch for
one-cycle), *after* ``optimizer.step()``.

Each schedule is a closed-form function of the step count :math:`t` and the initial
learning rate :math:`\gamma_0` (the module-level functions ``step_lr``,
``cosine_annealing_lr``, ..., handy for plotting). PyTorch computes most of them
recursively from the previous learning rate; both agree to about 1e-15 relative (a few
rounding errors). Because the value is set, not multiplied, two of these schedulers do
not *chain* on one optimizer at the same time; use :class:`SequentialLR` for phases.
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections import Counter

from course_lib.core.validate import check_choice, check_number

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR",
           "step_lr", "multistep_lr", "exponential_lr", "cosine_annealing_lr", "linear_lr",
           "cosine_anneal", "linear_anneal"]


# --- the formulas -----------------------------------------------------------------------

def step_lr(base_lr, epoch, step_size, gamma):
    r""":math:`\gamma_0\, \text{gamma}^{\lfloor t / \text{step\_size} \rfloor}`."""
    return base_lr * gamma ** (epoch // step_size)


def multistep_lr(base_lr, epoch, milestones, gamma):
    r""":math:`\gamma_0\, \text{gamma}^{k}`, :math:`k` = number of milestones
    :math:`\le t` (``milestones`` sorted; a repeated milestone counts twice)."""
    return base_lr * gamma ** bisect_right(milestones, epoch)


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


def cosine_anneal(start, end, pct):
    """Cosine interpolation from ``start`` (``pct = 0``) to ``end`` (``pct = 1``)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def linear_anneal(start, end, pct):
    """Linear interpolation from ``start`` (``pct = 0``) to ``end`` (``pct = 1``)."""
    return (end - start) * pct + start


# --- the schedulers ---------------------------------------------------------------------

def _check_optimizer(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g
                                               for g in groups):
        raise TypeError("optimizer must have param_groups, a list of dicts with an 'lr' "
                        f"entry (an Optimizer), got {type(optimizer).__name__}")
    return optimizer


class _SchedulerState:
    """What every scheduler keeps: the last learning rates and a state dict."""

    def get_last_lr(self):
        """The learning rates set by the last ``step()``, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (save the optimizer's own state separately)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(copy.deepcopy(state_dict))


class LRScheduler(_SchedulerState):
    """Base class: ``step()`` advances ``last_epoch`` and sets every group's ``lr`` to
    ``get_lr()``, the closed form at ``last_epoch``.

    Parameters
    ----------
    optimizer : Optimizer
        Anything with ``param_groups``. Each group's starting ``lr`` is remembered as
        ``group["initial_lr"]`` (``base_lrs``).
    last_epoch : int, default -1
        The last step already taken: -1 starts fresh (the constructor then sets the
        step-0 learning rate); a value >= 0 resumes and needs ``initial_lr`` in the groups.
    """

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = _check_optimizer(optimizer)
        check_number("last_epoch", last_epoch, low=-1, integer=True)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        elif any("initial_lr" not in g for g in optimizer.param_groups):
            raise ValueError(f"last_epoch={last_epoch} resumes a schedule, but the "
                             "optimizer's param_groups have no 'initial_lr'")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, epoch):
        """The learning rate of every group at step ``epoch`` (the closed form)."""
        raise NotImplementedError

    def get_lr(self):
        """The learning rates for the current ``last_epoch``."""
        return self.lr_at(self.last_epoch)

    def step(self):
        """Advance one step and set the groups' learning rates."""
        self.last_epoch += 1
        self._apply(self.get_lr())

    def _restart_at(self, epoch):
        """Jump to ``epoch`` (``SequentialLR`` restarts a scheduler at 0)."""
        self.last_epoch = epoch
        self._apply(self.get_lr())

    def _apply(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps: :func:`step_lr`."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = check_number("step_size", step_size, low=1, integer=True)
        self.gamma = check_number("gamma", gamma, low=0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [step_lr(b, epoch, self.step_size, self.gamma) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone: :func:`multistep_lr`."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        for i, m in enumerate(milestones):
            check_number(f"milestones[{i}]", m, low=0, integer=True)
        self.milestones = Counter(milestones)
        self.gamma = check_number("gamma", gamma, low=0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        milestones = sorted(self.milestones.elements())
        return [multistep_lr(b, epoch, milestones, self.gamma) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every step: :func:`exponential_lr`."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = check_number("gamma", gamma, low=0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [exponential_lr(b, epoch, self.gamma) for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the initial lr down to ``eta_min`` over ``T_max`` steps:
    :func:`cosine_annealing_lr`."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = check_number("T_max", T_max, low=1, integer=True)
        self.eta_min = check_number("eta_min", eta_min, low=0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [cosine_annealing_lr(b, epoch, self.T_max, self.eta_min)
                for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Ramp the lr factor linearly from ``start_factor`` to ``end_factor`` in
    ``total_iters`` steps, then hold it (a warm-up by default): :func:`linear_lr`."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor = check_number("start_factor", start_factor, low=0.0,
                                         low_open=True, high=1.0)
        self.end_factor = check_number("end_factor", end_factor, low=0.0, high=1.0)
        self.total_iters = check_number("total_iters", total_iters, low=1, integer=True)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [linear_lr(b, epoch, self.start_factor, self.end_factor, self.total_iters)
                for b in self.base_lrs]


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
    with :func:`cosine_anneal` or :func:`linear_anneal`. Stepping past ``total_steps``
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
        check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        check_number("div_factor", div_factor, low=0.0, low_open=True)
        check_number("final_div_factor", final_div_factor, low=0.0, low_open=True)
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = cycle_momentum

        up_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._phases = [
                (up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2,
                 "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]

        groups = optimizer.param_groups
        max_lrs = self._per_group("max_lr", max_lr, groups)
        if last_epoch == -1:
            for group, lr in zip(groups, max_lrs):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            defaults = getattr(optimizer, "defaults", groups[0])
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError("cycle_momentum=True needs an optimizer with momentum or "
                                 "betas (SGD, RMSprop, Adam, ...)")
            self.use_beta1 = "betas" in defaults
            if last_epoch == -1:
                for group, m_max, m_base in zip(
                        groups, self._per_group("max_momentum", max_momentum, groups),
                        self._per_group("base_momentum", base_momentum, groups)):
                    self._set_momentum(group, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _per_group(name, value, groups):
        values = list(value) if isinstance(value, (list, tuple)) else [value] * len(groups)
        if len(values) != len(groups):
            raise ValueError(f"{name} must have one value per param group ({len(groups)}), "
                             f"got {len(values)}")
        for i, v in enumerate(values):
            check_number(f"{name}[{i}]" if isinstance(value, (list, tuple)) else name, v,
                         low=0.0)
        return values

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _phase_values(self, epoch, group):
        """(lr, momentum) at step ``epoch`` for one group."""
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {epoch} times; total_steps is "
                             f"{self.total_steps}")
        anneal = cosine_anneal if self.anneal_strategy == "cos" else linear_anneal
        start_step = 0.0
        for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
            if epoch <= end_step or i == len(self._phases) - 1:
                pct = (epoch - start_step) / (end_step - start_step)
                lr = anneal(group[lr_from], group[lr_to], pct)
                momentum = (anneal(group[m_from], group[m_to], pct)
                            if self.cycle_momentum else None)
                return lr, momentum
            start_step = end_step

    def lr_at(self, epoch):
        return [self._phase_values(epoch, g)[0] for g in self.optimizer.param_groups]

    def _apply(self, lrs):
        if self.cycle_momentum:
            for group in self.optimizer.param_groups:
                self._set_momentum(group, self._phase_values(self.last_epoch, group)[1])
        super()._apply(lrs)


class ReduceLROnPlateau(_SchedulerState):
    """Divide the learning rate when a metric stops improving.

    ``step(metric)`` after each validation: when the metric has not improved by more than
    ``threshold`` for more than ``patience`` steps, every group's lr becomes
    ``max(lr * factor, min_lr)`` (changes smaller than ``eps`` are skipped), then
    ``cooldown`` steps pass before bad steps count again. "Improved" in mode ``"min"``
    with ``threshold_mode="rel"`` means ``metric < best * (1 - threshold)``; ``"abs"``:
    ``metric < best - threshold``; mode ``"max"`` mirrors both. Arguments and behaviour
    are ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s.
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
            if len(min_lr) != len(groups):
                raise ValueError(f"min_lr must have one value per param group "
                                 f"({len(groups)}), got {len(min_lr)}")
            self.min_lrs = [check_number(f"min_lr[{i}]", v, low=0.0)
                            for i, v in enumerate(min_lr)]
        else:
            self.min_lrs = [check_number("min_lr", min_lr, low=0.0)] * len(groups)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = [g["lr"] for g in groups]

    def _is_better(self, metric):
        if self.mode == "min":
            bar = (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                   else self.best - self.threshold)
            return metric < bar
        bar = (self.best * (self.threshold + 1.0) if self.threshold_mode == "rel"
               else self.best + self.threshold)
        return metric > bar

    def step(self, metrics):
        """Record one value of the monitored metric (a float or a 0-dim tensor)."""
        current = float(metrics.detach() if hasattr(metrics, "detach") else metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]


class SequentialLR(_SchedulerState):
    """Run ``schedulers`` one after the other, switching at ``milestones`` (step counts).

    At each milestone the next scheduler restarts from its own step 0, e.g.
    ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt, 95)],
    milestones=[5])`` is a 5-step linear warm-up followed by a cosine decay. The
    schedulers must be built on the same optimizer (their constructors' steps are undone
    here), as in ``torch.optim.lr_scheduler.SequentialLR``.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        self.optimizer = _check_optimizer(optimizer)
        schedulers = list(schedulers)
        milestones = list(milestones)
        if not schedulers:
            raise ValueError("schedulers must hold at least one scheduler")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau) or not hasattr(s, "last_epoch"):
                raise TypeError(f"schedulers[{i}] must be a step-count scheduler "
                                f"(not {type(s).__name__})")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] drives a different optimizer")
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
            group["lr"] = group["initial_lr"]
        for s in schedulers:  # undo the step each constructor took
            s.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first.step()
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._restart_at(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

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
