"""course_lib.diagnostics: activation/gradient statistics and the learning-curve verdicts."""
import numpy as np
import pytest
import torch

import course_lib.numpy.layers as nl
import course_lib.numpy.losses as nlosses
import course_lib.numpy.optim as noptim
import course_lib.torch.layers as tl
from course_lib import diagnostics, training

# A Linear 3 -> 4 then ReLU, weights chosen by hand. Inputs are in [0, 1]^3.
W = np.array([[1.0, 1.0, 1.0],     # unit 0: > 0 for every input below -> alive
              [-1.0, -1.0, -1.0],  # unit 1: <= 0 for every input -> dead
              [1.0, -1.0, 0.0],    # unit 2: positive for some inputs -> alive
              [0.0, 0.0, 0.0]])    # unit 3: bias -1 -> always -1 -> dead
B = np.array([0.5, 0.0, 0.0, -1.0])
X = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.5], [0.2, 0.9, 0.1], [0.3, 0.3, 0.3]])


def numpy_net():
    lin = nl.Linear(3, 4, generator=np.random.default_rng(0))
    lin.weight.data[...] = W
    lin.bias.data[...] = B
    return nl.Sequential(lin, nl.ReLU())


def torch_net(module_lib):
    lin = module_lib.Linear(3, 4, device="cpu")
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W))
        lin.bias.copy_(torch.tensor(B))
    return module_lib.Sequential(lin, module_lib.ReLU()).double()


def test_dead_relu_fraction_by_hand_numpy():
    stats = diagnostics.activation_stats(numpy_net(), X, keep_activations=True)
    assert [s["layer"] for s in stats] == ["Linear", "ReLU"]
    assert [s["name"] for s in stats] == ["0", "1"]
    relu = stats[1]
    assert relu["dead"] == 0.5           # units 1 and 3 of 4
    assert relu["saturated"] is None and stats[0]["dead"] is None
    a = np.maximum(X @ W.T + B, 0.0)
    np.testing.assert_allclose(relu["activations"], a, rtol=1e-15)
    assert relu["mean"] == pytest.approx(a.mean(), rel=1e-14)
    assert relu["std"] == pytest.approx(a.std(), rel=1e-14)


@pytest.mark.parametrize("module_lib", [torch.nn, tl], ids=["torch.nn", "course_lib.torch"])
def test_dead_relu_fraction_by_hand_torch(module_lib):
    net = torch_net(module_lib)
    stats = diagnostics.activation_stats(net, torch.tensor(X))
    relu = [s for s in stats if s["layer"] == "ReLU"]
    assert len(relu) == 1 and relu[0]["dead"] == 0.5
    assert relu[0]["mean"] == pytest.approx(np.maximum(X @ W.T + B, 0).mean(), rel=1e-12)
    from_array = diagnostics.activation_stats(net, X)
    assert [s["dead"] for s in from_array] == [s["dead"] for s in stats]
    # the hooks are removed afterwards
    assert all(not m._forward_hooks for m in net.modules())


def test_saturation_fractions_by_hand():
    x = np.array([[0.0, 0.5, 3.0, -3.0, 10.0]])       # |tanh| > 0.99 iff |x| > 2.65
    tanh = diagnostics.activation_stats(nl.Sequential(nl.Tanh()), x)[0]
    assert tanh["saturated"] == pytest.approx(3 / 5)
    x = np.array([[0.0, 6.0, -6.0, 1.0]])             # |2 s - 1| > 0.99 iff |x| > 5.29
    sig = diagnostics.activation_stats(nl.Sequential(nl.Sigmoid()), x)[0]
    assert sig["saturated"] == pytest.approx(2 / 4)
    loose = diagnostics.activation_stats(nl.Sequential(nl.Sigmoid()), x,
                                         saturation_threshold=0.4)[0]
    assert loose["saturated"] == pytest.approx(3 / 4)   # |2 s(1) - 1| = 0.46 > 0.4
    only = diagnostics.activation_stats(numpy_net(), X, layers=("ReLU",))
    assert [s["layer"] for s in only] == ["ReLU"]
    with pytest.raises(ValueError, match="saturation_threshold"):
        diagnostics.activation_stats(numpy_net(), X, saturation_threshold=1.0)


def test_gradient_stats_both_backends():
    g = np.arange(12.0).reshape(4, 3) - 5.0
    net = numpy_net()
    net[0].weight.grad = g.copy()
    stats = {s["name"]: s for s in diagnostics.gradient_stats(net)}
    assert set(stats) == {"0.weight"}   # the bias has no gradient yet
    s = stats["0.weight"]
    assert s["shape"] == (4, 3)
    assert s["mean"] == pytest.approx(g.mean()) and s["std"] == pytest.approx(g.std())
    assert s["norm"] == pytest.approx(np.sqrt(np.sum(g ** 2)), rel=1e-14)
    assert s["grad_to_data"] == pytest.approx(s["norm"] / np.linalg.norm(W), rel=1e-14)
    tnet = torch_net(torch.nn)
    loss = tnet(torch.tensor(X)).sum()
    loss.backward()
    tstats = {s["name"]: s for s in diagnostics.gradient_stats(tnet)}
    np.testing.assert_allclose(tstats["0.bias"]["norm"],
                               tnet[0].bias.grad.norm().item(), rtol=1e-14)


