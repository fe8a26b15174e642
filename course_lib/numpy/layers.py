"""NumPy layers with hand-written backward passes, the twins of ``torch.nn`` layers.

Every layer follows the :class:`~course_lib.numpy.module.Module` protocol:
``forward(x)`` caches, ``backward(dout)`` returns ``dx`` and accumulates parameter
gradients. Shapes follow torch: a batch is ``(N, features)``, a Linear weight is
``(out_features, in_features)``.
"""
from __future__ import annotations

import math

import numpy as np

from course_lib.core.validate import check_choice, check_number, check_probability, numpy_generator
from course_lib.numpy import activations as F
from course_lib.numpy import init
from course_lib.numpy.module import Module
from course_lib.numpy.parameter import Parameter

__all__ = ["Module", "Parameter", "Linear", "Dropout", "AlphaDropout", "BatchNorm1d",
           "LayerNorm", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "ELU", "SELU", "GELU",
           "Softplus", "SiLU", "PReLU", "Identity", "Sequential", "mlp"]


def _as_input(x, name="x"):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def _check_cached(module, attr):
    if getattr(module, attr, None) is None:
        raise RuntimeError(f"{type(module).__name__}.backward called before forward")


class Linear(Module):
    r"""Affine layer :math:`y = x W^\top + b`.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether to learn :math:`b`.
    generator : numpy.random.Generator, optional
        For the initial weights.
    dtype : numpy dtype, optional
        Of the parameters; float64 by default.

    Notes
    -----
    Shapes: ``x`` is ``(N, in_features)`` (or ``(*, in_features)``), ``weight`` is
    ``(out_features, in_features)``, ``bias`` is ``(out_features,)``, ``y`` is
    ``(N, out_features)``.

    Initialization is torch's default: ``kaiming_uniform_(weight, a=sqrt(5))``, which is
    :math:`\mathcal{U}(-1/\sqrt{\text{in}}, 1/\sqrt{\text{in}})`, and the bias from the
    same :math:`\mathcal{U}(-1/\sqrt{\text{in}}, 1/\sqrt{\text{in}})`.

    Backward: :math:`\partial x = g W`, :math:`\partial W \mathrel{+}= g^\top x`,
    :math:`\partial b \mathrel{+}= \sum_n g_n` with :math:`g` = ``dout``.
    """

    def __init__(self, in_features, out_features, bias=True, generator=None, dtype=None):
        super().__init__()
        check_number("in_features", in_features, low=0, integer=True)
        check_number("out_features", out_features, low=0, integer=True)
        self.in_features, self.out_features = in_features, out_features
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters(generator)
        self._x = None

    def reset_parameters(self, generator=None):
        """Draw torch's default initial weights (see the class docstring)."""
        rng = numpy_generator(generator)
        init.kaiming_uniform_(self.weight.data, a=math.sqrt(5), generator=rng)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight.shape)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias.data, -bound, bound, generator=rng)

    def forward(self, x):
        x = _as_input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}) for "
                             f"{self.extra_repr_short()}, got {x.shape}")
        self._x = x
        y = x @ self.weight.data.T
        if self.bias is not None:
            y = y + self.bias.data
        return y

    def backward(self, dout):
        _check_cached(self, "_x")
        x = self._x
        dout = np.asarray(dout)
        expected = x.shape[:-1] + (self.out_features,)
        if dout.shape != expected:
            raise ValueError(f"dout must have shape {expected}, got {dout.shape}")
        x2 = x.reshape(-1, self.in_features)
        d2 = dout.reshape(-1, self.out_features)
        self.weight.accumulate_grad(d2.T @ x2)
        if self.bias is not None:
            self.bias.accumulate_grad(d2.sum(axis=0))
        return dout @ self.weight.data

    def extra_repr_short(self):
        return f"Linear({self.in_features}, {self.out_features})"

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    r"""Inverted dropout (Srivastava et al., 2014): in training,
    :math:`y = x \odot m / (1 - p)` with :math:`m_i \sim \mathrm{Bernoulli}(1 - p)`, so
    :math:`\mathbb{E}[y] = x`; in evaluation mode, :math:`y = x`.

    ``p`` is the probability of *dropping* a unit, in ``[0, 1]``; ``p = 1`` drops
    everything, ``y = x * 0`` as torch computes it (so an infinite entry gives NaN).
    Backward: :math:`\partial x = g \odot m / (1 - p)` (:math:`g \cdot 0` for ``p = 1``).
    Any input shape.
    """

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        self.p = check_probability("p", p, allow_one=True)
        self.generator = numpy_generator(generator)
        self._scale = None

    def forward(self, x):
        x = _as_input(x)
        if not self.training or self.p == 0 or x.size == 0:
            self._scale = np.ones((), dtype=x.dtype)
            return x
        if self.p == 1:
            self._scale = np.zeros((), dtype=x.dtype)
            return x * self._scale
        keep = self.generator.random(x.shape) >= self.p
        self._scale = keep.astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * self._scale

    def backward(self, dout):
        _check_cached(self, "_scale")
        return dout * self._scale

    def extra_repr(self):
        return f"p={self.p}"


