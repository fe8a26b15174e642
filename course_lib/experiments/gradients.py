"""Experiments of chapter 3, *Gradients and activations*.

Each function returns plain numbers and arrays; the chapter plots them and
``tests/test_claims_ch1_3.py`` asserts what the prose says about them. Randomness comes
from the ``seed`` argument (a fresh generator per call); float64 on the CPU.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib.core.validate import check_choice, check_number
from course_lib.diagnostics import activation_stats, gradient_stats
from course_lib.numpy import activations as np_act
from course_lib.torch import clip, layers, losses
from course_lib.torch import init as torch_init
from course_lib.experiments.training_loop import (DEVICE, DTYPE, digits_training_split,
                                                  single_threaded, train_epochs)

__all__ = ["activation_derivatives", "derivative_jumps", "jacobian_product_norms", "deep_mlp",
           "gradient_norms_by_activation", "residual_mlp", "residual_gradient_norms",
           "prelu_rrelu", "dead_relu_fraction", "dead_relu_revival", "clipping_directions",
           "gradient_norm_history", "gradient_check", "gradcheck_error_vs_step"]

# activation -> (module class, the initialization recommended for it)
ACTIVATION_MODULES = {
    "sigmoid": (layers.Sigmoid, "xavier"),
    "tanh": (layers.Tanh, "xavier"),
    "relu": (layers.ReLU, "he"),
    "leaky_relu": (layers.LeakyReLU, "he"),
    "elu": (layers.ELU, "he"),
    "selu": (layers.SELU, "lecun"),
    "gelu": (layers.GELU, "he"),
    # PReLU's slope is learned (initial 0.25); RReLU (torch.nn's, no course_lib twin) draws
    # it at random in training and uses (1/8 + 1/3)/2 at evaluation
    "prelu": (lambda: layers.PReLU(dtype=DTYPE), "he"),
    "rrelu": (torch.nn.RReLU, "he"),
}


def activation_derivatives(x=None):
    """Each activation's derivative on a grid, from ``course_lib.numpy.activations``.

    ``sigmoid'(x) = s(x) (1 - s(x)) <= 1/4`` and ``tanh'(x) = 1 - tanh(x)^2 <= 1``, both
    vanish for large ``|x|`` (saturation); ReLU's is 0 or 1.

    Returns
    -------
    dict with ``x`` and, per activation name, ``(f(x), f'(x))``.
    """
    if x is None:
        x = np.linspace(-6.0, 6.0, 1201)
    x = np.asarray(x, dtype=np.float64)
    names = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "softplus")
    out = {"x": x}
    for name in names:
        f = getattr(np_act, name)
        df = getattr(np_act, name + "_grad")
        out[name] = (f(x), df(x))
    return out


def derivative_jumps(elu_alphas=(1.0, 2.0), *, h=1e-6):
    """One-sided derivatives at 0 of the rectifiers, from ``course_lib.numpy.activations``:
    ``f'(0-)`` and ``f'(0+)`` (the ``*_grad`` functions just left and right of 0) and the
    one-sided second derivatives (differences of ``f'`` over ``h``).

    ``ELU_alpha'(0-) = alpha`` and ``ELU'(0+) = 1``: the derivative jumps unless
    ``alpha = 1``; SELU's jumps from ``lambda alpha`` to ``lambda``. ELU with ``alpha = 1``
    is continuously differentiable (its second derivative still jumps from 1 to 0); GELU
    is smooth.

    Returns
    -------
    dict: name (``"relu"``, ``"elu_1"``, ``"elu_2"``, ..., ``"selu"``, ``"gelu"``) ->
    ``{"left": f'(0-), "right": f'(0+), "left2": f''(0-), "right2": f''(0+)}``.
    """
    check_number("h", h, low=0.0, low_open=True)
    funcs = {"relu": np_act.relu_grad}
    for alpha in elu_alphas:
        funcs[f"elu_{alpha:g}"] = lambda x, a=alpha: np_act.elu_grad(x, alpha=a)
    funcs["selu"] = np_act.selu_grad
    funcs["gelu"] = np_act.gelu_grad
    tiny = 1e-300
    out = {}
    for name, df in funcs.items():
        left, right = float(df(np.array(-tiny))), float(df(np.array(tiny)))
        out[name] = {"left": left, "right": right,
                     "left2": float((left - df(np.array(-h))) / h),
                     "right2": float((df(np.array(h)) - right) / h)}
    return out


def jacobian_product_norms(*, gains=(0.9, 1.0, 1.1), depth=50, width=64, seed=0):
    """Size of the Jacobian product ``J_l = W_l W_{l-1} ... W_1`` of a deep linear network.

    The gradient reaching layer ``1`` from layer ``l`` is multiplied by ``J_l^T``. With
    ``W ~ N(0, g^2 / width)``, ``E ||J_l x||^2 = g^(2l) ||x||^2``: the gradient shrinks
    (``g < 1``) or grows (``g > 1``) exponentially with depth. We report the root mean
    square singular value ``||J_l||_F / sqrt(width)``.

    Returns
    -------
    dict: ``depth`` and, for each gain, an array ``(depth,)`` of RMS singular values.

    References
    ----------
    Bengio, Simard & Frasconi (1994), *Learning long-term dependencies with gradient
    descent is difficult*; Saxe, McClelland & Ganguli (2014), *Exact solutions to the
    nonlinear dynamics of learning in deep linear neural networks*.
    """
    check_number("depth", depth, low=1, integer=True)
    rng = np.random.default_rng(seed)
    out = {"depth": np.arange(1, depth + 1)}
    for g in gains:
        check_number("gain", g, low=0.0, low_open=True)
        J = np.eye(width)
        norms = []
        for _ in range(depth):
            W = rng.normal(0.0, g / np.sqrt(width), (width, width))
            J = W @ J
            norms.append(np.linalg.norm(J) / np.sqrt(width))
        out[g] = np.array(norms)
    return out


def deep_mlp(activation, *, depth, width, n_in=64, n_out=10, init="recommended", seed=0):
    """An MLP with ``depth`` hidden layers of ``width`` units and the given activation,
    weights initialized as recommended for it (Glorot for sigmoid/tanh, He for the ReLU
    family and GELU, LeCun for SELU) or by ``init`` ("xavier", "he", "lecun"), biases 0.
    float64, CPU."""
    check_choice("activation", activation, tuple(ACTIVATION_MODULES))
    module, recommended = ACTIVATION_MODULES[activation]
    init = recommended if init == "recommended" else check_choice(
        "init", init, ("xavier", "he", "lecun"))
    gen = torch.Generator().manual_seed(seed)
    sizes = [n_in] + [width] * depth + [n_out]
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = layers.Linear(a, b, generator=gen, device=DEVICE, dtype=DTYPE)
        w = linear.weight.data
        if init == "xavier":
            torch_init.xavier_normal_(w, generator=gen)
        elif init == "he":
            torch_init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        else:
            torch_init.lecun_normal_(w, generator=gen)
        torch_init.zeros_(linear.bias.data)
        mods.append(linear)
        if i < len(sizes) - 2:
            mods.append(module())
    return layers.Sequential(*mods)


def gradient_norms_by_activation(activations=tuple(ACTIVATION_MODULES), *, depth=20,
                                 width=64, n=256, seed=0):
    """Per-layer gradient norms of a deep MLP at initialization, one per activation.

    Each network (:func:`deep_mlp`, its recommended initialization) sees the same ``n``
    standardized digits; one backward pass of the cross-entropy loss gives
    ``||dL/dW_l||_F`` for each linear layer ``l = 1 .. depth + 1``.

    Returns
    -------
    dict: activation -> array ``(depth + 1,)`` of weight-gradient norms, first layer first.

    References
    ----------
    Glorot, Bordes & Bengio (2011), *Deep sparse rectifier neural networks*; Clevert et
    al. (2016), ELU; Klambauer et al. (2017), SELU; Hendrycks & Gimpel (2016), GELU.
    """
    X, y = digits_training_split(seed)
    X, y = X[:n], y[:n]
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-12)
    out = {}
    for name in activations:
        model = deep_mlp(name, depth=depth, width=width, seed=seed)
        # RReLU draws its slopes from torch's global generator: seed a forked copy
        with single_threaded(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            losses.cross_entropy(model(X), y).backward()
        out[name] = np.array([s["norm"] for s in gradient_stats(model)
                              if s["name"].endswith("weight")])
    return out


class Residual(torch.nn.Module):
    """A skip connection around ``body``: ``x + body(x)`` (He et al., 2016). Its Jacobian
    is ``I + d body / dx``: the identity lets the gradient through even when the body's
    own Jacobian is small."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def residual_mlp(activation="tanh", *, depth, width, n_in=64, n_out=10, residual=True,
                 seed=0):
    """``Linear(n_in, width)``, then ``depth`` blocks ``Linear(width, width)`` + activation,
    then ``Linear(width, n_out)``; with ``residual=True`` each block is wrapped in a skip
    connection ``h + f(W h + b)``. torch's default ``Linear`` initialization from a
    generator seeded with ``seed``, so the plain and the residual network have the same
    weights. float64, CPU."""
    check_choice("activation", activation, tuple(ACTIVATION_MODULES))
    check_number("depth", depth, low=1, integer=True)
    module = ACTIVATION_MODULES[activation][0]
    gen = torch.Generator().manual_seed(seed)

    def linear(a, b):
        return layers.Linear(a, b, generator=gen, device=DEVICE, dtype=DTYPE)

    mods = [linear(n_in, width)]
    for _ in range(depth):
        block = layers.Sequential(linear(width, width), module())
        mods.append(Residual(block) if residual else block)
    mods.append(linear(width, n_out))
    return layers.Sequential(*mods)


def residual_gradient_norms(activation="tanh", *, depth=50, width=64, n=256, epochs=3,
                            lr=0.02, batch_size=32, seed=0):
    """A deep plain MLP against the same MLP with skip connections (:func:`residual_mlp`,
    identical weights): the weight-gradient norm of every layer at initialization, and
    the training loss of both over a few epochs of SGD on the digits.

    In the plain stack the gradient reaching layer ``l`` is multiplied by ``depth - l``
    Jacobians ``diag(f'(z)) W``, each shrinking it (torch's default initialization has
    ``fan_in Var(w) = 1/3``): it vanishes geometrically towards the input. With a skip
    connection every block's Jacobian is ``I + diag(f'(z)) W``, and the gradient of the
    output reaches every layer through the identity path.

    Returns
    -------
    dict: for ``"plain"`` and ``"residual"``: ``norms`` (array ``(depth + 2,)`` of
    ``||dL/dW_l||_F``, first layer first) and ``loss`` (training loss per epoch,
    ``epochs + 1`` values).

    References
    ----------
    He, Zhang, Ren & Sun (2016), *Deep residual learning for image recognition*.
    """
    X, y = digits_training_split(seed)
    Xs = (X - X.mean(0)) / X.std(0).clamp_min(1e-12)
    out = {}
    for name in ("plain", "residual"):
        model = residual_mlp(activation, depth=depth, width=width,
                             residual=name == "residual", seed=seed)
        with single_threaded():
            losses.cross_entropy(model(Xs[:n]), y[:n]).backward()
        norms = np.array([s["norm"] for s in gradient_stats(model)
                          if s["name"].endswith("weight")])
        model.zero_grad()
        run = train_epochs(model, losses.cross_entropy, Xs, y, lr=lr, batch_size=batch_size,
                           epochs=epochs, seed=seed + 1)
        out[name] = {"norms": norms, "loss": run["epoch_loss"]}
    return out


def prelu_rrelu(*, hidden=64, epochs=5, lr=0.1, n=100_000, seed=0):
    """What PReLU (``course_lib.torch.layers``) and RReLU (``torch.nn``) do with their
    negative slope.

    ``RReLU(lower=1/8, upper=1/3)`` multiplies each negative input by a slope drawn from
    ``U(lower, upper)`` in training mode and by the mean ``(lower + upper)/2`` in
    evaluation mode. ``PReLU`` learns its slope (one per unit here, initial 0.25): we
    train a ``64 -> hidden -> 10`` network with PReLU on the digits and read the slopes.

    Returns
    -------
    dict with ``rrelu_train_slopes`` (array of ``n`` slopes seen in training mode),
    ``rrelu_eval_slope``, ``rrelu_lower``, ``rrelu_upper``, ``prelu_initial`` (0.25),
    ``prelu_slopes`` (learned, one per hidden unit) and ``prelu_loss`` (per epoch).

    References
    ----------
    He, Zhang, Ren & Sun (2015), *Delving deep into rectifiers* (PReLU); Xu, Wang, Chen &
    Li (2015), *Empirical evaluation of rectified activations in convolutional network*
    (RReLU).
    """
    rrelu = torch.nn.RReLU()
    x = -torch.ones(n, dtype=DTYPE)
    # RReLU draws from torch's global generator: seed a forked copy, leave the caller's be
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        train_slopes = -rrelu.train()(x)
    eval_slope = float(-rrelu.eval()(x[:1]))
    gen = torch.Generator().manual_seed(seed)
    prelu = layers.PReLU(num_parameters=hidden, dtype=DTYPE)
    model = layers.Sequential(layers.Linear(64, hidden, generator=gen, dtype=DTYPE), prelu,
                              layers.Linear(hidden, 10, generator=gen, dtype=DTYPE))
    initial = float(prelu.weight.detach()[0])
    X, y = digits_training_split(seed)
    run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=32,
                       epochs=epochs, seed=seed + 1)
    return {"rrelu_train_slopes": train_slopes.numpy(), "rrelu_eval_slope": eval_slope,
            "rrelu_lower": rrelu.lower, "rrelu_upper": rrelu.upper,
            "prelu_initial": initial, "prelu_slopes": prelu.weight.detach().numpy().copy(),
            "prelu_loss": run["epoch_loss"]}


