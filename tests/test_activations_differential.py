"""Activations of both backends against torch.nn.functional over random inputs
(hypothesis), edge values included: +-inf, +-0, NaN, huge and tiny magnitudes.

Each case compares the value and the derivative (``<name>_grad`` against torch's autograd
derivative of the reference), in float64 and float32, NaN where torch gives NaN.
Tolerances: float64 rtol 1e-12 (values) and 1e-11 (derivatives), atol 1e-300 / 1e-14;
float32 rtol 4e-6, atol 1e-30 / 1e-6; GELU's value (both forms) may differ by 4 eps |x|
more, the tanh form's derivative by 4 eps (1 + |x u'|) (they cancel for x << 0). Piecewise-linear functions (relu, leaky_relu) must be bit-identical.
NaN inputs give NaN values everywhere; derivatives at NaN are not compared (torch's own
kernels disagree there).
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib.numpy import activations as NA
from course_lib.torch import activations as TA

INF, NAN = math.inf, math.nan
EDGES = [0.0, -0.0, INF, -INF, NAN, 1e-300, -1e-300, 1e-8, -1e-8, 20.0, -20.0, 30.0,
         700.0, -700.0, 1e30, -1e30]
VALUES = st.one_of(st.floats(-40, 40, allow_subnormal=False), st.sampled_from(EDGES))
INPUTS = arrays(np.float64, st.integers(1, 24), elements=VALUES)

# name -> (kwargs strategy, torch reference taking (x, **kwargs), exact?)
CASES = {
    "sigmoid": (st.just({}), torch.sigmoid, False),
    "tanh": (st.just({}), torch.tanh, False),
    "relu": (st.just({}), TF.relu, True),
    "leaky_relu": (st.fixed_dictionaries({"negative_slope": st.sampled_from(
        [0.01, 0.2, 0.0, -0.5, 1.5])}), TF.leaky_relu, True),
    "elu": (st.fixed_dictionaries({"alpha": st.sampled_from([1.0, 0.5, 2.0])}), TF.elu,
            False),
    "selu": (st.just({}), TF.selu, False),
    "gelu": (st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])}),
             TF.gelu, False),
    "silu": (st.just({}), TF.silu, False),
    "softplus": (st.fixed_dictionaries({"beta": st.sampled_from([1.0, 0.5, 2.0]),
                                        "threshold": st.sampled_from([20.0, 5.0])}),
                 TF.softplus, False),
}
TOL = {torch.float64: dict(value=(1e-12, 1e-300), grad=(1e-11, 1e-14)),
       torch.float32: dict(value=(4e-6, 1e-30), grad=(4e-6, 1e-6))}


def _reference(name, x, dtype, kwargs):
    _, fn, _ = CASES[name]
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = fn(xt, **kwargs)
    (g,) = torch.autograd.grad(y.sum(), xt)
    return y.detach(), g


def _close(ours, theirs, rtol, atol, exact, slack=None, where=None):
    """``ours`` equals ``theirs`` (bit for bit when ``exact``; NaN where theirs is NaN),
    up to ``atol + rtol |theirs| + slack`` elementwise; only at ``where`` if given."""
    ours = torch.as_tensor(np.asarray(ours)) if not isinstance(ours, torch.Tensor) else ours
    assert ours.dtype == theirs.dtype
    if where is not None:
        ours, theirs = ours[where], theirs[where]
        slack = None if slack is None else slack[where]
    if exact:
        assert torch.equal(ours.nan_to_num(7.0), theirs.nan_to_num(7.0)), (ours, theirs)
        assert torch.equal(ours.isnan(), theirs.isnan())
        return
    assert torch.equal(ours.isnan(), theirs.isnan()), (ours, theirs)
    same_inf = (ours == theirs) | ours.isnan()
    bound = atol + rtol * theirs.abs() + (0 if slack is None else slack)
    diff = (ours - theirs).abs()
    ok = same_inf | (diff <= bound)
    assert bool(ok.all()), (ours[~ok], theirs[~ok], diff[~ok], bound[~ok])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_activation_and_derivative_match_torch(name, dtype, data):
    kwargs = data.draw(CASES[name][0], label="kwargs")
    x = data.draw(INPUTS, label="x")
    exact = CASES[name][2]
    if name == "gelu" and dtype == torch.float32:
        # torch's vectorized float32 erf kernel gives gelu(inf) = NaN for 2 or more
        # elements and inf for one: an artifact, not a definition; compare finite x only
        x = np.where(np.isinf(x), 0.0, x)
    value, grad = _reference(name, x, dtype, kwargs)
    rv, ra = TOL[dtype]["value"], TOL[dtype]["grad"]
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    slack = None
    if name == "gelu":
        # 0.5 x (1 + erf(u)) and 0.5 x (1 + tanh(u)) cancel for x << 0: one ulp of erf or
        # tanh (numpy's/scipy's and torch's differ) costs eps |x| / 2 absolutely, whatever
        # the relative error looks like (float32 at x = -3: torch is 1e-4 off, we are not)
        slack = 4 * torch.finfo(dtype).eps * torch.tensor(x, dtype=dtype).abs()
    grad_slack = None
    if kwargs.get("approximate") == "tanh":
        # its derivative 0.5 (1 + t) + 0.5 x (1 - t^2) u' cancels twice for x << 0: one
        # ulp of t = tanh(u) costs eps (1 + |x u'|) / 2
        with np.errstate(all="ignore"):
            du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * np.nan_to_num(x) ** 2)
            grad_slack = 4 * torch.finfo(dtype).eps * torch.tensor(
                1 + np.abs(np.nan_to_num(x) * du), dtype=dtype)
    # torch's scalar and vectorized kernels disagree on the derivative at NaN (elu: 1 for
    # one element, NaN for 16), so derivatives are compared at non-NaN inputs only
    defined = ~torch.tensor(np.isnan(x))
    with np.errstate(all="ignore"):
        ours_np = getattr(NA, name)(x.astype(np_dtype), **kwargs)
        ours_np_grad = getattr(NA, name + "_grad")(x.astype(np_dtype), **kwargs)
    _close(ours_np, value, *rv, exact, slack)
    _close(ours_np_grad, grad, *ra, exact, grad_slack, where=defined)
    xt = torch.tensor(x, dtype=dtype)
    _close(getattr(TA, name)(xt, **kwargs), value, *rv, exact, slack)
    _close(getattr(TA, name + "_grad")(xt, **kwargs), grad, *ra, exact, grad_slack,
           where=defined)
    # and autograd through the torch backend's function gives the same derivative
    xt.requires_grad_(True)
    (g,) = torch.autograd.grad(getattr(TA, name)(xt, **kwargs).sum(), xt)
    _close(g, grad, *ra, exact, grad_slack, where=defined)


SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_family_and_backward_match_torch(name, dtype, data):
    shape = data.draw(SHAPES, label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = data.draw(arrays(np.float64, shape, elements=st.one_of(
        st.floats(-30, 30), st.sampled_from([0.0, 700.0, -700.0, -INF]))), label="x")
    # a row of -inf only is NaN in torch and here; keep one finite entry per row
    x = np.where(np.isinf(x).all(axis=dim, keepdims=True), 0.0, x)
    dout = data.draw(arrays(np.float64, shape, elements=st.floats(-3, 3)), label="dout")
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    y = getattr(TF, name)(xt, dim=dim)
    (dx,) = torch.autograd.grad(y, xt, torch.tensor(dout, dtype=dtype))
    rtol, atol = (1e-12, 1e-14) if dtype == torch.float64 else (4e-6, 1e-6)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    ours = getattr(NA, name)(x.astype(np_dtype), dim=dim)
    _close(ours, y.detach(), rtol, atol, False)
    back = getattr(NA, name + "_backward")(dout.astype(np_dtype), ours, dim=dim)
    finite = torch.isfinite(dx)  # log_softmax's gradient at -inf logits is NaN in torch
    _close(torch.as_tensor(back)[finite], dx[finite], rtol, atol, False)
    ours_t = getattr(TA, name)(torch.tensor(x, dtype=dtype), dim=dim)
    _close(ours_t, y.detach(), rtol, atol, False)
    back_t = getattr(TA, name + "_backward")(torch.tensor(dout, dtype=dtype), ours_t, dim=dim)
    _close(back_t[finite], dx[finite], rtol, atol, False)


def test_relu_at_minus_infinity_is_zero_in_both_backends():
    x = torch.tensor([-INF, INF, NAN, 0.0, -0.0])
    for y in (TA.relu(x), torch.as_tensor(NA.relu(x.numpy()))):
        assert y[0] == 0 and y[1] == INF and math.isnan(y[2]) and y[3] == 0
