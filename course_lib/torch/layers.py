"""Torch layers written with tensor math (autograd does the backward pass).

The twins of :mod:`course_lib.numpy.layers`: same names, arguments and equations, each a
``torch.nn.Module`` subclass. They take ``device=`` and ``dtype=`` like torch's layers;
``device=None`` means :func:`course_lib.torch.device.default_device` (CUDA when
available) and ``dtype=None`` torch's default dtype. Random layers take a
``torch.Generator``; ``None`` uses torch's default generator.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from course_lib.core.validate import check_choice, check_number, check_probability, torch_generator
from course_lib.torch import activations as F
from course_lib.torch import init
from course_lib.torch.device import default_device

__all__ = ["Module", "Parameter", "Linear", "Dropout", "AlphaDropout", "BatchNorm1d",
           "LayerNorm", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "SELU", "GELU",
           "Softplus", "SiLU", "PReLU", "Identity", "Sequential", "mlp"]

Module = nn.Module
Parameter = nn.Parameter


def _factory(device, dtype):
    return {"device": default_device() if device is None else torch.device(device),
            "dtype": torch.get_default_dtype() if dtype is None else dtype}


def _check_input(x, name="x"):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


class Linear(nn.Module):
    r"""Affine layer :math:`y = x W^\top + b`, torch's default initialization.

    ``x``: ``(N, in_features)`` (or ``(*, in_features)``); ``weight``:
    ``(out_features, in_features)``; ``bias``: ``(out_features,)``. Initial weights:
    ``kaiming_uniform_(weight, a=sqrt(5))`` = :math:`\mathcal{U}(\pm 1/\sqrt{\text{in}})`,
    bias :math:`\mathcal{U}(\pm 1/\sqrt{\text{in}})`, drawn with ``generator`` exactly as
    ``torch.nn.Linear`` draws them from the default generator.
    """

    def __init__(self, in_features, out_features, bias=True, generator=None,
                 device=None, dtype=None):
        super().__init__()
        check_number("in_features", in_features, low=0, integer=True)
        check_number("out_features", out_features, low=0, integer=True)
        self.in_features, self.out_features = in_features, out_features
        kw = _factory(device, dtype)
        self.weight = nn.Parameter(torch.empty((out_features, in_features), **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """Draw torch's default initial weights (see the class docstring)."""
        torch_generator(generator)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight.shape)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        _check_input(x)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}) for Linear("
                             f"{self.in_features}, {self.out_features}), got {tuple(x.shape)}")
        if self.bias is None:
            return x @ self.weight.T
        if x.dim() == 2:  # one fused kernel (b + x W^T), as torch.nn.functional.linear uses
            return torch.addmm(self.bias, x, self.weight.T)
        return x @ self.weight.T + self.bias

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(nn.Module):
    r"""Inverted dropout (Srivastava et al., 2014): in training
    :math:`y = x \odot m/(1 - p)`, :math:`m_i \sim \mathrm{Bernoulli}(1 - p)` drawn with
    ``generator`` (``bernoulli_`` on the input's device, bit-identical to
    ``torch.nn.functional.dropout`` with an equally seeded default generator on the CPU);
    identity in evaluation mode and for ``p = 0``. ``p`` in ``[0, 1]``; ``p = 1`` gives
    ``x * 0`` (NaN for an infinite entry), as torch."""

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        self.p = check_probability("p", p, allow_one=True)
        self.generator = torch_generator(generator)

    def _drop_all(self, x):
        return x * torch.zeros((), dtype=x.dtype, device=x.device)

    def _mask(self, x):
        g = self.generator
        if g is None or g.device.type == x.device.type:
            return torch.empty_like(x).bernoulli_(1 - self.p, generator=g)
        # A generator on another device (a CPU one for CUDA input): draw there, move.
        mask = torch.empty(x.shape, dtype=x.dtype, device=g.device)
        return mask.bernoulli_(1 - self.p, generator=g).to(x.device)

    def forward(self, x):
        _check_input(x)
        if not self.training or self.p == 0 or x.numel() == 0:
            return x
        if self.p == 1:
            return self._drop_all(x)
        return x * (self._mask(x) / (1 - self.p))

    def extra_repr(self):
        return f"p={self.p}"


