"""Gradient clipping of both backends against torch.nn.utils.clip_grad_*."""
import math

import numpy as np
import pytest
import torch

from course_lib.numpy import clip as np_clip
from course_lib.numpy.parameter import Parameter
from course_lib.torch import clip as th_clip

SHAPES = [(4, 3), (6,), (2, 2, 3)]


def make_grads(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(s) for s in SHAPES]


def three_copies(grads):
    """Parameters with these gradients for course_lib.numpy, course_lib.torch, torch."""
    ours_np = [Parameter(np.zeros(g.shape)) for g in grads]
    ours_th = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    ref = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for g, a, b, c in zip(grads, ours_np, ours_th, ref):
        a.grad = g.copy()
        b.grad = torch.tensor(g)
        c.grad = torch.tensor(g)
    return ours_np, ours_th, ref


@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3], ids=["clipped", "below-threshold"])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours_np, ours_th, ref = three_copies(make_grads(seed=1))
    total_np = np_clip.clip_grad_norm_(ours_np, max_norm, norm_type=norm_type)
    total_th = th_clip.clip_grad_norm_(ours_th, max_norm, norm_type=norm_type)
    total_ref = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
    assert isinstance(total_np, np.float64)
    assert isinstance(total_th, torch.Tensor) and total_th.dim() == 0
    np.testing.assert_allclose(total_np, total_ref.item(), rtol=1e-12)
    np.testing.assert_allclose(total_th.item(), total_ref.item(), rtol=1e-12)
    for a, b, c in zip(ours_np, ours_th, ref):
        np.testing.assert_allclose(a.grad, c.grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.grad.numpy(), c.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf])
def test_clipping_keeps_the_direction_and_reaches_max_norm(backend, norm_type):
    grads = make_grads(seed=2, scale=10.0)
    ours_np, ours_th, _ = three_copies(grads)
    max_norm = 0.25
    if backend == "numpy":
        total = float(np_clip.clip_grad_norm_(ours_np, max_norm, norm_type))
        clipped = [p.grad for p in ours_np]
    else:
        total = th_clip.clip_grad_norm_(ours_th, max_norm, norm_type).item()
        clipped = [p.grad.numpy() for p in ours_th]
    flat_before = np.concatenate([g.ravel() for g in grads])
    flat_after = np.concatenate([g.ravel() for g in clipped])
    assert total == pytest.approx(np.linalg.norm(flat_before, ord=norm_type), rel=1e-12)
    ratio = flat_after / flat_before
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)  # one common factor
    assert 0 < ratio[0] < 1
    assert np.linalg.norm(flat_after, ord=norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_below_threshold_leaves_gradients_unchanged():
    grads = make_grads(seed=3)
    ours_np, _, _ = three_copies(grads)
    np_clip.clip_grad_norm_(ours_np, max_norm=1e6)
    for p, g in zip(ours_np, grads):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_zero_gradients_give_zero_norm_and_stay_zero(norm_type):
    zeros = [np.zeros(s) for s in SHAPES]
    ours_np, ours_th, ref = three_copies(zeros)
    assert np_clip.clip_grad_norm_(ours_np, 1.0, norm_type) == 0.0
    assert th_clip.clip_grad_norm_(ours_th, 1.0, norm_type).item() == 0.0
    assert torch.nn.utils.clip_grad_norm_(ref, 1.0, norm_type).item() == 0.0
    for a, b in zip(ours_np, ours_th):
        assert not np.any(a.grad) and not torch.any(b.grad)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_nonfinite_gradients(bad, norm_type):
    grads = make_grads(seed=4)
    grads[1][2] = bad
    for clip_module in (np_clip, th_clip):
        ours_np, ours_th, _ = three_copies(grads)
        params = ours_np if clip_module is np_clip else ours_th
        with pytest.raises(RuntimeError, match="non-finite"):
            clip_module.clip_grad_norm_(params, 1.0, norm_type, error_if_nonfinite=True)
    # without the error both behave as torch: the non-finite norm is used anyway
    ours_np, ours_th, ref = three_copies(grads)
    total_np = np_clip.clip_grad_norm_(ours_np, 1.0, norm_type)
    total_th = th_clip.clip_grad_norm_(ours_th, 1.0, norm_type)
    total_ref = torch.nn.utils.clip_grad_norm_(ref, 1.0, norm_type)
    np.testing.assert_array_equal(total_np, total_ref.numpy())
    np.testing.assert_array_equal(total_th.numpy(), total_ref.numpy())
    for a, b, c in zip(ours_np, ours_th, ref):
        np.testing.assert_array_equal(a.grad, c.grad.numpy())  # NaNs in the same places
        np.testing.assert_array_equal(b.grad.numpy(), c.grad.numpy())


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours_np, ours_th, ref = three_copies(make_grads(seed=5))
    assert np_clip.clip_grad_value_(ours_np, clip_value) is None
    th_clip.clip_grad_value_(ours_th, clip_value)
    torch.nn.utils.clip_grad_value_(ref, clip_value)
    for a, b, c in zip(ours_np, ours_th, ref):
        np.testing.assert_array_equal(a.grad, c.grad.numpy())
        np.testing.assert_array_equal(b.grad.numpy(), c.grad.numpy())
        assert np.max(np.abs(a.grad)) <= clip_value


def test_numpy_accepts_single_parameter_plain_arrays_and_none_grads():
    g = np.array([3.0, 4.0])
    single = Parameter(np.zeros(2))
    single.grad = g.copy()
    assert np_clip.clip_grad_norm_(single, 1.0) == pytest.approx(5.0, rel=1e-15)
    np.testing.assert_allclose(single.grad, g / (5.0 + 1e-6), rtol=1e-15)

    arrays = [g.copy(), np.array([12.0])]
    total = np_clip.clip_grad_norm_(arrays, 1.0)  # the arrays are the gradients
    assert total == pytest.approx(13.0, rel=1e-15)
    np.testing.assert_allclose(arrays[0], g / (13.0 + 1e-6), rtol=1e-15)

    no_grad = Parameter(np.ones(2))
    assert np_clip.clip_grad_norm_([no_grad], 1.0) == 0.0
    assert no_grad.grad is None
    plain = np.array([-2.0, 0.5, 7.0])
    np_clip.clip_grad_value_(plain, 1.0)
    np.testing.assert_array_equal(plain, [-1.0, 0.5, 1.0])


def test_torch_accepts_a_single_tensor_and_skips_none_grads():
    t = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    empty = torch.zeros(2, requires_grad=True)
    assert th_clip.clip_grad_norm_([t, empty], 1.0).item() == pytest.approx(5.0, rel=1e-15)
    assert empty.grad is None
    assert th_clip.clip_grad_norm_(t, 10.0).item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("clip_module", [np_clip, th_clip], ids=["numpy", "torch"])
def test_bad_arguments_name_the_argument(clip_module):
    p = Parameter(np.ones(2)) if clip_module is np_clip else torch.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match="max_norm"):
        clip_module.clip_grad_norm_([p], "1.0")
    with pytest.raises(ValueError, match="norm_type"):
        clip_module.clip_grad_norm_([p], 1.0, norm_type=-1.0)
    with pytest.raises(TypeError, match="clip_value"):
        clip_module.clip_grad_value_([p], None)
    with pytest.raises(TypeError, match="parameters"):
        clip_module.clip_grad_norm_([p, "weights"], 1.0)