def _dead_fraction(model, X) -> float:
    """Fraction of the ReLU units of the first hidden layer that output 0 for every
    example of ``X`` (``course_lib.diagnostics.activation_stats``'s ``dead``)."""
    with single_threaded():
        return activation_stats(model, X, layers=("ReLU",))[0]["dead"]


def dead_relu_fraction(lrs=(0.01, 0.1, 1.0, 2.0), *, hidden=128, epochs=3, batch_size=32, seed=0):
    """Train a ReLU MLP ``64 -> hidden -> 10`` on the digits with SGD at several learning
    rates and measure the dead units: those whose ReLU is 0 for every training example,
    so they get no gradient and cannot recover.

    Returns
    -------
    dict: ``lrs``, ``dead`` (fraction of dead hidden units after training, per lr),
    ``dead_at_init`` and ``final_loss`` per lr.

    References
    ----------
    Lu, Shin, Su & Karniadakis (2019), *Dying ReLU and initialization: theory and
    numerical examples*.
    """
    X, y = digits_training_split(seed)
    dead, final = [], []
    at_init = None
    for lr in lrs:
        model = deep_mlp("relu", depth=1, width=hidden, init="he", seed=seed)
        if at_init is None:
            at_init = _dead_fraction(model, X)
        run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                           epochs=epochs, seed=seed + 1)
        dead.append(_dead_fraction(model, X))
        final.append(run["epoch_loss"][-1])
    return {"lrs": np.array(lrs), "dead": np.array(dead), "dead_at_init": at_init,
            "final_loss": np.array(final)}


