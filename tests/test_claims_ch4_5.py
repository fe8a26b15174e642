"""The claims that chapters 4 (regularization) and 5 (optimizers) add to those of
``test_claims_ch4_7.py``: the corrections of the "Common mistakes" boxes and the new
experiments (weight scaling against the sub-networks, units against weights, input
dropout, the three momentum forms, Nesterov's change of variables, Adagrad, clipping,
TensorFlow 1's Adam epsilon, momentum 0.999, batch size and learning rate, the trained
schedules).

Each test calls the experiment function with the chapter's arguments; the margins keep
the assertions true for the seeded run without depending on its last digit.
"""
import math

import numpy as np
import pytest
import torch

from course_lib.experiments import optimizers as ch5
from course_lib.experiments import regularization as ch4


pytestmark = pytest.mark.usefixtures("torch_one_thread")


# =============================================================== chapter 4: regularization
@pytest.fixture(scope="module")
def weight_scaling():
    return ch4.weight_scaling_vs_ensemble(p=0.5, hidden=10, epochs=20, seed=0)


def test_weight_scaling_is_the_geometric_mean_for_one_softmax_layer(weight_scaling):
    exact = weight_scaling["before the output layer"]
    assert weight_scaling["n_subnetworks"] == 2 ** 10
    assert exact["max_diff_geometric"] < 1e-12
    assert exact["agreement_geometric"] == 1.0
    assert exact["val_error_scaled"] == exact["val_error_geometric"]
    # the geometric mean, not the arithmetic one
    assert exact["max_diff_arithmetic"] > 0.01


def test_weight_scaling_is_an_approximation_before_a_nonlinear_layer(weight_scaling):
    approx = weight_scaling["before a hidden layer"]
    assert approx["max_diff_geometric"] > 0.01
    assert 0.9 < approx["agreement_geometric"] < 1.0
    assert abs(approx["val_error_scaled"] - approx["val_error_geometric"]) < 0.02


