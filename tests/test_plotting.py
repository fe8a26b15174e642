"""course_lib.plotting and course_lib.surfaces: figures build headless, surfaces are right."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import course_lib.numpy.layers as nl  # noqa: E402
import course_lib.numpy.optim as noptim  # noqa: E402
import course_lib.torch.optim as toptim  # noqa: E402
from course_lib import diagnostics, plotting, surfaces  # noqa: E402
from course_lib.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plotting helpers must not call plt.show()")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


# ------------------------------------------------------------------------ surfaces
SURFACES = [surfaces.rosenbrock, surfaces.ravine, surfaces.saddle]
POINTS = np.array([[-1.2, 1.0], [0.3, -0.7], [1.5, 2.0]])


@pytest.mark.parametrize("f", SURFACES, ids=lambda f: f.__name__)
def test_surface_gradients_match_autograd(f):
    xy = torch.tensor(POINTS, requires_grad=True)
    f(xy).sum().backward()
    np.testing.assert_allclose(f.grad(POINTS), xy.grad.numpy(), rtol=1e-14, atol=1e-14)
    torch_grad = f.grad(torch.tensor(POINTS))
    assert isinstance(torch_grad, torch.Tensor)
    np.testing.assert_allclose(torch_grad.numpy(), xy.grad.numpy(), rtol=1e-14, atol=1e-14)
    # central differences, independent of both
    h = 1e-6
    for p in POINTS:
        fd = [(f(p + h * e) - f(p - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(f.grad(p), fd, rtol=1e-6, atol=1e-6)
    grid = np.zeros((5, 7, 2))
    assert f(grid).shape == (5, 7) and f.grad(grid).shape == (5, 7, 2)


def test_surface_minima():
    assert surfaces.rosenbrock(np.array([1.0, 1.0])) == 0.0
    np.testing.assert_array_equal(surfaces.rosenbrock_grad(np.array([1.0, 1.0])), [0.0, 0.0])
    assert surfaces.rosenbrock(np.array([-1.0, 1.0])) == 4.0
    assert surfaces.ravine(np.array([2.0, 1.0]), condition=10.0) == 0.5 * (4 + 10)
    np.testing.assert_array_equal(surfaces.saddle_grad(np.zeros(2)), [0.0, 0.0])
    assert surfaces.saddle.minimum is None and surfaces.ravine.minimum == (0.0, 0.0)


def test_optimize_path_gradient_descent_in_closed_form():
    """On the ravine, x_t = x_0 (1 - lr)^t and y_t = y_0 (1 - lr kappa)^t."""
    lr, kappa, steps, start = 0.05, 20.0, 15, (4.0, 1.0)
    t = np.arange(steps + 1)
    expected = np.column_stack([start[0] * (1 - lr) ** t, start[1] * (1 - lr * kappa) ** t])
    for factory, backend in ((lambda p: toptim.SGD(p, lr=lr), "torch"),
                             (lambda p: torch.optim.SGD(p, lr=lr), "torch"),
                             (lambda p: noptim.SGD(p, lr=lr), "numpy")):
        path = surfaces.optimize_path(factory, surfaces.ravine, start, steps, backend=backend)
        assert path.shape == (steps + 1, 2)
        np.testing.assert_allclose(path, expected, rtol=1e-12, atol=1e-15)


def test_optimize_path_adam_matches_torch_and_errors():
    start = (-1.2, 1.0)
    ours = surfaces.optimize_path(lambda p: toptim.Adam(p, lr=0.05), surfaces.rosenbrock,
                                  start, 50)
    ref = surfaces.optimize_path(lambda p: torch.optim.Adam(p, lr=0.05), surfaces.rosenbrock,
                                 start, 50)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    assert surfaces.rosenbrock(ours[-1]) < surfaces.rosenbrock(np.array(start))
    with pytest.raises(ValueError, match="start"):
        surfaces.optimize_path(lambda p: toptim.SGD(p, lr=0.1), surfaces.ravine, (1.0,), 3)
    with pytest.raises(TypeError, match="surface"):
        surfaces.optimize_path(lambda p: toptim.SGD(p, lr=0.1), lambda xy: 0.0, (1.0, 1.0), 3)
    with pytest.raises(ValueError, match="backend"):
        surfaces.optimize_path(lambda p: toptim.SGD(p, lr=0.1), surfaces.ravine, (1.0, 1.0), 3,
                               backend="jax")


# -------------------------------------------------------------------------- figures
def stats_of_tanh_net():
    rng = np.random.default_rng(0)
    net = nl.mlp([5, 8, 8, 3], activation="tanh", generator=rng)
    return diagnostics.activation_stats(net, rng.normal(size=(32, 5)), keep_activations=True,
                                        layers=("Tanh",))


def test_plot_layer_histograms():
    stats = stats_of_tanh_net()
    fig, axes = plotting.plot_layer_histograms(stats, bins=20)
    assert len(fig.axes) == 2 and len(axes) == 2
    assert len(axes[0].patches) == 20
    assert "Tanh" in axes[0].get_title()
    fig, axes = plotting.plot_layer_histograms(stats, overlay=True)
    assert len(fig.axes) == 1 and len(axes[0].lines) == 2
    fig, axes = plotting.plot_layer_histograms({"a": np.zeros(5), "b": np.ones(5)})
    assert len(axes) == 2
    with pytest.raises(ValueError, match="keep_activations"):
        plotting.plot_layer_histograms([{"name": "0", "layer": "Tanh", "mean": 0.0}])


def test_plot_layer_stats():
    stats = stats_of_tanh_net()
    fig, axes = plotting.plot_layer_stats(stats, keys=("mean", "std", "saturated"))
    assert len(fig.axes) == 3 and all(len(ax.lines) == 1 for ax in axes)
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), [s["std"] for s in stats])
    fig, axes = plotting.plot_layer_stats({"run a": stats, "run b": stats}, keys="std")
    assert len(axes) == 1 and len(axes[0].lines) == 2


def test_plot_learning_curves():
    h = History(train_loss=[1.0, 0.5, 0.4], val_loss=[1.1, 0.6, 0.5],
                train_metric=[0.5, 0.7, 0.8], val_metric=[0.4, 0.6, 0.7], lr=[0.1] * 3)
    fig, axes = plotting.plot_learning_curves(h)
    assert len(fig.axes) == 1 and len(axes[0].lines) == 2
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), h.val_loss)
    fig, axes = plotting.plot_learning_curves({"sgd": h, "adam": h.as_dict()}, metric="accuracy")
    assert len(fig.axes) == 2 and len(axes[0].lines) == 4 and len(axes[1].lines) == 4
    assert axes[1].get_ylabel() == "accuracy"
    no_val = History(train_loss=[1.0, 0.9])
    fig, axes = plotting.plot_learning_curves(no_val, log_y=True)
    assert len(axes[0].lines) == 1 and axes[0].get_yscale() == "log"


def test_plot_optimizer_paths():
    paths = {"sgd": np.array([[-1.0, 1.0], [-0.5, 0.5], [0.0, 0.2]]),
             "adam": np.array([[-1.0, 1.0], [0.0, 0.0]])}
    fig, ax = plotting.plot_optimizer_paths(surfaces.rosenbrock, paths, levels=15,
                                            resolution=40)
    assert len(fig.axes) == 1
    labels = [line.get_label() for line in ax.lines]
    assert "sgd" in labels and "adam" in labels and "minimum" in labels
    assert ax.get_xlim() == surfaces.rosenbrock.xlim
    fig, ax = plotting.plot_optimizer_paths(surfaces.saddle, {}, xlim=(-1, 1), ylim=(-1, 1),
                                            levels=[-0.5, 0.0, 0.5], resolution=20)
    assert len(ax.lines) == 0
    with pytest.raises(ValueError, match="xlim"):
        plotting.plot_optimizer_paths(lambda xy: xy[..., 0], {})
    with pytest.raises(ValueError, match="paths"):
        plotting.plot_optimizer_paths(surfaces.ravine, {"bad": np.zeros((3, 3))}, resolution=10)


def test_plot_lr_schedule_and_range_test():
    fig, ax = plotting.plot_lr_schedule({"step": [0.1] * 5 + [0.01] * 5,
                                         "cosine": 0.05 * (1 + np.cos(np.linspace(0, np.pi, 10)))})
    assert len(ax.lines) == 2
    lrs = np.geomspace(1e-5, 1.0, 30)
    fig, ax = plotting.plot_lr_range_test(lrs, 1 / (1 + lrs), suggestion=1e-2)
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    fig, ax = plotting.plot_lr_range_test(lrs, 1 / (1 + lrs))
    assert len(ax.lines) == 1
    with pytest.raises(ValueError, match="lrs"):
        plotting.plot_lr_range_test([0.0, 1.0], [1.0, 2.0])


def test_plot_decision_boundary():
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, -1.0]])
    y = np.array([0, 1, 1, 1])
    predict = lambda pts: (pts[:, 0] > 0).astype(int)
    fig, ax = plotting.plot_decision_boundary(predict, X, y, resolution=30)
    assert len(fig.axes) == 1 and len(ax.collections) >= 2
    scores = lambda pts: torch.tensor(np.column_stack([-pts[:, 0], pts[:, 0]]))
    fig, ax = plotting.plot_decision_boundary(scores, X, y, resolution=30)
    with pytest.raises(ValueError, match="X must have shape"):
        plotting.plot_decision_boundary(predict, np.zeros((4, 3)), y)