def _dead_units(model, X):
    """For each ReLU of a ``Sequential``, a boolean array ``(units,)``: True where the unit
    is 0 for every row of ``X``."""
    masks = []
    with torch.no_grad(), single_threaded():
        a = X
        for module in model:
            a = module(a)
            if isinstance(module, layers.ReLU):
                masks.append((a <= 0).all(dim=0).numpy())
    return masks


def dead_relu_revival(*, lr=0.5, hidden=128, epochs=8, batch_size=32, seed=0):
    """Which dead ReLUs can come back? Train ``64 -> hidden -> hidden -> 10`` (ReLU, He
    initialization) on the digits with plain SGD at a large learning rate, one epoch at a
    time, and after each epoch find the units that are 0 on the whole training set.

    A dead unit of the **first** layer sees the fixed training inputs: its weights and
    bias get exactly zero gradient on every batch, SGD never moves them, and it stays
    dead. A dead unit of the **second** layer gets no gradient either, but its input (the
    first layer's output) keeps changing while the first layer trains, so its
    pre-activation can turn positive again.

    Returns
    -------
    dict with ``dead`` (array ``(epochs + 1, 2)``: number of dead units per hidden layer,
    before training and after each epoch), ``revived`` (per layer: units dead after some
    epoch and alive after a later one), ``frozen_change`` (largest change of the incoming
    weights and bias of first-layer units from the epoch they were first found dead to
    the end: 0 means untouched), ``n_frozen`` and ``loss`` (per epoch).
    """
    X, y = digits_training_split(seed)
    model = deep_mlp("relu", depth=2, width=hidden, init="he", seed=seed)
    first = model[0]
    dead = [_dead_units(model, X)]
    ever_dead = [np.zeros(hidden, bool), np.zeros(hidden, bool)]
    revived = [np.zeros(hidden, bool), np.zeros(hidden, bool)]
    snapshot = {}  # first-layer unit -> its (weights, bias) when first found dead
    losses_per_epoch = []
    for epoch in range(epochs):
        run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                           epochs=1, seed=seed + 1 + epoch)
        if epoch == 0:
            losses_per_epoch.append(run["epoch_loss"][0])
        losses_per_epoch.append(run["epoch_loss"][-1])
        masks = _dead_units(model, X)
        for layer in range(2):
            revived[layer] |= ever_dead[layer] & ~masks[layer]
            ever_dead[layer] |= masks[layer]
        for unit in np.flatnonzero(masks[0]):
            if unit not in snapshot:
                snapshot[unit] = (first.weight.detach()[unit].clone(),
                                  first.bias.detach()[unit].clone())
        dead.append(masks)
    change = 0.0
    for unit, (w, b) in snapshot.items():
        change = max(change, float((first.weight.detach()[unit] - w).abs().max()),
                     float((first.bias.detach()[unit] - b).abs()))
    return {"dead": np.array([[int(m.sum()) for m in ms] for ms in dead]),
            "revived": np.array([int(r.sum()) for r in revived]),
            "frozen_change": change, "n_frozen": len(snapshot),
            "loss": np.array(losses_per_epoch)}