def test_geometric_mean_identity_on_random_logits():
    """Equation (eq-ch4-geometric-mean) itself, independent of the experiment: random
    softmax-regression weights, all 2^6 input masks, drop probability 0.3."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(4, 6, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    a = torch.randn(9, 6, generator=g, dtype=torch.float64)
    p = 0.3
    masks, probs = ch4._all_masks(6, p)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-14)
    logits = (a[None] * masks[:, None, :] / (1 - p)) @ w.T + b
    geo, _ = ch4._geometric_and_arithmetic(logits, probs)
    torch.testing.assert_close(geo, torch.softmax(a @ w.T + b, dim=-1), rtol=0, atol=1e-13)


def test_dropout_drops_units_not_weights():
    uw = ch4.units_vs_weights_dropout(p=0.5, n_in=8, n_out=4, samples=20_000, seed=0)
    assert uw["max_diff_columns"] < 1e-12
    assert uw["zero_columns_dropout"] == pytest.approx(0.5, abs=0.02)
    assert uw["zero_columns_dropconnect"] == pytest.approx(0.5 ** 4, abs=0.01)
    assert uw["corr_dropout"] > 0.9 and abs(uw["corr_dropconnect"]) < 0.05
    for key in ("var_dropout", "var_dropconnect"):
        assert uw[key] == pytest.approx(uw["var_formula"], rel=0.05), key
    for key in ("mean_dropout", "mean_dropconnect"):
        assert uw[key] == pytest.approx(uw["mean_formula"], abs=0.1), key
    assert uw["keep_fraction_torch_p"] == pytest.approx(0.5, abs=0.01)  # p drops


def test_torch_dropout_p_is_the_drop_probability():
    x = torch.ones(100_000)
    out = torch.nn.Dropout(0.8)(x)
    assert (out == 0).double().mean().item() == pytest.approx(0.8, abs=0.01)
    out = ch4.layers.Dropout(0.8, generator=torch.Generator().manual_seed(0))(x)
    assert (out == 0).double().mean().item() == pytest.approx(0.8, abs=0.01)


def test_input_dropout():
    inp = ch4.input_dropout_run(n_train=200, epochs=80, seed=0)
    err = {name: h["val_error"][-1] for name, h in inp.items()}
    train = {name: h["final_train_error"] for name, h in inp.items()}
    wrong = "inputs 0.8 + hidden 0.5 (keep read as drop)"
    assert set(err) == set(ch4.INPUT_DROPOUT)
    # the keep probability read as PyTorch's drop probability underfits
    assert err[wrong] > max(e for n, e in err.items() if n != wrong) + 0.03
    assert train[wrong] > 0.01
    for name in ("none", "hidden 0.5", "inputs 0.2 + hidden 0.5"):
        assert train[name] < 0.01, name
    # neither kind of dropout pays off on 200 clean digits
    for name in ("hidden 0.5", "inputs 0.2 + hidden 0.5"):
        assert err[name] > err["none"] - 0.01, name
        assert abs(err[name] - err["none"]) < 0.02, name


def test_dropout_slows_training():
    sweep = ch4.dropout_rate_sweep((0.0, 0.2, 0.5, 0.8), seed=0)
    assert sweep[0.5]["train_loss"][-1] > 2 * sweep[0.0]["train_loss"][-1]
    assert sweep[0.5]["val_error"][-1] >= sweep[0.0]["val_error"][-1] - 0.01


def test_new_chapter4_arguments_are_checked():
    with pytest.raises(ValueError, match="p"):
        ch4.weight_scaling_vs_ensemble(p=1.5)
    with pytest.raises(ValueError, match="hidden"):
        ch4.weight_scaling_vs_ensemble(hidden=30)
    with pytest.raises(ValueError, match="p"):
        ch4.units_vs_weights_dropout(p=-0.1)


# ================================================================ chapter 5: optimizers
def test_three_momentum_forms():
    mf = ch5.momentum_forms(lr=0.05, momentum=0.9, steps=60, drop_at=30, drop=0.1, seed=0)
    assert mf["lr_factor"] == pytest.approx(10.0)
    assert mf["max_diff_constant"] < 1e-12        # PyTorch = torch.optim = EMA = Sutskever
    assert mf["max_diff_ema_dropped"] < 1e-12     # the EMA form rescales like PyTorch's
    assert mf["max_diff_sutskever_dropped"] > 0.05
    d = mf["dropped"]
    np.testing.assert_array_equal(d["Sutskever"][:31], mf["constant"]["Sutskever"][:31])
    assert np.abs(d["Sutskever"][31:] - d["PyTorch"][31:]).max() > 0.05


def test_nesterov_is_sutskevers_lookahead():
    nv = ch5.nesterov_change_of_variables(lr=0.05, momentum=0.9, steps=60, seed=0)
    assert nv["max_diff"] < 1e-12
    assert nv["max_diff_theta"] > 0.05


def test_nesterov_pytorch_form_matches_torch():
    nv = ch5.nesterov_change_of_variables(lr=0.05, momentum=0.9, steps=60, seed=0)
    w0, grad = ch5._quadratic_problem(0)
    w = torch.nn.Parameter(w0.clone())
    opt = torch.optim.SGD([w], lr=0.05, momentum=0.9, nesterov=True)
    path = [w.detach().clone()]
    for _ in range(60):
        w.grad = grad(w.detach())
        opt.step()
        path.append(w.detach().clone())
    np.testing.assert_allclose(nv["pytorch"], torch.stack(path).numpy(), rtol=0, atol=1e-14)


def test_adagrad_is_not_normalized_gradient_descent():
    ag = ch5.adagrad_vs_normalized(grad=(3.0, 0.03), lr=0.1, steps=100)
    np.testing.assert_allclose(ag["adagrad_steps"][0], [-0.1, -0.1], rtol=1e-8)
    np.testing.assert_allclose(ag["adagrad_norms"], 0.1 * math.sqrt(2) / np.sqrt(ag["t"]),
                               rtol=1e-8)
    np.testing.assert_allclose(ag["normalized_norms"], 0.1, rtol=1e-12)
    assert ag["cos_normalized"] == pytest.approx(1.0, abs=1e-12)
    assert ag["cos_adagrad"] < 0.75


def test_clipping_rescales_to_max_norm_and_is_global():
    cs = ch5.clipping_semantics(max_norm=5.0, norms=(3.0, 20.0), layer_norms=(3.0, 40.0),
                                seed=0)
    assert cs["single"][3.0]["clipped"] == pytest.approx(3.0, rel=1e-12)  # left alone
    assert cs["single"][20.0]["clipped"] == pytest.approx(5.0, rel=1e-6)  # to max_norm
    assert cs["single"][20.0]["divided"] == pytest.approx(1.0, rel=1e-12)
    assert cs["global_cos"] == pytest.approx(1.0, abs=1e-12)
    assert cs["global_total"] == pytest.approx(5.0, rel=1e-6)
    assert cs["per_tensor_cos"] < 0.95
    np.testing.assert_allclose(cs["per_tensor_norms"], [3.0, 5.0], rtol=1e-6)
    assert cs["per_tensor_total"] > 1.1 * 5.0


def test_clip_grad_norm_agrees_with_torch_on_the_experiment():
    a = torch.nn.Parameter(torch.zeros(30, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    for p in (a, b):
        p.grad = 20 * torch.randn(p.shape, generator=g, dtype=torch.float64)
    ref = [a.grad.clone(), b.grad.clone()]
    total = torch.nn.utils.clip_grad_norm_([a, b], 5.0)
    ours_a, ours_b = torch.nn.Parameter(a.detach()), torch.nn.Parameter(b.detach())
    ours_a.grad, ours_b.grad = ref[0].clone(), ref[1].clone()
    from course_lib.torch import clip
    ours = clip.clip_grad_norm_([ours_a, ours_b], 5.0)
    torch.testing.assert_close(ours, total, rtol=1e-15, atol=0)
    torch.testing.assert_close(ours_a.grad, a.grad, rtol=1e-15, atol=0)
    torch.testing.assert_close(ours_b.grad, b.grad, rtol=1e-15, atol=0)


def test_tf1_adam_epsilon_is_epsilon_hat():
    tf1 = ch5.tf1_adam_epsilon(eps_hat=1e-3, grad_scale=1e-3, lr=1e-3, steps=2000, seed=0)
    assert tf1["max_diff_eps_t"] < 1e-12
    assert tf1["eps_t_first"] == pytest.approx(math.sqrt(1000), rel=1e-12)
    assert tf1["first_step_ratio"] > 5
    assert np.abs(tf1["torch_same_eps"][-1] - tf1["tf1"][-1]).max() > 0.05


def test_tf1_adam_equals_torch_optim_adam_with_eps_t():
    """The same identity with torch.optim.Adam instead of course_lib's Adam."""
    tf1 = ch5.tf1_adam_epsilon(eps_hat=1e-3, grad_scale=1e-3, lr=1e-3, steps=200, seed=0)
    grads = 1e-3 * torch.randn(200, 4, generator=torch.Generator().manual_seed(0),
                               dtype=torch.float64) + 1e-3
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=1e-3, eps=1e-3)
    path = [w.detach().clone()]
    for t in range(1, 201):
        opt.param_groups[0]["eps"] = 1e-3 / math.sqrt(1 - 0.999 ** t)
        w.grad = grads[t - 1].clone()
        opt.step()
        path.append(w.detach().clone())
    np.testing.assert_allclose(torch.stack(path).numpy(), tf1["tf1"], rtol=0, atol=1e-14)


