"""Every scheduler against torch.optim.lr_scheduler 2.13, over random configurations.

Hypothesis draws the scheduler's arguments, the optimizer (SGD with momentum or Adam,
two parameter groups), a second scheduler on the same optimizer (composition) or none,
learning rates set by hand on some steps, and a step at which the run is interrupted and
resumed from state dicts (course_lib's own, or torch's scheduler state dicts: the
entries are the same). Each run is 200 steps, with course_lib's schedulers driving a
``course_lib.numpy`` and a ``course_lib.torch`` optimizer and torch's driving a
``torch.optim`` one. The arithmetic is the same Python float arithmetic in the same
order, so the learning rates (and cycled momenta) must be *equal*, not close.
"""
import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as torch_sched

from course_lib.numpy import optim as np_optim
from course_lib.numpy import schedules as np_sched
from course_lib.numpy.parameter import Parameter
from course_lib.torch import optim as th_optim
from course_lib.torch import schedules as th_sched

STEPS = 200
PROFILE = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                   phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=[HealthCheck.too_slow])
# keys torch keeps only to warn about get_lr() called outside step()
TORCH_ONLY_KEYS = {"_get_lr_called_within_step"}


class Power:
    """``lr_lambda(t) = base ** t``, a callable object: its attributes go into the state
    dict (a plain function's cannot)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, epoch):
        return self.base ** epoch


class InverseTime:
    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return 1.0 / (1.0 + self.rate * epoch)


unit = st.floats(0.0, 1.0)
positive_unit = st.floats(0.01, 1.0)
lambdas = st.one_of(st.builds(Power, st.floats(0.95, 1.0)),
                    st.builds(InverseTime, st.floats(0.0, 0.2)))

CHAINABLE = {
    "StepLR": st.fixed_dictionaries(dict(step_size=st.integers(1, 40),
                                         gamma=st.floats(0.1, 1.0))),
    "MultiStepLR": st.fixed_dictionaries(dict(
        milestones=st.lists(st.integers(0, STEPS), max_size=5), gamma=st.floats(0.1, 1.0))),
    "ConstantLR": st.fixed_dictionaries(dict(factor=positive_unit,
                                             total_iters=st.integers(1, 60))),
    "LinearLR": st.fixed_dictionaries(dict(start_factor=positive_unit, end_factor=unit,
                                           total_iters=st.integers(1, 120))),
    "ExponentialLR": st.fixed_dictionaries(dict(gamma=st.floats(0.95, 1.0))),
    "PolynomialLR": st.fixed_dictionaries(dict(total_iters=st.integers(1, 250),
                                               power=st.floats(0.0, 3.0))),
    "CosineAnnealingLR": st.fixed_dictionaries(dict(T_max=st.integers(1, 120),
                                                    eta_min=st.floats(0.0, 0.01))),
    "MultiplicativeLR": st.fixed_dictionaries(dict(lr_lambda=st.one_of(
        lambdas, st.lists(lambdas, min_size=2, max_size=2)))),
}
SCHEDULERS = {
    **CHAINABLE,
    "LambdaLR": st.fixed_dictionaries(dict(lr_lambda=st.one_of(
        lambdas, st.lists(lambdas, min_size=2, max_size=2)))),
    "CosineAnnealingWarmRestarts": st.fixed_dictionaries(dict(
        T_0=st.integers(1, 60), T_mult=st.integers(1, 3), eta_min=st.floats(0.0, 0.01))),
    "CyclicLR": st.fixed_dictionaries(dict(
        base_lr=st.floats(1e-4, 0.01), max_lr=st.one_of(st.floats(0.02, 1.0),
                                                         st.lists(st.floats(0.02, 1.0),
                                                                  min_size=2, max_size=2)),
        step_size_up=st.integers(1, 50), step_size_down=st.one_of(st.none(),
                                                                  st.integers(1, 50)),
        mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
        gamma=st.floats(0.95, 1.0), cycle_momentum=st.booleans(),
        base_momentum=st.floats(0.5, 0.8), max_momentum=st.floats(0.8, 0.95))),
    "OneCycleLR": st.fixed_dictionaries(dict(
        max_lr=st.one_of(st.floats(0.01, 1.0), st.lists(st.floats(0.01, 1.0),
                                                        min_size=2, max_size=2)),
        total_steps=st.integers(STEPS, 2 * STEPS), pct_start=st.floats(0.1, 0.9),
        anneal_strategy=st.sampled_from(["cos", "linear"]), cycle_momentum=st.booleans(),
        base_momentum=st.floats(0.5, 0.85), max_momentum=st.floats(0.85, 0.95),
        div_factor=st.floats(2.0, 50.0), final_div_factor=st.floats(10.0, 1e4),
        three_phase=st.booleans())),
}


@st.composite
def chainable_spec(draw):
    name = draw(st.sampled_from(sorted(CHAINABLE)))
    return (name, draw(CHAINABLE[name]))


@st.composite
def sequential_spec(draw):
    children = draw(st.lists(chainable_spec(), min_size=2, max_size=3))
    milestones = sorted(draw(st.sets(st.integers(1, STEPS - 1), min_size=len(children) - 1,
                                     max_size=len(children) - 1)))
    return ("SequentialLR", dict(schedulers=children, milestones=milestones))


@st.composite
def chained_spec(draw):
    return ("ChainedScheduler",
            dict(schedulers=draw(st.lists(chainable_spec(), min_size=2, max_size=3))))


def spec_of(name):
    if name == "SequentialLR":
        return sequential_spec()
    if name == "ChainedScheduler":
        return chained_spec()
    return SCHEDULERS[name].map(lambda kwargs: (name, kwargs))


def build(module, optimizer, spec):
    name, kwargs = spec
    if name == "SequentialLR":
        children = [build(module, optimizer, s) for s in kwargs["schedulers"]]
        return module.SequentialLR(optimizer, children, kwargs["milestones"])
    if name == "ChainedScheduler":
        return module.ChainedScheduler([build(module, optimizer, s)
                                        for s in kwargs["schedulers"]], optimizer)
    kwargs = copy.deepcopy(kwargs)  # each run gets its own lambda objects
    return getattr(module, name)(optimizer, **kwargs)


@st.composite
def runs(draw, name):
    return dict(
        spec=draw(spec_of(name)),
        second=draw(st.one_of(st.none(), chainable_spec())),  # composed on one optimizer
        optimizer=draw(st.sampled_from(["SGD", "Adam"])),
        lrs=(draw(st.floats(1e-3, 1.0)), draw(st.floats(1e-3, 1.0))),
        manual={draw(st.integers(1, STEPS - 1)): (draw(st.integers(0, 1)),
                                                  draw(st.floats(1e-3, 1.0)))
                for _ in range(draw(st.integers(0, 3)))},
        resume_at=draw(st.integers(1, STEPS - 1)),
        from_torch=draw(st.booleans()))  # resume from torch's scheduler state dicts


def make_optimizer(module, kind, lrs):
    if module is np_optim:
        params = [Parameter(np.zeros(2)), Parameter(np.zeros(3))]
    else:
        params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    groups = [{"params": [params[0]], "lr": lrs[0]}, {"params": [params[1]], "lr": lrs[1]}]
    if kind == "SGD":
        return module.SGD(groups, lr=lrs[0], momentum=0.9)
    return module.Adam(groups, lr=lrs[0])


def group_values(optimizer):
    """What a scheduler may write: lr, momentum, beta1 of every group."""
    return [(g["lr"], g.get("momentum"), g.get("betas", (None,))[0])
            for g in optimizer.param_groups]


def keys(state):
    return set(state) - TORCH_ONLY_KEYS


def assert_same_state_keys(ours, ref):
    """Our state dict has torch's entries (those of nested schedulers too)."""
    assert keys(ours) == keys(ref), (keys(ours) ^ keys(ref))
    for mine, theirs in zip(ours.get("_schedulers", []), ref.get("_schedulers", [])):
        assert_same_state_keys(mine, theirs)


