"""course_lib.data: bundled and synthetic sets, splits, scaling, minibatches, IDX files."""
import gzip
import struct

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from course_lib import data


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------- bundled sets
def test_load_digits_shapes_range_and_scaling():
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # documented scaling: the raw intensities 0..16 divided by 16
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    assert set(np.unique(y)) == set(range(10))
    X3, _ = data.load_digits(flatten=False, dtype=np.float32)
    assert X3.shape == (1797, 8, 8) and X3.dtype == np.float32
    np.testing.assert_array_equal(X3.reshape(-1, 64), X.astype(np.float32))


@pytest.mark.parametrize("name, n, d, classification", [
    ("iris", 150, 4, True), ("breast_cancer", 569, 30, True),
    ("diabetes", 442, 10, False), ("wine", 178, 13, True)])
def test_load_bundled(name, n, d, classification):
    X, y = data.load_bundled(name)
    assert X.shape == (n, d) and y.shape == (n,)
    assert y.dtype == (np.int64 if classification else np.float64)


def test_load_bundled_rejects_unknown_name():
    with pytest.raises(ValueError, match="name"):
        data.load_bundled("mnist")


# --------------------------------------------------------------------- synthetic sets
def test_make_spirals_follows_its_formula():
    X, y = data.make_spirals(301, n_classes=3, noise=0.3, generator=rng(1))
    assert X.shape == (301, 2) and y.dtype == np.int64
    counts = np.bincount(y)
    np.testing.assert_array_equal(counts, [101, 100, 100])
    # the noise is angular only: radii are exactly linspace(0, 1, n_k)
    for k, n_k in enumerate(counts):
        np.testing.assert_allclose(np.hypot(*X[y == k].T), np.linspace(0, 1, n_k), atol=1e-15)
    X2, y2 = data.make_spirals(301, n_classes=3, noise=0.3, generator=rng(1))
    np.testing.assert_array_equal(X, X2)
    X3, _ = data.make_spirals(301, n_classes=3, noise=0.3, generator=rng(2))
    assert not np.array_equal(X, X3)


def test_make_moons_and_circles_reproducible_and_shaped():
    for make in (data.make_moons, data.make_circles):
        X, y = make(100, noise=0.05, generator=rng(3))
        X2, y2 = make(100, noise=0.05, generator=rng(3))
        X3, _ = make(100, noise=0.05, generator=rng(4))
        assert X.shape == (100, 2) and y.shape == (100,) and set(np.unique(y)) == {0, 1}
        np.testing.assert_array_equal(X, X2)
        np.testing.assert_array_equal(y, y2)
        assert not np.array_equal(X, X3)
    X, y = data.make_circles(200, noise=0.0, factor=0.3, generator=rng(0))
    np.testing.assert_allclose(np.hypot(*X[y == 0].T), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.hypot(*X[y == 1].T), 0.3, atol=1e-12)


def test_make_regression_1d_is_a_noisy_sine():
    X, y = data.make_regression_1d(50, noise=0.0, generator=rng(0))
    assert X.shape == (50, 1) and y.shape == (50, 1)
    assert np.all(np.diff(X[:, 0]) >= 0) and X.min() >= -np.pi and X.max() <= np.pi
    np.testing.assert_array_equal(y, np.sin(X))
    Xn, yn = data.make_regression_1d(2000, noise=0.5, generator=rng(0))
    resid = yn - np.sin(Xn)
    assert abs(resid.std() - 0.5) < 0.05


def test_synthetic_argument_errors():
    with pytest.raises(ValueError, match="noise"):
        data.make_spirals(10, noise=-1.0)
    with pytest.raises(TypeError, match="n_samples"):
        data.make_moons(10.5)
    with pytest.raises(TypeError, match="generator"):
        data.make_spirals(10, generator=0)
    with pytest.raises(ValueError, match="factor"):
        data.make_circles(10, factor=1.0)


