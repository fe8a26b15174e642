"""Experiments of chapter 6, *Normalization*.

Input scaling, batch norm in training and evaluation mode, layer norm, and deep networks
with and without normalization layers, on the digits; the shift of a layer's inputs with
batch norm and with "noisy" batch norm (Santurkar et al., 2018); weight normalization;
Keras's and PyTorch's batch-norm momentum; a forgotten ``model.eval()``. The functions
return numbers and arrays; ``tests/test_claims_ch4_7.py`` and
``tests/test_claims_ch6_7.py`` assert what the chapter says about them.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch.nn.utils.parametrizations import weight_norm

from course_lib.core import validate
from course_lib.torch import layers, optim
from course_lib.experiments.digits import digits_mlp, digits_split, train_classifier

__all__ = ["input_scaling", "curvature_by_scaling", "batchnorm_modes", "deep_net",
           "DEEP_RUNS", "deep_networks", "placement_comparison", "NoisyBatchNorm1d",
           "LayerInputShift", "weight_normalize", "WN_RUNS",
           "weight_norm_runs", "momentum_conventions", "forgotten_eval",
           "variance_without_the_mean"]


# ------------------------------------------------------------- input normalization
def curvature_by_scaling(scales=("raw", "unit", "standard"), *, seed=0):
    """Largest and smallest non-zero eigenvalue of ``X^T X / N`` (inputs with a column of
    ones for the bias) for each input scaling.

    ``X^T X / N`` is the Hessian of the squared loss of a linear model; gradient descent
    on it is stable only for ``lr < 2 / lambda_max`` and converges at a rate set by the
    condition number ``lambda_max / lambda_min``. Zero eigenvalues (pixels that are
    always blank) are left out: they leave the loss flat, not ill-conditioned.

    Returns
    -------
    dict
        ``{scale: {"lambda_max", "lambda_min", "condition", "max_stable_lr"}}``.
    """
    out = {}
    for scale in scales:
        x = digits_split(seed=seed, scale=scale)["x_train"].double()
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
        eig = torch.linalg.eigvalsh(x.T @ x / len(x))
        eig = eig[eig > 1e-9 * eig.max()]
        lam_max, lam_min = eig.max().item(), eig.min().item()
        out[scale] = {"lambda_max": lam_max, "lambda_min": lam_min,
                      "condition": lam_max / lam_min, "max_stable_lr": 2 / lam_max}
    return out


def input_scaling(scales=("raw", "unit", "standard"), lrs=(0.001, 0.01, 0.1, 1.0), *,
                  epochs=10, seed=0):
    """Softmax regression (a single ``Linear(64, 10)``) on raw pixels (0..16), pixels / 16
    and standardized pixels, trained with plain SGD (batches of 64) at each rate of
    ``lrs``.

    Returns
    -------
    dict
        ``{scale: {lr: history}}``.
    """
    out = {}
    for scale in scales:
        d = digits_split(seed=seed, scale=scale)
        out[scale] = {}
        for lr in lrs:
            model = layers.mlp([64, 10], generator=torch.Generator().manual_seed(seed),
                               device="cpu")
            out[scale][lr] = train_classifier(model, optim.SGD(model.parameters(), lr=lr), d,
                                              epochs=epochs, batch_size=64, seed=seed)
    return out


# ------------------------------------------------------------------- batch norm
def batchnorm_modes(*, num_features=3, batch_size=64, batches=300, seed=0):
    """What ``BatchNorm1d`` and ``LayerNorm`` compute in training and evaluation mode.

    Data: features with means ``(5, -2, 0)`` and standard deviations ``(3, 0.5, 1)``.

    Returns
    -------
    dict
        - ``train_mean``, ``train_std``: per-feature mean and (biased) std of batch norm's
          output on one training batch (0 and 1 up to ``eps``);
        - ``running_mean``, ``running_var`` after ``batches`` batches, and the true
          ``data_mean``, ``data_var``;
        - ``train_depends_on_batch``: the largest change of one example's output when
          its batch companions change, in training mode; ``eval_depends_on_batch`` the
          same in evaluation mode (0: running statistics only);
        - ``layernorm_depends_on_batch``: the same for ``LayerNorm`` (0: per example).
    """
    validate.check_number("batches", batches, low=1, integer=True)
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor([5.0, -2.0, 0.0])[:num_features]
    std = torch.tensor([3.0, 0.5, 1.0])[:num_features]
    draw = lambda n: mean + std * torch.randn(n, num_features, generator=g)  # noqa: E731
    bn = layers.BatchNorm1d(num_features, device="cpu")
    with torch.no_grad():
        batch = draw(batch_size)
        y = bn(batch)
        for _ in range(batches - 1):
            bn(draw(batch_size))
        other = torch.cat([batch[:1], draw(batch_size - 1)])  # same first example
        train_change = (bn(batch)[0] - bn(other)[0]).abs().max().item()
        bn.eval()
        eval_change = (bn(batch)[0] - bn(other)[0]).abs().max().item()
        ln = layers.LayerNorm(num_features, device="cpu")
        ln_change = (ln(batch)[0] - ln(other)[0]).abs().max().item()
    return {"train_mean": y.mean(0).numpy(), "train_std": y.std(0, unbiased=False).numpy(),
            "running_mean": bn.running_mean.numpy().copy(),
            "running_var": bn.running_var.numpy().copy(),
            "data_mean": mean.numpy(), "data_var": (std ** 2).numpy(),
            "train_depends_on_batch": train_change, "eval_depends_on_batch": eval_change,
            "layernorm_depends_on_batch": ln_change}


# --------------------------------------------------------------- deep networks
def deep_net(depth=15, width=64, norm=None, *, placement="before", seed=0):
    """A ``depth``-layer ReLU MLP on the digits (64 -> width x (depth - 1) -> 10), torch's
    default initialization.

    Parameters
    ----------
    norm : {None, "batch", "layer", "noisy"}
        A ``BatchNorm1d``, ``LayerNorm`` or :class:`NoisyBatchNorm1d` (its noise drawn
        from a generator seeded with ``seed + 1``) in every hidden block.
    placement : {"before", "after"}
        Normalization before the activation (``Linear -> norm -> ReLU``, as in Ioffe &
        Szegedy) or after it (``Linear -> ReLU -> norm``).
    """
    validate.check_number("depth", depth, low=2, integer=True)
    validate.check_choice("norm", norm, (None, "batch", "layer", "noisy"))
    validate.check_choice("placement", placement, ("before", "after"))
    g = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    sizes = [64] + [width] * (depth - 1) + [10]
    mods = []
    for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
        block = [layers.Linear(d_in, d_out, generator=g, device="cpu"), layers.ReLU()]
        if norm is not None:
            n = {"batch": lambda: layers.BatchNorm1d(d_out, device="cpu"),
                 "layer": lambda: layers.LayerNorm(d_out, device="cpu"),
                 "noisy": lambda: NoisyBatchNorm1d(d_out, generator=noise)}[norm]()
            block.insert(1 if placement == "before" else 2, n)
        mods += block
    mods.append(layers.Linear(sizes[-2], sizes[-1], generator=g, device="cpu"))
    return layers.Sequential(*mods)


#: The runs of :func:`deep_networks`: (depth, normalization, learning rate).
DEEP_RUNS = (
    (15, None, 0.01), (15, "batch", 0.01), (15, "layer", 0.01),
    (6, None, 0.05), (6, None, 0.5), (6, "batch", 0.5),
)


def deep_networks(runs=DEEP_RUNS, *, epochs=8, probe_layer=None, probe_size=256, seed=0):
    """Train deep ReLU MLPs (width 64) on the digits with SGD (momentum 0.9, batches of
    64), with and without normalization.

    The default runs compare a 15-layer network without normalization, with batch norm
    and with layer norm at a rate of 0.01, and a 6-layer network without normalization at
    0.05 and 0.5 and with batch norm at 0.5. A run with ``"noisy"`` uses
    :class:`NoisyBatchNorm1d`.

    With ``probe_layer``, in every network deeper than ``probe_layer`` layers, a
    :class:`LayerInputShift` on the first ``probe_size`` training examples measures the
    shift of the inputs of that ``Linear`` layer (0-based) at every step (it
    does not change the training: no gradients, no random numbers of the network's, and
    the running statistics stay as they are); the history then also has ``"shift"``, an
    array with one value per step.

    Returns
    -------
    dict
        ``{(depth, norm, lr): history}`` with ``norm`` one of ``"none"``, ``"batch"``,
        ``"layer"``, ``"noisy"``.
    """
    d = digits_split(seed=seed)
    out = {}
    for depth, norm, lr in runs:
        model = deep_net(depth, norm=norm, seed=seed)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        probe = ([LayerInputShift(d["x_train"][:probe_size], probe_layer)]
                 if probe_layer is not None and depth > probe_layer else [])
        h = train_classifier(model, opt, d, epochs=epochs, batch_size=64, seed=seed,
                             callbacks=probe)
        if probe:
            h["shift"] = probe[0].shifts()
        out[(depth, norm or "none", lr)] = h
    return out


def placement_comparison(placements=("before", "after"), *, depth=15, lr=0.01, epochs=8,
                         seed=0):
    """Batch norm before and after the ReLU in the 15-layer MLP (SGD, momentum 0.9,
    batches of 64); ``{placement: history}``. "before" is the batch-norm run of
    :func:`deep_networks` with the same depth, rate and seed."""
    d = digits_split(seed=seed)
    out = {}
    for placement in placements:
        model = deep_net(depth, norm="batch", placement=placement, seed=seed)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        out[placement] = train_classifier(model, opt, d, epochs=epochs, batch_size=64,
                                          seed=seed)
    return out


# ------------------------------------------------- internal covariate shift (Santurkar)
class NoisyBatchNorm1d(torch.nn.Module):
    r"""Batch norm followed by a random scale and shift that change at every training step.

    :math:`y = s \odot \mathrm{BN}(x) + m`, with one scale :math:`s_k \sim
    \mathcal U(\text{scale})` and one shift :math:`m_k \sim \mathcal U(\pm\text{shift})`
    per feature, drawn anew at every forward pass in training mode, so that the next layer
    sees a distribution that moves at every step: the "noisy batch norm" of Santurkar et
    al. (2018), section 2.1, which injects covariate shift on purpose. In evaluation mode
    the noise is replaced by its mean (:math:`s = \bar s`, :math:`m = 0`).

    ``x``: ``(N, num_features)``.

    References
    ----------
    Santurkar, Tsipras, Ilyas & Madry (2018), *How does batch normalization help
    optimization?*, NeurIPS.
    """

    def __init__(self, num_features, *, scale=(1.0, 1.5), shift=0.3, generator=None):
        super().__init__()
        lo, hi = scale
        validate.check_number("scale[0]", lo, low=0.0)
        validate.check_number("scale[1]", hi, low=lo)
        self.scale = (float(lo), float(hi))
        self.shift = validate.check_number("shift", shift, low=0.0)
        self.generator = validate.torch_generator(generator)
        self.bn = layers.BatchNorm1d(num_features, device="cpu")

    def forward(self, x):
        y = self.bn(x)
        lo, hi = self.scale
        if not self.training:
            return y * (lo + hi) / 2
        k = x.shape[1]
        s = lo + (hi - lo) * torch.rand(k, generator=self.generator)
        m = self.shift * (2 * torch.rand(k, generator=self.generator) - 1)
        return y * s + m


class LayerInputShift:
    r"""A ``fit`` callback that measures how much the input distribution of one layer moves
    at each optimizer step: a proxy of *internal covariate shift*.

    After every step (and once before training) the fixed ``probe`` batch goes through the
    model in training mode (batch statistics, fresh noise of :class:`NoisyBatchNorm1d`,
    running statistics left unchanged), and the per-feature mean :math:`\mu_k` and
    standard deviation :math:`\sigma_k` of the input of the ``layer``-th ``Linear`` are
    recorded. The shift of step :math:`t` is the change of these moments relative to the
    layer's scale:

    .. math:: \frac{\overline{|\mu_k^{(t)} - \mu_k^{(t-1)}|}
              + \overline{|\sigma_k^{(t)} - \sigma_k^{(t-1)}|}}{\overline{\sigma_k^{(t-1)}}}

    (bars: means over the features). ``shifts()`` returns them, one per step.
    """

    def __init__(self, probe, layer):
        self.probe = probe
        self.layer = validate.check_number("layer", layer, low=0, integer=True)

    def on_train_begin(self, logs):
        self.model = logs["model"]
        linears = [m for m in self.model.modules() if isinstance(m, layers.Linear)]
        if self.layer >= len(linears):
            raise ValueError(f"layer must be below {len(linears)} (the number of Linear "
                             f"layers), got {self.layer}")
        self.moments = []
        self._recording = False
        self._handle = linears[self.layer].register_forward_pre_hook(self._hook)
        self._measure()

    def _hook(self, module, args):
        if self._recording:
            a = args[0].detach()
            self.moments.append((a.mean(0), a.std(0, unbiased=False)))

    def _measure(self):
        norms = [m for m in self.model.modules() if isinstance(m, layers.BatchNorm1d)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 0.0  # torch's momentum 0: the running statistics stay as they are
        self._recording = True
        try:
            with torch.no_grad():
                self.model(self.probe)
        finally:
            self._recording = False
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum

    def on_batch_end(self, step, logs):
        self._measure()

    def on_train_end(self, logs):
        self._handle.remove()

    def shifts(self):
        out = []
        for (m0, s0), (m1, s1) in zip(self.moments[:-1], self.moments[1:]):
            change = (m1 - m0).abs().mean() + (s1 - s0).abs().mean()
            out.append((change / s0.mean()).item())
        return np.asarray(out)


# ---------------------------------------------------------------- weight normalization
def weight_normalize(model, init_batch=None):
    r"""Reparametrize every ``Linear`` of ``model`` as :math:`w_j = g_j\, v_j / \|v_j\|`
    (one length :math:`g_j` per output unit, ``torch.nn.utils.parametrizations.weight_norm``
    with ``dim=0``), in place; returns ``model``.

    ``weight_norm`` starts from :math:`g_j = \|v_j\|`: the network computes exactly what
    it computed before. With ``init_batch`` (an ``(N, in)`` tensor), the data-dependent
    initialization of Salimans & Kingma (2016), section 3: layer by layer, the batch's
    pre-activations :math:`z_j` get mean 0 and variance 1 (:math:`g_j \leftarrow
    g_j/\sigma_j`, :math:`b_j \leftarrow (b_j - \mu_j)/\sigma_j`), except for the last
    layer's.

    References
    ----------
    Salimans & Kingma (2016), *Weight normalization: a simple reparameterization to
    accelerate training of deep neural networks*, NeurIPS.
    """
    linears = [m for m in model.modules() if isinstance(m, layers.Linear)]
    for m in linears:
        weight_norm(m, name="weight", dim=0)
    if init_batch is not None:
        x = init_batch
        with torch.no_grad():
            for m in model:
                if isinstance(m, layers.Linear) and m is not linears[-1]:
                    z = m(x)
                    mu, sd = z.mean(0), z.std(0, unbiased=False)
                    m.parametrizations.weight.original0.div_(sd[:, None])
                    m.bias.sub_(mu).div_(sd)
                x = m(x)
    return model


#: The runs of :func:`weight_norm_runs`: (depth, variant, learning rate).
WN_RUNS = (
    (15, "weight", 0.01), (15, "weight+init", 0.01),
    (6, "weight+init", 0.05), (6, "weight+init", 0.5),
)


def weight_norm_runs(runs=WN_RUNS, *, epochs=8, init_size=256, seed=0):
    """The networks of :func:`deep_networks` with weight normalization (``"weight"``:
    started as the plain network; ``"weight+init"``: with the data-dependent
    initialization on the first ``init_size`` training examples), same optimizer, batches
    and seeds.

    Returns
    -------
    dict
        ``{(depth, variant, lr): history}``, and under the key ``"same_function"`` the
        largest difference between the outputs of the plain and the weight-normalized
        15-layer networks before training (0 up to rounding: ``g = ||v||``).
    """
    d = digits_split(seed=seed)
    out = {}
    for depth, variant, lr in runs:
        validate.check_choice("variant", variant, ("weight", "weight+init"))
        init = d["x_train"][:init_size] if variant == "weight+init" else None
        model = weight_normalize(deep_net(depth, seed=seed), init)
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        out[(depth, variant, lr)] = train_classifier(model, opt, d, epochs=epochs,
                                                     batch_size=64, seed=seed)
    with torch.no_grad():
        x = d["x_val"]
        plain, normed = deep_net(15, seed=seed), weight_normalize(deep_net(15, seed=seed))
        out["same_function"] = (plain(x) - normed(x)).abs().max().item()
    return out


# ---------------------------------------------------------- common mistakes (settled)
def momentum_conventions(*, batches=300, batch_size=32, keras_momentum=0.99, seed=0):
    r"""Keras's and PyTorch's batch-norm ``momentum`` are the two sides of one average.

    Keras: :math:`r \leftarrow m_K\, r + (1 - m_K)\, s` (``momentum=0.99``, the weight
    of the *old* running statistic); PyTorch: :math:`r \leftarrow (1 - m)\, r + m\, s`
    (``momentum=0.1``, the weight of the *new* batch statistic); so :math:`m = 1 - m_K`.
    One stream of batches (one feature, mean 5, std 3) goes into ``BatchNorm1d`` with
    ``momentum = 1 - keras_momentum`` (the right translation), ``momentum =
    keras_momentum`` (Keras's number typed into PyTorch) and the default 0.1, and into
    Keras's update written out by hand.

    Returns
    -------
    dict
        ``running_mean``: ``{label: array (batches,)}`` after each batch;
        ``batch_mean``: the batch means; ``keras_vs_torch``: the largest difference between
        the hand-written Keras update and PyTorch with ``1 - keras_momentum``.
    """
    validate.check_probability("keras_momentum", keras_momentum)
    g = torch.Generator().manual_seed(seed)
    stream = [5.0 + 3.0 * torch.randn(batch_size, 1, generator=g, dtype=torch.float64)
              for _ in range(batches)]
    momenta = {"translated": 1 - keras_momentum, "typed in": keras_momentum, "default": 0.1}
    out = {label: [] for label in momenta}
    for label, m in momenta.items():
        bn = layers.BatchNorm1d(1, momentum=m, device="cpu", dtype=torch.float64)
        with torch.no_grad():
            for x in stream:
                bn(x)
                out[label].append(bn.running_mean.item())
    keras, r = [], 0.0  # Keras also starts its moving mean at 0
    for x in stream:
        r = keras_momentum * r + (1 - keras_momentum) * x.mean().item()
        keras.append(r)
    running = {label: np.asarray(v) for label, v in out.items()}
    running["Keras by hand"] = np.asarray(keras)
    return {"running_mean": running,
            "batch_mean": np.asarray([x.mean().item() for x in stream]),
            "keras_vs_torch": float(np.abs(running["Keras by hand"]
                                           - running["translated"]).max())}


def forgotten_eval(*, epochs=8, seed=0):
    """The validation error of a trained batch-norm MLP (64-128-10, AdamW at 1e-3,
    batches of 64) in evaluation mode, and in training mode (``model.eval()`` forgotten):
    on the whole validation set at once, in batches of 8, and in batches of 8 of a
    validation set sorted by class.

    Returns
    -------
    dict
        ``eval``, ``train_full``, ``train_8``, ``train_8_sorted``: error rates.
    """
    d = digits_split(seed=seed)
    model = digits_mlp([64, 128, 10], seed, batch_norm=True)
    train_classifier(model, optim.AdamW(model.parameters(), lr=1e-3), d, epochs=epochs,
                     batch_size=64, seed=seed)
    x, y = d["x_val"], d["y_val"]
    order = torch.argsort(y, stable=True)

    def error(training, batch_size, idx=None):
        m = copy.deepcopy(model).train(training)  # training mode updates running stats
        xs, ys = (x, y) if idx is None else (x[idx], y[idx])
        with torch.no_grad():
            wrong = sum((m(xs[i:i + batch_size]).argmax(1) != ys[i:i + batch_size]).sum().item()
                        for i in range(0, len(xs), batch_size))
        return wrong / len(xs)

    return {"eval": error(False, len(x)), "train_full": error(True, len(x)),
            "train_8": error(True, 8), "train_8_sorted": error(True, 8, order)}


def variance_without_the_mean(*, seed=0):
    r"""The variance of each raw pixel (0..16) of the digits' training set, right
    (:math:`rac{1}{N}\sum_i (x_i - \mu)^2`) and with the mean left out
    (:math:`rac{1}{N-1}\sum_i x_i^2`, a formula in circulation).

    Returns
    -------
    dict
        ``right``, ``wrong``: arrays ``(64,)``; ``median_ratio``: the median of
        ``wrong / right`` over the pixels that are not always blank.
    """
    x = digits_split(seed=seed, scale="raw")["x_train"].double()
    right = x.var(0, unbiased=False)
    wrong = (x ** 2).sum(0) / (len(x) - 1)
    used = right > 0
    return {"right": right.numpy(), "wrong": wrong.numpy(),
            "median_ratio": float((wrong[used] / right[used]).median())}
