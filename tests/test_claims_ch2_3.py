"""The new quantitative claims of chapters 2 and 3 (initialization; gradients and
activations), checked on the chapters' own experiments with the chapters' arguments.

The older claims of these chapters are in ``test_claims_ch1_3.py``. Each test asserts one
sentence of the prose (or of its "Common mistakes" box), with a margin.
"""
import math

import numpy as np
import pytest
import torch

from course_lib.experiments import gradients as ch3
from course_lib.experiments import initialization as ch2
from course_lib.numpy.activations import SELU_ALPHA, SELU_SCALE


# ------------------------------------------------------------------------ chapter 2
def test_zero_initialization_trains_only_the_output_bias():
    run = ch2.constant_init_symmetry(value=0.0, hidden=16, epochs=5, lr=0.1, seed=0)["constant"]
    assert run["weight_abs_max"] == (0.0, 0.0)
    assert np.all(run["first_units"] == 0.0)
    assert abs(run["loss"][-1] - math.log(10)) < 0.01


def _grads(scheme):
    return ch2.weight_gradient_norms(scheme, "tanh", depth=50, width=256, seed=0)


def test_weight_gradients_use_the_same_network_as_activation_stats():
    # same seed, same draws: the forward pass of the gradient experiment is the one plotted
    st = ch2.activation_stats("xavier_uniform_gain", "tanh", depth=3, width=16, n=20, seed=3)
    rng, x, weights = ch2._draw_stack("xavier_uniform_gain", "tanh", 3, 16, 20, 3)
    a = x
    for w in weights:
        a = np.tanh(a @ w.T)
    assert a.std() == st["std"][-1]


def test_weight_gradients_match_a_hand_written_backward_pass():
    depth, width, n = 4, 8, 10
    got = ch2.weight_gradient_norms("xavier_normal", "tanh", depth=depth, width=width, n=n,
                                    seed=1)
    rng, x, weights = ch2._draw_stack("xavier_normal", "tanh", depth, width, n, 1)
    target = rng.standard_normal((n, width))
    acts = [x]
    for w in weights:
        acts.append(np.tanh(acts[-1] @ w.T))
    da = (acts[-1] - target) / n
    expected = []
    for layer in range(depth, 0, -1):
        dz = da * (1 - acts[layer] ** 2)
        expected.append(np.linalg.norm(dz.T @ acts[layer - 1]))
        da = dz @ weights[layer - 1]
    np.testing.assert_allclose(got["weight"], expected[::-1], rtol=1e-12)


def test_too_small_weights_give_tiny_weight_gradients_at_every_layer_the_last_included():
    g = _grads("small")
    assert g["output"] > 0.5  # dL/da_L is of order 1
    assert g["weight"].max() < 1e-30
    assert g["weight"][-1] < 1e-30


def test_too_large_weights_make_tanh_gradients_explode_towards_the_input():
    g = _grads("large")["weight"]
    assert g[0] / g[-1] > 1e15
    assert np.all(np.diff(np.log(g)) < 0)  # shrinks from layer 1 to layer 50 at every step


def test_glorot_with_gain_keeps_the_gradients_within_a_moderate_factor():
    g = _grads("xavier_uniform_gain")["weight"]
    assert 1 < g[0] / g[-1] < 1e3


def test_variance_of_a_product_needs_the_means():
    prod = ch2.variance_of_a_product(n=1_000_000, w_mean=0.5, seed=0)
    for name, r in prod.items():
        assert math.isclose(r["measured"], r["general"], rel_tol=0.01), name
        assert r["measured"] > 1.3 * r["product"], name
    assert abs(prod["sigmoid"]["mean_a"] - 0.5) < 0.01
    # zero-mean w: Var(w a) = Var(w) E[a^2]; for ReLU E[a^2] = Var(z)/2 = 1/2
    assert abs(prod["relu"]["measured"] - 0.5) < 0.01


def test_orthogonal_keeps_every_singular_value_at_one():
    orth = ch2.orthogonal_vs_gaussian(depth=50, width=64, seed=0)
    assert np.abs(orth["orthogonal"] - 1).max() < 1e-12
    gauss = orth["gaussian"]
    assert gauss[-1].max() > 2
    rms = np.sqrt(np.mean(gauss ** 2, axis=1))
    assert 0.5 < rms[-1] < 2  # the average stretch is kept; the spread is not
    kept = (gauss > 0.01).sum(axis=1)
    assert np.all(np.diff(kept) <= 0) and kept[0] >= 60
    assert kept[9] < 48 and kept[-1] < 16
    assert gauss[-1].min() < 1e-15 * gauss[-1].max()  # numerically singular


def test_orthogonal_scheme_is_orthogonal_and_keeps_a_linear_signal_exactly():
    w = ch2.init_weight(np.empty((32, 32)), "orthogonal", "linear", np.random.default_rng(0))
    np.testing.assert_allclose(w @ w.T, np.eye(32), atol=1e-12)
    st = ch2.activation_stats("orthogonal", "linear", depth=50, width=256, seed=0)
    assert np.abs(st["std"] / st["input_std"] - 1).max() < 0.01