# ----------------------------------------------------------------------------- splits
def test_split_sizes_disjoint_and_aligned():
    X = np.arange(200).reshape(100, 2)
    y = np.arange(100)
    (Xtr, ytr), (Xv, yv), (Xte, yte) = data.train_val_test_split(
        X, y, val_fraction=0.2, test_fraction=0.1, generator=rng(0))
    assert (len(Xtr), len(Xv), len(Xte)) == (70, 20, 10)
    for Xs, ys in ((Xtr, ytr), (Xv, yv), (Xte, yte)):
        np.testing.assert_array_equal(Xs[:, 0] // 2, ys)      # rows stay with their labels
    ids = np.concatenate([ytr, yv, yte])
    np.testing.assert_array_equal(np.sort(ids), np.arange(100))  # disjoint, complete
    again = data.train_val_test_split(X, y, val_fraction=0.2, test_fraction=0.1,
                                      generator=rng(0))
    np.testing.assert_array_equal(again[1][1], yv)
    other = data.train_val_test_split(X, y, val_fraction=0.2, test_fraction=0.1,
                                      generator=rng(1))
    assert not np.array_equal(other[1][1], yv)


def test_split_stratified_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [100, 40, 60])
    X = np.arange(len(y))[:, None]
    (_, ytr), (Xv, yv), (Xte, yte) = data.train_val_test_split(
        X, y, val_fraction=0.15, test_fraction=0.25, generator=rng(0), stratify=True)
    for c, n_c in enumerate([100, 40, 60]):
        assert np.sum(yv == c) == round(0.15 * n_c)
        assert np.sum(yte == c) == round(0.25 * n_c)
        assert np.sum(ytr == c) == n_c - round(0.15 * n_c) - round(0.25 * n_c)
    np.testing.assert_array_equal(y[Xv[:, 0]], yv)
    assert len(np.intersect1d(Xv, Xte)) == 0


def test_split_argument_errors():
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_test_split(X, y, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="X and y"):
        data.train_val_test_split(X, y[:5])


# ------------------------------------------------------------------------ Standardizer
def test_standardizer_uses_training_statistics_only():
    Xtr = rng(0).normal(3.0, 2.0, size=(80, 4))
    Xval = rng(1).normal(-5.0, 10.0, size=(20, 4))
    s = data.Standardizer().fit(Xtr)
    ref = StandardScaler().fit(Xtr)
    np.testing.assert_allclose(s.transform(Xval), ref.transform(Xval), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.transform(Xval), (Xval - Xtr.mean(0)) / Xtr.std(0), rtol=1e-12)
    Ztr = s.transform(Xtr)
    np.testing.assert_allclose(Ztr.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Ztr.std(0), 1.0, rtol=1e-12)
    # transforming other data leaves the fitted statistics alone
    mean, scale = s.mean_.copy(), s.scale_.copy()
    s.transform(Xval)
    np.testing.assert_array_equal(s.mean_, mean)
    np.testing.assert_array_equal(s.scale_, scale)
    # the validation set is *not* standardized by its own statistics
    assert np.abs(s.transform(Xval).mean(0)).min() > 1.0


def test_standardizer_constant_column_and_inverse():
    X = np.column_stack([np.linspace(0, 1, 10), np.full(10, 7.0)])
    s = data.Standardizer()
    Z = s.fit_transform(X)
    assert np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z[:, 1], 0.0)
    assert s.scale_[1] == 1.0
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-14, atol=1e-14)
    assert s.transform(X.astype(np.float32)).dtype == np.float32


def test_standardizer_errors():
    with pytest.raises(ValueError, match="not fitted"):
        data.Standardizer().transform(np.zeros((2, 2)))
    s = data.Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="X must have shape"):
        s.transform(np.zeros((3, 5)))


# ------------------------------------------------------------------------ minibatches
def test_minibatches_numpy_cover_each_example_once():
    X = np.arange(23)[:, None] * 1.0
    y = np.arange(23)
    batches = list(data.minibatches(X, y, 5, generator=rng(0)))
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(seen), y)
    assert not np.array_equal(seen, y)  # shuffled
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0], yb)
    same = np.concatenate([yb for _, yb in data.minibatches(X, y, 5, generator=rng(0))])
    np.testing.assert_array_equal(seen, same)
    other = np.concatenate([yb for _, yb in data.minibatches(X, y, 5, generator=rng(1))])
    assert not np.array_equal(seen, other)
    dropped = list(data.minibatches(X, y, 5, generator=rng(0), drop_last=True))
    assert [len(b[1]) for b in dropped] == [5, 5, 5, 5]
    ordered = np.concatenate([yb for _, yb in data.minibatches(X, y, 4, shuffle=False)])
    np.testing.assert_array_equal(ordered, y)


