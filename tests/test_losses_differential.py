"""Every loss of both backends against torch.nn.functional over random configurations
(hypothesis): shapes, reductions, options (weights, ignored samples, label smoothing,
class-probability targets, pos_weight, delta) and edge values (probabilities 0 and 1 and
below e^-100, huge logits, |d| = delta). Values and input gradients in float64 and
float32; the NumPy backward passes (the classes' ``backward(dout)``) are also
gradient-checked.

Tolerances: float64 rtol 1e-12, atol 1e-14 (sums in another order); float32 rtol 2e-5,
atol 2e-6. The binary cross-entropy gradient is compared bit for bit in float64 (aten's
formula, including the 1e-12 floor), the regression losses' gradients too.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib.gradcheck import numerical_gradient_array
from gradient_support import assert_gradient_close
from course_lib.numpy import losses as NLS
from course_lib.torch import losses as TLS

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
DTYPES = st.sampled_from([torch.float64, torch.float32])
NP = {torch.float64: np.float64, torch.float32: np.float32}
TOL = {torch.float64: (1e-12, 1e-14), torch.float32: (2e-5, 2e-6)}
SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


def _close(ours, theirs, dtype, exact=False):
    ours = torch.as_tensor(np.asarray(ours)) if not isinstance(ours, torch.Tensor) else ours
    ours, theirs = ours.detach(), theirs.detach()
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    if exact:
        assert torch.equal(ours.nan_to_num(7.0), theirs.nan_to_num(7.0)), (ours, theirs)
        return
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


def _run_all(name, cls, x, t, dout, dtype, np_kwargs, torch_kwargs, torch_fn=None,
             cls_kwargs=None, exact_grad=False, reduction="mean", gradcheck=True,
             target_grad=False):
    """Compare value and d(loss)/d(input) of: torch's built-in, the torch backend's
    function (autograd), the NumPy function and the NumPy class's backward."""
    torch_fn = torch_fn or getattr(TF, name)
    tt = torch.tensor(t) if t.dtype.kind in "iu" else torch.tensor(t, dtype=dtype)
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    value = torch_fn(xt, tt, reduction=reduction, **torch_kwargs)
    upstream = torch.tensor(dout, dtype=dtype).reshape(value.shape)
    (grad,) = torch.autograd.grad(value, xt, upstream)
    # torch backend
    xo = torch.tensor(x, dtype=dtype, requires_grad=True)
    ours = getattr(TLS, name)(xo, tt, reduction=reduction, **torch_kwargs)
    _close(ours, value, dtype)
    (grad_t,) = torch.autograd.grad(ours, xo, upstream)
    _close(grad_t, grad, dtype, exact_grad)
    # NumPy backend
    xn = x.astype(NP[dtype])
    tn = t if t.dtype.kind in "iu" else t.astype(NP[dtype])
    _close(getattr(NLS, name)(xn, tn, reduction=reduction, **np_kwargs), value, dtype)
    crit = getattr(NLS, cls)(reduction=reduction, **(cls_kwargs or np_kwargs))
    _close(crit(xn, tn), value, dtype)
    dout_np = upstream.numpy()
    _close(crit.backward(dout_np if reduction == "none" else dout_np.reshape(())), grad, dtype,
           exact_grad)
    if gradcheck and dtype == torch.float64 and bool(torch.isfinite(value).all()):
        x64 = x.astype(np.float64)
        crit(x64, tn)
        analytic = crit.backward(dout_np)
        loss = lambda z: getattr(NLS, name)(z, tn, reduction=reduction, **np_kwargs)  # noqa: E731
        numeric = numerical_gradient_array(loss, x64, dout_np)
        assert_gradient_close(analytic, numeric, np.abs(loss(x64) * dout_np).sum())
    if target_grad:  # torch's gradient for the target, through the torch backend
        tg = torch.tensor(t, dtype=dtype, requires_grad=True)
        (g1,) = torch.autograd.grad(torch_fn(xt.detach(), tg, reduction=reduction), tg,
                                    upstream)
        tg2 = torch.tensor(t, dtype=dtype, requires_grad=True)
        (g2,) = torch.autograd.grad(getattr(TLS, name)(xt.detach(), tg2, reduction=reduction),
                                    tg2, upstream)
        _close(g2, g1, dtype)


def _floats(shape, low, high):
    """Floats in [low, high], rounded to 6 decimals: no magnitudes that are subnormal in
    float32, where the order of two products decides the last bits."""
    return arrays(np.float64, shape, elements=st.floats(low, high, allow_subnormal=False)
                  .map(lambda v: round(v, 6)))


# -- regression ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [("mse_loss", "MSELoss"), ("l1_loss", "L1Loss"),
                                      ("huber_loss", "HuberLoss")])
