"""Gradient clipping of both backends against torch.nn.utils over random configurations
(hypothesis): several gradients of random shapes (some None), norm types (including the
string "inf" torch accepts), thresholds, huge, zero and non-finite entries, float64 and
float32.

Tolerances: float64 rtol 1e-12, atol 1e-300; float32 rtol 1e-5, atol 1e-30 (torch sums the
per-tensor norms with its foreach kernels, in another order). clip_grad_value_ is
bit-identical.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib.numpy import clip as NC
from course_lib.numpy.parameter import Parameter
from course_lib.torch import clip as TC

INF, NAN = math.inf, math.nan
DTYPES = st.sampled_from([torch.float64, torch.float32])
NP = {torch.float64: np.float64, torch.float32: np.float32}
TOL = {torch.float64: (1e-12, 1e-300), torch.float32: (1e-5, 1e-30)}
NORM_TYPES = st.sampled_from([2.0, 1.0, 0.5, 3.0, INF, "inf", "2", 2])
ENTRY = st.one_of(st.floats(-10, 10), st.sampled_from([0.0, 1e150, -1e150, 1e-300]))


@st.composite
def gradients(draw, non_finite=False):
    n = draw(st.integers(1, 4))
    grads = []
    for _ in range(n):
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        if draw(st.integers(0, 5)) == 0:
            grads.append((shape, None))
            continue
        elements = st.one_of(ENTRY, st.sampled_from([INF, -INF, NAN])) if non_finite else ENTRY
        grads.append((shape, draw(arrays(np.float64, shape, elements=elements))))
    return grads


def _copies(grads, dtype):
    ours_np, ours_t, ref = [], [], []
    for shape, g in grads:
        p_np = Parameter(np.zeros(shape, NP[dtype]))
        p_t = torch.zeros(shape, dtype=dtype, requires_grad=True)
        p_ref = torch.zeros(shape, dtype=dtype, requires_grad=True)
        if g is not None:
            with np.errstate(over="ignore"):  # 1e150 is inf in float32, as in torch
                p_np.grad = g.astype(NP[dtype])
            p_t.grad = torch.tensor(g, dtype=dtype)
            p_ref.grad = torch.tensor(g, dtype=dtype)
        ours_np.append(p_np)
        ours_t.append(p_t)
        ref.append(p_ref)
    return ours_np, ours_t, ref


def _same_grads(ours_np, ours_t, ref, dtype, exact=False):
    rtol, atol = TOL[dtype]
    for a, b, c in zip(ours_np, ours_t, ref):
        if c.grad is None:
            assert a.grad is None and b.grad is None
            continue
        for got in (torch.as_tensor(a.grad), b.grad):
            assert got.dtype == c.grad.dtype
            if exact:
                assert torch.equal(got.nan_to_num(7.0), c.grad.nan_to_num(7.0))
            else:
                torch.testing.assert_close(got, c.grad, rtol=rtol, atol=atol, equal_nan=True)


@given(gradients(), NORM_TYPES, st.sampled_from([0.0, 1e-3, 0.5, 1.0, 1e3, 1e200]), DTYPES)
def test_clip_grad_norm(grads, norm_type, max_norm, dtype):
    ours_np, ours_t, ref = _copies(grads, dtype)
    if float(norm_type) == INF and any(g is not None and g.size == 0 for _, g in grads):
        with pytest.raises(RuntimeError, match="empty tensor"):
            torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
        for fn, ps in ((NC.clip_grad_norm_, ours_np), (TC.clip_grad_norm_, ours_t)):
            with pytest.raises(ValueError, match="^parameters hold an empty gradient"):
                fn(ps, max_norm, norm_type=norm_type)
        return
    expected = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
    total_np = NC.clip_grad_norm_(ours_np, max_norm, norm_type=norm_type)
    total_t = TC.clip_grad_norm_(ours_t, max_norm, norm_type=norm_type)
    rtol, atol = TOL[dtype]
    assert isinstance(total_np, np.float64) and total_t.dim() == 0
    torch.testing.assert_close(total_t, expected, rtol=rtol, atol=atol, equal_nan=True)
    torch.testing.assert_close(torch.tensor(float(total_np), dtype=torch.float64), expected.double(), rtol=rtol,
                               atol=atol, equal_nan=True)
    _same_grads(ours_np, ours_t, ref, dtype)


@given(gradients(non_finite=True), NORM_TYPES, DTYPES, st.booleans())
def test_clip_grad_norm_non_finite(grads, norm_type, dtype, error_if_nonfinite):
    assume(not (float(norm_type) == INF and any(g is not None and g.size == 0
                                                for _, g in grads)))
    ours_np, ours_t, ref = _copies(grads, dtype)
    try:
        expected = torch.nn.utils.clip_grad_norm_(ref, 1.0, norm_type=norm_type,
                                                  error_if_nonfinite=error_if_nonfinite)
    except RuntimeError:
        for ours in (ours_np, ours_t):
            fn = NC.clip_grad_norm_ if ours is ours_np else TC.clip_grad_norm_
            with pytest.raises(RuntimeError, match="non-finite"):
                fn(ours, 1.0, norm_type=norm_type, error_if_nonfinite=True)
        return
    total_t = TC.clip_grad_norm_(ours_t, 1.0, norm_type=norm_type,
                                 error_if_nonfinite=error_if_nonfinite)
    with np.errstate(all="ignore"):
        total_np = NC.clip_grad_norm_(ours_np, 1.0, norm_type=norm_type,
                                      error_if_nonfinite=error_if_nonfinite)
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(total_t, expected, rtol=rtol, atol=atol, equal_nan=True)
    torch.testing.assert_close(torch.tensor(float(total_np), dtype=torch.float64), expected.double(), rtol=rtol,
                               atol=atol, equal_nan=True)
    _same_grads(ours_np, ours_t, ref, dtype)


@given(gradients(non_finite=True), st.sampled_from([0.0, 1e-3, 0.5, 2.0, 1e30]), DTYPES)
def test_clip_grad_value(grads, clip_value, dtype):
    # torch's foreach kernel fails on a list without gradients (an internal assertion)
    assume(any(g is not None for _, g in grads))
    ours_np, ours_t, ref = _copies(grads, dtype)
    torch.nn.utils.clip_grad_value_(ref, clip_value)
    NC.clip_grad_value_(ours_np, clip_value)
    TC.clip_grad_value_(ours_t, clip_value)
    _same_grads(ours_np, ours_t, ref, dtype, exact=True)


@pytest.mark.parametrize("module", [NC, TC])
def test_bad_arguments_name_the_argument(module):
    p = Parameter(np.ones(3)) if module is NC else torch.ones(3, requires_grad=True)
    p.grad = np.ones(3) if module is NC else torch.ones(3)
    with pytest.raises(ValueError, match=r"^max_norm must be >= 0"):
        module.clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match=r"^clip_value must be >= 0"):
        module.clip_grad_value_([p], -0.5)
    for bad in ("two", 0.0, -1.0, NAN, "nan"):
        with pytest.raises((ValueError, TypeError), match=r"^norm_type"):
            module.clip_grad_norm_([p], 1.0, norm_type=bad)
    np.testing.assert_array_equal(np.asarray(p.grad), np.ones(3))  # nothing was changed