class Runner:
    """One optimizer and its schedulers (one or two)."""

    def __init__(self, sched_module, optim_module, run):
        self.sched_module, self.optim_module, self.run = sched_module, optim_module, run
        self.optimizer = make_optimizer(optim_module, run["optimizer"], run["lrs"])
        self.schedulers = [build(sched_module, self.optimizer, run["spec"])]
        if run["second"] is not None:
            self.schedulers.append(build(sched_module, self.optimizer, run["second"]))

    def step(self):
        for s in self.schedulers:
            s.step()

    def resume(self, source):
        """Save the optimizer's and the schedulers' state dicts, build everything again
        (which resets the learning rates) and load them: torch's checkpoint recipe. The
        schedulers' state dicts come from ``source``: this runner, or torch's."""
        saved_optimizer = copy.deepcopy(self.optimizer.state_dict())
        saved = [copy.deepcopy(s.state_dict()) for s in source.schedulers]
        fresh = Runner(self.sched_module, self.optim_module, self.run)
        fresh.optimizer.load_state_dict(saved_optimizer)
        for s, state in zip(fresh.schedulers, saved):
            s.load_state_dict(state)
        self.optimizer, self.schedulers = fresh.optimizer, fresh.schedulers


def race(name, run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that optimizer.step() never ran
        ref = Runner(torch_sched, torch.optim, run)
        ours = [Runner(np_sched, np_optim, run), Runner(th_sched, th_optim, run)]
        for runner in ours:
            assert group_values(runner.optimizer) == group_values(ref.optimizer)
            for mine, theirs in zip(runner.schedulers, ref.schedulers):
                assert_same_state_keys(mine.state_dict(), theirs.state_dict())
        for step in range(1, STEPS + 1):
            if step in run["manual"]:  # a learning rate set by hand
                group, lr = run["manual"][step]
                for runner in [ref, *ours]:
                    runner.optimizer.param_groups[group]["lr"] = lr
            if step == run["resume_at"]:
                for runner in ours:
                    runner.resume(ref if run["from_torch"] else runner)
            for runner in [ref, *ours]:
                runner.step()
            expected = group_values(ref.optimizer)
            for runner in ours:
                assert group_values(runner.optimizer) == expected, (step, runner.sched_module)
                for mine, theirs in zip(runner.schedulers, ref.schedulers):
                    assert mine.get_last_lr() == theirs.get_last_lr(), step


@pytest.mark.parametrize("name", [*SCHEDULERS, "SequentialLR", "ChainedScheduler"])
def test_scheduler_matches_torch_over_random_runs(name):
    @PROFILE
    @given(run=runs(name))
    def check(run):
        race(name, run)

    check()


@st.composite
def plateau_runs(draw):
    min_lr = draw(st.one_of(st.floats(0.0, 0.01),
                            st.lists(st.floats(0.0, 0.01), min_size=2, max_size=2)))
    options = dict(mode=draw(st.sampled_from(["min", "max"])), factor=draw(st.floats(0.0, 0.9)),
                   patience=draw(st.integers(0, 5)), threshold=draw(st.floats(0.0, 0.1)),
                   threshold_mode=draw(st.sampled_from(["rel", "abs"])),
                   cooldown=draw(st.integers(0, 3)), min_lr=min_lr,
                   eps=draw(st.sampled_from([1e-8, 1e-3])))
    return dict(options=options, optimizer=draw(st.sampled_from(["SGD", "Adam"])),
                lrs=(draw(st.floats(1e-3, 1.0)), draw(st.floats(1e-3, 1.0))),
                seed=draw(st.integers(0, 2**31)),
                add_group_at=draw(st.one_of(st.none(), st.integers(1, STEPS - 1))),
                resume_at=draw(st.integers(1, STEPS - 1)))


@PROFILE
@given(run=plateau_runs())
def test_reduce_lr_on_plateau_matches_torch_over_random_runs(run):
    rng = np.random.default_rng(run["seed"])
    # a noisy random walk: plateaus, improvements and relapses
    metrics = np.cumsum(rng.standard_normal(STEPS) * 0.1 + rng.choice([-0.05, 0.0, 0.02]))
    optimizers = [make_optimizer(m, run["optimizer"], run["lrs"])
                  for m in (torch.optim, np_optim, th_optim)]
    modules = (torch_sched, np_sched, th_sched)
    schedulers = [m.ReduceLROnPlateau(o, **run["options"]) for m, o in zip(modules, optimizers)]
    for s in schedulers[1:]:
        assert keys(s.state_dict()) == keys(schedulers[0].state_dict())
    errors = set()
    for step in range(1, STEPS + 1):
        if step == run["add_group_at"]:
            for o in optimizers:
                param = (Parameter(np.zeros(1)) if isinstance(o, np_optim.Optimizer)
                         else torch.nn.Parameter(torch.zeros(1)))
                o.add_param_group({"params": [param], "lr": 0.5})
        if step == run["resume_at"]:
            # rebuilt from the same options: a list min_lr no longer fits once a group was
            # added, and then torch refuses too (ValueError), as both backends must
            rebuilt = []
            for m, o in zip(modules, optimizers):
                try:
                    rebuilt.append(m.ReduceLROnPlateau(o, **run["options"]))
                except ValueError:
                    rebuilt.append(None)
            if None in rebuilt:
                assert rebuilt == [None] * 3, rebuilt
                errors.add("ValueError")
                break
            for i in (1, 2):
                rebuilt[i].load_state_dict(schedulers[i].state_dict())
                schedulers[i] = rebuilt[i]
        metric = float(metrics[step - 1])
        outcomes = []
        for s, value in zip(schedulers, [metric, np.float64(metric), torch.tensor(metric)]):
            try:
                s.step(value)
                outcomes.append(None)
            except RuntimeError:  # a list min_lr and a new group: both refuse
                outcomes.append("RuntimeError")
        assert len(set(outcomes)) == 1, (step, outcomes)
        if outcomes[0] is not None:
            errors.add(outcomes[0])
            break
        expected = group_values(optimizers[0])
        for o, s in zip(optimizers[1:], schedulers[1:]):
            assert group_values(o) == expected, step
            assert s.get_last_lr() == schedulers[0].get_last_lr()
    if errors:
        assert run["add_group_at"] is not None and isinstance(run["options"]["min_lr"], list)