def _grads(model):
    return [p.grad.detach().clone() for p in model.parameters()]


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def clipping_directions(*, value_quantile=0.9, norm_fraction=0.5, per_tensor_fraction=0.5,
                        depth=6, width=64, n=256, seed=0):
    """Clip one real gradient by value and by norm and compare the directions.

    The gradient is that of a tanh MLP (:func:`deep_mlp`) on a batch of digits. Clipping
    by value (``clip_grad_value_``) caps each component at ``c``, the ``value_quantile``
    of the ``|g_i|``; clipping by norm (``clip_grad_norm_``) rescales the whole vector to
    ``norm_fraction`` of its norm: ``g <- g * max_norm / ||g||``.

    Returns
    -------
    dict with ``norm`` (of the original gradient), ``returned_norm`` (what
    ``clip_grad_norm_`` returned), ``clip_value``, ``max_norm``;
    ``cos_value`` and ``cos_norm`` (cosine between original and clipped);
    ``norm_after_value`` and ``norm_after_norm``; ``g`` (the original flat gradient),
    ``g_value`` and ``g_norm`` (the clipped ones). Also Keras' ``clipnorm``, which clips
    each parameter's gradient to the threshold separately: at ``max_norm``
    (``g_per_tensor``, ``cos_per_tensor``, ``norm_after_per_tensor``) and at
    ``per_tensor_low = per_tensor_fraction * max_norm`` (``cos_per_tensor_low``);
    ``tensor_norms`` (each parameter's gradient norm before clipping).

    References
    ----------
    Pascanu, Mikolov & Bengio (2013), *On the difficulty of training recurrent neural
    networks*.
    """
    check_number("value_quantile", value_quantile, low=0.0, high=1.0)
    check_number("norm_fraction", norm_fraction, low=0.0, low_open=True)
    check_number("per_tensor_fraction", per_tensor_fraction, low=0.0, low_open=True)
    X, y = digits_training_split(seed)
    model = deep_mlp("tanh", depth=depth, width=width, seed=seed)
    with single_threaded():
        losses.cross_entropy(model(X[:n]), y[:n]).backward()
    original = _grads(model)
    g = _flat(original)
    norm = float(g.norm())
    clip_value = float(torch.quantile(g.abs(), value_quantile))
    max_norm = norm_fraction * norm

    clip.clip_grad_value_(model.parameters(), clip_value)
    g_value = _flat(_grads(model))
    for p, o in zip(model.parameters(), original):
        p.grad.copy_(o)
    returned = clip.clip_grad_norm_(model.parameters(), max_norm)
    g_norm = _flat(_grads(model))
    # Keras' clipnorm: each parameter's gradient clipped on its own, at max_norm and at
    # per_tensor_fraction of it
    per_tensor = {}
    for threshold in (max_norm, per_tensor_fraction * max_norm):
        for p, o in zip(model.parameters(), original):
            p.grad.copy_(o)
            clip.clip_grad_norm_([p], threshold)
        per_tensor[threshold] = _flat(_grads(model))
    g_per_tensor = per_tensor[max_norm]
    g_per_tensor_low = per_tensor[per_tensor_fraction * max_norm]

    def cos(a, b):
        return float(a @ b / (a.norm() * b.norm()))

    return {"norm": norm, "returned_norm": float(returned), "clip_value": clip_value,
            "max_norm": max_norm, "cos_value": cos(g, g_value), "cos_norm": cos(g, g_norm),
            "norm_after_value": float(g_value.norm()), "norm_after_norm": float(g_norm.norm()),
            "cos_per_tensor": cos(g, g_per_tensor),
            "norm_after_per_tensor": float(g_per_tensor.norm()),
            "per_tensor_low": per_tensor_fraction * max_norm,
            "cos_per_tensor_low": cos(g, g_per_tensor_low),
            "tensor_norms": np.array([float(o.norm()) for o in original]),
            "g": g.numpy(), "g_value": g_value.numpy(), "g_norm": g_norm.numpy(),
            "g_per_tensor": g_per_tensor.numpy()}