def test_minibatches_torch_use_torch_generator():
    X = torch.arange(17, dtype=torch.float32)[:, None]
    y = torch.arange(17)
    run = lambda seed: [yb for _, yb in data.minibatches(
        X, y, 4, generator=torch.Generator().manual_seed(seed))]
    batches = run(0)
    assert all(isinstance(b, torch.Tensor) for b in batches)
    seen = torch.cat(batches)
    assert torch.equal(torch.sort(seen).values, y)
    assert torch.equal(seen, torch.cat(run(0)))
    assert not torch.equal(seen, torch.cat(run(1)))
    # the order is torch.randperm's with the same generator
    assert torch.equal(seen, torch.randperm(17, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(TypeError, match="generator"):
        next(data.minibatches(X, y, 4, generator=rng(0)))


def test_minibatches_errors():
    with pytest.raises(ValueError, match="batch_size"):
        next(data.minibatches(np.zeros(3), np.zeros(3), 0))
    with pytest.raises(ValueError, match="same length"):
        next(data.minibatches(np.zeros(3), np.zeros(4), 2))


# ------------------------------------------------------------------------- IDX files
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("array", [
    np.arange(10, dtype=np.uint8),
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
    np.array([[-5, 70000]], dtype=np.int32),
    np.array([np.pi, -np.e]),
], ids=["u8-1d", "u8-3d", "f32-3d", "i32-2d", "f64-1d"])
def test_idx_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"a.idx{suffix}"
    data.write_idx(path, array)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == (suffix == ".gz")
    back = data.read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_read_idx_matches_the_mnist_layout(tmp_path):
    # an MNIST-style label file and image file built by hand from the format description
    labels = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([7, 2, 1])
    (tmp_path / "labels").write_bytes(labels)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "labels"), [7, 2, 1])
    pixels = bytes(range(12))
    images = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 2, 3) + pixels
    (tmp_path / "images.gz").write_bytes(gzip.compress(images))
    (tmp_path / "images_no_suffix").write_bytes(gzip.compress(images))  # detected by content
    for name in ("images.gz", "images_no_suffix"):
        got = data.read_idx(tmp_path / name)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, np.arange(12).reshape(2, 2, 3))
    floats = bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 2) + struct.pack(">ff", 1.5, -2.0)
    (tmp_path / "floats").write_bytes(floats)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "floats"), [1.5, -2.0])


def test_read_idx_rejects_corrupt_files(tmp_path):
    good = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([1, 2, 3])
    cases = {
        "magic": b"\x01\x02" + good[2:],
        "code": bytes([0, 0, 0x42, 1]) + good[4:],
        "short_header": bytes([0, 0, 0x08, 3]) + struct.pack(">I", 3),
        "short_data": good[:-1],
        "trailing": good + b"\x00",
        "empty": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="IDX"):
            data.read_idx(tmp_path / name)
    (tmp_path / "broken.gz").write_bytes(gzip.compress(good)[:-6])
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(tmp_path / "broken.gz")


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="array"):
        data.write_idx(tmp_path / "x", np.zeros(3, dtype=np.complex64))


# ------------------------------------------------------------------------------ torch
def test_to_torch_dtypes_and_device():
    X = np.ones((4, 3))
    y = np.array([0, 1, 2, 1])
    Xt, yt = data.to_torch(X, y, device="cpu")
    assert Xt.dtype == torch.float32 and yt.dtype == torch.int64
    assert Xt.device.type == "cpu" and Xt.shape == (4, 3)
    X64 = data.to_torch(X, device="cpu", dtype=torch.float64)
    assert X64.dtype == torch.float64
    np.testing.assert_array_equal(X64.numpy(), X)
    with pytest.raises(TypeError, match="dtype"):
        data.to_torch(X, dtype=torch.int32)