def test_momentum_0999_is_not_a_momentum_setting():
    mh = ch5.momentum_too_high(epochs=10, lr=0.05, seed=0)
    (k09, h09), (k_same, h_same), (k_eff, h_eff) = mh.items()
    assert k09 == (0.9, 0.05) and k_same == (0.999, 0.05)
    assert k_eff[0] == 0.999 and k_eff[1] == pytest.approx(0.0005)
    assert h09["train_loss"][-1] < 0.05
    assert max(h_same["train_loss"]) > 5 and h_same["train_loss"][-1] > 1.0  # diverges
    assert h_eff["train_loss"][-1] > 10 * h09["train_loss"][-1]


@pytest.fixture(scope="module")
def batch_sweep():
    return ch5.batch_size_lr_sweep(epochs=6, seed=0)


def test_best_learning_rate_grows_with_the_batch(batch_sweep):
    bs = batch_sweep
    assert list(bs["batch_sizes"]) == [16, 32, 64, 128, 256]
    assert np.all(np.diff(bs["best_lr"]) >= 0)
    assert bs["best_lr"][-1] / bs["best_lr"][0] >= 8  # batch 16 times larger
    assert bs["n_train"] == 1197


def test_larger_batch_at_the_small_batch_rate_is_poor(batch_sweep):
    bs = batch_sweep
    j = int(np.argmin(bs["train_loss"][0]))
    assert bs["train_loss"][-1, j] > 5 * bs["train_loss"][-1].min()
    # too few steps: even at its best rate the largest batch trails the smallest
    assert bs["train_loss"][-1].min() > bs["train_loss"][0].min()


def test_more_epochs_close_the_gap_of_the_largest_batch(batch_sweep):
    bs = batch_sweep
    bs12 = ch5.batch_size_lr_sweep(bs["batch_sizes"][-1:], epochs=12, seed=0)
    assert bs12["train_loss"].min() < bs["train_loss"][0].min()
    assert bs12["best_lr"][0] < bs["best_lr"][-1]


def test_trained_schedules():
    names = ("constant", "step", "exponential", "cosine", "one-cycle", "plateau")
    sched = ch5.schedule_comparison(names, epochs=15, lr=0.08, seed=0)
    val = {name: h["val_loss"][-1] for name, h in sched.items()}
    low = max(val[n] for n in ("step", "cosine", "one-cycle"))
    mid = [val["exponential"], val["plateau"]]
    assert low < min(mid) and max(mid) < val["constant"]
    assert val["constant"] > low / 0.85  # the decayed rates settle clearly lower
    errors = list(h["val_error"][-1] for h in sched.values())
    assert max(errors) - min(errors) < 0.015
    plateau = np.asarray(sched["plateau"]["lr"])
    cuts = np.nonzero(np.diff(plateau) < 0)[0]
    assert len(cuts) >= 1 and cuts[0] + 1 > 2  # not before `patience` epochs
    halvings = np.concatenate([[0], np.cumsum(np.diff(plateau) < 0)])
    np.testing.assert_allclose(plateau, 0.08 * 0.5 ** halvings, rtol=1e-12)  # factor=0.5
    assert sched["exponential"]["lr"][-1] == pytest.approx(0.08 * 0.1 ** (14 / 15), rel=1e-9)
    assert sched["constant"]["lr"] == [0.08] * 15


def test_new_chapter5_arguments_are_checked():
    with pytest.raises(ValueError, match="momentum"):
        ch5.momentum_forms(momentum=1.0)
    with pytest.raises(ValueError, match="max_norm"):
        ch5.clipping_semantics(max_norm=0.0)
    with pytest.raises(ValueError, match="betas"):
        ch5.tf1_adam_epsilon(betas=(0.9, 1.5))