def gradient_norm_history(*, lr=0.1, epochs=3, batch_size=32, quantile=0.9, depth=4,
                          width=64, seed=0):
    """Record the global gradient norm ``||g|| = sqrt(sum_p ||g_p||^2)`` of every step of
    a tanh MLP trained on the digits, and choose a clipping threshold from it: the
    ``quantile`` of the recorded norms, so that only the rare large steps get clipped.

    The norm is read with ``clip_grad_norm_(params, inf)``, which returns it and clips
    nothing.

    Returns
    -------
    dict with ``norms`` (one per step), ``threshold``, ``median``, ``clipped_fraction``
    (share of steps whose norm exceeds the threshold), ``loss`` (per epoch) and
    ``n_train``.

    References
    ----------
    Pascanu, Mikolov & Bengio (2013), *On the difficulty of training recurrent neural
    networks* (section 3.2: the threshold from the average norm).
    """
    check_number("quantile", quantile, low=0.0, high=1.0)
    X, y = digits_training_split(seed)
    model = deep_mlp("tanh", depth=depth, width=width, seed=seed)
    norms = []

    def record(m):
        norms.append(float(clip.clip_grad_norm_(m.parameters(), float("inf"))))

    run = train_epochs(model, losses.cross_entropy, X, y, lr=lr, batch_size=batch_size,
                       epochs=epochs, seed=seed + 1, after_backward=record)
    norms = np.array(norms)
    threshold = float(np.quantile(norms, quantile))
    return {"norms": norms, "threshold": threshold, "median": float(np.median(norms)),
            "clipped_fraction": float(np.mean(norms > threshold)), "loss": run["epoch_loss"],
            "n_train": len(X)}