class AlphaDropout(Dropout):
    r"""Alpha dropout (Klambauer et al., 2017), torch's formula:
    ``y = x * (m * a) + (m - 1) * (A * a) + A * a * p`` with ``A = 1.7580993408473766``
    and :math:`a = ((A^2 p + 1)(1 - p))^{-1/2}`; keeps zero mean and unit variance of
    SELU activations. Identity in evaluation mode and for ``p = 0``; ``x * 0`` for
    ``p = 1``, as torch."""

    ALPHA = 1.7580993408473766

    def forward(self, x):
        _check_input(x)
        if not self.training or self.p == 0 or x.numel() == 0:
            return x
        if self.p == 1:
            return self._drop_all(x)
        p, alpha = self.p, self.ALPHA
        a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
        m = self._mask(x)
        return x * (m * a) + ((m - 1) * (alpha * a) + alpha * a * p)


class BatchNorm1d(nn.Module):
    r"""Batch normalization (Ioffe & Szegedy, 2015) over ``(N, C)`` or ``(N, C, L)``.

    Training: normalize with the batch mean and *biased* variance,
    :math:`y = \gamma (x - \mu_B)/\sqrt{\sigma_B^2 + \epsilon} + \beta`; update
    :math:`r \leftarrow (1 - m) r + m\,s` with the *unbiased* variance for
    ``running_var`` and ``m = momentum`` (``None``: :math:`1/\text{num\_batches\_tracked}`,
    a cumulative average). Evaluation: the running statistics (batch statistics if
    ``track_running_stats=False``). torch's parameter and buffer names.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        self.num_features = check_number("num_features", num_features, low=1, integer=True)
        self.eps = check_number("eps", eps, low=0.0)
        if momentum is not None:
            check_number("momentum", momentum, low=0.0, high=1.0)
        self.momentum = momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        kw = _factory(device, dtype)
        C = num_features
        if affine:
            self.weight = nn.Parameter(torch.ones(C, **kw))
            self.bias = nn.Parameter(torch.zeros(C, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(C, **kw))
            self.register_buffer("running_var", torch.ones(C, **kw))
            self.register_buffer("num_batches_tracked",
                                 torch.tensor(0, dtype=torch.long, device=kw["device"]))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x):
        _check_input(x)
        C = self.num_features
        if x.dim() not in (2, 3) or x.shape[1] != C:
            raise ValueError(f"x must have shape (N, {C}) or (N, {C}, L) for "
                             f"BatchNorm1d({C}), got {tuple(x.shape)}")
        axes = (0,) if x.dim() == 2 else (0, 2)
        shape = (1, C) + (1,) * (x.dim() - 2)
        if self.training or not self.track_running_stats:
            n = x.numel() // C
            if n == 1:
                raise ValueError(
                    "x must hold more than 1 value per channel to use batch statistics (in "
                    "training, or with track_running_stats=False): Expected more than 1 "
                    f"value per channel when training, got input size {tuple(x.shape)}")
            if self.eps <= 0:  # torch refuses eps = 0 with batch statistics too
                raise ValueError("eps must be positive to use batch statistics (in training,"
                                 f" or with track_running_stats=False), got {self.eps}")
            if n == 0:  # as torch: nothing to normalize, only the batch is counted
                if self.training and self.track_running_stats:
                    with torch.no_grad():
                        self.num_batches_tracked.add_(1)
                return x.clone()
            mean = x.mean(dim=axes)
            var = x.var(dim=axes, unbiased=False)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                         else self.momentum)
                    self.running_mean.copy_((1 - m) * self.running_mean + m * mean)
                    self.running_var.copy_((1 - m) * self.running_var + m * var * n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.eps)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class LayerNorm(nn.Module):
    r"""Layer normalization (Ba et al., 2016): each sample normalized over the trailing
    ``normalized_shape`` dims with its mean and biased variance,
    :math:`y = \gamma \odot (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta`."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        normalized_shape = tuple(normalized_shape)
        if not normalized_shape:
            raise ValueError("normalized_shape must have at least one dimension")
        for i, s in enumerate(normalized_shape):
            check_number(f"normalized_shape[{i}]", s, low=1, integer=True)
        self.normalized_shape = normalized_shape
        self.eps = check_number("eps", eps, low=0.0)
        self.elementwise_affine = bool(elementwise_affine)
        kw = _factory(device, dtype)
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(normalized_shape, **kw))
            self.bias = nn.Parameter(torch.zeros(normalized_shape, **kw))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        _check_input(x)
        k = len(self.normalized_shape)
        if x.dim() < k or tuple(x.shape[x.dim() - k:]) != self.normalized_shape:
            raise ValueError(f"x must have shape (*, {', '.join(map(str, self.normalized_shape))})"
                             f" for LayerNorm({self.normalized_shape}), got {tuple(x.shape)}")
        dims = tuple(range(x.dim() - k, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.elementwise_affine:
            y = y * self.weight + self.bias
        return y

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class ReLU(nn.Module):
    """:math:`\\max(x, 0)`."""

    def forward(self, x):
        return F.relu(x)


class Sigmoid(nn.Module):
    """:math:`1/(1 + e^{-x})`."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(nn.Module):
    """:math:`\\tanh(x)`."""

    def forward(self, x):
        return F.tanh(x)


class SELU(nn.Module):
    """Scaled ELU (Klambauer et al., 2017)."""

    def forward(self, x):
        return F.selu(x)


class Identity(nn.Module):
    """:math:`y = x`; ignores any constructor arguments, as torch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class LeakyReLU(nn.Module):
    """:math:`x` if :math:`x > 0` else ``negative_slope * x``."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_number("negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(nn.Module):
    """:math:`x` if :math:`x > 0` else :math:`\\alpha(e^x - 1)`."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_number("alpha", alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(nn.Module):
    """Gaussian error linear unit, exact (``"none"``) or ``"tanh"`` approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = check_choice("approximate", approximate, ("none", "tanh"))

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(nn.Module):
    r"""Sigmoid linear unit :math:`x\,\sigma(x)` (Elfwing et al., 2018)."""

    def forward(self, x):
        return F.silu(x)


class PReLU(nn.Module):
    r"""Parametric ReLU (He et al., 2015): :math:`x` if :math:`x > 0` else :math:`a_c x`;
    ``weight`` :math:`a`, shape ``(num_parameters,)``, filled with ``init``, is learned.
    ``num_parameters`` is 1 or the number of channels (dimension 1 of ``x``)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = check_number("num_parameters", num_parameters, low=1,
                                           integer=True)
        self.init = check_number("init", init)
        self.weight = nn.Parameter(torch.full((num_parameters,), float(init),
                                              **_factory(device, dtype)))

    def forward(self, x):
        _check_input(x)
        a = self.weight
        if self.num_parameters > 1:
            if x.dim() < 2 or x.shape[1] != self.num_parameters:
                raise ValueError(f"x must have shape (N, {self.num_parameters}, *) for "
                                 f"PReLU(num_parameters={self.num_parameters}), "
                                 f"got {tuple(x.shape)}")
            a = a.reshape((1, self.num_parameters) + (1,) * (x.dim() - 2))
        else:
            a = a.reshape(())
        # a * min(x, 0), not a * x: at x = inf the unused branch a * x would be NaN for
        # a = 0, and its gradient (x) would make the slope's gradient NaN
        return torch.where(x > 0, x, a * torch.clamp(x, max=0))

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Softplus(nn.Module):
    """:math:`\\log(1 + e^{\\beta x})/\\beta`, linear above ``threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = check_number("beta", beta)
        self.threshold = check_number("threshold", threshold)

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Sequential(nn.Module):
    """Modules applied in order; indexable (a slice gives a ``Sequential``), ``len``,
    iterable; sub-modules named ``"0"``, ``"1"``, ... as in torch."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, nn.Module):
                raise TypeError(f"modules[{i}] must be a torch.nn.Module, "
                                f"got {type(m).__name__}")
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*mods[index])
        return mods[index]

    def forward(self, x):
        for m in self:
            x = m(x)
        return x


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
               "elu": ELU, "selu": SELU, "gelu": GELU, "silu": SiLU, "softplus": Softplus,
               "identity": Identity}


def mlp(sizes, activation="relu", batch_norm=False, dropout=0.0, generator=None,
        device=None, dtype=None):
    """The course's standard MLP: for each hidden width a block
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``, then a final ``Linear``.

    Same arguments as :func:`course_lib.numpy.layers.mlp`, with a ``torch.Generator``
    (shared by the initial weights and the dropout masks) and ``device``/``dtype``.
    Returns a :class:`Sequential`.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least two widths, got {sizes}")
    for i, s in enumerate(sizes):
        check_number(f"sizes[{i}]", s, low=1, integer=True)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_probability("dropout", dropout)
    torch_generator(generator)
    kw = {"device": device, "dtype": dtype}
    layers = []
    for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(Linear(d_in, d_out, generator=generator, **kw))
        if batch_norm:
            layers.append(BatchNorm1d(d_out, **kw))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout, generator=generator))
    layers.append(Linear(sizes[-2], sizes[-1], generator=generator, **kw))
    return Sequential(*layers)