def test_standard_normal_weights_give_std_sqrt_n():
    sweep = ch2.width_sweep(widths=(16, 64, 256, 1024), seed=0)
    np.testing.assert_allclose(sweep["standard"], np.sqrt(sweep["widths"]), rtol=0.1)
    np.testing.assert_allclose(sweep["lecun"], 1.0, rtol=0.05)
    assert sweep["standard"][-1] < 1024 / 10  # sqrt(n), nowhere near n


@pytest.fixture(scope="module")
def deep():
    return ch2.depth_sweep(depths=(1, 2, 4, 8, 16), schemes=("default", "he_normal"), epochs=5,
                           lr=0.1, batch_size=64, seed=0)


def test_default_init_stops_learning_at_four_hidden_layers(deep):
    default = deep["default"]["final_loss"]
    assert np.all(default[2:] > 2.2)  # depth 4, 8, 16: near ln 10
    assert default[0] < 1.5


def test_he_trains_deep_networks_but_16_plain_layers_barely_learn(deep):
    he, default = deep["he_normal"]["final_loss"], deep["default"]["final_loss"]
    assert np.all(he < default)
    assert np.all(he[:4] < 0.7)  # 1 to 8 hidden layers
    assert he[4] > 2 * he[3] and he[4] > 1.0  # 16 layers: barely starts learning


def test_elu_needs_he_not_lecun():
    lecun = ch2.activation_stats("lecun_normal", "elu", depth=50, width=256, seed=0)["std"]
    he = ch2.activation_stats("he_normal", "elu", depth=50, width=256, seed=0)["std"]
    assert lecun[-1] < lecun[0] / 10
    assert 1 < he[-1] / he[0] < 4  # drifts up slowly


def test_xavier_normal_std_is_the_root_of_the_variance():
    mis = ch2.xavier_std_misread(fan_in=784, fan_out=256, seed=0)
    assert math.isclose(mis["xavier_formula"], math.sqrt(2 / 1040), rel_tol=1e-15)
    assert math.isclose(mis["xavier_std"], mis["xavier_formula"], rel_tol=0.01)
    assert mis["xavier_misread_std"] / mis["xavier_formula"] > 4


def test_lecun_normal_is_normal_with_std_one_over_sqrt_n():
    mis = ch2.xavier_std_misread(fan_in=256, fan_out=256, seed=0)
    assert mis["same_draws"]
    assert mis["lecun_formula"] == 1 / 16 and mis["lecun_misread_std"] == 0.25
    st = ch2.activation_stats("std_as_variance", "linear", depth=10, width=256, seed=0)["std"]
    per_layer = (st[-1] / st[0]) ** (1 / 9)
    assert 3.5 < per_layer < 4.5  # grows by 256^(1/4) = 4 per layer


def test_weights_stored_in_out_swap_the_fans():
    swap = ch2.fan_swap(784, 10, seed=0)
    assert math.isclose(swap["std_right"], swap["formula_right"], rel_tol=0.02)
    assert math.isclose(swap["std_swapped"], swap["formula_swapped"], rel_tol=0.03)
    assert math.isclose(swap["formula_swapped"], math.sqrt(2 / 10), rel_tol=1e-15)
    assert 0.9 < swap["out_rms_right"] < 1.1
    assert swap["out_rms_swapped"] > 5


# ------------------------------------------------------------------------ chapter 3
def test_only_gelu_and_elu_1_have_a_continuous_derivative():
    j = ch3.derivative_jumps(elu_alphas=(1.0, 2.0))
    assert j["gelu"]["left"] == j["gelu"]["right"] == 0.5
    assert math.isclose(j["gelu"]["left2"], j["gelu"]["right2"], rel_tol=1e-6)
    assert j["elu_1"]["left"] == j["elu_1"]["right"] == 1.0
    assert abs(j["elu_1"]["left2"] - 1) < 1e-5 and j["elu_1"]["right2"] == 0.0  # C^1, not C^2
    assert (j["elu_2"]["left"], j["elu_2"]["right"]) == (2.0, 1.0)
    assert math.isclose(j["selu"]["left"], SELU_SCALE * SELU_ALPHA, rel_tol=1e-12)
    assert math.isclose(j["selu"]["right"], SELU_SCALE, rel_tol=1e-12)
    assert (j["relu"]["left"], j["relu"]["right"]) == (0.0, 1.0)


def test_prelu_and_rrelu_pass_the_gradient_like_leaky_relu():
    norms = ch3.gradient_norms_by_activation(("leaky_relu", "prelu", "rrelu"), depth=20,
                                             width=64, seed=0)
    for name, g in norms.items():
        assert 0.1 < g[0] / g[-1] < 10, name
    again = ch3.gradient_norms_by_activation(("rrelu",), depth=20, width=64, seed=0)
    np.testing.assert_array_equal(again["rrelu"], norms["rrelu"])  # seeded, reproducible


