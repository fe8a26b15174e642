"""Every optimizer of both backends against torch.optim 2.13, over random configurations.

Hypothesis draws the options, the parameter shapes (0-d included), two or three parameter
groups (one possibly added mid-run with ``add_param_group``), which gradients are ``None``
on which step, and a step at which the run is resumed from a saved state dict (the
torch backend from *torch.optim's* state dict). Three dtype set-ups:

- ``float64``: float64 parameters, torch's default dtype float64;
- ``float32``: float32 parameters, the default dtype float32 (torch out of the box);
- ``mixed``: float64 parameters under the default float32, where torch.optim keeps its
  step counters (and NAdam its momentum product) in float32.

course_lib.torch must equal torch.optim bit for bit (the same kernels in the same
order); course_lib.numpy, whose arithmetic is NumPy's, within ``NUMPY_RTOL``.
"""
import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from course_lib.numpy import optim as np_optim
from course_lib.numpy.parameter import Parameter
from course_lib.torch import optim as th_optim

STEPS = 40
# NumPy's arithmetic against torch's kernels (which fuse some multiply-adds): a few ulp
# per step. Over 40 examples x 40 steps per optimizer the worst relative difference seen
# was 5e-14 in float64 (RMSprop) and 4e-5 in float32 (NAdam); the bounds leave ~5-20x.
NUMPY_RTOL = {"float64": 1e-12, "float32": 2e-4}
NUMPY_ATOL = {"float64": 1e-14, "float32": 1e-6}
SETUPS = {"float64": (torch.float64, np.float64), "float32": (torch.float32, np.float32),
          "mixed": (torch.float32, np.float64)}  # (torch default dtype, parameter dtype)
# Reproducible (derandomized, no example database) and small: the suite runs on 2 cores.
# No shrinking: a failure reports the generated example at once instead of minutes later.
PROFILE = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                   phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=[HealthCheck.too_slow])

lrs = st.floats(1e-4, 0.1)
maybe = lambda s: st.one_of(st.just(0.0), s)  # noqa: E731
betas = st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999))
flags = st.booleans()


@st.composite
def sgd_options(draw):
    momentum = draw(maybe(st.floats(0.1, 0.99)))
    nesterov = momentum > 0 and draw(flags)
    dampening = 0.0 if nesterov else draw(maybe(st.floats(0.0, 0.5)))
    return dict(lr=draw(lrs), momentum=momentum, dampening=dampening,
                weight_decay=draw(maybe(st.floats(0, 0.1))), nesterov=nesterov,
                maximize=draw(flags))


OPTIONS = {
    "SGD": sgd_options(),
    "Adagrad": st.fixed_dictionaries(dict(
        lr=lrs, lr_decay=maybe(st.floats(0, 0.1)), weight_decay=maybe(st.floats(0, 0.1)),
        initial_accumulator_value=maybe(st.floats(0, 1)),
        eps=st.sampled_from([1e-10, 1e-6]), maximize=flags)),
    "RMSprop": st.fixed_dictionaries(dict(
        lr=st.floats(1e-4, 0.02), alpha=st.floats(0.1, 0.999),
        eps=st.sampled_from([1e-8, 1e-4]), weight_decay=maybe(st.floats(0, 0.1)),
        momentum=maybe(st.floats(0, 0.9)), centered=flags, maximize=flags)),
    "Adam": st.fixed_dictionaries(dict(
        lr=lrs, betas=betas, eps=st.sampled_from([1e-8, 1e-4]),
        weight_decay=maybe(st.floats(0, 0.1)), amsgrad=flags, maximize=flags,
        decoupled_weight_decay=flags, foreach=flags)),
    "AdamW": st.fixed_dictionaries(dict(
        lr=lrs, betas=betas, eps=st.sampled_from([1e-8, 1e-4]),
        weight_decay=st.floats(0, 0.1), amsgrad=flags, maximize=flags, foreach=flags)),
    "NAdam": st.fixed_dictionaries(dict(
        lr=lrs, betas=betas, eps=st.sampled_from([1e-8, 1e-4]),
        weight_decay=maybe(st.floats(0, 0.1)), momentum_decay=st.floats(0, 0.01),
        decoupled_weight_decay=flags, maximize=flags)),
    "Adamax": st.fixed_dictionaries(dict(
        lr=lrs, betas=betas, eps=st.sampled_from([1e-8, 1e-4]),
        weight_decay=maybe(st.floats(0, 0.1)), maximize=flags)),
    "RAdam": st.fixed_dictionaries(dict(
        lr=lrs, betas=betas, eps=st.sampled_from([1e-8, 1e-4]),
        weight_decay=maybe(st.floats(0, 0.1)), decoupled_weight_decay=flags,
        maximize=flags)),
    "Adadelta": st.fixed_dictionaries(dict(
        lr=st.floats(0.1, 2.0), rho=st.floats(0.5, 0.99), eps=st.sampled_from([1e-6, 1e-3]),
        weight_decay=maybe(st.floats(0, 0.1)), maximize=flags)),
}
# a group may override these (Adagrad's initial_accumulator_value: torch ignores it)
GROUP_OPTIONS = {"lr": lrs, "weight_decay": st.floats(0, 0.1)}