class AlphaDropout(Module):
    r"""Alpha dropout (Klambauer et al., 2017), the dropout of SELU networks.

    Dropped units are set to SELU's negative saturation :math:`\alpha' = -\lambda\alpha`
    instead of 0, then an affine map restores zero mean and unit variance:

    .. math:: y = a\,(x \odot m + \alpha' (1 - m)) + b,\quad
              a = ((1 - p)(1 + p \alpha'^2))^{-1/2},\quad b = -a \alpha' p,

    :math:`m_i \sim \mathrm{Bernoulli}(1 - p)`, computed as torch does:
    ``y = x * (m * a) + (m - 1) * (A * a) + A * a * p`` with ``A`` = 1.7580993408473766
    :math:`= \lambda\alpha = -\alpha'`. Identity in evaluation mode and for ``p = 0``;
    ``p = 1`` gives ``x * 0``, as torch (not the saturation value: :math:`a` would be
    infinite). Backward: :math:`\partial x = g \odot a m`.
    """

    ALPHA = 1.7580993408473766  # SELU's scale * alpha, torch's constant

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        self.p = check_probability("p", p, allow_one=True)
        self.generator = numpy_generator(generator)
        self._scale = None

    def forward(self, x):
        x = _as_input(x)
        if not self.training or self.p == 0 or x.size == 0:
            self._scale = np.ones((), dtype=x.dtype)
            return x
        if self.p == 1:
            self._scale = np.zeros((), dtype=x.dtype)
            return x * self._scale
        p, alpha = self.p, self.ALPHA
        a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
        keep = (self.generator.random(x.shape) >= p).astype(x.dtype)
        shift = (keep - 1) * (alpha * a) + alpha * a * p
        self._scale = keep * a
        return x * self._scale + shift

    def backward(self, dout):
        _check_cached(self, "_scale")
        return dout * self._scale

    def extra_repr(self):
        return f"p={self.p}"


class _Normalization(Module):
    """Shared backward of BatchNorm and LayerNorm: both compute
    ``xhat = (x - mean) * invstd`` over some axes, then ``y = xhat * weight + bias``."""

    @staticmethod
    def _normalize_backward(dxhat, xhat, invstd, axes):
        # d/dx of (x - mean) / sqrt(var + eps) with biased batch statistics:
        # dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        mean_d = dxhat.mean(axis=axes, keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=axes, keepdims=True)
        return invstd * (dxhat - mean_d - xhat * mean_dx)


def _one_value_message(shape):
    return ("x must hold more than 1 value per channel to use batch statistics (in "
            "training, or with track_running_stats=False): Expected more than 1 value per "
            f"channel when training, got input size {tuple(shape)}")


