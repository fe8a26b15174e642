"""The gradient checker itself: exact on known derivatives, restores its input, and
catches a wrong backward pass."""
import numpy as np
import pytest

from course_lib.gradcheck import (check_module_gradients, numerical_gradient,
                                  numerical_gradient_array, rel_error)
from course_lib.numpy import layers as NL


def test_numerical_gradient_of_known_function():
    x = np.random.default_rng(0).normal(size=(3, 4))
    grad = numerical_gradient(lambda z: np.sum(z ** 3) + np.sin(z).sum(), x)
    np.testing.assert_allclose(grad, 3 * x ** 2 + np.cos(x), rtol=1e-8, atol=1e-9)


def test_numerical_gradient_restores_x_bit_for_bit():
    x = np.random.default_rng(1).normal(size=(4, 5))
    original = x.copy()
    seen = []
    numerical_gradient(lambda z: seen.append(z is x) or float(z.sum()), x)
    assert all(seen)  # perturbed in place ...
    np.testing.assert_array_equal(x, original)  # ... and restored exactly


def test_numerical_gradient_array_is_vector_jacobian_product():
    rng = np.random.default_rng(2)
    A, x, dout = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    grad = numerical_gradient_array(lambda z: A @ z, x, dout)
    np.testing.assert_allclose(grad, A.T @ dout, rtol=1e-8, atol=1e-10)


def test_rel_error_definition():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(1 / 5)
    # the 1e-8 floor keeps two tiny numbers from looking different
    assert rel_error(np.array([1e-12]), np.array([-1e-12])) == pytest.approx(2e-4)
    assert rel_error(np.empty(0), np.empty(0)) == 0.0
    with pytest.raises(ValueError, match="b must have the shape"):
        rel_error(np.ones(2), np.ones(3))


def test_check_module_gradients_passes_a_correct_module_and_restores_state():
    bn = NL.BatchNorm1d(3)
    x = np.random.default_rng(3).normal(size=(5, 3))
    state = bn.state_dict()
    errors = check_module_gradients(bn, x, generator=np.random.default_rng(4))
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-7
    for key, value in bn.state_dict().items():  # running statistics untouched
        np.testing.assert_array_equal(value, state[key])
    assert bn.weight.grad is None


class _WrongLinear(NL.Linear):
    """A Linear whose weight gradient is 1% too large."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.weight.grad *= 1.01
        return dx


def test_check_module_gradients_catches_a_wrong_backward():
    layer = _WrongLinear(4, 3, generator=np.random.default_rng(5))
    errors = check_module_gradients(layer, np.random.default_rng(6).normal(size=(2, 4)))
    assert errors["weight"] > 1e-3
    assert errors["x"] < 1e-7 and errors["bias"] < 1e-7


def test_bad_arguments():
    with pytest.raises(TypeError, match="x must be"):
        numerical_gradient(np.sum, [1.0, 2.0])
    with pytest.raises(TypeError, match="x must be"):
        numerical_gradient(np.sum, np.arange(3))
    with pytest.raises(ValueError, match="h must be"):
        numerical_gradient(np.sum, np.ones(3), h=0.0)
    with pytest.raises(ValueError, match="f must return a scalar"):
        numerical_gradient(lambda z: z, np.ones(3))
    with pytest.raises(ValueError, match="dout must have the shape"):
        numerical_gradient_array(lambda z: z, np.ones(3), np.ones(2))
