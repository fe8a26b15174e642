"""Experiments of chapter 1, *The training loop*.

Each function runs one experiment of the chapter and returns plain numbers and arrays;
the chapter plots them and ``tests/test_claims_ch1_3.py`` asserts what the prose says
about them. Everything is seeded through the ``seed`` argument (a fresh
``numpy.random.Generator`` / ``torch.Generator`` is made from it), float64, on the CPU.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from course_lib.core.validate import check_number
from course_lib.data import (Standardizer, load_bundled, load_digits, minibatches,
                             train_val_test_split)
from course_lib.torch import layers, losses, optim

__all__ = [
    "single_threaded", "tanh_mlp", "digits_training_split", "float_absorption", "train_epochs", "gradient_descent_variants",
    "standardization_effect", "regression_loss_curves", "robust_line_fit",
    "output_activations", "babysit_mlp", "initial_loss_check", "gradients_at_init",
    "update_ratio_history", "spiral_fit", "predict_fn", "weight_data_in_forward",
    "forgotten_zero_grad", "double_softmax", "variance_without_mean", "gradient_noise",
]

DTYPE = torch.float64
DEVICE = torch.device("cpu")


@contextlib.contextmanager
def single_threaded():
    """Run torch on one CPU thread inside the block, then restore the thread count.

    The course's networks are tiny: on a busy machine, torch's intra-op threads spend
    far more time waiting for each other than computing (we measured 50x slower
    training on a loaded 2-core machine), and one thread is also bit-reproducible.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ floating point
def float_absorption(big: float = 1e10, small: float = 1e-10):
    """Add a tiny number to a huge one in float32 and float64.

    A float with a ``p``-bit significand spaces its values ``ulp(x) = 2**(e - p + 1)``
    apart near ``x = m * 2**e``; an addend smaller than ``ulp(big) / 2`` is rounded away:
    ``big + small == big``. ``ulp(1e10)`` is 1024 in float32 and ``2**-19`` in float64,
    both far above ``1e-10``.

    Returns
    -------
    dict
        For ``"float32"`` and ``"float64"``: ``{"absorbed": big + small == big,
        "ulp_big": spacing at big, "near_one": 1 + small != 1, "eps": machine epsilon}``.

    References
    ----------
    Goldberg (1991), *What every computer scientist should know about floating-point
    arithmetic*.
    """
    check_number("big", big)
    check_number("small", small)
    out = {}
    for dtype in (np.float32, np.float64):
        b, s, one = dtype(big), dtype(small), dtype(1.0)
        out[np.dtype(dtype).name] = {
            "absorbed": bool(b + s == b),
            "ulp_big": float(np.spacing(b)),
            "near_one": bool(one + s != one),
            "eps": float(np.finfo(dtype).eps),
        }
    return out


