"""The quantitative claims of chapters 1-3, checked on the chapters' own experiments.

Each fixture calls a ``course_lib.experiments`` function with the arguments the chapter
uses (same sizes, same seed), once per module; each test asserts one sentence of the
prose, with a margin, so the text cannot drift from what the code does.
"""
import math

import numpy as np
import pytest
import torch

from course_lib.experiments import gradients as ch3
from course_lib.experiments import initialization as ch2
from course_lib.experiments import training_loop as ch1


# ------------------------------------------------------------------------ chapter 1
def test_huge_plus_tiny_is_huge_in_both_precisions():
    for np_dtype, torch_dtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        assert np_dtype(1e10) + np_dtype(1e-10) == np_dtype(1e10)
        big = torch.tensor(1e10, dtype=torch_dtype)
        assert torch.equal(big + torch.tensor(1e-10, dtype=torch_dtype), big)
    result = ch1.float_absorption()
    assert result["float32"]["absorbed"] and result["float64"]["absorbed"]
    # near 1 the spacing is eps: float64 keeps 1e-10, float32 does not
    assert result["float64"]["near_one"] and not result["float32"]["near_one"]
    assert result["float32"]["ulp_big"] == 1024.0
    assert result["float64"]["ulp_big"] == 2.0 ** -19


@pytest.fixture(scope="module")
def gd():
    return ch1.gradient_descent_variants(batch_sizes=(None, 32, 1), epochs=5, lr=0.05, seed=0)


def test_variants_start_from_the_same_weights(gd):
    n = gd["n_train"]
    assert gd[n]["epoch_loss"][0] == gd[32]["epoch_loss"][0] == gd[1]["epoch_loss"][0]


def test_updates_per_epoch_is_ceil_n_over_b(gd):
    n = gd["n_train"]
    for b in (n, 32, 1):
        assert list(gd[b]["updates"]) == [e * math.ceil(n / b) for e in range(6)]


def test_per_epoch_small_batches_make_more_progress(gd):
    n = gd["n_train"]
    full, mini, sgd = (gd[b]["epoch_loss"][-1] for b in (n, 32, 1))
    assert full > 1.5 * mini
    assert mini > 5 * sgd


def test_per_update_the_full_batch_is_at_least_as_good(gd):
    n = gd["n_train"]
    at = {b: dict(map(tuple, gd[b]["update_loss"])) for b in (n, 1)}
    for step in (1.0, 2.0, 4.0):
        assert at[n][step] < at[1][step]


def test_single_example_losses_are_noisy(gd):
    first = gd[1]["batch_loss"][:1280]
    assert first.min() < 0.05 and first.max() > 3.0
    mini = gd[32]["batch_loss"][:40]
    assert mini.max() - mini.min() < first.max() - first.min()


def test_loss_derivatives_match_the_prose():
    curves = ch1.regression_loss_curves(delta=1.0)
    r = curves["r"]
    np.testing.assert_allclose(curves["mse"][1], 2 * r, rtol=1e-12)
    away = np.abs(r) > 1e-9
    np.testing.assert_array_equal(curves["mae"][1][away], np.sign(r[away]))
    np.testing.assert_allclose(curves["huber"][1], np.clip(r, -1.0, 1.0), rtol=1e-12)


def test_mse_is_dragged_by_outliers_mae_and_huber_are_not():
    fit = ch1.robust_line_fit(n=200, outlier_fraction=0.1, outlier_shift=30.0, seed=0)
    assert abs(fit["mse"][0] - 2.0) > 1.0
    assert abs(fit["mae"][0] - 2.0) < 0.2
    assert abs(fit["huber"][0] - 2.0) < 0.3
    assert fit["is_outlier"].sum() == 20 and np.all(fit["x"][fit["is_outlier"]] > 0)


@pytest.fixture(scope="module")
def std():
    return ch1.standardization_effect(lrs=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0), epochs=20,
                                      seed=0)


def test_standardization_trains_much_faster(std):
    best_raw = np.nanmin(std["raw"][:, -1])
    best_std = np.nanmin(std["standardized"][:, -1])
    assert best_std < best_raw / 5


def test_raw_features_only_tolerate_tiny_steps(std):
    final = std["raw"][:, -1]
    assert std["lrs"][int(np.nanargmin(final))] <= 1e-5
    # every step of 1e-4 or more ends worse than the 50/50 start (ln 2)
    assert np.all(~(final[std["lrs"] >= 1e-4] <= math.log(2)))


def test_raw_feature_scales_span_orders_of_magnitude(std):
    assert std["feature_std_raw"].min() < 0.01 and std["feature_std_raw"].max() > 100