shapes = st.lists(st.sampled_from([(), (3,), (2, 3), (1,), (4, 1)]), min_size=2, max_size=5)


@st.composite
def runs(draw, name):
    shape_list = draw(shapes)
    n_groups = draw(st.integers(1, min(3, len(shape_list))))
    cuts = sorted(draw(st.sets(st.integers(1, len(shape_list) - 1), min_size=n_groups - 1,
                               max_size=n_groups - 1))) if n_groups > 1 else []
    overrides = [draw(st.fixed_dictionaries({}, optional=GROUP_OPTIONS)) for _ in cuts]
    if name == "Adagrad" and overrides:
        overrides[-1]["initial_accumulator_value"] = 0.5
    return dict(options=draw(OPTIONS[name]), shapes=shape_list, cuts=cuts,
                overrides=overrides, named=draw(flags),
                late_group=bool(cuts) and draw(flags),  # last group: add_param_group later
                resume_at=draw(st.integers(1, STEPS - 1)), seed=draw(st.integers(0, 2**31)))


def split(params, run):
    """``params`` cut into the run's groups: (first groups' list, the rest as dicts)."""
    items = [(f"p{i}", p) for i, p in enumerate(params)] if run["named"] else list(params)
    bounds = [0, *run["cuts"], len(items)]
    chunks = [items[a:b] for a, b in zip(bounds, bounds[1:])]
    groups = [{"params": chunks[0]}] + [{"params": c, **o}
                                        for c, o in zip(chunks[1:], run["overrides"])]
    return groups


class Race:
    """The same run three times: course_lib.numpy, course_lib.torch and torch.optim."""

    def __init__(self, name, run, param_dtype):
        self.name, self.run = name, run
        options = dict(run["options"])
        foreach = options.pop("foreach", None)
        self.np_options = options
        self.th_options = dict(options, foreach=foreach) if foreach is not None else options
        rng = np.random.default_rng(run["seed"])
        self.rng = rng
        init = [rng.standard_normal(s).astype(param_dtype) for s in run["shapes"]]
        self.np_params = [Parameter(np.array(a)) for a in init]
        self.th_params = [torch.nn.Parameter(torch.tensor(a)) for a in init]
        self.ref_params = [torch.nn.Parameter(torch.tensor(a)) for a in init]
        self.param_dtype = param_dtype
        self.opts = [self.build(np_optim, self.np_params, self.np_options),
                     self.build(th_optim, self.th_params, self.th_options),
                     self.build(torch.optim, self.ref_params, self.th_options)]

    def build(self, module, params, options):
        groups = split(params, self.run)
        late = groups.pop() if self.run["late_group"] else None
        opt = getattr(module, self.name)(groups, **options)
        opt.late = late
        return opt

    def add_late_groups(self):
        for opt in self.opts:
            if opt.late is not None:
                opt.add_param_group(opt.late)
                opt.late = None

    def set_grads(self):
        scale = 10.0 ** self.rng.uniform(-2, 1)
        for p, t, r in zip(self.np_params, self.th_params, self.ref_params):
            if self.rng.random() < 0.2:
                p.grad = t.grad = r.grad = None
                continue
            g = (self.rng.standard_normal(p.shape) * scale).astype(self.param_dtype)
            p.grad = g.copy()
            t.grad = torch.tensor(g)
            r.grad = torch.tensor(g)

    def step(self):
        for opt in self.opts:
            opt.step()

    def resume(self):
        """Rebuild the optimizers and load a state dict: NumPy its own, course_lib.torch
        and torch.optim torch.optim's (deep-copied, as if read from a file). torch.optim
        resumes too: loading casts NAdam's momentum product to the parameters' dtype."""
        saved_np = self.opts[0].state_dict()
        saved_ref = copy.deepcopy(self.opts[2].state_dict())
        fresh = [self.build(np_optim, self.np_params, self.np_options),
                 self.build(th_optim, self.th_params, self.th_options),
                 self.build(torch.optim, self.ref_params, self.th_options)]
        for opt, old in zip(fresh, self.opts):
            if old.late is None and opt.late is not None:  # the group was added already
                opt.add_param_group(opt.late)
                opt.late = None
        fresh[0].load_state_dict(saved_np)
        fresh[1].load_state_dict(copy.deepcopy(saved_ref))
        fresh[2].load_state_dict(saved_ref)
        self.opts = fresh