# ------------------------------------------------------------------- training loop
def tanh_mlp(sizes, seed):
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` (``course_lib.torch.layers``) with tanh
    between the layers, float64 on the CPU, torch's default Linear initialization drawn
    from a ``torch.Generator`` seeded with ``seed``.

    Input ``(N, sizes[0])``, output ``(N, sizes[-1])`` (logits)."""
    gen = torch.Generator().manual_seed(seed)
    mods = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(layers.Linear(n_in, n_out, generator=gen, device=DEVICE, dtype=DTYPE))
        if i < len(sizes) - 2:
            mods.append(layers.Tanh())
    return layers.Sequential(*mods)


def _full_loss(model, loss_fn, X, y) -> float:
    with torch.no_grad():
        return float(loss_fn(model(X), y))


def train_epochs(model, loss_fn, X, y, *, lr, batch_size, epochs, seed, record_at=(),
                 after_backward=None, after_step=None):
    """The training loop: for each minibatch, forward, loss, backward, update.

    ``optimizer.zero_grad(); loss = loss_fn(model(xb), yb); loss.backward();
    optimizer.step()`` with plain SGD, ``w <- w - lr * dL/dw``.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable ``(output, target) -> scalar tensor``
    X, y : tensors, shapes (N, features) and (N,) or (N, outputs)
    lr : float
    batch_size : int
        ``N`` is batch gradient descent, ``1`` stochastic gradient descent.
    epochs : int
    seed : int
        Seeds the ``torch.Generator`` that shuffles each epoch.
    record_at : iterable of int
        Also record the loss on the whole training set after these update counts.
    after_backward : callable or None
        ``after_backward(model)`` runs between ``loss.backward()`` and
        ``optimizer.step()``: the place to read or clip the gradients.
    after_step : callable or None
        ``after_step(model)`` runs right after ``optimizer.step()``: the place to compare
        the parameters with a copy taken in ``after_backward``.

    Returns
    -------
    dict with ``epoch_loss`` (``epochs + 1`` losses on the whole training set, before
    training and after each epoch), ``batch_loss`` (the loss of each minibatch, as
    computed during training), ``updates`` (the number of updates after each epoch,
    starting at 0), ``update_loss``: array ``(k, 2)`` of ``(update, loss)`` rows for the
    counts in ``record_at`` that were reached.
    """
    check_number("lr", lr, low=0.0, low_open=True)
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("epochs", epochs, low=0, integer=True)
    gen = torch.Generator().manual_seed(seed)
    optimizer = optim.SGD(model.parameters(), lr=lr)
    epoch_loss = [_full_loss(model, loss_fn, X, y)]
    updates, batch_loss, update_loss = [0], [], []
    step = 0
    record_at = set(record_at)
    with single_threaded():
        for _ in range(epochs):
            step = _one_epoch(model, loss_fn, optimizer, X, y, batch_size, gen, step,
                              record_at, after_backward, after_step, batch_loss, update_loss)
            epoch_loss.append(_full_loss(model, loss_fn, X, y))
            updates.append(step)
    return {"epoch_loss": np.array(epoch_loss), "batch_loss": np.array(batch_loss),
            "updates": np.array(updates), "update_loss": np.array(update_loss).reshape(-1, 2)}


def _one_epoch(model, loss_fn, optimizer, X, y, batch_size, gen, step, record_at,
               after_backward, after_step, batch_loss, update_loss):
    """One pass over the shuffled training set; returns the updated step count."""
    for xb, yb in minibatches(X, y, batch_size, generator=gen):
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if after_backward is not None:
            after_backward(model)
        optimizer.step()
        if after_step is not None:
            after_step(model)
        step += 1
        batch_loss.append(loss.item())
        if step in record_at:
            update_loss.append((step, _full_loss(model, loss_fn, X, y)))
    return step


def digits_training_split(seed):
    """The training split (70 %, stratified, shuffled with ``seed``) of the 8x8 digits:
    ``X`` float64 tensor ``(1259, 64)`` in ``[0, 1]``, ``y`` int64 tensor ``(1259,)``."""
    X, y = load_digits()
    (X_tr, y_tr), _, _ = train_val_test_split(
        X, y, val_fraction=0.15, test_fraction=0.15,
        generator=np.random.default_rng(seed), stratify=True)
    return (torch.as_tensor(X_tr, dtype=DTYPE), torch.as_tensor(y_tr, dtype=torch.int64))


def gradient_descent_variants(batch_sizes=(None, 32, 1), *, epochs=5, lr=0.05,
                              hidden=32, seed=0,
                              record_at=tuple(2 ** k for k in range(10))):
    """Batch, minibatch and stochastic gradient descent on the digits.

    The same MLP ``64 -> hidden -> 10`` (tanh, identical initial weights) is trained with
    cross-entropy and plain SGD at the same learning rate, with each batch size, for the
    same number of epochs (passes over the training set).

    Parameters
    ----------
    batch_sizes : sequence of int or None
        ``None`` means the whole training set (batch gradient descent).
    epochs, lr, seed, record_at : as in :func:`train_epochs`.
    hidden : int
        Width of the hidden layer.

    Returns
    -------
    dict
        ``n_train`` and, for each batch size ``b`` (``None`` replaced by ``n_train``), the
        dict of :func:`train_epochs` (epoch losses, minibatch losses, updates per epoch).

    References
    ----------
    Robbins & Monro (1951), *A stochastic approximation method*; Bottou, Curtis &
    Nocedal (2018), *Optimization methods for large-scale machine learning*.
    """
    X, y = digits_training_split(seed)
    n = len(X)
    out = {"n_train": n}
    for b in batch_sizes:
        b = n if b is None else b
        model = tanh_mlp([64, hidden, 10], seed)
        out[b] = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=b,
                              epochs=epochs, seed=seed + 1, record_at=record_at)
    return out


# ----------------------------------------------------------------- standardization
def standardization_effect(*, lrs=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0), epochs=20,
                           batch_size=32, seed=0):
    """Logistic regression on the breast-cancer data, raw versus standardized features.

    The 30 features span five orders of magnitude (areas near 1000, smoothness near
    0.1). The standardizer ``z = (x - mean) / std`` is fitted on the training split
    only and applied unchanged to the test split. For each learning rate the same
    model (``Linear(30, 1)``, zero initial weights) is trained with SGD and the
    ``binary_cross_entropy_with_logits`` loss.

    Returns
    -------
    dict
        ``lrs``; ``raw`` and ``standardized``: arrays ``(len(lrs), epochs + 1)`` of the
        training loss per epoch (NaN/inf kept as they are: a diverged run);
        ``feature_std_raw``: per-feature std of the raw training features;
        ``train_mean``, ``train_std``, ``test_mean``, ``test_std``: per-feature mean and std
        of the standardized training and test splits.

    References
    ----------
    LeCun, Bottou, Orr & Müller (1998), *Efficient BackProp* (section 4.3, normalizing
    the inputs).
    """
    X, y = load_bundled("breast_cancer")
    (X_tr, y_tr), _, (X_te, y_te) = train_val_test_split(
        X, y, val_fraction=0.0, test_fraction=0.25,
        generator=np.random.default_rng(seed), stratify=True)
    scaler = Standardizer().fit(X_tr)
    Z_tr, Z_te = scaler.transform(X_tr), scaler.transform(X_te)
    target = torch.as_tensor(y_tr, dtype=DTYPE)[:, None]
    curves = {}
    for name, feats in (("raw", X_tr), ("standardized", Z_tr)):
        inputs = torch.as_tensor(feats, dtype=DTYPE)
        rows = []
        for lr in lrs:
            model = layers.Linear(30, 1, device=DEVICE, dtype=DTYPE)
            with torch.no_grad():
                for p in model.parameters():
                    p.zero_()
            run = train_epochs(model, losses.binary_cross_entropy_with_logits, inputs,
                               target, lr=lr, batch_size=batch_size, epochs=epochs,
                               seed=seed + 1)
            rows.append(run["epoch_loss"])
        curves[name] = np.array(rows)
    return {"lrs": np.array(lrs), **curves,
            "feature_std_raw": X_tr.std(axis=0),
            "train_mean": Z_tr.mean(axis=0), "train_std": Z_tr.std(axis=0),
            "test_mean": Z_te.mean(axis=0), "test_std": Z_te.std(axis=0)}


# -------------------------------------------------------------------------- losses
def regression_loss_curves(residuals=None, delta=1.0):
    """The regression losses of one example and their derivatives, as functions of the
    residual ``r = prediction - target``.

    MSE ``r**2``, MAE ``|r|``, Huber ``r**2 / 2`` for ``|r| <= delta`` and
    ``delta * (|r| - delta / 2)`` beyond. The derivatives come from autograd.

    Returns
    -------
    dict with ``r`` and, for ``"mse"``, ``"mae"``, ``"huber"``, ``(loss, dloss/dr)``.
    """
    if residuals is None:
        residuals = np.linspace(-3.0, 3.0, 601)
    r = torch.as_tensor(np.asarray(residuals, dtype=np.float64)).requires_grad_(True)
    zero = torch.zeros_like(r)
    out = {"r": r.detach().numpy().copy()}
    fns = {"mse": lambda a: losses.mse_loss(a, zero, reduction="none"),
           "mae": lambda a: losses.l1_loss(a, zero, reduction="none"),
           "huber": lambda a: losses.huber_loss(a, zero, reduction="none", delta=delta)}
    for name, fn in fns.items():
        value = fn(r)
        (grad,) = torch.autograd.grad(value.sum(), r)
        out[name] = (value.detach().numpy().copy(), grad.numpy().copy())
    return out


def robust_line_fit(*, n=200, outlier_fraction=0.1, outlier_shift=30.0, slope=2.0,
                    intercept=1.0, noise=0.5, steps=2000, lr=0.05, delta=1.0, seed=0):
    """Fit ``y = w x + b`` by full-batch gradient descent with MSE, MAE and Huber when a
    fraction of the targets are gross outliers.

    ``x ~ U(-1, 1)``, ``y = slope * x + intercept + noise * eps``; a random
    ``outlier_fraction`` of the points with ``x > 0`` get ``y += outlier_shift``.

    Returns
    -------
    dict with ``x``, ``y``, ``is_outlier``, ``true`` ``(slope, intercept)`` and, per
    loss, the fitted ``(w, b)``.

    References
    ----------
    Huber (1964), *Robust estimation of a location parameter*.
    """
    check_number("outlier_fraction", outlier_fraction, low=0.0, high=1.0, high_open=True)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    y = slope * x + intercept + noise * rng.standard_normal(n)
    candidates = np.flatnonzero(x > 0)
    bad = rng.choice(candidates, size=int(round(outlier_fraction * n)), replace=False)
    y[bad] += outlier_shift
    is_outlier = np.zeros(n, dtype=bool)
    is_outlier[bad] = True
    X = torch.as_tensor(x)[:, None]
    Y = torch.as_tensor(y)[:, None]
    fns = {"mse": losses.mse_loss, "mae": losses.l1_loss,
           "huber": lambda a, t: losses.huber_loss(a, t, delta=delta)}
    out = {"x": x, "y": y, "is_outlier": is_outlier, "true": (slope, intercept)}
    for name, fn in fns.items():
        w = torch.zeros((), dtype=DTYPE, requires_grad=True)
        b = torch.zeros((), dtype=DTYPE, requires_grad=True)
        opt = optim.SGD([w, b], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss = fn(w * X + b, Y)
            loss.backward()
            opt.step()
        out[name] = (w.item(), b.item())
    return out


# --------------------------------------------------------------- output activations
def output_activations(z=None):
    """The usual output activations on a grid of pre-activations ``z``.

    Returns
    -------
    dict with ``z``; ``identity`` (regression on any real target), ``sigmoid`` (a
    probability, binary classification), ``softplus`` (a positive quantity) and
    ``softmax``: the probabilities of three classes whose logits are ``(z, 0, -1)``.
    """
    from course_lib.numpy import activations as act

    if z is None:
        z = np.linspace(-6.0, 6.0, 241)
    z = np.asarray(z, dtype=np.float64)
    logits = np.stack([z, np.zeros_like(z), -np.ones_like(z)], axis=1)
    return {"z": z, "identity": z.copy(), "sigmoid": act.sigmoid(z),
            "softplus": act.softplus(z), "softmax": act.softmax(logits, dim=1)}


# -------------------------------------------------------------- babysitting a run
def babysit_mlp(sizes, seed, *, hidden_init="xavier", out_scale=None):
    """The tanh MLP of :func:`tanh_mlp` with a chosen initialization.

    Parameters
    ----------
    sizes : sequence of int
        ``64 -> ... -> 10`` for the digits.
    seed : int
        Seeds the ``torch.Generator`` of the initial weights.
    hidden_init : {"default", "xavier"}
        The hidden layers keep torch's default ``Linear`` initialization, or get
        ``xavier_normal_`` with tanh's gain 5/3 and a zero bias.
    out_scale : float or None
        ``None`` keeps the output layer as ``hidden_init`` made it; a number draws its
        weight from ``out_scale * N(0, 1)`` (``torch.randn`` times the scale, the way
        makemore writes it) and zeroes its bias.
    """
    from course_lib.core.validate import check_choice
    from course_lib.torch import init

    check_choice("hidden_init", hidden_init, ("default", "xavier"))
    model = tanh_mlp(sizes, seed)
    gen = torch.Generator().manual_seed(seed + 100)
    linears = [m for m in model if isinstance(m, layers.Linear)]
    with torch.no_grad():
        if hidden_init == "xavier":
            for lin in linears[:-1]:
                init.xavier_normal_(lin.weight, gain=init.calculate_gain("tanh"), generator=gen)
                lin.bias.zero_()
        if out_scale is not None:
            check_number("out_scale", out_scale, low=0.0)
            init.normal_(linears[-1].weight, 0.0, 1.0, generator=gen)
            linears[-1].weight.mul_(out_scale)
            linears[-1].bias.zero_()
    return model


def initial_loss_check(out_scales=(1.0, 0.01), *, hidden=64, lr=0.5, epochs=2,
                       batch_size=32, seed=0):
    """The first check of a classifier: the loss before training is about ``ln K``.

    A network that does not prefer any of the ``K`` classes gives each probability
    ``1/K``, a cross-entropy of ``ln K`` (``ln 10 = 2.303`` for the digits). The MLP
    ``64 -> hidden -> 10`` (tanh, Xavier hidden layer) gets an output layer of
    ``out_scale * N(0, 1)`` weights: with ``out_scale = 1`` (``torch.randn``) its logits
    are large and the initial loss far above ``ln K``; scaling the last layer down brings
    it to ``ln K``. Each version is trained with the same SGD run.

    Returns
    -------
    dict
        ``ln_k``, ``n_classes``, and per scale the dict of :func:`train_epochs`
        (``epoch_loss[0]`` is the initial loss on the whole training split) plus
        ``logit_std``, the standard deviation of the initial logits.

    References
    ----------
    Karpathy, CS231n notes, "Babysitting the learning process" (look for the correct loss
    at chance performance); Karpathy (2022), makemore part 3 (scaling the last layer).
    """
    X, y = digits_training_split(seed)
    out = {"n_classes": 10, "ln_k": float(np.log(10))}
    for scale in out_scales:
        model = babysit_mlp([64, hidden, 10], seed, out_scale=scale)
        with torch.no_grad():
            logit_std = float(model(X).std())
        run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                           epochs=epochs, seed=seed + 1)
        out[scale] = {**run, "logit_std": logit_std}
    return out


def gradients_at_init(hidden_inits=("default", "xavier"), *, sizes=(64, 64, 64, 64, 10),
                      batch_size=256, seed=0):
    """Per-layer gradients of the weights after one backward pass at initialization.

    The same batch of digits goes through the tanh MLP ``sizes`` with each hidden
    initialization of :func:`babysit_mlp` (the output layer scaled down,
    ``out_scale=0.01``, as :func:`initial_loss_check` recommends).

    Returns
    -------
    dict
        Per initialization: ``stats`` (:func:`course_lib.diagnostics.gradient_stats` of
        the weights only) and ``grads``, ``{layer name: flattened weight gradient}``.
    """
    from course_lib import diagnostics

    X, y = digits_training_split(seed)
    xb, yb = X[:batch_size], y[:batch_size]
    out = {}
    for name in hidden_inits:
        model = babysit_mlp(list(sizes), seed, hidden_init=name, out_scale=0.01)
        model.zero_grad()
        losses.cross_entropy(model(xb), yb).backward()
        weights = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
        out[name] = {"stats": diagnostics.gradient_stats(weights),
                     "grads": {n: p.grad.detach().numpy().ravel().copy()
                               for n, p in weights.items()}}
    return out


def update_ratio_history(lrs=(0.01, 0.1, 0.5), *, sizes=(64, 64, 64, 64, 10), epochs=3,
                         batch_size=32, seed=0):
    """The update-to-data ratio ``||W_after - W_before|| / ||W_before||`` of every weight
    matrix at every SGD step, for several learning rates.

    The network is :func:`babysit_mlp` (Xavier hidden layers, output layer scaled by
    0.01), the same initial weights and minibatches for every learning rate. With plain
    SGD the update is ``-lr * grad``, so at the first step (same weights, same batch) the
    ratio is exactly proportional to the learning rate.

    Returns
    -------
    dict
        ``layers`` (names of the weight matrices) and per learning rate ``ratios``, array
        ``(steps, layers)``, and ``epoch_loss``.

    References
    ----------
    Karpathy, CS231n notes, "Ratio of weights:updates" (about 1e-3 as a rough guide).
    """
    from course_lib import diagnostics

    X, y = digits_training_split(seed)
    out = {}
    for lr in lrs:
        model = babysit_mlp(list(sizes), seed, out_scale=0.01)
        names = [n for n, _ in model.named_parameters() if n.endswith("weight")]
        before, ratios = {}, []

        def snapshot(m):
            before.clear()
            before.update({n: p.detach().clone() for n, p in m.named_parameters() if n in names})

        def compare(m):
            after = {n: p.detach() for n, p in m.named_parameters() if n in names}
            ratio = diagnostics.update_to_data_ratio(before, after)
            ratios.append([ratio[n] for n in names])

        run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                           epochs=epochs, seed=seed + 1, after_backward=snapshot,
                           after_step=compare)
        out["layers"] = names
        out[lr] = {"ratios": np.array(ratios), "epoch_loss": run["epoch_loss"]}
    return out


def spiral_fit(*, n_samples=300, hidden=64, lr=0.5, epochs=150, batch_size=50, seed=0):
    """Fit a small tanh MLP ``2 -> hidden -> hidden -> 3`` to the three spirals and keep
    the model, to draw its decision regions (:func:`course_lib.plotting.plot_decision_boundary`).

    Returns
    -------
    dict
        ``X``, ``y`` (float64 / int64 arrays), ``model`` (trained), ``untrained`` (the same
        network before training), ``epoch_loss`` and ``accuracy`` (on the training points).
    """
    from course_lib.data import make_spirals

    Xs, ys = make_spirals(n_samples, 3, noise=0.2, generator=np.random.default_rng(seed))
    X, y = torch.as_tensor(Xs, dtype=DTYPE), torch.as_tensor(ys)
    untrained = tanh_mlp([2, hidden, hidden, 3], seed)
    model = tanh_mlp([2, hidden, hidden, 3], seed)
    run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                       epochs=epochs, seed=seed + 1)
    with torch.no_grad():
        accuracy = float((model(X).argmax(1) == y).to(DTYPE).mean())
    return {"X": Xs, "y": ys, "model": model, "untrained": untrained,
            "epoch_loss": run["epoch_loss"], "accuracy": accuracy}


def predict_fn(model):
    """``points (M, 2) ndarray -> logits (M, K) ndarray`` for a float64 torch model."""
    def predict(points):
        with torch.no_grad():
            return model(torch.as_tensor(points, dtype=DTYPE)).numpy()
    return predict


# ------------------------------------------------------------------ common mistakes
class _Affine(torch.nn.Module):
    """``z = x W^T + b``, reading its weight either as the parameter or as ``.data``."""

    def __init__(self, n_in, n_out, *, use_data, generator):
        super().__init__()
        self.weight = torch.nn.Parameter(
            torch.randn(n_out, n_in, generator=generator, dtype=DTYPE) / np.sqrt(n_in))
        self.bias = torch.nn.Parameter(torch.zeros(n_out, dtype=DTYPE))
        self.use_data = use_data

    def forward(self, x):
        weight = self.weight.data if self.use_data else self.weight
        return x @ weight.T + self.bias


def weight_data_in_forward(*, steps=50, lr=0.5, seed=0):
    """``self.weight.data`` inside ``forward`` cuts the weight out of the autograd graph.

    Two logistic regressions on the breast-cancer data (standardized), identical but for
    ``forward``: one reads ``self.weight``, the other ``self.weight.data``. After
    ``backward()`` the second has ``weight.grad is None``, so SGD never changes its
    weight: only its bias learns.

    Returns
    -------
    dict
        For ``"weight"`` and ``"weight.data"``: ``grad_is_none`` (after the first
        backward), ``weight_change`` (``||W_T - W_0||``), ``loss`` (before and after).
    """
    X, y = load_bundled("breast_cancer")
    Z = torch.as_tensor(Standardizer().fit(X).transform(X), dtype=DTYPE)
    target = torch.as_tensor(y, dtype=DTYPE)[:, None]
    out = {}
    for name, use_data in (("weight", False), ("weight.data", True)):
        model = _Affine(Z.shape[1], 1, use_data=use_data,
                        generator=torch.Generator().manual_seed(seed))
        w0 = model.weight.detach().clone()
        opt = optim.SGD(model.parameters(), lr=lr)
        history, grad_is_none = [], None
        for step in range(steps):
            opt.zero_grad()
            loss = losses.binary_cross_entropy_with_logits(model(Z), target)
            loss.backward()
            if step == 0:
                grad_is_none = model.weight.grad is None
            opt.step()
            history.append(loss.item())
        with torch.no_grad():
            final = float(losses.binary_cross_entropy_with_logits(model(Z), target))
        out[name] = {"grad_is_none": grad_is_none,
                     "weight_change": float((model.weight.detach() - w0).norm()),
                     "loss": (history[0], final)}
    return out


def forgotten_zero_grad(*, steps=80, lr=0.5, batch_size=32, seed=0):
    """Training with and without ``optimizer.zero_grad()``.

    ``backward()`` adds to ``p.grad``; without ``zero_grad()`` the gradient used at step
    ``t`` is the sum of the gradients of all ``t`` batches so far, each taken at the
    weights of its own step. Both runs start from the same weights and see the same
    minibatches of digits.

    Returns
    -------
    dict
        ``with``, ``without``: the loss on the whole training split after each step;
        ``sum_error``: the largest ``|p.grad - sum of the per-step gradients|`` of the
        run without ``zero_grad`` (0 up to rounding: the accumulation is a plain sum);
        ``grad_norm_ratio``: ``||p.grad||`` of that run at the last step over the norm of
        the last batch's own gradient.
    """
    X, y = digits_training_split(seed)
    out = {}
    for name in ("with", "without"):
        model = tanh_mlp([64, 32, 10], seed)
        opt = optim.SGD(model.parameters(), lr=lr)
        params = list(model.parameters())
        gen = torch.Generator().manual_seed(seed + 1)
        running = [torch.zeros_like(p) for p in params]
        history, step, sum_error, last_own = [], 0, 0.0, None
        with single_threaded():
            while step < steps:
                for xb, yb in minibatches(X, y, batch_size, generator=gen):
                    if step == steps:
                        break
                    loss = losses.cross_entropy(model(xb), yb)
                    own = torch.autograd.grad(loss, params, retain_graph=True)
                    if name == "with":
                        opt.zero_grad()
                    loss.backward()
                    for r, g, p in zip(running, own, params):
                        r += g
                        if name == "without":
                            sum_error = max(sum_error, float((p.grad - r).abs().max()))
                    last_own = own
                    opt.step()
                    step += 1
                    history.append(_full_loss(model, losses.cross_entropy, X, y))
        result = {"loss": np.array(history)}
        if name == "without":
            acc_norm = float(torch.sqrt(sum((p.grad ** 2).sum() for p in params)))
            own_norm = float(torch.sqrt(sum((g ** 2).sum() for g in last_own)))
            result.update(sum_error=sum_error, grad_norm_ratio=acc_norm / own_norm)
        out[name] = result
    out["sum_error"] = out["without"]["sum_error"]
    out["grad_norm_ratio"] = out["without"]["grad_norm_ratio"]
    return out


def double_softmax(*, hidden=32, lr=0.5, epochs=10, batch_size=32, seed=0):
    """``cross_entropy(softmax(logits), y)``: softmax applied twice.

    ``cross_entropy`` (like ``torch.nn.CrossEntropyLoss``) applies log-softmax itself.
    Fed probabilities ``p`` in ``[0, 1]`` instead of logits, its loss can never fall
    below ``-log(e / (e + K - 1)) = log(1 + (K - 1)/e)`` (the true class at probability
    1, the others at 0), 1.46 for ``K = 10``, and its gradients are squashed by the
    softmax's Jacobian. The same MLP is trained both ways.

    Returns
    -------
    dict
        ``bound``; for ``"logits"`` and ``"softmax"``: ``epoch_loss`` (the loss each
        run minimizes), ``nll`` (the true cross-entropy of the model's probabilities,
        after each epoch) and ``accuracy`` on the training split at the end.
    """
    X, y = digits_training_split(seed)
    K = 10
    out = {"bound": float(np.log1p((K - 1) / np.e))}
    fns = {"logits": losses.cross_entropy,
           "softmax": lambda z, t: losses.cross_entropy(torch.softmax(z, dim=1), t)}
    for name, fn in fns.items():
        model = tanh_mlp([64, hidden, K], seed)
        run = train_epochs(model, fn, X, y, lr=lr, batch_size=batch_size, epochs=epochs,
                           seed=seed + 1)
        with torch.no_grad():
            logits = model(X)
            accuracy = float((logits.argmax(1) == y).to(DTYPE).mean())
            nll = float(losses.cross_entropy(logits, y))
        out[name] = {"epoch_loss": run["epoch_loss"], "nll": nll, "accuracy": accuracy}
    return out


def variance_without_mean(*, seed=0):
    """The standard deviation of a feature is ``sqrt(mean((x - mean)^2))``, not
    ``sqrt(mean(x^2))``: the second is the root mean square, which equals the std only
    for a feature of mean 0.

    On the raw breast-cancer training split, compares the two per feature and
    standardizes once with each.

    Returns
    -------
    dict
        ``mean``, ``std``, ``rms`` (per feature), ``ratio`` = ``rms / std``; ``wrong_mean``: the
        per-feature means of ``x / rms`` (what "standardizing" with the rms gives: far from
        0), ``right_mean``, ``right_std`` of the true z-scores.
    """
    X, y = load_bundled("breast_cancer")
    (X_tr, _), _, _ = train_val_test_split(
        X, y, val_fraction=0.0, test_fraction=0.25,
        generator=np.random.default_rng(seed), stratify=True)
    std = X_tr.std(axis=0)
    rms = np.sqrt((X_tr ** 2).mean(axis=0))
    Z = Standardizer().fit(X_tr).transform(X_tr)
    return {"mean": X_tr.mean(axis=0), "std": std, "rms": rms, "ratio": rms / std,
            "wrong_mean": (X_tr / rms).mean(axis=0),
            "right_mean": Z.mean(axis=0), "right_std": Z.std(axis=0)}


# ------------------------------------------------------------ gradient noise
def gradient_noise(batch_sizes=(1, 4, 16, 64), *, hidden=32, draws=2000, seed=0):
    """The variance of a minibatch gradient against the batch size.

    At the initial weights of the chapter's MLP, the per-example gradients ``g_i`` of
    the ``N`` training examples are computed once. A minibatch of ``B`` examples drawn
    without replacement (as :func:`course_lib.data.minibatches` does) has the mean
    gradient ``g_B``, with ``E[g_B] = g`` (the full gradient) and the total variance

    ``E||g_B - g||^2 = (S^2 / B) (N - B) / (N - 1)``, ``S^2 = mean_i ||g_i - g||^2``,

    so ``1/B`` for ``B << N`` and 0 at ``B = N``. The expectation is estimated from
    ``draws`` random batches per size and compared with the formula.

    Returns
    -------
    dict
        ``n_train``, ``batch_sizes``, ``measured`` and ``exact`` (arrays, the total
        variance per batch size), ``s2``.
    """
    X, y = digits_training_split(seed)
    model = tanh_mlp([64, hidden, 10], seed)
    params = list(model.parameters())
    n = len(X)
    names = [name for name, _ in model.named_parameters()]

    def example_loss(values, xi, onehot):
        # cross-entropy of one example, written with the one-hot target (vmap cannot
        # index with a batched class label)
        out = torch.func.functional_call(model, dict(zip(names, values)), (xi[None],))
        return -(onehot * torch.log_softmax(out[0], dim=0)).sum()

    onehot = torch.nn.functional.one_hot(y, 10).to(DTYPE)
    with single_threaded():
        per_example = torch.func.vmap(torch.func.grad(example_loss), in_dims=(None, 0, 0))(
            tuple(p.detach() for p in params), X, onehot)
    G = torch.cat([g.reshape(n, -1) for g in per_example], dim=1).numpy()
    g = G.mean(axis=0)
    s2 = float(((G - g) ** 2).sum(axis=1).mean())
    rng = np.random.default_rng(seed + 1)
    measured, exact = [], []
    for b in batch_sizes:
        check_number("batch_sizes[i]", b, low=1, high=n, integer=True)
        total = 0.0
        for _ in range(draws):
            idx = rng.choice(n, size=b, replace=False)
            total += float(((G[idx].mean(axis=0) - g) ** 2).sum())
        measured.append(total / draws)
        exact.append(s2 / b * (n - b) / (n - 1))
    return {"n_train": n, "batch_sizes": np.array(batch_sizes), "measured": np.array(measured),
            "exact": np.array(exact), "s2": s2}
