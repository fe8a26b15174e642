"""Experiments of chapter 2, *Initialization*.

Each function returns plain numbers and arrays; the chapter plots them and
``tests/test_claims_ch1_3.py`` asserts what the prose says about them. Randomness comes
from the ``seed`` argument (a fresh generator per call).
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib.core.validate import check_choice, check_number
from course_lib.numpy import activations as np_act
from course_lib.numpy import init as np_init
from course_lib.torch import init as torch_init
from course_lib.torch import losses
from course_lib.torch import layers
from course_lib.experiments.training_loop import (DEVICE, DTYPE, digits_training_split,
                                                  single_threaded, tanh_mlp, train_epochs)

__all__ = ["INIT_SCHEMES", "ACTIVATIONS", "init_weight", "activation_stats",
           "weight_gradient_norms", "constant_init_symmetry", "width_sweep", "depth_sweep",
           "orthogonal_vs_gaussian", "fan_swap", "xavier_std_misread",
           "variance_of_a_product"]

ACTIVATIONS = {"tanh": np_act.tanh, "relu": np_act.relu, "sigmoid": np_act.sigmoid,
               "selu": np_act.selu, "elu": np_act.elu, "linear": lambda z: z}

# the same functions in torch, for the backward pass of :func:`weight_gradient_norms`
_TORCH_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
                      "selu": torch.nn.functional.selu, "elu": torch.nn.functional.elu,
                      "linear": lambda z: z}

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
    "orthogonal": "a random orthogonal matrix (Saxe et al., 2014)",
    # two misreadings of the sources (chapter 2's "Common mistakes")
    "xavier_std_as_variance": "N(0, s^2) with s^2 = sqrt(2 / (fan_in + fan_out)), Glorot's "
                              "std taken for a variance",
    "std_as_variance": "N(0, s^2) with s^2 = 1 / sqrt(fan_in), LeCun's std taken for a "
                       "variance",
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
    if scheme == "orthogonal":
        return np_init.orthogonal_(weight, generator=generator)
    if scheme == "xavier_std_as_variance":
        variance = np.sqrt(2.0 / (fan_in + weight.shape[0]))
        return np_init.normal_(weight, 0.0, np.sqrt(variance), generator=generator)
    if scheme == "std_as_variance":
        return np_init.normal_(weight, 0.0, fan_in ** -0.25, generator=generator)
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
    activation : {"tanh", "relu", "sigmoid", "selu", "elu", "linear"}
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
    rng, a, weights = _draw_stack(scheme, activation, depth, width, n, seed)
    f = ACTIVATIONS[activation]
    out = {"input_std": float(a.std()), "mean": [], "std": [], "saturated": [], "zero": [],
           "samples": {}}
    for layer, w in enumerate(weights, start=1):
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


def _draw_stack(scheme, activation, depth, width, n, seed):
    """The inputs ``(n, width)`` and the ``depth`` weights ``(width, width)`` of the
    stack of :func:`activation_stats`, drawn in this order from ``default_rng(seed)``;
    returns ``(rng, inputs, weights)``."""
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_number("depth", depth, low=1, integer=True)
    check_number("width", width, low=1, integer=True)
    check_number("n", n, low=1, integer=True)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, width))
    weights = [init_weight(np.empty((width, width)), scheme, activation, rng)
               for _ in range(depth)]
    return rng, a, weights


def weight_gradient_norms(scheme, activation="tanh", *, depth=50, width=256, n=500, seed=0):
    """One backward pass through the network of :func:`activation_stats` (same seed: same
    inputs, same weights) and the size of every layer's weight gradient.

    The loss is ``L = (1/n) sum_i ||a_L,i - t_i||^2 / 2`` with random targets
    ``t ~ N(0, 1)``, so ``dL/da_L`` is of order 1 whatever the weights. The weight
    gradient of layer ``l`` is ``dL/dW_l = delta_l^T a_{l-1}`` (rows of the batch,
    ``delta_l = dL/dz_l``): it is small when either the backward signal ``delta_l`` or
    the forward signal ``a_{l-1}`` is small, the last layer included.

    Returns
    -------
    dict with ``weight`` (array ``(depth,)`` of ``||dL/dW_l||_F``, first layer first),
    ``delta`` (``||dL/dz_l||_F`` per layer) and ``output`` (``||dL/da_L||_F``).
    """
    rng, x, weights = _draw_stack(scheme, activation, depth, width, n, seed)
    target = torch.as_tensor(rng.standard_normal((n, width)), dtype=DTYPE)
    f = _TORCH_ACTIVATIONS[activation]
    ws = [torch.tensor(w, dtype=DTYPE, requires_grad=True) for w in weights]
    zs = []
    with single_threaded():
        a = torch.as_tensor(x, dtype=DTYPE)
        for w in ws:
            z = a @ w.T
            z.retain_grad()
            zs.append(z)
            a = f(z)
        a.retain_grad()
        loss = 0.5 * ((a - target) ** 2).sum() / n
        loss.backward()
    return {"weight": np.array([float(w.grad.norm()) for w in ws]),
            "delta": np.array([float(z.grad.norm()) for z in zs]),
            "output": float(a.grad.norm())}


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
        columns), ``loss`` (training loss per epoch), ``weight_abs_max`` (largest
        ``|w|`` of the hidden and the output layer's weight after training),
        ``first_units`` (incoming weights of the first 4 hidden units as 8x8 images, shape
        ``(4, 8, 8)``).

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
                     "weight_abs_max": (float(first.weight.detach().abs().max()),
                                        float(last.weight.detach().abs().max())),
                     "first_units": first.weight.detach().numpy()[:4].reshape(4, 8, 8).copy()}
    return out


# ------------------------------------------------------------------ width and depth
def width_sweep(widths=(16, 64, 256, 1024), *, n=2000, seed=0):
    """One linear layer ``z = W x`` with standard-normal inputs, for several fan-ins ``n``:
    with ``W ~ N(0, 1)`` the output std is ``sqrt(n)`` (a sum of ``n`` independent terms
    of variance 1), with ``W ~ N(0, 1/n)`` (LeCun) it is 1 at every width.

    Returns
    -------
    dict: ``widths`` and, for ``"standard"`` (``N(0, 1)``) and ``"lecun"``
    (``N(0, 1/n)``), an array of the measured output stds, one per width.
    """
    rng = np.random.default_rng(seed)
    out = {"widths": np.array(widths), "standard": [], "lecun": []}
    for width in widths:
        check_number("width", width, low=1, integer=True)
        x = rng.standard_normal((n, width))
        for name, std in (("standard", 1.0), ("lecun", 1.0 / np.sqrt(width))):
            w = np_init.normal_(np.empty((width, width)), 0.0, std, generator=rng)
            out[name].append(float((x @ w.T).std()))
    out["standard"], out["lecun"] = np.array(out["standard"]), np.array(out["lecun"])
    return out


TORCH_SCHEMES = ("default", "xavier_normal", "he_normal", "orthogonal")


def init_mlp(depth, *, width=64, scheme="he_normal", activation="relu", n_in=64, n_out=10,
             seed=0):
    """An MLP ``n_in -> width (x depth) -> n_out`` of ``course_lib.torch.layers`` (float64,
    CPU), initialized by ``scheme``: ``"default"`` keeps torch's ``Linear`` default
    (``U(+-1/sqrt(fan_in))``, biases too), the others fill the weights with
    ``course_lib.torch.init`` (gain 1, He for ReLU) and set the biases to 0."""
    check_number("depth", depth, low=1, integer=True)
    check_choice("scheme", scheme, TORCH_SCHEMES)
    check_choice("activation", activation, ("relu", "tanh"))
    gen = torch.Generator().manual_seed(seed)
    sizes = [n_in] + [width] * depth + [n_out]
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = layers.Linear(a, b, generator=gen, device=DEVICE, dtype=DTYPE)
        if scheme != "default":
            w = linear.weight.data
            if scheme == "xavier_normal":
                torch_init.xavier_normal_(w, generator=gen)
            elif scheme == "he_normal":
                torch_init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
            else:
                torch_init.orthogonal_(w, generator=gen)
            torch_init.zeros_(linear.bias.data)
        mods.append(linear)
        if i < len(sizes) - 2:
            mods.append(layers.ReLU() if activation == "relu" else layers.Tanh())
    return layers.Sequential(*mods)


def depth_sweep(depths=(1, 2, 4, 8, 16), schemes=("default", "he_normal"), *,
                activation="relu", width=64, epochs=5, lr=0.1, batch_size=64, seed=0):
    """Train the same digits MLP (:func:`init_mlp`) at several depths and initializations
    with plain SGD and report the training loss: a depth sweep beside
    :func:`width_sweep`.

    With torch's default ``U(+-1/sqrt(fan_in))`` (variance ``1/(3 fan_in)``) a ReLU layer
    keeps only ``1/6`` of the second moment, so the signal and the gradients shrink
    geometrically with depth and deep networks barely start learning; He's
    ``N(0, 2/fan_in)`` keeps the scale at every depth.

    Returns
    -------
    dict: ``depths`` and, per scheme, ``final_loss`` (array ``(len(depths),)``: the
    training loss after ``epochs``), ``first_loss`` (before training) and ``output_std``
    (std of the logits at initialization).
    """
    X, y = digits_training_split(seed)
    out = {"depths": np.array(depths)}
    for scheme in schemes:
        final, first, out_std = [], [], []
        for depth in depths:
            model = init_mlp(depth, width=width, scheme=scheme, activation=activation,
                             seed=seed)
            with torch.no_grad(), single_threaded():
                out_std.append(float(model(X).std()))
            run = train_epochs(model, losses.cross_entropy, X, y, lr=lr,
                               batch_size=batch_size, epochs=epochs, seed=seed + 1)
            first.append(run["epoch_loss"][0])
            final.append(run["epoch_loss"][-1])
        out[scheme] = {"final_loss": np.array(final), "first_loss": np.array(first),
                       "output_std": np.array(out_std)}
    return out


# ---------------------------------------------------------------------- orthogonal
def orthogonal_vs_gaussian(*, depth=50, width=64, seed=0):
    """Singular values of the product ``W_L ... W_1`` of a deep linear network, for
    Gaussian ``N(0, 1/width)`` (LeCun) and orthogonal weights.

    Both keep the mean squared singular value at 1 (``E ||W x||^2 = ||x||^2``), but the
    Gaussian product spreads its singular values over many orders of magnitude with
    depth: the network stretches some directions and crushes the others, forward and
    backward. A product of orthogonal matrices is orthogonal: every singular value is
    exactly 1 at every depth (*dynamical isometry*).

    Returns
    -------
    dict: ``depth`` (``1 .. depth``) and, for ``"gaussian"`` and ``"orthogonal"``, an
    array ``(depth, width)`` of the singular values (descending) after each layer.

    References
    ----------
    Saxe, McClelland & Ganguli (2014), *Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks*.
    """
    check_number("depth", depth, low=1, integer=True)
    check_number("width", width, low=1, integer=True)
    out = {"depth": np.arange(1, depth + 1)}
    for name, scheme in (("gaussian", "lecun_normal"), ("orthogonal", "orthogonal")):
        rng = np.random.default_rng(seed)
        product = np.eye(width)
        values = []
        for _ in range(depth):
            product = init_weight(np.empty((width, width)), scheme, "linear", rng) @ product
            values.append(np.linalg.svd(product, compute_uv=False))
        out[name] = np.array(values)
    return out


# ------------------------------------------------------------ the common mistakes
def fan_swap(in_features=784, out_features=10, *, n=1000, seed=0):
    """He initialization of a weight stored the torch way, ``(out, in)``, and the Keras
    way, ``(in, out)``, both passed to ``kaiming_normal_``.

    ``calculate_fan_in_and_fan_out`` reads ``fan_in = shape[1]``: for an ``(in, out)``
    array that is ``out_features``, so the std becomes ``sqrt(2/out)`` instead of
    ``sqrt(2/in)``. The layer is then applied as ``x W`` (Keras) to standard-normal
    inputs.

    Returns
    -------
    dict with ``std_right``, ``std_swapped`` (measured stds of the two weights),
    ``formula_right`` = ``sqrt(2/in)``, ``formula_swapped`` = ``sqrt(2/out)``, and
    ``out_rms_right``, ``out_rms_swapped`` (root mean square of ``relu(z)`` for the
    two layers; He's target is the input's, 1).
    """
    rng = np.random.default_rng(seed)
    right = np_init.kaiming_normal_(np.empty((out_features, in_features)),
                                    nonlinearity="relu", generator=rng)
    swapped = np_init.kaiming_normal_(np.empty((in_features, out_features)),
                                      nonlinearity="relu", generator=rng)
    x = rng.standard_normal((n, in_features))

    def rms(a):
        return float(np.sqrt(np.mean(a ** 2)))

    return {"std_right": float(right.std()), "std_swapped": float(swapped.std()),
            "formula_right": float(np.sqrt(2 / in_features)),
            "formula_swapped": float(np.sqrt(2 / out_features)),
            "out_rms_right": rms(np_act.relu(x @ right.T)),
            "out_rms_swapped": rms(np_act.relu(x @ swapped))}


def xavier_std_misread(fan_in=256, fan_out=256, *, seed=0):
    """Glorot's and LeCun's normal initializations against two misreadings.

    ``N(mu, s^2)`` names the *variance*: Glorot is ``N(0, 2/(fan_in + fan_out))``, std
    ``sqrt(2/(fan_in + fan_out))``; LeCun is ``N(0, 1/fan_in)``, std
    ``1/sqrt(fan_in)``, which ``normal_(w, 0, 1/sqrt(fan_in))`` draws (torch's
    ``normal_`` takes a std). Writing the std in the variance slot gives a 4th root.

    Returns
    -------
    dict with ``xavier_std`` (measured std of ``xavier_normal_``), ``xavier_formula``,
    ``xavier_misread_std`` = ``(2/(fan_in + fan_out))^(1/4)``, ``lecun_std`` (measured std of
    ``lecun_normal_``), ``lecun_formula``, ``lecun_misread_std`` = ``fan_in^(-1/4)`` and
    ``same_draws``: ``lecun_normal_`` and ``normal_(w, 0, 1/sqrt(fan_in))`` fill
    identical arrays from identical generators.
    """
    shape = (fan_out, fan_in)
    xavier = np_init.xavier_normal_(np.empty(shape), generator=np.random.default_rng(seed))
    lecun = np_init.lecun_normal_(np.empty(shape), generator=np.random.default_rng(seed))
    plain = np_init.normal_(np.empty(shape), 0.0, 1 / np.sqrt(fan_in),
                            generator=np.random.default_rng(seed))
    return {"xavier_std": float(xavier.std()),
            "xavier_formula": float(np.sqrt(2 / (fan_in + fan_out))),
            "xavier_misread_std": float((2 / (fan_in + fan_out)) ** 0.25),
            "lecun_std": float(lecun.std()), "lecun_formula": float(1 / np.sqrt(fan_in)),
            "lecun_misread_std": float(fan_in ** -0.25),
            "same_draws": bool(np.array_equal(lecun, plain))}


def variance_of_a_product(*, n=1_000_000, w_mean=0.5, seed=0):
    """``Var[w a]`` for independent ``w`` and ``a``, measured on ``n`` samples, against
    the two formulas: ``Var[w] Var[a]`` (true only when a mean is 0) and the general

    ``Var[w a] = E[w^2] E[a^2] - E[w]^2 E[a]^2
    = Var[w] Var[a] + Var[w] E[a]^2 + E[w]^2 Var[a]``.

    With zero-mean weights this is ``Var[w] E[a^2]``: the *second moment* of the inputs,
    not their variance, enters the variance argument (ReLU and sigmoid outputs have a
    mean > 0).

    Returns
    -------
    dict: for ``"relu"`` and ``"sigmoid"`` (``a = f(z)``, ``z ~ N(0, 1)``, ``w ~ N(0,
    1)``) and for ``"relu_shifted_w"`` (``w ~ N(w_mean, 1)``): ``measured``,
    ``product`` (``Var[w] Var[a]``), ``general`` (the general formula), ``mean_a``.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    w = rng.standard_normal(n)
    out = {}
    for name, a, ww in (("relu", np_act.relu(z), w), ("sigmoid", np_act.sigmoid(z), w),
                        ("relu_shifted_w", np_act.relu(z), w + w_mean)):
        out[name] = {"measured": float(np.var(ww * a)),
                     "product": float(np.var(ww) * np.var(a)),
                     "general": float(np.mean(ww ** 2) * np.mean(a ** 2)
                                      - np.mean(ww) ** 2 * np.mean(a) ** 2),
                     "mean_a": float(np.mean(a))}
    return out