def test_update_to_data_ratio_by_hand():
    before = {"w": np.array([3.0, 4.0]), "z": np.zeros(2), "b": np.ones(1)}
    after = {"w": np.array([3.03, 4.04]), "z": np.ones(2), "b": np.ones(1)}
    r = diagnostics.update_to_data_ratio(before, after)
    assert r["w"] == pytest.approx(0.01, rel=1e-12)
    assert r["z"] == float("inf") and r["b"] == 0.0
    rt = diagnostics.update_to_data_ratio([torch.tensor([3.0, 4.0])], [torch.tensor([6.0, 8.0])])
    assert rt == {"0": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="same names"):
        diagnostics.update_to_data_ratio({"a": np.ones(1)}, {"b": np.ones(1)})


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_gradient_norm_history_records_each_step(backend):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 4
    if backend == "numpy":
        model, loss_fn = numpy_net(), nlosses.CrossEntropyLoss()
        opt = noptim.SGD(model.parameters(), lr=0.0)
        gen = np.random.default_rng(0)
    else:
        model, loss_fn = torch_net(torch.nn), torch.nn.functional.cross_entropy
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        gen = torch.Generator().manual_seed(0)
    hist = diagnostics.GradientNormHistory(per_parameter=True)
    training.fit(model, loss_fn, opt, (X, y), epochs=2, batch_size=20, callbacks=[hist],
                 generator=gen)
    assert len(hist.total) == 2 and len(hist.per_parameter["0.weight"]) == 2
    # lr = 0 and the full batch: the same gradient both epochs, recomputed here by hand
    logits = X @ W.T + B
    a = np.maximum(logits, 0)
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(20), y] -= 1
    dz = (p / 20) * (logits > 0)
    expected = np.sqrt(np.sum((dz.T @ X) ** 2) + np.sum(dz.sum(0) ** 2))
    np.testing.assert_allclose(hist.total, [expected] * 2, rtol=1e-12)


# ----------------------------------------------------------------- learning curves
EPOCHS = np.arange(30)


def test_diagnose_every_category():
    good_train = 0.2 + np.exp(-EPOCHS / 3)
    good_val = 0.25 + np.exp(-EPOCHS / 3)
    assert diagnostics.diagnose_learning_curves(good_train, good_val) == "good fit"
    # still falling fast at the end
    under_train = 2.0 - 0.05 * EPOCHS
    assert diagnostics.diagnose_learning_curves(under_train, under_train + 0.1) == "underfit"
    # flat but high: underfit only when a target loss says it is high
    flat = np.full(30, 2.0)
    assert diagnostics.diagnose_learning_curves(flat, flat + 0.05) == "good fit"
    assert diagnostics.diagnose_learning_curves(flat, flat + 0.05, target_loss=0.5) == "underfit"
    # validation U-shape: it rises again after epoch 10
    over_train = 0.05 + np.exp(-EPOCHS / 3)
    over_val = 0.5 + 0.02 * (EPOCHS - 10) ** 2 / 10
    assert diagnostics.diagnose_learning_curves(over_train, over_val) == "overfit"
    # a large gap counts as overfitting only when gap_tol is given
    gap_val = good_train + 0.5
    assert diagnostics.diagnose_learning_curves(good_train, gap_val) == "good fit"
    assert diagnostics.diagnose_learning_curves(good_train, gap_val, gap_tol=0.5) == "overfit"
    # validation loss well below the training loss
    assert diagnostics.diagnose_learning_curves(good_train, 0.5 * good_train) == \
        "unrepresentative validation"


def test_diagnose_thresholds_and_errors():
    train = np.linspace(1.0, 0.9, 10)     # falls 1.1% per epoch: 3.4% over 3 epochs
    assert diagnostics.diagnose_learning_curves(train, train + 0.05) == "good fit"
    assert diagnostics.diagnose_learning_curves(train, train + 0.05,
                                                improving_tol=0.01) == "underfit"
    with pytest.raises(ValueError, match="same length"):
        diagnostics.diagnose_learning_curves([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(ValueError, match="window"):
        diagnostics.diagnose_learning_curves([1, 2], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        diagnostics.diagnose_learning_curves([1, 2, 3, np.nan], [1, 2, 3, 4])


# ------------------------------------------------------------------- bias / variance
@pytest.mark.parametrize("train, val, human, verdict, focus", [
    (0.01, 0.11, 0.0, "high variance", "variance"),          # Ng's four classic cases
    (0.15, 0.16, 0.0, "high bias", "bias"),
    (0.15, 0.30, 0.0, "high bias and high variance", "bias"),  # a tie: bias first
    (0.005, 0.01, 0.0, "good fit", None),
    (0.08, 0.10, 0.01, "high bias", "bias"),                  # human level 1%: bias 7%
    (0.08, 0.14, 0.075, "high variance", "variance"),         # human level 7.5%: bias 0.5%
])
def test_bias_variance_table(train, val, human, verdict, focus):
    out = diagnostics.bias_variance_verdict(train, val, human)
    assert out["avoidable_bias"] == pytest.approx(train - human, abs=1e-15)
    assert out["variance"] == pytest.approx(val - train, abs=1e-15)
    assert out["verdict"] == verdict and out["focus"] == focus
    assert bool(out["remedies"]) == (verdict != "good fit")


def test_bias_variance_tolerance_and_errors():
    out = diagnostics.bias_variance_verdict(0.05, 0.08, 0.0, tolerance=0.1)
    assert out["verdict"] == "good fit"
    with pytest.raises(ValueError, match="val_error"):
        diagnostics.bias_variance_verdict(0.1, 11.0)
    with pytest.raises(ValueError, match="tolerance"):
        diagnostics.bias_variance_verdict(0.1, 0.1, tolerance=-1.0)
