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
    "output_activations",
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
                 after_backward=None):
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
                              record_at, after_backward, batch_loss, update_loss)
            epoch_loss.append(_full_loss(model, loss_fn, X, y))
            updates.append(step)
    return {"epoch_loss": np.array(epoch_loss), "batch_loss": np.array(batch_loss),
            "updates": np.array(updates), "update_loss": np.array(update_loss).reshape(-1, 2)}


def _one_epoch(model, loss_fn, optimizer, X, y, batch_size, gen, step, record_at,
               after_backward, batch_loss, update_loss):
    """One pass over the shuffled training set; returns the updated step count."""
    for xb, yb in minibatches(X, y, batch_size, generator=gen):
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if after_backward is not None:
            after_backward(model)
        optimizer.step()
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