class BatchNorm1d(_Normalization):
    r"""Batch normalization (Ioffe & Szegedy, 2015) over a batch ``(N, C)`` or ``(N, C, L)``.

    Training: :math:`\hat x = (x - \mu_B)/\sqrt{\sigma_B^2 + \epsilon}` with the batch
    mean and the *biased* batch variance, :math:`y = \gamma \hat x + \beta`; the running
    statistics move as :math:`r \leftarrow (1 - m) r + m\, s` with the *unbiased* batch
    variance :math:`s^2 \cdot n/(n-1)` for ``running_var``, ``m`` = ``momentum`` (or
    :math:`1/\text{num\_batches\_tracked}`, a cumulative average, when ``momentum`` is
    ``None``). Evaluation: the running statistics normalize (batch statistics if
    ``track_running_stats=False``).

    Parameters and buffers (torch's names): ``weight`` :math:`\gamma` (ones),
    ``bias`` :math:`\beta` (zeros), ``running_mean`` (zeros), ``running_var`` (ones),
    ``num_batches_tracked`` (0), all of shape ``(C,)`` except the last (a scalar).

    Batch statistics of a single value per channel (``N = 1``, ``L = 1``) raise
    ``ValueError``, in training and with ``track_running_stats=False``, as torch does.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        self.num_features = check_number("num_features", num_features, low=1, integer=True)
        self.eps = check_number("eps", eps, low=0.0)
        if momentum is not None:
            check_number("momentum", momentum, low=0.0, high=1.0)
        self.momentum = momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        C = num_features
        self.weight = Parameter(np.ones(C, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(C, dtype=dtype)) if affine else None
        track = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(C, dtype=dtype) if track else None)
        self.register_buffer("running_var", np.ones(C, dtype=dtype) if track else None)
        self.register_buffer("num_batches_tracked",
                             np.zeros((), dtype=np.int64) if track else None)
        self._cache = None

    def _axes(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}) or (N, "
                             f"{self.num_features}, L) for BatchNorm1d({self.num_features}),"
                             f" got {x.shape}")
        return (0,) if x.ndim == 2 else (0, 2)

    def _bshape(self, x):
        return (1, self.num_features) + (1,) * (x.ndim - 2)

    def forward(self, x):
        x = _as_input(x)
        axes, shape = self._axes(x), self._bshape(x)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            n = x.size // self.num_features
            if n == 1:
                raise ValueError(_one_value_message(x.shape))
            if self.eps <= 0:  # torch refuses eps = 0 with batch statistics too
                raise ValueError("eps must be positive to use batch statistics (in training,"
                                 f" or with track_running_stats=False), got {self.eps}")
            if n == 0:  # as torch: nothing to normalize, only the batch is counted
                if self.training and self.track_running_stats:
                    self.num_batches_tracked += 1
                self._cache = None
                return x.copy()
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)  # biased: normalizes the batch
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                     else self.momentum)
                self.running_mean[...] = (1 - m) * self.running_mean + m * mean
                self.running_var[...] = (1 - m) * self.running_var + m * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        invstd = 1.0 / np.sqrt(var.reshape(shape) + self.eps)
        xhat = (x - mean.reshape(shape)) * invstd
        self._cache = (xhat, invstd, axes, use_batch_stats)
        if not self.affine:
            return xhat
        return xhat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)

    def backward(self, dout):
        _check_cached(self, "_cache")
        xhat, invstd, axes, use_batch_stats = self._cache
        dout = np.asarray(dout)
        if dout.shape != xhat.shape:
            raise ValueError(f"dout must have shape {xhat.shape}, got {dout.shape}")
        if self.affine:
            self.weight.accumulate_grad((dout * xhat).sum(axis=axes))
            self.bias.accumulate_grad(dout.sum(axis=axes))
            dxhat = dout * self.weight.data.reshape(self._bshape(xhat))
        else:
            dxhat = dout
        if not use_batch_stats:  # running statistics are constants
            return dxhat * invstd
        return self._normalize_backward(dxhat, xhat, invstd, axes)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class LayerNorm(_Normalization):
    r"""Layer normalization (Ba et al., 2016) over the trailing ``normalized_shape`` dims.

    :math:`y = (x - \mu)/\sqrt{\sigma^2 + \epsilon} \odot \gamma + \beta` with the mean and
    biased variance of each sample over the normalized dims; the same in training and
    evaluation. ``x`` is ``(*, *normalized_shape)``; ``weight`` (ones) and ``bias`` (zeros)
    are ``normalized_shape``.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        normalized_shape = tuple(normalized_shape)
        for i, s in enumerate(normalized_shape):
            check_number(f"normalized_shape[{i}]", s, low=1, integer=True)
        if not normalized_shape:
            raise ValueError("normalized_shape must have at least one dimension")
        self.normalized_shape = normalized_shape
        self.eps = check_number("eps", eps, low=0.0)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        self.weight = Parameter(np.ones(normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(normalized_shape, dtype)) if elementwise_affine else None
        self._cache = None

    def forward(self, x):
        x = _as_input(x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(f"x must have shape (*, {', '.join(map(str, self.normalized_shape))})"
                             f" for LayerNorm({self.normalized_shape}), got {x.shape}")
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        invstd = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean) * invstd
        self._cache = (xhat, invstd, axes)
        if not self.elementwise_affine:
            return xhat
        return xhat * self.weight.data + self.bias.data

    def backward(self, dout):
        _check_cached(self, "_cache")
        xhat, invstd, axes = self._cache
        dout = np.asarray(dout)
        if dout.shape != xhat.shape:
            raise ValueError(f"dout must have shape {xhat.shape}, got {dout.shape}")
        if self.elementwise_affine:
            batch_axes = tuple(range(xhat.ndim - len(axes)))
            self.weight.accumulate_grad((dout * xhat).sum(axis=batch_axes))
            self.bias.accumulate_grad(dout.sum(axis=batch_axes))
            dout = dout * self.weight.data
        return self._normalize_backward(dout, xhat, invstd, axes)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class _Activation(Module):
    """An elementwise activation ``y = f(x)``; backward ``dx = dout * f'(x)``."""

    def __init__(self):
        super().__init__()
        self._x = None

    def _f(self, x):
        raise NotImplementedError

    def _grad(self, x):
        raise NotImplementedError

    def forward(self, x):
        self._x = _as_input(x)
        return self._f(self._x)

    def backward(self, dout):
        _check_cached(self, "_x")
        return dout * self._grad(self._x)


class ReLU(_Activation):
    """:math:`\\max(x, 0)`."""
    _f, _grad = staticmethod(F.relu), staticmethod(F.relu_grad)


class Sigmoid(_Activation):
    """:math:`1/(1 + e^{-x})`."""
    _f, _grad = staticmethod(F.sigmoid), staticmethod(F.sigmoid_grad)


class Tanh(_Activation):
    """:math:`\\tanh(x)`."""
    _f, _grad = staticmethod(F.tanh), staticmethod(F.tanh_grad)


class SELU(_Activation):
    """Scaled ELU (Klambauer et al., 2017)."""
    _f, _grad = staticmethod(F.selu), staticmethod(F.selu_grad)


class Identity(_Activation):
    """:math:`y = x`; ignores any constructor arguments, as torch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def _f(self, x):
        return x

    def _grad(self, x):
        return np.ones((), dtype=x.dtype)


class LeakyReLU(_Activation):
    """:math:`x` if :math:`x > 0` else ``negative_slope * x``."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_number("negative_slope", negative_slope)

    def _f(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def _grad(self, x):
        return F.leaky_relu_grad(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    """:math:`x` if :math:`x > 0` else :math:`\\alpha(e^x - 1)`."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_number("alpha", alpha)

    def _f(self, x):
        return F.elu(x, self.alpha)

    def _grad(self, x):
        return F.elu_grad(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(_Activation):
    """Gaussian error linear unit, exact (``"none"``) or ``"tanh"`` approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = check_choice("approximate", approximate, ("none", "tanh"))

    def _f(self, x):
        return F.gelu(x, self.approximate)

    def _grad(self, x):
        return F.gelu_grad(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Activation):
    r"""Sigmoid linear unit :math:`x\,\sigma(x)` (Elfwing et al., 2018)."""
    _f, _grad = staticmethod(F.silu), staticmethod(F.silu_grad)


class PReLU(Module):
    r"""Parametric ReLU (He et al., 2015, "Delving deep into rectifiers"): :math:`x` if
    :math:`x > 0` else :math:`a_c x`, with a learnable slope.

    Parameters
    ----------
    num_parameters : int
        1 (one slope shared by all channels) or the number of channels ``C``.
    init : float
        Initial value of every slope.
    dtype : numpy dtype, optional
        float64 by default.

    Notes
    -----
    ``weight`` (torch's name) has shape ``(num_parameters,)``; the channel dimension of
    ``x`` is dimension 1 (``x`` of shape ``(N, C, *)``), a 0- or 1-dimensional ``x`` has
    one channel. Backward: :math:`\partial x = g` where :math:`x > 0`, else :math:`a g`;
    :math:`\partial a_c \mathrel{+}= \sum g\,x` over the entries of channel :math:`c` with
    :math:`x \le 0`.
    """

    def __init__(self, num_parameters=1, init=0.25, dtype=None):
        super().__init__()
        self.num_parameters = check_number("num_parameters", num_parameters, low=1,
                                           integer=True)
        self.init = check_number("init", init)
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        self.weight = Parameter(np.full(num_parameters, init, dtype=dtype))
        self._x = None

    def _slope_shape(self, x):
        if self.num_parameters == 1:
            return ()
        if x.ndim < 2 or x.shape[1] != self.num_parameters:
            raise ValueError(f"x must have shape (N, {self.num_parameters}, *) for "
                             f"PReLU(num_parameters={self.num_parameters}), got {x.shape}")
        return (1, self.num_parameters) + (1,) * (x.ndim - 2)

    def forward(self, x):
        x = _as_input(x)
        a = self.weight.data.reshape(self._slope_shape(x))
        self._x = x
        # a * min(x, 0): no 0 * inf = NaN in the branch np.where drops (0 * -inf is NaN,
        # as in torch)
        with np.errstate(invalid="ignore"):
            y = np.where(x > 0, x, a * np.minimum(x, 0))
        return y.astype(np.result_type(x, a), copy=False)

    def backward(self, dout):
        _check_cached(self, "_x")
        x, dout = self._x, np.asarray(dout)
        if dout.shape != x.shape:
            raise ValueError(f"dout must have shape {x.shape}, got {dout.shape}")
        shape = self._slope_shape(x)
        a = self.weight.data.reshape(shape)
        positive = x > 0
        with np.errstate(invalid="ignore"):  # -inf * 0 = NaN, as torch's x * g
            slope_grad = np.where(positive, 0, np.minimum(x, 0) * dout)
        if self.num_parameters == 1:
            self.weight.accumulate_grad(np.atleast_1d(slope_grad.sum()).astype(a.dtype))
        else:
            axes = (0,) + tuple(range(2, x.ndim))
            self.weight.accumulate_grad(slope_grad.sum(axis=axes))
        return np.where(positive, dout, a * dout)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Softplus(_Activation):
    """:math:`\\log(1 + e^{\\beta x})/\\beta`, linear above ``threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = check_number("beta", beta)
        self.threshold = check_number("threshold", threshold)

    def _f(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def _grad(self, x):
        return F.softplus_grad(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Indexable (``seq[0]``, ``seq[1:]`` gives a ``Sequential``), ``len(seq)``, iterable;
    sub-modules are named ``"0"``, ``"1"``, ... as in torch.
    """

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"modules[{i}] must be a Module, got {type(m).__name__}")
            setattr(self, str(i), m)

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

    def backward(self, dout):
        for m in reversed(list(self)):
            dout = m.backward(dout)
        return dout


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
               "elu": ELU, "selu": SELU, "gelu": GELU, "silu": SiLU, "softplus": Softplus,
               "identity": Identity}


def mlp(sizes, activation="relu", batch_norm=False, dropout=0.0, generator=None, dtype=None):
    """The course's standard multilayer perceptron.

    ``sizes = [d_in, h_1, ..., h_k, d_out]`` gives, for each hidden width ``h_i``, a block
    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``, then a final ``Linear`` to
    ``d_out`` (no activation: the loss applies softmax/sigmoid).

    Parameters
    ----------
    sizes : sequence of int
        At least two widths.
    activation : str
        One of ``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"tanh"``, ``"elu"``,
        ``"selu"``, ``"gelu"``, ``"silu"``, ``"softplus"``, ``"identity"``.
    batch_norm : bool
        Insert ``BatchNorm1d`` after each hidden Linear.
    dropout : float
        Drop probability of a ``Dropout`` after each hidden activation (0: none).
    generator : numpy.random.Generator, optional
        Shared by the initial weights and the dropout masks.
    dtype : numpy dtype, optional
        float64 by default.

    Returns
    -------
    Sequential
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least two widths, got {sizes}")
    for i, s in enumerate(sizes):
        check_number(f"sizes[{i}]", s, low=1, integer=True)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_probability("dropout", dropout)
    rng = numpy_generator(generator)
    layers = []
    for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(Linear(d_in, d_out, generator=rng, dtype=dtype))
        if batch_norm:
            layers.append(BatchNorm1d(d_out, dtype=dtype))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout, generator=rng))
    layers.append(Linear(sizes[-2], sizes[-1], generator=rng, dtype=dtype))
    return Sequential(*layers)