@given(SHAPES, REDUCTIONS, DTYPES, st.sampled_from([1.0, 0.5, 2.0]), st.data())
def test_regression_losses(name, cls, shape, reduction, dtype, delta, data):
    x = data.draw(_floats(shape, -4, 4), label="x")
    t = data.draw(_floats(shape, -4, 4), label="t")
    if data.draw(st.booleans(), label="kinks"):  # d = 0 and |d| = delta exactly
        t = np.where(np.arange(x.size).reshape(shape) % 2 == 0, x, x - delta)
    dout = data.draw(_floats(shape if reduction == "none" else (), -2, 2), label="dout")
    kw = {"delta": delta} if name == "huber_loss" else {}
    d = np.abs(x - t)
    kinked = np.any(d < 1e-4) or (name == "huber_loss" and np.any(np.abs(d - delta) < 1e-4))
    _run_all(name, cls, x, t, dout, dtype, kw, kw, reduction=reduction,
             exact_grad=reduction == "sum" and name != "huber_loss",
             gradcheck=not (kinked and name != "mse_loss"))


# -- binary cross-entropy -----------------------------------------------------------------

PROBABILITY_EDGES = [0.0, 1.0, 1e-50, 1 - 1e-16, 1e-44, 3e-44, 0.5, 1e-300]


@settings(max_examples=60)
@given(SHAPES, REDUCTIONS, DTYPES, st.data())
def test_binary_cross_entropy(shape, reduction, dtype, data):
    x = data.draw(arrays(np.float64, shape, elements=st.one_of(
        st.floats(0, 1), st.sampled_from(PROBABILITY_EDGES))), label="x")
    t = data.draw(arrays(np.float64, shape, elements=st.one_of(
        st.sampled_from([0.0, 1.0]), st.floats(0, 1))), label="t")
    dout = data.draw(_floats(shape if reduction == "none" else (), -2, 2), label="dout")
    # gradient-check only where the loss is smooth: away from 0 and 1 and the clamps
    smooth = bool(np.all((x > 1e-3) & (x < 1 - 1e-3)))
    _run_all("binary_cross_entropy", "BCELoss", x, t, dout, dtype, {}, {},
             reduction=reduction, exact_grad=dtype == torch.float64, gradcheck=smooth,
             target_grad=bool(np.all((x > 0) & (x < 1))))


def test_binary_cross_entropy_gradient_at_zero_and_one_is_torchs():
    """The issue's reproduction: torch gives [0, 0, -1e12, 1e12, -1e12], not [1, -1, 0, 0, 0]."""
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50])
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    x = torch.tensor(p, requires_grad=True)
    TF.binary_cross_entropy(x, torch.tensor(t), reduction="sum").backward()
    expected = x.grad
    assert expected[2] == -1 / 9.999999960041972e-13  # aten's 1e-12f floor
    xo = torch.tensor(p, requires_grad=True)
    TLS.binary_cross_entropy(xo, torch.tensor(t), reduction="sum").backward()
    assert torch.equal(xo.grad, expected)
    crit = NLS.BCELoss("sum")
    assert crit(p, t) == 300.0
    assert torch.equal(torch.as_tensor(crit.backward()), expected)
    # a float32 sigmoid(20) is exactly 1: the case happens in practice
    assert torch.sigmoid(torch.tensor(20.0)) == 1.0


@pytest.mark.parametrize("bad,what", [(math.nan, "input"), (1.5, "input"), (-0.1, "input")])
def test_binary_cross_entropy_bad_probabilities_raise_like_torch(bad, what):
    x, t = np.array([0.5, bad]), np.array([1.0, 0.0])
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        TF.binary_cross_entropy(torch.tensor(x), torch.tensor(t))
    for fn in (lambda: NLS.binary_cross_entropy(x, t), lambda: NLS.BCELoss()(x, t),
               lambda: TLS.binary_cross_entropy(torch.tensor(x), torch.tensor(t))):
        with pytest.raises(ValueError, match=f"^{what} must hold probabilities.*all elements"):
            fn()
    # and a target outside [0, 1] (or NaN), as torch
    for fn in (lambda: NLS.binary_cross_entropy(t, x),
               lambda: TLS.binary_cross_entropy(torch.tensor(t), torch.tensor(x))):
        with pytest.raises(ValueError, match="^target must hold probabilities"):
            fn()


@given(SHAPES, REDUCTIONS, DTYPES, st.booleans(), st.data())
def test_binary_cross_entropy_with_logits(shape, reduction, dtype, use_pos_weight, data):
    x = data.draw(arrays(np.float64, shape, elements=st.one_of(
        st.floats(-30, 30), st.sampled_from([0.0, 100.0, -100.0, 700.0, -700.0]))),
        label="x")
    t = data.draw(_floats(shape, 0, 1), label="t")
    dout = data.draw(_floats(shape if reduction == "none" else (), -2, 2), label="dout")
    kw_np, kw_t = {}, {}
    if use_pos_weight:
        pw = data.draw(_floats(shape[-1:], 0.1, 3), label="pos_weight")
        kw_np, kw_t = {"pos_weight": pw.astype(NP[dtype])}, {
            "pos_weight": torch.tensor(pw, dtype=dtype)}
    _run_all("binary_cross_entropy_with_logits", "BCEWithLogitsLoss", x, t, dout, dtype,
             kw_np, kw_t, reduction=reduction,
             # (1 - t) x - log sigmoid(x) cancels for x << 0 (as torch computes it): the
             # centred differences of the forward are accurate only for moderate logits
             gradcheck=bool(np.all(np.abs(x) < 4)))


