"""Data for the course: bundled and synthetic data sets, splits, scaling, minibatches.

Everything here works offline: the real data sets are the small ones that ship inside
scikit-learn, the synthetic ones are drawn from a generator you pass in, and MNIST-style
files are read from disk with :func:`read_idx`. Nothing downloads at run time.

Randomness is an argument: ``generator`` is a ``numpy.random.Generator`` (``None`` means
fresh entropy); :func:`minibatches` over torch tensors takes a ``torch.Generator``.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from course_lib.core.validate import check_number, numpy_generator

__all__ = [
    "load_digits", "load_bundled", "make_spirals", "make_moons", "make_circles",
    "make_regression_1d", "train_val_test_split", "Standardizer", "minibatches",
    "read_idx", "write_idx", "to_torch",
]


# ----------------------------------------------------------------------------- helpers


def _sklearn_seed(rng: np.random.Generator) -> int:
    """A ``random_state`` for scikit-learn drawn from ``rng`` (so the call is reproducible
    from the generator's seed and advances it)."""
    return int(rng.integers(0, 2**31 - 1))


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


# ----------------------------------------------------------------------- bundled data
def load_digits(flatten: bool = True, dtype=np.float64):
    """The 8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes).

    The pixel intensities are integers 0..16; they are divided by 16, so ``X`` lies in
    ``[0, 1]``.

    Parameters
    ----------
    flatten : bool
        ``True``: ``X`` has shape ``(N, 64)``; ``False``: ``(N, 8, 8)``.
    dtype : numpy dtype
        Floating dtype of ``X`` (``float64`` by default, ``float32`` for torch).

    Returns
    -------
    X : ndarray, shape (1797, 64) or (1797, 8, 8), values in [0, 1]
    y : ndarray of int64, shape (1797,), labels 0..9

    References
    ----------
    Alpaydin & Kaynak (1998), *Optical Recognition of Handwritten Digits*, UCI ML repository.
    """
    from sklearn.datasets import load_digits as _load

    if not isinstance(flatten, bool):
        raise TypeError(f"flatten must be a bool, got {type(flatten).__name__}")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    bunch = _load()
    X = (bunch.data / 16.0).astype(dtype)
    if not flatten:
        X = X.reshape(-1, 8, 8)
    return X, bunch.target.astype(np.int64)


_BUNDLED = {
    "digits": "load_digits",
    "iris": "load_iris",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "wine": "load_wine",
}


def load_bundled(name: str, dtype=np.float64):
    """A small data set that ships with scikit-learn, unscaled.

    Parameters
    ----------
    name : {"digits", "iris", "breast_cancer", "diabetes", "wine"}
    dtype : numpy dtype
        Floating dtype of ``X``.

    Returns
    -------
    X : ndarray, shape (N, D), the raw features (standardize them with
        :class:`Standardizer` fitted on the training split)
    y : ndarray, shape (N,): ``int64`` class labels, or ``float64`` targets for the
        regression set ``"diabetes"``
    """
    import sklearn.datasets

    if name not in _BUNDLED:
        options = ", ".join(repr(k) for k in _BUNDLED)
        raise ValueError(f"name must be one of {options}, got {name!r}")
    bunch = getattr(sklearn.datasets, _BUNDLED[name])()
    X = np.asarray(bunch.data, dtype=dtype)
    y = np.asarray(bunch.target)
    y = y.astype(np.float64) if name == "diabetes" else y.astype(np.int64)
    return X, y


# --------------------------------------------------------------------- synthetic data
def make_spirals(n_samples: int, n_classes: int = 3, noise: float = 0.2, generator=None):
    """Interleaved spiral arms in 2-D, one arm per class (the CS231n toy problem).

    Arm ``k`` is sampled at radii ``r = t`` for ``t`` evenly spaced in ``[0, 1]`` and
    angles ``theta = 4 t + 2 pi k / K + noise * eps``, ``eps ~ N(0, 1)``; the point is
    ``(r sin theta, r cos theta)``. Not linearly separable: a good test for an MLP.

    Parameters
    ----------
    n_samples : int
        Total number of points, split as evenly as possible between the classes.
    n_classes : int
    noise : float
        Standard deviation of the angular noise (radians).
    generator : numpy.random.Generator or None

    Returns
    -------
    X : ndarray of float64, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,)
    """
    check_number("n_samples", n_samples, low=1, integer=True)
    check_number("n_classes", n_classes, low=1, integer=True)
    check_number("noise", noise, low=0.0)
    rng = numpy_generator(generator)
    counts = [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]
    X, y = [], []
    for k, n_k in enumerate(counts):
        r = np.linspace(0.0, 1.0, n_k)
        theta = 4.0 * r + 2.0 * np.pi * k / n_classes + noise * rng.standard_normal(n_k)
        X.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        y.append(np.full(n_k, k, dtype=np.int64))
    return np.concatenate(X), np.concatenate(y)


def make_moons(n_samples: int, noise: float = 0.1, generator=None):
    """Two interleaving half circles (scikit-learn's ``make_moons``, shuffled).

    The ``random_state`` passed to scikit-learn is drawn from ``generator``.

    Returns
    -------
    X : ndarray of float64, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,), labels 0 and 1
    """
    from sklearn.datasets import make_moons as _moons

    check_number("n_samples", n_samples, low=2, integer=True)
    check_number("noise", noise, low=0.0)
    rng = numpy_generator(generator)
    X, y = _moons(n_samples=n_samples, noise=noise, random_state=_sklearn_seed(rng))
    return X.astype(np.float64), y.astype(np.int64)


def make_circles(n_samples: int, noise: float = 0.1, factor: float = 0.5, generator=None):
    """A small circle inside a large one (scikit-learn's ``make_circles``, shuffled).

    ``factor`` is the ratio of the inner radius to the outer one, in ``(0, 1)``.

    Returns
    -------
    X : ndarray of float64, shape (n_samples, 2)
    y : ndarray of int64, shape (n_samples,): 0 outer circle, 1 inner circle
    """
    from sklearn.datasets import make_circles as _circles

    check_number("n_samples", n_samples, low=2, integer=True)
    check_number("noise", noise, low=0.0)
    check_number("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
    rng = numpy_generator(generator)
    X, y = _circles(n_samples=n_samples, noise=noise, factor=factor,
                    random_state=_sklearn_seed(rng))
    return X.astype(np.float64), y.astype(np.int64)


def make_regression_1d(n_samples: int, noise: float = 0.1, generator=None,
                       low: float = -np.pi, high: float = np.pi):
    """Noisy samples of a sine: ``y = sin(x) + noise * eps``, ``x ~ U(low, high)``,
    ``eps ~ N(0, 1)``.

    Returns
    -------
    X : ndarray of float64, shape (n_samples, 1), sorted by value (handy for plotting)
    y : ndarray of float64, shape (n_samples, 1)
    """
    check_number("n_samples", n_samples, low=1, integer=True)
    check_number("noise", noise, low=0.0)
    check_number("low", low)
    check_number("high", high)
    if not high > low:
        raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
    rng = numpy_generator(generator)
    x = np.sort(rng.uniform(low, high, size=n_samples))
    y = np.sin(x) + noise * rng.standard_normal(n_samples)
    return x[:, None], y[:, None]


# ----------------------------------------------------------------------------- splits
def train_val_test_split(X, y, val_fraction: float = 0.15, test_fraction: float = 0.15,
                         generator=None, stratify: bool = False):
    """Shuffle and split into training, validation and test sets.

    The validation and test sizes are ``round(val_fraction * N)`` and
    ``round(test_fraction * N)``; the training set gets the rest. With ``stratify=True``
    (class labels ``y``), each class is split with these fractions separately (its
    counts rounded, remainders kept in training), so the class proportions are kept.

    Parameters
    ----------
    X : array, shape (N, ...)
    y : array, shape (N, ...)
    val_fraction, test_fraction : float
        In ``[0, 1)``, with ``val_fraction + test_fraction < 1``.
    generator : numpy.random.Generator or None
    stratify : bool

    Returns
    -------
    (X_train, y_train), (X_val, y_val), (X_test, y_test)
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got shapes {X.shape} and {y.shape}")
    check_number("val_fraction", val_fraction, low=0.0, high=1.0, high_open=True)
    check_number("test_fraction", test_fraction, low=0.0, high=1.0, high_open=True)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError("val_fraction + test_fraction must be < 1, got "
                         f"{val_fraction} + {test_fraction}")
    rng = numpy_generator(generator)

    def cut(index):
        index = rng.permutation(index)
        n_val = int(round(val_fraction * len(index)))
        n_test = int(round(test_fraction * len(index)))
        return index[n_val + n_test:], index[:n_val], index[n_val:n_val + n_test]

    if stratify:
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D class labels when stratify=True, got shape {y.shape}")
        parts = [cut(np.flatnonzero(y == c)) for c in np.unique(y)]
        train, val, test = (rng.permutation(np.concatenate([p[i] for p in parts]))
                            for i in range(3))
    else:
        train, val, test = cut(np.arange(len(X)))
    return (X[train], y[train]), (X[val], y[val]), (X[test], y[test])


class Standardizer:
    """Scale features to zero mean and unit variance, with statistics of the training set.

    ``z = (x - mean) / scale`` with ``mean`` and ``scale`` (the population standard
    deviation, ``ddof=0``, as scikit-learn's ``StandardScaler``) computed by :meth:`fit`
    over axis 0. Fit on the training split only and reuse the same statistics for the
    validation and test splits: otherwise information from them leaks into training.

    A column with zero variance (constant on the training set) gets ``scale = 1``, so it
    becomes 0 instead of NaN.

    Attributes
    ----------
    mean_ : ndarray, shape (D,)
    scale_ : ndarray, shape (D,)
    """

    def __init__(self):
        self.mean_ = None
        self.scale_ = None

    def fit(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"X must be a non-empty 2-D array (N, D), got shape {X.shape}")
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0.0, std, 1.0)
        return self

    def _check(self, X):
        if self.mean_ is None:
            raise ValueError("Standardizer is not fitted: call fit(X_train) first")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X must have shape (N, {self.mean_.shape[0]}), got {X.shape}")
        return X

    def transform(self, X):
        """``(X - mean_) / scale_``; keeps a floating dtype of ``X``."""
        X = self._check(X)
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
        return ((X - self.mean_) / self.scale_).astype(dtype, copy=False)

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """``Z * scale_ + mean_``."""
        Z = self._check(Z)
        dtype = Z.dtype if np.issubdtype(Z.dtype, np.floating) else np.float64
        return (Z * self.scale_ + self.mean_).astype(dtype, copy=False)


# ------------------------------------------------------------------------ minibatches
def minibatches(X, y, batch_size: int, generator=None, shuffle: bool = True,
                drop_last: bool = False):
    """Yield ``(xb, yb)`` minibatches that cover the data once (one epoch).

    Works for NumPy arrays (``generator``: ``numpy.random.Generator``) and for torch
    tensors (``generator``: ``torch.Generator`` on the tensors' device; the permutation is
    made with ``torch.randperm`` on that device and the batches are indexed there, so
    nothing is copied to the host).

    Parameters
    ----------
    X, y : arrays or tensors with the same first dimension N
    batch_size : int
    generator : numpy.random.Generator, torch.Generator or None
    shuffle : bool
        ``False`` keeps the order (and uses no randomness).
    drop_last : bool
        Drop the last batch when it has fewer than ``batch_size`` examples.

    Yields
    ------
    xb : shape (B, ...), yb : shape (B, ...), with ``B = batch_size`` except possibly the last
    """
    check_number("batch_size", batch_size, low=1, integer=True)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X and y must have the same length, got {n} and {len(y)}")
    torch_data = _is_torch(X)
    if torch_data != _is_torch(y):
        raise TypeError("X and y must both be NumPy arrays or both torch tensors")
    if not shuffle:
        order = None
    elif torch_data:
        import torch

        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError("generator must be a torch.Generator or None for torch tensors, "
                            f"got {type(generator).__name__}")
        order = torch.randperm(n, generator=generator, device=X.device)
    else:
        order = numpy_generator(generator).permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        if order is None:
            yield X[start:end], y[start:end]
        else:
            idx = order[start:end]
            yield X[idx], y[idx]


# ------------------------------------------------------------------------- IDX files
# IDX (the MNIST format): 2 zero bytes, a dtype code, the number of dimensions, then
# each dimension as a big-endian uint32, then the values, big-endian, C order.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_DTYPES.items()}


def read_idx(path):
    """Read an IDX file (the format of the MNIST files), gzipped or plain.

    Layout: bytes 0-1 are zero, byte 2 is the type code (``0x08`` uint8, ``0x09`` int8,
    ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), byte 3 the number
    of dimensions ``d``, then ``d`` big-endian uint32 sizes, then the data, big-endian,
    in C order. A gzip file is recognized by its magic bytes, not by its name.

    Returns
    -------
    ndarray with the file's shape, in native byte order (``uint8`` for MNIST images
    ``(N, 28, 28)`` and labels ``(N,)``).

    Raises
    ------
    ValueError
        For a corrupt file: bad magic number, unknown type code, truncated header or data,
        or trailing bytes.

    References
    ----------
    LeCun, Cortes & Burges, *The MNIST database*, http://yann.lecun.com/exdb/mnist/
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # a damaged gzip stream
        raise ValueError(f"path {path!r} is not a valid gzipped IDX file: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"path {path!r} is not an IDX file: bad magic number {raw[:4]!r}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"path {path!r} is not an IDX file: unknown type code 0x{code:02X}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"path {path!r}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"path {path!r}: IDX data has {len(raw) - header} bytes, "
                         f"expected {expected} for shape {shape} and dtype {dtype.name}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``).

    ``array`` must have one of the IDX dtypes (uint8, int8, int16, int32, float32,
    float64) and at most 255 dimensions. See :func:`read_idx` for the layout.
    """
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _IDX_CODES:
        raise TypeError(f"array must have dtype uint8, int8, int16, int32, float32 or "
                        f"float64, got {array.dtype}")
    if array.ndim > 255:
        raise ValueError(f"array must have at most 255 dimensions, got {array.ndim}")
    code = _IDX_CODES[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)


# ---------------------------------------------------------------------------- torch
def to_torch(*arrays, device=None, dtype=None):
    """Convert NumPy arrays to torch tensors on ``device``.

    Floating arrays become ``dtype`` (``torch.float32`` when ``None``); integer arrays
    (class labels) become ``torch.int64``, as ``cross_entropy`` expects. ``device``
    ``None`` means ``course_lib.torch.device.default_device()`` when that module exists,
    else the CPU.

    Returns
    -------
    tensor, or a tuple of tensors when several arrays are given
    """
    import torch

    if dtype is None:
        dtype = torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if device is None:
        device = _default_device()
    out = []
    for i, a in enumerate(arrays):
        if _is_torch(a):
            t = a
        else:
            a = np.asarray(a)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"arrays[{i}] must be numeric, got dtype {a.dtype}")
            t = torch.from_numpy(np.ascontiguousarray(a))
        t = t.to(device=device, dtype=dtype if t.is_floating_point() else torch.int64)
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


def _default_device():
    try:
        from course_lib.torch.device import default_device
    except ImportError:
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return default_device()
