"""Experiments of chapter 2, *Initialization*.

Each function returns plain numbers and arrays; the chapter plots them and
``tests/test_claims_ch1_3.py`` asserts what the prose says about them. Randomness comes
from the ``seed`` argument (a fresh generator per call).
"""
from __future__ import annotations

import numpy as np

from course_lib.core.validate import check_choice, check_number
from course_lib.numpy import activations as np_act
from course_lib.numpy import init as np_init
from course_lib.torch import init as torch_init
from course_lib.torch import losses
from course_lib.experiments.training_loop import tanh_mlp, digits_training_split, train_epochs

__all__ = ["INIT_SCHEMES", "ACTIVATIONS", "init_weight", "activation_stats",
           "constant_init_symmetry"]

ACTIVATIONS = {"tanh": np_act.tanh, "relu": np_act.relu, "sigmoid": np_act.sigmoid,
               "selu": np_act.selu, "linear": lambda z: z}

# name -> what it draws, for a weight of shape (out, in) = (fan_out, fan_in)
INIT_SCHEMES = {
    "small": "N(0, 0.01^2)",
    "large": "N(0, 1)",
    "uniform": "U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
    "xavier_uniform": "U(-b, b), b = sqrt(6 / (fan_in + fan_out))",
    "xavier_normal": "N(0, 2 / (fan_in + fan_out))",
    "xavier_uniform_gain": "xavier_uniform with gain = calculate_gain(activation)",
    "he_normal": "N(0, 2 / fan_in)",
    "lecun_normal": "N(0, 1 / fan_in)",
}


def init_weight(weight, scheme, activation, generator):
    """Fill the ndarray ``weight`` (shape ``(out, in)``) in place by ``scheme``, a key of
    :data:`INIT_SCHEMES`, with ``course_lib.numpy.init``; returns it."""
    check_choice("scheme", scheme, tuple(INIT_SCHEMES))
    fan_in = weight.shape[1]
    if scheme == "small":
        return np_init.normal_(weight, 0.0, 0.01, generator=generator)
    if scheme == "large":
        return np_init.normal_(weight, 0.0, 1.0, generator=generator)
    if scheme == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return np_init.uniform_(weight, -bound, bound, generator=generator)
    if scheme == "xavier_uniform":
        return np_init.xavier_uniform_(weight, generator=generator)
    if scheme == "xavier_normal":
        return np_init.xavier_normal_(weight, generator=generator)
    if scheme == "xavier_uniform_gain":
        gain = np_init.calculate_gain(activation)
        return np_init.xavier_uniform_(weight, gain=gain, generator=generator)
    if scheme == "he_normal":
        return np_init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
    return np_init.lecun_normal_(weight, generator=generator)


def activation_stats(scheme, activation="tanh", *, depth=50, width=256, n=500,
                     keep_layers=(1, 10, 25, 50), seed=0):
    """Push a batch of standard-normal inputs through ``depth`` fully connected layers
    ``a_l = f(a_{l-1} W_l^T)`` (no biases) and record the activation statistics.

    With ``Var(w) = sigma^2`` and independent, zero-mean inputs, each pre-activation has
    ``Var(z) = fan_in * sigma^2 * E[a^2]``: the initialization decides whether the signal
    shrinks, grows or keeps its scale from layer to layer.

    Parameters
    ----------
    scheme : str
        A key of :data:`INIT_SCHEMES`.
    activation : {"tanh", "relu", "sigmoid", "selu", "linear"}
    depth, width, n : int
        Number of layers, units per layer, examples in the batch.
    keep_layers : tuple of int
        Layers (1-based) whose activations are returned for histograms.
    seed : int

    Returns
    -------
    dict with ``mean``, ``std`` (shape ``(depth,)``: over all examples and units of each
    layer), ``saturated`` (fraction with ``|a| > 0.99``, for tanh), ``zero`` (fraction
    with ``a <= 0``, for ReLU), ``samples`` ({layer: 1-D array of activations}) and
    ``input_std``.

    References
    ----------
    Glorot & Bengio (2010), *Understanding the difficulty of training deep feedforward
    neural networks*; He et al. (2015), *Delving deep into rectifiers*; Klambauer et al.
    (2017), *Self-normalizing neural networks*.
    """
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_number("depth", depth, low=1, integer=True)
    check_number("width", width, low=1, integer=True)
    check_number("n", n, low=1, integer=True)
    rng = np.random.default_rng(seed)
    f = ACTIVATIONS[activation]
    a = rng.standard_normal((n, width))
    out = {"input_std": float(a.std()), "mean": [], "std": [], "saturated": [], "zero": [],
           "samples": {}}
    w = np.empty((width, width))
    for layer in range(1, depth + 1):
        init_weight(w, scheme, activation, rng)
        a = f(a @ w.T)
        out["mean"].append(a.mean())
        out["std"].append(a.std())
        out["saturated"].append(np.mean(np.abs(a) > 0.99))
        out["zero"].append(np.mean(a <= 0.0))
        if layer in keep_layers:
            out["samples"][layer] = a.ravel()[:20000].copy()
    for key in ("mean", "std", "saturated", "zero"):
        out[key] = np.array(out[key])
    return out


def _spread(weight, axis):
    """Largest difference between the slices of ``weight`` along ``axis`` and the first
    one: 0 exactly when all hidden units carry the same weights."""
    w = weight.detach().numpy()
    first = np.take(w, [0], axis=axis)
    return float(np.max(np.abs(w - first)))


def constant_init_symmetry(*, value=0.05, hidden=16, epochs=5, lr=0.1, batch_size=32,
                           seed=0):
    """Train the same MLP ``64 -> hidden -> 10`` (tanh) on the digits from a constant
    initialization (every weight ``value``, biases 0) and from torch's default random
    one, and measure how different the hidden units are afterwards.

    With constant weights all hidden units compute the same function, receive the same
    gradient and take the same step, so they stay identical: the network behaves as if
    it had a single hidden unit.

    Returns
    -------
    dict
        For ``"constant"`` and ``"random"``: ``spread_in`` (largest difference between
        hidden units' incoming weight rows), ``spread_out`` (between their outgoing weight
        columns), ``loss`` (training loss per epoch), ``first_units`` (incoming weights of
        the first 4 hidden units as 8x8 images, shape ``(4, 8, 8)``).

    References
    ----------
    Goodfellow, Bengio & Courville (2016), *Deep Learning*, section 8.4 (breaking the
    symmetry).
    """
    check_number("value", value)
    X, y = digits_training_split(seed)
    out = {}
    for name in ("constant", "random"):
        model = tanh_mlp([64, hidden, 10], seed)
        first, last = model[0], model[2]
        if name == "constant":
            for linear in (first, last):
                torch_init.constant_(linear.weight.data, value)
                torch_init.zeros_(linear.bias.data)
        run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                           epochs=epochs, seed=seed + 1)
        out[name] = {"spread_in": _spread(first.weight, axis=0),
                     "spread_out": _spread(last.weight, axis=1),
                     "loss": run["epoch_loss"],
                     "first_units": first.weight.detach().numpy()[:4].reshape(4, 8, 8).copy()}
    return out