# -- cross-entropy and NLL ----------------------------------------------------------------

@st.composite
def classification(draw, soft_allowed=True):
    C = draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["NC", "C", "NCd"]))
    if layout == "C":
        shape, class_dim = (C,), 0
    elif layout == "NC":
        shape, class_dim = (draw(st.integers(1, 6)), C), 1
    else:
        shape, class_dim = (draw(st.integers(1, 3)), C, draw(st.integers(1, 3))), 1
    x = draw(arrays(np.float64, shape, elements=st.one_of(
        st.floats(-20, 20), st.sampled_from([0.0, 50.0, -50.0]))))
    batch = shape[:class_dim] + shape[class_dim + 1:]
    soft = soft_allowed and draw(st.booleans())
    ignore_index = -100
    if soft:
        t = draw(arrays(np.float64, shape, elements=st.floats(0, 1)))
        if draw(st.booleans()):  # proper distributions, and arbitrary nonnegative weights
            t = t / np.maximum(t.sum(axis=class_dim, keepdims=True), 1e-12)
    else:
        t = draw(arrays(np.int64, batch, elements=st.integers(0, C - 1)))
        if draw(st.booleans()):
            ignore_index = draw(st.sampled_from([-100, 0, C - 1, 7]))
            mask = draw(arrays(np.bool_, batch))
            t = np.where(mask, ignore_index, t)
    weight = draw(st.none() | arrays(np.float64, (C,), elements=st.floats(0.1, 3)))
    return x, t, weight, ignore_index


@settings(max_examples=80)
@given(classification(), REDUCTIONS, DTYPES, st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       st.data())
def test_cross_entropy(case, reduction, dtype, label_smoothing, data):
    x, t, weight, ignore_index = case
    out_shape = () if reduction != "none" else (t.shape if t.dtype.kind in "iu" else
                                                 t.shape[:1] + t.shape[2:] if t.ndim > 1
                                                 else ())
    dout = data.draw(_floats(out_shape, -2, 2), label="dout")
    kw_t = {"label_smoothing": label_smoothing, "ignore_index": ignore_index,
            "weight": None if weight is None else torch.tensor(weight, dtype=dtype)}
    kw_np = {"label_smoothing": label_smoothing, "ignore_index": ignore_index,
             "weight": None if weight is None else weight.astype(NP[dtype])}
    ref = torch.nn.functional.cross_entropy
    # mean over nothing but ignored samples: torch gives NaN, so do we (compared as NaN)
    _run_all("cross_entropy", "CrossEntropyLoss", x, t, dout, dtype, kw_np, kw_t,
             torch_fn=ref, reduction=reduction, gradcheck=bool(np.all(np.abs(x) < 30)))


@given(classification(soft_allowed=False), REDUCTIONS, DTYPES, st.data())
def test_nll_loss(case, reduction, dtype, data):
    x, t, weight, ignore_index = case
    logp = torch.log_softmax(torch.tensor(x), dim=0 if x.ndim == 1 else 1).numpy()
    out_shape = () if reduction != "none" else t.shape
    dout = data.draw(_floats(out_shape, -2, 2), label="dout")
    kw_t = {"ignore_index": ignore_index,
            "weight": None if weight is None else torch.tensor(weight, dtype=dtype)}
    kw_np = {"ignore_index": ignore_index,
             "weight": None if weight is None else weight.astype(NP[dtype])}
    _run_all("nll_loss", "NLLLoss", logp, t, dout, dtype, kw_np, kw_t, reduction=reduction,
             exact_grad=reduction != "mean")


def test_cross_entropy_equals_nll_of_log_softmax():
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    from course_lib.numpy.activations import log_softmax
    assert NLS.cross_entropy(x, t) == pytest.approx(NLS.nll_loss(log_softmax(x, 1), t),
                                                    rel=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_classification_bad_input_names_the_argument(backend):
    B, arr = (NLS, np.asarray) if backend == "numpy" else (TLS, torch.tensor)
    x = arr(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^weight must have shape \(3,\)"):
        B.cross_entropy(x, arr(np.array([0, 1])), weight=arr(np.ones(2)))
    with pytest.raises(ValueError, match="^ignore_index is not supported"):
        B.cross_entropy(x, arr(np.full((2, 3), 1 / 3)), ignore_index=0)
    with pytest.raises(ValueError, match="^target must hold class indices"):
        B.nll_loss(x, arr(np.array([0, 5])))
    with pytest.raises(TypeError, match="^ignore_index"):
        B.cross_entropy(x, arr(np.array([0, 1])), ignore_index=0.5)
    # an ignored index may lie outside [0, C), as in torch
    B.cross_entropy(x, arr(np.array([0, 9])), ignore_index=9)