def test_rrelu_draws_its_slopes_in_training_and_uses_the_mean_at_evaluation():
    before = torch.random.get_rng_state()
    pr = ch3.prelu_rrelu(hidden=64, epochs=5, lr=0.1, seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator untouched
    s = pr["rrelu_train_slopes"]
    assert s.min() >= 1 / 8 and s.max() <= 1 / 3
    assert s.min() < 1 / 8 + 1e-3 and s.max() > 1 / 3 - 1e-3
    assert len(np.unique(s)) > 0.99 * len(s)  # one slope per element
    assert math.isclose(pr["rrelu_eval_slope"], (1 / 8 + 1 / 3) / 2, rel_tol=1e-15)


def test_prelu_learns_its_slopes():
    pr = ch3.prelu_rrelu(hidden=64, epochs=5, lr=0.1, seed=0)
    assert pr["prelu_initial"] == 0.25
    assert np.abs(pr["prelu_slopes"] - 0.25).max() > 0.02
    assert pr["prelu_slopes"].std() > 0.005  # one slope per unit, not one shared
    assert pr["prelu_loss"][-1] < 0.6


@pytest.fixture(scope="module")
def res():
    return ch3.residual_gradient_norms("tanh", depth=50, width=64, epochs=3, lr=0.02, seed=0)


def test_skip_connections_carry_the_gradient_to_the_first_layer(res):
    plain, residual = res["plain"], res["residual"]
    assert plain["norms"][0] / plain["norms"][-1] < 1e-6
    assert residual["norms"][0] / residual["norms"][-1] > 0.1
    assert residual["norms"][0] > 1e6 * plain["norms"][0]
    assert len(plain["norms"]) == len(residual["norms"]) == 52


def test_the_plain_deep_stack_stays_at_chance_the_residual_one_trains(res):
    assert abs(res["plain"]["loss"][-1] - math.log(10)) < 0.05
    assert res["residual"]["loss"][-1] < 0.2
    assert res["residual"]["loss"][0] > math.log(10)  # the residual stream starts large


def test_plain_and_residual_networks_share_their_weights():
    plain = ch3.residual_mlp("tanh", depth=3, width=8, residual=False, seed=0)
    residual = ch3.residual_mlp("tanh", depth=3, width=8, residual=True, seed=0)
    for p, q in zip(plain.parameters(), residual.parameters()):
        assert torch.equal(p, q)
    x = torch.randn(5, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = plain[0](x)
    for block in list(plain)[1:-1]:
        h = h + block(h)
    torch.testing.assert_close(residual(x), plain[-1](h), rtol=0, atol=0)


def test_only_deeper_dead_relus_come_back():
    rev = ch3.dead_relu_revival(lr=1.0, hidden=128, epochs=8, seed=0)
    assert rev["n_frozen"] > 10
    assert rev["revived"][0] == 0
    assert rev["frozen_change"] == 0.0
    assert rev["revived"][1] > 10


@pytest.fixture(scope="module")
def clipped():
    return ch3.clipping_directions(value_quantile=0.9, norm_fraction=0.5,
                                   per_tensor_fraction=0.5, seed=0)


def test_clipping_by_norm_rescales_to_the_threshold(clipped):
    # torch: g * max_norm / (||g|| + 1e-6), so the new norm is max_norm up to 1e-6
    assert math.isclose(clipped["norm_after_norm"], clipped["max_norm"], rel_tol=1e-5)
    assert abs(clipped["norm_after_norm"] - 1.0) > 0.1  # not divided by its norm


def test_per_parameter_clipping_neither_bounds_nor_keeps_the_direction(clipped):
    assert clipped["tensor_norms"].max() < clipped["max_norm"]
    assert clipped["norm_after_per_tensor"] == pytest.approx(clipped["norm"], rel=1e-12)
    assert clipped["norm_after_per_tensor"] > 1.5 * clipped["max_norm"]
    assert clipped["cos_per_tensor_low"] < 0.999
    low = clipped["per_tensor_low"]
    # each parameter's gradient on its own has norm <= the threshold
    n = np.cumsum([0] + [p.numel() for p in ch3.deep_mlp("tanh", depth=6, width=64).parameters()])
    for a, b in zip(n[:-1], n[1:]):
        assert np.linalg.norm(clipped["g_per_tensor"][a:b]) <= clipped["max_norm"] * (1 + 1e-12)
    assert low == pytest.approx(0.5 * clipped["max_norm"], rel=1e-15)


@pytest.mark.parametrize("call, name", [
    (lambda: ch2.init_mlp(2, scheme="bogus"), "scheme"),
    (lambda: ch2.init_mlp(0), "depth"),
    (lambda: ch2.init_mlp(2, activation="swish"), "activation"),
    (lambda: ch2.width_sweep(widths=(0,)), "width"),
    (lambda: ch2.orthogonal_vs_gaussian(depth=0), "depth"),
    (lambda: ch3.derivative_jumps(h=0.0), "h"),
    (lambda: ch3.residual_mlp("swish", depth=2, width=4), "activation"),
    (lambda: ch3.residual_mlp("tanh", depth=0, width=4), "depth"),
    (lambda: ch3.clipping_directions(per_tensor_fraction=0.0), "per_tensor_fraction"),
])
def test_bad_arguments_raise_errors_that_name_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()