def assert_torch_backend_is_bitwise(race):
    for t, r in zip(race.th_params, race.ref_params):
        torch.testing.assert_close(t.detach(), r.detach(), rtol=0, atol=0)
    ours, ref = race.opts[1].state_dict(), race.opts[2].state_dict()
    assert ours["state"].keys() == ref["state"].keys()
    for i, ref_state in ref["state"].items():
        assert ours["state"][i].keys() == ref_state.keys(), (i, ours["state"][i], ref_state)
        for key, value in ref_state.items():
            mine = ours["state"][i][key]
            assert type(mine) is type(value), (key, mine, value)
            torch.testing.assert_close(mine, value, rtol=0, atol=0)  # dtypes too
    for group, ref_group in zip(ours["param_groups"], ref["param_groups"], strict=True):
        for key, value in group.items():
            assert ref_group[key] == value, (key, value, ref_group[key])


def assert_numpy_backend_close(race, setup):
    rtol, atol = NUMPY_RTOL[setup], NUMPY_ATOL[setup]
    for p, r in zip(race.np_params, race.ref_params):
        assert p.data.dtype == race.param_dtype
        np.testing.assert_allclose(p.data, r.detach().numpy(), rtol=rtol, atol=atol)
    ours, ref = race.opts[0].state_dict(), race.opts[2].state_dict()
    assert ours["state"].keys() == ref["state"].keys()
    for i, ref_state in ref["state"].items():
        assert ours["state"][i].keys() == ref_state.keys()
        for key, value in ref_state.items():
            np.testing.assert_allclose(np.asarray(ours["state"][i][key], dtype=np.float64),
                                       torch.as_tensor(value).double().numpy(),
                                       rtol=rtol, atol=atol, err_msg=key)
    for group, ref_group in zip(ours["param_groups"], ref["param_groups"], strict=True):
        assert {k: v for k, v in group.items() if k != "params"} == {
            k: v for k, v in ref_group.items() if k in group and k != "params"}
        assert group["params"] == ref_group["params"]


def race_through(name, run, setup):
    default_dtype, param_dtype = SETUPS[setup]
    old = torch.get_default_dtype()
    torch.set_default_dtype(default_dtype)
    try:
        race = Race(name, run, param_dtype)
        for step in range(STEPS):
            if step == STEPS // 3:
                race.add_late_groups()
            if step == run["resume_at"]:
                race.resume()
            race.set_grads()
            race.step()
        assert_torch_backend_is_bitwise(race)
        if setup != "mixed":  # NumPy has no default dtype to mix with
            assert_numpy_backend_close(race, setup)
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("name", list(OPTIONS))
def test_optimizer_matches_torch_over_random_runs(name, setup):
    @PROFILE
    @given(run=runs(name))
    def check(run):
        race_through(name, run, setup)

    check()


@pytest.mark.cuda
@pytest.mark.parametrize("name, options, ref_options", [
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1), {}),
    ("AdamW", dict(lr=0.01, maximize=True), {}),
    # torch's other optimizers also default to foreach kernels on a GPU, whose arithmetic
    # differs from their per-tensor loop (ours): compare with the loop
    ("NAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1),
     dict(foreach=False)),
])
def test_optimizer_on_cuda_matches_torch_bitwise(name, options, ref_options):
    """On a GPU torch.optim.Adam defaults to its foreach kernels, and so does ours."""
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=gen) for s in [(64, 32), (32,), ()]]
    ours_p = [torch.nn.Parameter(t.cuda()) for t in init]
    ref_p = [torch.nn.Parameter(t.cuda()) for t in init]
    ours = getattr(th_optim, name)(ours_p, **options)
    ref = getattr(torch.optim, name)(ref_p, **options, **ref_options)
    for _ in range(STEPS):
        for p, r in zip(ours_p, ref_p):
            g = torch.randn(p.shape, generator=gen).cuda()
            p.grad, r.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, r in zip(ours_p, ref_p):
        torch.testing.assert_close(p.detach(), r.detach(), rtol=0, atol=0)