def test_standardizer_is_fitted_on_the_training_split_only(std):
    assert np.abs(std["train_mean"]).max() < 1e-12
    np.testing.assert_allclose(std["train_std"], 1.0, rtol=1e-12)
    # the test split uses the training statistics: close to, but not exactly, standard
    assert 1e-3 < np.abs(std["test_mean"]).max() < 1.0
    assert np.abs(std["test_std"] - 1.0).max() > 1e-3


# ------------------------------------------------------------------------ chapter 2
@pytest.fixture(scope="module")
def sym():
    return ch2.constant_init_symmetry(value=0.05, hidden=16, epochs=5, lr=0.1, seed=0)


def test_constant_initialization_leaves_all_hidden_units_identical(sym):
    assert sym["constant"]["spread_in"] <= 1e-12
    assert sym["constant"]["spread_out"] <= 1e-12
    assert sym["random"]["spread_in"] > 0.1 and sym["random"]["spread_out"] > 0.1


def test_constant_initialization_stays_at_chance(sym):
    assert abs(sym["constant"]["loss"][-1] - math.log(10)) < 0.05
    assert sym["random"]["loss"][-1] < 1.0


def _stats(scheme, activation):
    return ch2.activation_stats(scheme, activation, depth=50, width=256, seed=0)


def test_small_weights_make_tanh_activations_vanish():
    st = _stats("small", "tanh")
    assert st["std"][-1] < 1e-30
    per_layer = (st["std"][-1] / st["std"][0]) ** (1 / 49)
    assert 1 / 7 < per_layer < 1 / 5  # "divided by about 6 per layer"


def test_large_weights_saturate_tanh_at_every_layer():
    assert _stats("large", "tanh")["saturated"].min() > 0.8


def test_glorot_gain_one_decays_slowly_not_geometrically():
    st = _stats("xavier_uniform", "tanh")
    assert st["std"][-1] < st["std"][0] / 3
    assert st["std"][-1] > 0.05
    # like 1/sqrt(l): from layer 10 to layer 50 about sqrt(5)
    assert 0.8 * math.sqrt(5) < st["std"][9] / st["std"][49] < 1.2 * math.sqrt(5)


def test_glorot_with_tanh_gain_keeps_the_std_roughly_constant_through_50_layers():
    st = _stats("xavier_uniform_gain", "tanh")
    assert st["std"].max() / st["std"].min() < 1.3
    assert abs(st["std"][-1] - st["std"][0]) < 0.15


def test_torch_default_uniform_shrinks_a_deep_tanh_stack():
    assert _stats("uniform", "tanh")["std"][-1] < 1e-6


def test_lecun_and_glorot_coincide_for_square_layers():
    np.testing.assert_allclose(_stats("lecun_normal", "tanh")["std"],
                               _stats("xavier_normal", "tanh")["std"], rtol=1e-10)


def test_glorot_kills_relu_activations_he_keeps_them_alive():
    glorot, he = _stats("xavier_normal", "relu"), _stats("he_normal", "relu")
    assert glorot["std"][-1] < 1e-6
    ratio = he["std"] / he["input_std"]
    assert ratio.min() > 0.25 and ratio.max() < 4
    assert 1 - he["zero"][-1] > 0.4


def test_selu_with_lecun_normal_is_self_normalizing():
    st = _stats("lecun_normal", "selu")
    assert np.all(np.abs(st["std"] - 1) < 0.1)
    assert np.all(np.abs(st["mean"]) < 0.1)


def test_gains_in_the_table_are_pytorchs():
    from course_lib.torch.init import calculate_gain

    for name, param in (("tanh", None), ("relu", None), ("sigmoid", None), ("linear", None),
                        ("leaky_relu", 0.2), ("selu", None)):
        assert calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)
    assert calculate_gain("tanh") == 5 / 3
    assert math.isclose(calculate_gain("leaky_relu", 0.2), math.sqrt(2 / (1 + 0.2 ** 2)),
                        rel_tol=1e-15)


def test_torch_linear_default_is_uniform_one_over_sqrt_fan_in():
    layer = torch.nn.Linear(400, 300, dtype=torch.float64)
    w = layer.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / math.sqrt(400)
    assert abs(w.var() * 3 * 400 - 1) < 0.05


# ------------------------------------------------------------------------ chapter 3
def test_jacobian_products_vanish_or_explode_geometrically():
    jac = ch3.jacobian_product_norms(gains=(0.9, 1.0, 1.1), depth=50, width=64, seed=0)
    assert jac[0.9][-1] < 0.05 and jac[1.1][-1] > 20
    assert 0.2 < jac[1.0][-1] < 5
    for g in (0.9, 1.1):
        assert 1 / 3 < jac[g][-1] / g ** 50 < 3


