"""The digits classifier shared by the experiments of chapters 4 to 7.

The 8x8 digits of scikit-learn, split and scaled once (:func:`digits_split`), the course
MLP on the CPU (:func:`digits_mlp`), and a training run with ``course_lib.training.fit``
that reports losses and error rates per epoch (:func:`train_classifier`).
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib import data, training
from course_lib.core import validate
from course_lib.torch import layers, losses

__all__ = ["digits_split", "digits_mlp", "evaluate", "train_classifier"]


# --------------------------------------------------------------------------- data
def digits_split(n_train=None, *, n_val=600, seed=0, scale="standard"):
    """The 8x8 digits of scikit-learn (1,797 images, 10 classes), split once.

    Parameters
    ----------
    n_train : int or None
        Keep only the first ``n_train`` training examples (``None``: all 1,197).
    n_val : int
        Size of the validation set.
    seed : int
        Seed of the split (``course_lib.data.train_val_test_split``).
    scale : {"standard", "unit", "raw"}
        ``"standard"``: each pixel standardized with the statistics of the training set
        (``course_lib.data.Standardizer``); ``"unit"``: pixels / 16, in ``[0, 1]``;
        ``"raw"``: pixels in ``0..16``.

    Returns
    -------
    dict
        ``x_train (n_train, 64)``, ``y_train (n_train,)``, ``x_val (n_val, 64)``,
        ``y_val (n_val,)`` as float32 / int64 CPU tensors.
    """
    validate.check_choice("scale", scale, ("standard", "unit", "raw"))
    x, y = data.load_digits()
    validate.check_number("n_val", n_val, low=1, high=len(y) - 1, integer=True)
    (x_train, y_train), (x_val, y_val), _ = data.train_val_test_split(
        x, y, val_fraction=n_val / len(y), test_fraction=0.0,
        generator=np.random.default_rng(seed))
    if n_train is not None:
        validate.check_number("n_train", n_train, low=1, high=len(y_train), integer=True)
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    if scale == "raw":
        x_train, x_val = 16 * x_train, 16 * x_val
    elif scale == "standard":
        scaler = data.Standardizer().fit(x_train)
        x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return {"x_train": as_x(x_train), "y_train": as_y(y_train),
            "x_val": as_x(x_val), "y_val": as_y(y_val)}


# ----------------------------------------------------------------------- training
def evaluate(model, x, y):
    """Mean cross-entropy and error rate of ``model`` (in eval mode) on ``(x, y)``."""
    loss, acc = training.evaluate(model, losses.cross_entropy, (x, y),
                                  metric=training.accuracy)
    return loss, 1.0 - acc


def train_classifier(model, optimizer, data_split, *, epochs, batch_size=32, seed=0,
                     scheduler=None, callbacks=(), early_stopping=None):
    """Train a digits classifier with ``course_lib.training.fit`` and cross-entropy.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, 64)`` to logits ``(N, 10)``.
    optimizer : torch.optim.Optimizer
    data_split : dict
        As returned by :func:`digits_split`.
    epochs, batch_size : int
    seed : int
        Seeds the ``torch.Generator`` that shuffles the training set.
    scheduler, callbacks, early_stopping
        Passed to ``fit``.

    Returns
    -------
    dict
        ``History.as_dict()`` of ``fit`` (lists ``train_loss``, ``val_loss``,
        ``train_metric``, ``val_metric`` (accuracy), ``lr``; ``best_epoch``,
        ``stopped_epoch``) plus the lists ``train_error`` and ``val_error``
        (``1 - accuracy``). Training values are averages over the epoch's mini-batches
        (dropout on), validation values are measured after the epoch in eval mode.
    """
    h = training.fit(model, losses.cross_entropy, optimizer,
                     (data_split["x_train"], data_split["y_train"]),
                     (data_split["x_val"], data_split["y_val"]),
                     epochs=epochs, batch_size=batch_size, metric=training.accuracy,
                     generator=torch.Generator().manual_seed(seed), scheduler=scheduler,
                     callbacks=callbacks, early_stopping=early_stopping, progress=False)
    out = h.as_dict()
    out["train_error"] = [1.0 - a for a in h.train_metric]
    out["val_error"] = [1.0 - a for a in h.val_metric]
    return out


def digits_mlp(sizes, seed, **kwargs):
    """The course MLP (``course_lib.torch.layers.mlp``) with layer widths ``sizes``, on the
    CPU, initialized from a ``torch.Generator`` seeded with ``seed``; ``kwargs`` go to
    ``mlp`` (``activation``, ``batch_norm``, ``dropout``)."""
    return layers.mlp(list(sizes), generator=torch.Generator().manual_seed(seed),
                      device="cpu", **kwargs)
