"""Optimizers of both backends against torch.optim, in float64, step by step."""
import copy

import numpy as np
import pytest
import torch

from course_lib.core import optim as core_optim
from course_lib.numpy import optim as np_optim
from course_lib.numpy.parameter import Parameter
from course_lib.torch import optim as th_optim

SHAPES = [(4, 3), (5,), (2, 3, 2)]
STEPS = 25
RTOL = 1e-12

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.3,
                     weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.7, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.2, amsgrad=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.7, 0.9), weight_decay=0.1, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, decoupled_weight_decay=True,
                   maximize=True)),
    ("Adadelta", dict(lr=1.0)),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
]
CASE_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CASES]


@pytest.fixture(autouse=True)
def float64_default():
    # torch.optim.NAdam keeps its momentum product in the default dtype (float32 unless
    # the default is float64); compare the float64 arithmetic.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


class Twins:
    """The same parameters three times: course_lib.numpy, course_lib.torch, torch.optim."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.init = [rng.standard_normal(s) for s in SHAPES]
        self.np_params = [Parameter(a.copy()) for a in self.init]
        self.th_params = [torch.nn.Parameter(torch.tensor(a)) for a in self.init]
        self.ref_params = [torch.nn.Parameter(torch.tensor(a)) for a in self.init]

    def groups(self, params, lrs):
        # two groups, the second with its own lr
        return [{"params": params[:2]}, {"params": params[2:], "lr": lrs}]

    def set_grads(self, rng, skip=None):
        for i, (p, t, r) in enumerate(zip(self.np_params, self.th_params, self.ref_params)):
            if i == skip:
                p.grad = t.grad = r.grad = None
                continue
            g = rng.standard_normal(p.shape)
            p.grad = g.copy()
            t.grad = torch.tensor(g)
            r.grad = torch.tensor(g)


def assert_params_match(twins):
    for p, t, r in zip(twins.np_params, twins.th_params, twins.ref_params):
        ref = r.detach().numpy()
        np.testing.assert_allclose(p.data, ref, rtol=RTOL, atol=1e-15)
        np.testing.assert_allclose(t.detach().numpy(), ref, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_matches_torch_optim_over_many_steps(name, kwargs):
    twins = Twins(seed=1)
    second_lr = kwargs["lr"] * 3
    opts = [getattr(np_optim, name)(twins.groups(twins.np_params, second_lr), **kwargs),
            getattr(th_optim, name)(twins.groups(twins.th_params, second_lr), **kwargs),
            getattr(torch.optim, name)(twins.groups(twins.ref_params, second_lr), **kwargs)]
    rng = np.random.default_rng(2)
    for step in range(STEPS):
        # parameter 1 has no gradient on some steps: it must be skipped (no update)
        twins.set_grads(rng, skip=1 if step % 7 == 3 else None)
        for opt in opts:
            opt.step()
    assert_params_match(twins)
    # the running quantities agree too, under torch's key names
    for p, r in zip(twins.np_params, twins.ref_params):
        ours, ref = opts[0].state[p], opts[2].state[r]
        assert set(ours) == set(ref)
        for key, value in ref.items():
            np.testing.assert_allclose(np.asarray(ours[key], dtype=float),
                                       torch.as_tensor(value).numpy(), rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.01, amsgrad=True, weight_decay=0.1),
                                    dict(lr=0.01, weight_decay=0.1, maximize=True,
                                         decoupled_weight_decay=True)])
def test_torch_adam_foreach_path_matches_torch_and_the_per_tensor_rule(kwargs):
    twins = Twins(seed=8)
    multi = [torch.nn.Parameter(torch.tensor(a)) for a in twins.init]
    opts = [th_optim.Adam(twins.th_params, foreach=False, **kwargs),
            th_optim.Adam(multi, foreach=True, **kwargs),
            torch.optim.Adam(twins.ref_params, foreach=True, **kwargs)]
    rng = np.random.default_rng(9)
    for step in range(STEPS):
        twins.set_grads(rng, skip=0 if step % 5 == 2 else None)  # steps counts differ
        for p, t in zip(multi, twins.th_params):
            p.grad = None if t.grad is None else t.grad.clone()
        for opt in opts:
            opt.step()
    for p, t, r in zip(multi, twins.th_params, twins.ref_params):
        np.testing.assert_allclose(p.detach().numpy(), r.detach().numpy(), rtol=RTOL, atol=1e-15)
        np.testing.assert_allclose(p.detach().numpy(), t.detach().numpy(), rtol=RTOL, atol=1e-15)
    # one state layout: a foreach optimizer resumes a per-tensor one
    assert opts[1].state[multi[0]]["step"] == opts[0].state[twins.th_params[0]]["step"] < STEPS


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_add_param_group_later_matches_torch(backend):
    twins = Twins(seed=3)
    ours_params = twins.np_params if backend == "numpy" else twins.th_params
    module = np_optim if backend == "numpy" else th_optim
    ours = module.Adam(ours_params[:2], lr=0.01)
    ref = torch.optim.Adam(twins.ref_params[:2], lr=0.01)
    rng = np.random.default_rng(4)
    for step in range(20):
        if step == 5:
            ours.add_param_group({"params": ours_params[2], "lr": 0.05, "amsgrad": True})
            ref.add_param_group({"params": twins.ref_params[2], "lr": 0.05, "amsgrad": True})
        twins.set_grads(rng)
        ours.step()
        ref.step()
    assert ours.param_groups[1]["lr"] == 0.05 and ours.param_groups[1]["amsgrad"]
    assert ours.param_groups[1]["betas"] == (0.9, 0.999)  # missing options: defaults
    for p, r in zip(ours_params, twins.ref_params):
        ours_value = p.data if backend == "numpy" else p.detach().numpy()
        np.testing.assert_allclose(ours_value, r.detach().numpy(), rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("name, kwargs", CASES[1::2], ids=CASE_IDS[1::2])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_state_dict_round_trip_continues_identically(backend, name, kwargs):
    module = np_optim if backend == "numpy" else th_optim

    def make_params(arrays):
        if backend == "numpy":
            return [Parameter(a.copy()) for a in arrays]
        return [torch.nn.Parameter(torch.tensor(a)) for a in arrays]

    def values(params):
        return [np.array(p.data if backend == "numpy" else p.detach().numpy())
                for p in params]

    def set_grads(params, grads):
        for p, g in zip(params, grads):
            p.grad = g.copy() if backend == "numpy" else torch.tensor(g)

    rng = np.random.default_rng(5)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(14)]
    params = make_params([rng.standard_normal(s) for s in SHAPES])
    opt = getattr(module, name)([{"params": params[:1]}, {"params": params[1:], "lr": 0.02}],
                                **kwargs)
    for g in grads[:7]:
        set_grads(params, g)
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    assert sorted(saved) == ["param_groups", "state"]
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1, 2]]

    resumed = make_params(values(params))
    fresh = getattr(module, name)([{"params": resumed[:1]}, {"params": resumed[1:]}], **kwargs)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[1]["lr"] == 0.02  # options come back with the state
    for g in grads[7:]:
        for p_list, o in ((params, opt), (resumed, fresh)):
            set_grads(p_list, g)
            o.step()
    for a, b in zip(values(params), values(resumed)):
        np.testing.assert_array_equal(a, b)


def test_numpy_state_dict_is_a_snapshot():
    p = Parameter(np.ones(3))
    opt = np_optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3)
    opt.step()
    saved = opt.state_dict()
    buffer_then = saved["state"][0]["momentum_buffer"].copy()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], buffer_then)
    assert not np.array_equal(opt.state[p]["momentum_buffer"], buffer_then)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_zero_grad(backend):
    if backend == "numpy":
        params = [Parameter(np.ones((2, 2))), Parameter(np.ones(3))]
        opt = np_optim.SGD(params, lr=0.1)
        for p in params:
            p.grad = np.full(p.shape, 2.0)
    else:
        params = [torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(3))]
        opt = th_optim.SGD(params, lr=0.1)
        for p in params:
            p.grad = torch.full(p.shape, 2.0)
    kept = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is kept  # same array, filled with zeros
    for p in params:
        assert float(abs(p.grad).sum()) == 0.0
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_skips_parameters_without_gradient_and_returns_closure_loss():
    used, unused = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = np_optim.Adam([used, unused], lr=0.1)
    used.grad = np.array([1.0, -1.0])
    assert opt.step(closure=lambda: 3.5) == 3.5
    np.testing.assert_array_equal(unused.data, np.ones(2))
    assert unused not in opt.state
    np.testing.assert_allclose(used.data, [0.9, 1.1], rtol=1e-7)  # Adam's first step: lr


def test_float32_parameter_stays_float32():
    p = Parameter(np.ones(4, dtype=np.float32))
    opt = np_optim.Adam([p], lr=0.1)
    p.grad = np.ones(4, dtype=np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    assert opt.state[p]["exp_avg"].dtype == np.float32
    q = Parameter(np.ones(4, dtype=np.float32))
    sgd = np_optim.SGD([q], lr=0.1, momentum=0.9)
    q.grad = np.ones(4)  # a float64 gradient: the buffer copied from it stays float32
    sgd.step()
    assert q.data.dtype == sgd.state[q]["momentum_buffer"].dtype == np.float32


def test_functional_step_is_the_same_for_ndarray_and_tensor():
    rng = np.random.default_rng(6)
    x, g = rng.standard_normal(5), rng.standard_normal(5)
    xt = torch.tensor(x)
    np_state, th_state = {}, {}
    for _ in range(3):
        core_optim.nadam_step(x, g, np_state, lr=0.1, weight_decay=0.1)
        core_optim.nadam_step(xt, torch.tensor(g), th_state, lr=0.1, weight_decay=0.1)
    np.testing.assert_allclose(x, xt.numpy(), rtol=1e-14)
    assert np_state["step"] == th_state["step"] == 3


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_numpy_optimizer_trains_a_course_mlp_like_torch_optim(name):
    """A real loss: the same MLP in course_lib.numpy (hand-written backward) and torch."""
    from course_lib.numpy import layers, losses

    rng = np.random.default_rng(7)
    model = layers.mlp([4, 8, 3], activation="tanh", generator=rng)
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                              torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p, r in zip(model.parameters(), ref.parameters()):
            r.copy_(torch.tensor(p.data))
    kwargs = dict(lr=0.05, momentum=0.9) if name != "Adam" else dict(lr=0.01)
    opt = getattr(np_optim, name)(model.parameters(), **kwargs)
    ref_opt = getattr(torch.optim, name)(ref.parameters(), **kwargs)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, size=16)
    criterion = losses.CrossEntropyLoss()
    for _ in range(20):
        opt.zero_grad()
        loss = criterion(model(x), y)
        model.backward(criterion.backward())
        opt.step()
        ref_opt.zero_grad()
        ref_loss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
        ref_loss.backward()
        ref_opt.step()
        np.testing.assert_allclose(loss, ref_loss.item(), rtol=1e-10)
    for p, r in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.data, r.detach().numpy(), rtol=1e-10, atol=1e-13)


BAD_ARGUMENTS = [
    ("SGD", dict(lr=-0.1), ValueError, "lr"),
    ("SGD", dict(lr="0.1"), TypeError, "lr"),
    ("SGD", dict(momentum=-0.5), ValueError, "momentum"),
    ("SGD", dict(weight_decay=-1.0), ValueError, "weight_decay"),
    ("SGD", dict(nesterov=True), ValueError, "nesterov"),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True), ValueError, "nesterov"),
    ("Adagrad", dict(lr_decay=-1.0), ValueError, "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
    ("Adagrad", dict(eps=-1e-10), ValueError, "eps"),
    ("RMSprop", dict(alpha=-0.1), ValueError, "alpha"),
    ("RMSprop", dict(momentum=-0.1), ValueError, "momentum"),
    ("RMSprop", dict(centered=1), TypeError, "centered"),
    ("Adam", dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    ("Adam", dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    ("Adam", dict(betas=0.9), TypeError, "betas"),
    ("Adam", dict(eps=-1.0), ValueError, "eps"),
    ("AdamW", dict(weight_decay=-0.01), ValueError, "weight_decay"),
    ("NAdam", dict(momentum_decay=-1.0), ValueError, "momentum_decay"),
    ("Adamax", dict(betas=(0.9, 1.5)), ValueError, r"betas\[1\]"),
    ("RMSprop", dict(alpha=1.5), ValueError, "alpha"),
    ("RAdam", dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    ("RAdam", dict(decoupled_weight_decay="yes"), TypeError, "decoupled_weight_decay"),
    ("Adadelta", dict(rho=1.5), ValueError, "rho"),
    ("Adadelta", dict(lr=-1.0), ValueError, "lr"),
]


@pytest.mark.parametrize("name, kwargs, error, argument", BAD_ARGUMENTS,
                         ids=[f"{n}-{a}" for n, _, _, a in BAD_ARGUMENTS])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_bad_arguments_name_the_argument(backend, name, kwargs, error, argument):
    params = [Parameter(np.ones(2))] if backend == "numpy" else [torch.nn.Parameter(torch.ones(2))]
    module = np_optim if backend == "numpy" else th_optim
    with pytest.raises(error, match=argument):
        getattr(module, name)(params, **kwargs)


def test_numpy_optimizer_rejects_bad_params():
    with pytest.raises(ValueError, match="params"):
        np_optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="params"):
        np_optim.SGD([np.ones(3)], lr=0.1)
    with pytest.raises(TypeError, match="params"):
        np_optim.SGD(Parameter(np.ones(3)), lr=0.1)
    p = Parameter(np.ones(3))
    with pytest.raises(ValueError, match="params"):
        np_optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_defaults_and_signatures_follow_torch():
    import inspect
    for name in ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "Adamax", "RAdam",
                 "Adadelta"]:
        ref = inspect.signature(getattr(torch.optim, name)).parameters
        for module in (np_optim, th_optim):
            ours = inspect.signature(getattr(module, name)).parameters
            for arg, p in ours.items():
                assert arg in ref, (name, arg)
                assert p.default == ref[arg].default, (name, arg)



# --- regressions: each was a bug ---------------------------------------------------------

ZERO_D_CASES = [
    ("NAdam", dict(lr=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    ("Adam", dict(lr=0.1, maximize=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, maximize=True, weight_decay=0.1)),
    ("Adadelta", dict(maximize=True, weight_decay=0.1)),
    ("RAdam", dict(lr=0.1, maximize=True, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, kwargs", ZERO_D_CASES)
def test_numpy_optimizers_update_0d_parameters_like_torch(name, kwargs):
    # arithmetic on a 0-d ndarray returns NumPy scalars; the rules used to take them for
    # tensors (.clone, .sqrt) and crash, and buffers must stay arrays updated in place
    p, r = Parameter(np.array(1.5)), torch.nn.Parameter(torch.tensor(1.5))
    ours, ref = getattr(np_optim, name)([p], **kwargs), getattr(torch.optim, name)([r], **kwargs)
    for g in [0.3, -1.2, 0.7, 2.0, -0.1]:
        p.grad, r.grad = np.array(g), torch.tensor(g)
        ours.step()
        ref.step()
    assert isinstance(p.data, np.ndarray) and p.data.shape == ()
    np.testing.assert_allclose(p.data, r.item(), rtol=1e-13)
    for key, value in ref.state[r].items():
        assert isinstance(ours.state[p][key], (int, np.ndarray)), key
        np.testing.assert_allclose(ours.state[p][key], value.item(), rtol=1e-13, err_msg=key)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_state_layout_is_torchs(backend):
    """SGD without momentum keeps no state; Adagrad creates it for every parameter at once."""
    make = ((lambda: Parameter(np.ones(2))) if backend == "numpy"
            else (lambda: torch.nn.Parameter(torch.ones(2))))
    module = np_optim if backend == "numpy" else th_optim
    grad = (lambda: np.ones(2)) if backend == "numpy" else (lambda: torch.ones(2))
    for name, kwargs in [("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)),
                         ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.25))]:
        ours_params, ref_params = [make(), make()], [torch.nn.Parameter(torch.ones(2))
                                                     for _ in range(2)]
        ours = getattr(module, name)(ours_params, **kwargs)
        ref = getattr(torch.optim, name)(ref_params, **kwargs)
        assert ours.state_dict()["state"].keys() == ref.state_dict()["state"].keys()
        ours_params[0].grad, ref_params[0].grad = grad(), torch.ones(2)  # only the first
        ours.step()
        ref.step()
        ours_state, ref_state = ours.state_dict()["state"], ref.state_dict()["state"]
        assert ours_state.keys() == ref_state.keys(), (name, kwargs)
        for i in ref_state:
            assert ours_state[i].keys() == ref_state[i].keys()
            for key in ref_state[i]:
                np.testing.assert_array_equal(np.asarray(ours_state[i][key], dtype=float),
                                              ref_state[i][key].numpy())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_adagrad_uses_the_constructors_accumulator_value_for_every_group(backend):
    """torch.optim.Adagrad fills the sums with the constructor's value, also for a group
    that sets its own and for a group added later; we do the same."""
    module = np_optim if backend == "numpy" else th_optim
    if backend == "numpy":
        a, b, c = (Parameter(np.ones(2)) for _ in range(3))
    else:
        a, b, c = (torch.nn.Parameter(torch.ones(2)) for _ in range(3))
    ra, rb, rc = (torch.nn.Parameter(torch.ones(2)) for _ in range(3))
    ours = module.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 5.0}],
                          lr=0.1, initial_accumulator_value=0.5)
    ref = torch.optim.Adagrad([{"params": [ra]},
                               {"params": [rb], "initial_accumulator_value": 5.0}],
                              lr=0.1, initial_accumulator_value=0.5)
    ours.add_param_group({"params": [c], "initial_accumulator_value": 3.0})
    ref.add_param_group({"params": [rc], "initial_accumulator_value": 3.0})
    for p, r in [(a, ra), (b, rb), (c, rc)]:
        p.grad, r.grad = ((np.ones(2), torch.ones(2)) if backend == "numpy"
                          else (torch.ones(2), torch.ones(2)))
    ours.step()
    ref.step()
    for p, r in [(a, ra), (b, rb), (c, rc)]:
        np.testing.assert_array_equal(np.asarray(ours.state[p]["sum"]), ref.state[r]["sum"])
        np.testing.assert_array_equal(np.asarray(p.data if backend == "numpy" else p.detach()),
                                      r.detach().numpy())


def test_numpy_optimizer_takes_named_parameters_as_torch():
    from course_lib.numpy import layers

    model = layers.mlp([3, 4, 2], generator=np.random.default_rng(0))
    ref_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                    torch.nn.Linear(4, 2))
    ours = np_optim.Adam(model.named_parameters(), lr=0.1)
    ref = torch.optim.Adam(ref_model.named_parameters(), lr=0.1)
    names = [n for n, _ in ref_model.named_parameters()]
    assert ours.param_groups[0]["param_names"] == names
    assert ours.state_dict()["param_groups"][0]["param_names"] == (
        ref.state_dict()["param_groups"][0]["param_names"])
    assert ours.param_groups[0]["params"] == list(model.parameters())
    with pytest.raises(ValueError, match="name"):  # with and without names: torch refuses
        ours.add_param_group({"params": [Parameter(np.ones(2))]})
    with pytest.raises(ValueError, match="name"):
        np_optim.SGD([("w", Parameter(np.ones(2))), Parameter(np.ones(2))], lr=0.1)
    # the names survive a state-dict round trip, as in torch
    fresh = np_optim.Adam(model.parameters(), lr=0.1)
    fresh.load_state_dict(ours.state_dict())
    assert fresh.param_groups[0]["param_names"] == names


def test_numpy_gradient_of_the_wrong_shape_is_an_error_naming_it():
    p, q = Parameter(np.ones((2, 3))), Parameter(np.ones(3))
    opt = np_optim.Adam([p, q], lr=0.1)
    p.grad, q.grad = np.ones((2, 3)), np.ones((2, 3))  # q's would broadcast silently
    with pytest.raises(ValueError, match=r"params'\]\[1\]\.grad has shape \(2, 3\).*\(3,\)"):
        opt.step()
    q.grad = np.ones(1)
    with pytest.raises(ValueError, match="grad"):
        opt.step()


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adagrad", "Adamax", "NAdam", "RAdam"])
def test_torch_backend_resumes_from_torch_optim_under_float32_default_bitwise(name):
    """The issue's case: float64 parameters under torch's default float32, where
    torch.optim stores ``step`` as a float32 tensor and reads it with .item()."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        kwargs = dict(lr=0.05, lr_decay=0.1) if name == "Adagrad" else dict(lr=0.05)
        rng = np.random.default_rng(11)
        init = rng.standard_normal((3, 2))
        ref_p = torch.nn.Parameter(torch.tensor(init))
        ref = getattr(torch.optim, name)([ref_p], **kwargs)
        grads = [rng.standard_normal((3, 2)) for _ in range(30)]
        for g in grads[:10]:
            ref_p.grad = torch.tensor(g)
            ref.step()
        assert ref.state[ref_p]["step"].dtype == torch.float32
        ours_p = torch.nn.Parameter(ref_p.detach().clone())
        ours = getattr(th_optim, name)([ours_p], **kwargs)
        ours.load_state_dict(copy.deepcopy(ref.state_dict()))
        ref2_p = torch.nn.Parameter(ref_p.detach().clone())
        ref2 = getattr(torch.optim, name)([ref2_p], **kwargs)
        ref2.load_state_dict(copy.deepcopy(ref.state_dict()))
        for g in grads[10:]:
            ours_p.grad, ref2_p.grad = torch.tensor(g), torch.tensor(g)
            ours.step()
            ref2.step()
        torch.testing.assert_close(ours_p.detach(), ref2_p.detach(), rtol=0, atol=0)
    finally:
        torch.set_default_dtype(old)


def test_nadam_keeps_torchs_float32_momentum_product_under_the_default_dtype():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        rng = np.random.default_rng(12)
        init = rng.standard_normal(4)
        ours_p, ref_p = (torch.nn.Parameter(torch.tensor(init)) for _ in range(2))
        ours, ref = th_optim.NAdam([ours_p], lr=0.05), torch.optim.NAdam([ref_p], lr=0.05)
        for _ in range(50):
            g = rng.standard_normal(4)
            ours_p.grad, ref_p.grad = torch.tensor(g), torch.tensor(g)
            ours.step()
            ref.step()
        assert ours.state[ours_p]["mu_product"].dtype == torch.float32
        torch.testing.assert_close(ours_p.detach(), ref_p.detach(), rtol=0, atol=0)
    finally:
        torch.set_default_dtype(old)