def test_sigmoid_and_tanh_derivatives_are_bounded():
    der = ch3.activation_derivatives()
    assert der["sigmoid"][1].max() == 0.25
    assert der["tanh"][1].max() == 1.0
    assert der["sigmoid"][1][0] < 0.01 and der["tanh"][1][0] < 1e-4  # saturated at |z| = 6


@pytest.fixture(scope="module")
def norms():
    return ch3.gradient_norms_by_activation(
        ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu"), depth=20, width=64,
        seed=0)


def test_sigmoid_gradients_vanish_others_flow(norms):
    assert norms["sigmoid"][0] / norms["sigmoid"][-1] < 1e-8
    for name in ("tanh", "relu", "leaky_relu", "elu", "selu", "gelu"):
        assert 0.1 < norms[name][0] / norms[name][-1] < 10, name
    assert all(len(g) == 21 for g in norms.values())


def test_large_learning_rate_kills_relus():
    dead = ch3.dead_relu_fraction(lrs=(0.01, 0.1, 1.0, 2.0), hidden=128, epochs=3, seed=0)
    assert dead["dead"][1] < 0.05
    assert dead["dead"][-1] > 0.5
    assert dead["final_loss"][-1] > 2.0  # no better than chance (ln 10 = 2.30)
    assert dead["final_loss"][1] < 1.0


@pytest.fixture(scope="module")
def clipped():
    return ch3.clipping_directions(value_quantile=0.9, norm_fraction=0.5, seed=0)


def test_clipping_by_norm_keeps_the_direction(clipped):
    assert abs(clipped["cos_norm"] - 1.0) < 1e-12
    # torch's formula: g * max_norm / (||g|| + 1e-6)
    scale = clipped["max_norm"] / (clipped["norm"] + 1e-6)
    np.testing.assert_allclose(clipped["g_norm"], clipped["g"] * scale, rtol=1e-12, atol=0)
    assert math.isclose(clipped["returned_norm"], clipped["norm"], rel_tol=1e-12)
    assert math.isclose(clipped["norm"], float(np.linalg.norm(clipped["g"])), rel_tol=1e-12)


def test_clipping_by_value_changes_the_direction(clipped):
    c = clipped["clip_value"]
    np.testing.assert_array_equal(clipped["g_value"], np.clip(clipped["g"], -c, c))
    assert clipped["cos_value"] < 0.99


def test_threshold_from_the_history_clips_only_the_large_steps():
    hist = ch3.gradient_norm_history(lr=0.1, epochs=3, quantile=0.9, seed=0)
    assert hist["threshold"] > hist["median"]
    assert hist["clipped_fraction"] <= 0.1 + 1 / len(hist["norms"])
    assert len(hist["norms"]) == 3 * math.ceil(hist["n_train"] / 32)


def test_gradient_check_accepts_correct_and_catches_buggy_backward():
    check = ch3.gradient_check(seed=0)
    assert max(check["correct"].values()) < 1e-7
    assert check["buggy"]["0.weight"] > 1e-3
    assert check["buggy"]["2.weight"] < 1e-7  # the layer after the bug is still right


def test_centred_difference_error_is_smallest_at_a_middle_step():
    step = ch3.gradcheck_error_vs_step(seed=0)
    best = step["h"][np.argmin(step["error"])]
    assert 1e-7 <= best <= 1e-4
    assert step["error"][0] > 100 * step["error"].min()   # truncation, h = 0.1
    assert step["error"][-1] > 100 * step["error"].min()  # rounding, h = 1e-12


# ------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, name", [
    (lambda: ch2.activation_stats("bogus", "tanh", depth=2, width=4), "scheme"),
    (lambda: ch2.activation_stats("he_normal", "swish", depth=2, width=4), "activation"),
    (lambda: ch2.activation_stats("he_normal", "relu", depth=0, width=4), "depth"),
    (lambda: ch3.deep_mlp("swish", depth=2, width=4), "activation"),
    (lambda: ch3.deep_mlp("relu", depth=2, width=4, init="orthogonal"), "init"),
    (lambda: ch3.jacobian_product_norms(gains=(-1.0,), depth=2), "gain"),
    (lambda: ch1.robust_line_fit(outlier_fraction=1.5), "outlier_fraction"),
    (lambda: ch3.clipping_directions(value_quantile=2.0), "value_quantile"),
])
def test_bad_arguments_raise_errors_that_name_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_train_epochs_checks_its_arguments():
    model = ch1.tanh_mlp([2, 3, 2], seed=0)
    X, y = torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="lr"):
        ch1.train_epochs(model, torch.nn.functional.cross_entropy, X, y, lr=-0.1,
                         batch_size=2, epochs=1, seed=0)
    with pytest.raises(TypeError, match="batch_size"):
        ch1.train_epochs(model, torch.nn.functional.cross_entropy, X, y, lr=0.1,
                         batch_size=2.5, epochs=1, seed=0)