# ---------------------------------------------------------------- gradient checking
def _small_numpy_mlp(seed, buggy=False):
    """NumPy MLP ``5 -> 4 -> 3`` with tanh, float64; ``buggy=True`` swaps in a tanh whose
    backward forgets the derivative (returns ``dout`` unchanged), a typical mistake."""
    from course_lib.numpy import layers as np_layers

    class ForgetfulTanh(np_layers.Tanh):
        def backward(self, dout):
            return dout

    rng = np.random.default_rng(seed)
    act = ForgetfulTanh() if buggy else np_layers.Tanh()
    return np_layers.Sequential(np_layers.Linear(5, 4, generator=rng), act,
                                np_layers.Linear(4, 3, generator=rng))


def gradient_check(*, seed=0):
    """Check the hand-written backward pass of a small NumPy MLP against centred
    differences (``course_lib.gradcheck.check_module_gradients``), once correct and once
    with a tanh whose backward forgets ``1 - tanh(x)^2``.

    Returns
    -------
    dict: ``correct`` and ``buggy``, each ``{name: relative error}`` for the input and
    every parameter.
    """
    from course_lib.gradcheck import check_module_gradients

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 5))
    out = {}
    for name, buggy in (("correct", False), ("buggy", True)):
        model = _small_numpy_mlp(seed, buggy=buggy)
        out[name] = check_module_gradients(model, x, generator=np.random.default_rng(seed + 1))
    return out


def gradcheck_error_vs_step(hs=tuple(10.0 ** -k for k in range(1, 13)), *, seed=0):
    """Relative error of the centred difference ``(f(x + h) - f(x - h)) / 2h`` against the
    analytic gradient (the module's backward pass), for a range of steps ``h``, in float64.

    Truncation error shrinks like ``h^2``, rounding error grows like ``eps |f| / h``: the
    best ``h`` is in between (about ``1e-5`` to ``1e-6`` in float64).

    Returns
    -------
    dict: ``h`` (array) and ``error`` (array of relative errors of ``d loss / d x``).
    """
    from course_lib.gradcheck import numerical_gradient, rel_error

    rng = np.random.default_rng(seed)
    model = _small_numpy_mlp(seed)
    x = rng.standard_normal((6, 5))
    dout = rng.standard_normal((6, 3))
    model.forward(x)
    analytic = model.backward(dout)

    def f(inputs):
        return float(np.sum(model.forward(inputs) * dout))

    errors = [rel_error(analytic, numerical_gradient(f, x, h=h)) for h in hs]
    return {"h": np.array(hs), "error": np.array(errors)}
