"""course_lib.training: fit for both backends, History, EarlyStopping, callbacks."""
import math

import numpy as np
import pytest
import torch

import course_lib.numpy.layers as nl
import course_lib.numpy.losses as nlosses
import course_lib.numpy.optim as noptim
import course_lib.torch.layers as tl
import course_lib.torch.optim as toptim
from course_lib import data, training


@pytest.fixture(scope="module")
def digits():
    X, y = data.load_digits()
    return data.train_val_test_split(X, y, generator=np.random.default_rng(0), stratify=True)


def torch_model(seed=0, sizes=(64, 32, 10)):
    return tl.mlp(list(sizes), generator=torch.Generator().manual_seed(seed),
                  device="cpu", dtype=torch.float32)


def numpy_model(seed=0, sizes=(64, 32, 10)):
    return nl.mlp(list(sizes), generator=np.random.default_rng(seed))


def test_accuracy_both_backends():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    y = np.array([0, 1, 1, 1])
    assert training.accuracy(logits, y) == 0.5
    acc_t = training.accuracy(torch.tensor(logits), torch.tensor(y))
    assert isinstance(acc_t, torch.Tensor) and acc_t.ndim == 0 and float(acc_t) == 0.5
    # binary logits: positive means class 1
    assert training.accuracy(np.array([[0.3], [-2.0], [1.0]]), np.array([1, 0, 0])) == 2 / 3


# ------------------------------------------------------------------- fit reduces loss
def test_fit_torch_learns_digits(digits):
    (Xtr, ytr), (Xv, yv), _ = digits
    model = torch_model()
    opt = toptim.Adam(model.parameters(), lr=1e-2)
    h = training.fit(model, torch.nn.functional.cross_entropy, opt, (Xtr, ytr), (Xv, yv),
                     epochs=6, batch_size=64, generator=torch.Generator().manual_seed(0),
                     metric=training.accuracy)
    assert len(h.train_loss) == len(h.val_loss) == len(h.train_metric) == len(h.val_metric) == 6
    assert h.lr == [1e-2] * 6
    # chance level is ln(10) = 2.30 and 10% accuracy
    assert h.train_loss[-1] < 0.3 and h.val_loss[-1] < 0.35
    assert h.val_metric[-1] > 0.88
    assert h.train_loss[-1] < 0.25 * h.train_loss[0]
    assert model.training


def test_fit_numpy_learns_digits(digits):
    (Xtr, ytr), (Xv, yv), _ = digits
    model = numpy_model()
    opt = noptim.Adam(model.parameters(), lr=1e-2)
    h = training.fit(model, nlosses.CrossEntropyLoss(), opt, (Xtr, ytr), (Xv, yv),
                     epochs=6, batch_size=64, generator=np.random.default_rng(0),
                     metric=training.accuracy)
    assert len(h.train_loss) == len(h.val_loss) == 6
    assert h.train_loss[-1] < 0.3 and h.val_loss[-1] < 0.35
    assert h.val_metric[-1] > 0.88
    assert h.best_epoch == int(np.argmin(h.val_loss))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_losses_are_example_means(digits, backend):
    """With lr = 0 the weights never change, so the epoch's train loss (batch losses
    weighted by batch size) is the loss over the whole training set, and the val loss
    is the loss over the validation set."""
    (Xtr, ytr), (Xv, yv), _ = digits
    if backend == "numpy":
        model, loss_fn = numpy_model(), nlosses.CrossEntropyLoss()
        opt = noptim.SGD(model.parameters(), lr=0.0)
        full = lambda X, y: float(nlosses.cross_entropy(model(X), y))
        rtol, gen = 1e-12, np.random.default_rng(1)
    else:
        model, loss_fn = torch_model(), torch.nn.functional.cross_entropy
        opt = toptim.SGD(model.parameters(), lr=0.0)
        full = lambda X, y: float(torch.nn.functional.cross_entropy(
            model(torch.tensor(X, dtype=torch.float32)), torch.tensor(y)))
        rtol, gen = 1e-5, torch.Generator().manual_seed(1)
    h = training.fit(model, loss_fn, opt, (Xtr, ytr), (Xv, yv), epochs=2, batch_size=50,
                     generator=gen)
    with torch.no_grad():
        assert h.train_loss[0] == pytest.approx(full(Xtr, ytr), rel=rtol)
        assert h.val_loss[1] == pytest.approx(full(Xv, yv), rel=rtol)


def test_fit_is_reproducible_and_history_without_validation(digits):
    (Xtr, ytr), _, _ = digits
    runs = []
    for _ in range(2):
        model = torch_model(seed=3)
        opt = toptim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        runs.append(training.fit(model, torch.nn.functional.cross_entropy, opt, (Xtr, ytr),
                                 epochs=3, generator=torch.Generator().manual_seed(5)))
    assert runs[0].train_loss == runs[1].train_loss
    h = runs[0]
    assert len(h.train_loss) == 3 and h.val_loss == [] and h.train_metric == []
    assert h.as_dict()["train_loss"] == h.train_loss and len(h) == 3
    assert h.best_epoch == int(np.argmin(h.train_loss))


# -------------------------------------------------------------------- early stopping
class Snapshots:
    """Records a copy of the weights at the end of each epoch."""

    def on_train_begin(self, logs):
        self.model, self.states = logs["model"], []

    def on_epoch_end(self, epoch, logs):
        self.states.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_early_stopping_restores_best_weights(digits, backend):
    (Xtr, ytr), (Xv, yv), _ = digits
    Xtr, ytr = Xtr[:300], ytr[:300]
    yv_wrong = (yv + 1) % 10   # learning the true labels makes this val loss rise
    if backend == "torch":
        model, loss_fn = torch_model(), torch.nn.functional.cross_entropy
        opt = toptim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(0)
        snaps = Snapshots()
    else:
        model, loss_fn = numpy_model(), nlosses.CrossEntropyLoss()
        opt = noptim.Adam(model.parameters(), lr=1e-2)
        gen = np.random.default_rng(0)
        snaps = Snapshots()
        snaps.on_epoch_end = lambda epoch, logs: snaps.states.append(
            {k: torch.tensor(v) for k, v in snaps.model.state_dict().items()})
    stopper = training.EarlyStopping(patience=2)
    h = training.fit(model, loss_fn, opt, (Xtr, ytr), (Xv, yv_wrong), epochs=30,
                     generator=gen, callbacks=[snaps], early_stopping=stopper)
    assert len(h.val_loss) < 30, "the rising val loss should have stopped training"
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best == stopper.best_epoch
    assert len(h.val_loss) == best + 2 + 1 and h.stopped_epoch == best + 2
    assert best < len(h.val_loss) - 1
    state = model.state_dict()
    for key, value in snaps.states[best].items():
        np.testing.assert_array_equal(np.asarray(state[key]), value.numpy())
    assert not all(np.array_equal(np.asarray(state[k]), v.numpy())
                   for k, v in snaps.states[-1].items())


def test_early_stopping_rules():
    es = training.EarlyStopping(patience=2, min_delta=0.1, mode="min", monitor="train_loss",
                                restore_best_weights=False)
    es.on_train_begin({"model": None})
    stops = [es.on_epoch_end(e, {"train_loss": v})
             for e, v in enumerate([1.0, 0.95, 0.85, 0.8, 0.79])]
    # 0.95 is no improvement over 1.0 by more than 0.1; 0.85 is; then two epochs without
    assert stops == [False, False, False, False, True]
    assert es.best_epoch == 2 and es.stopped_epoch == 4
    es = training.EarlyStopping(patience=1, mode="max", monitor="val_metric")
    es.on_train_begin({"model": None})
    es.restore_best_weights = False
    assert [es.on_epoch_end(e, {"val_metric": v}) for e, v in enumerate([0.5, 0.6, 0.6])] \
        == [False, False, True]
    with pytest.raises(ValueError, match="mode"):
        training.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="monitor"):
        training.EarlyStopping(monitor="accuracy")


def test_early_stopping_needs_validation(digits):
    (Xtr, ytr), _, _ = digits
    model = torch_model()
    with pytest.raises(ValueError, match="val_data"):
        training.fit(model, torch.nn.functional.cross_entropy,
                     toptim.SGD(model.parameters(), lr=0.1), (Xtr, ytr),
                     early_stopping=training.EarlyStopping())


# ------------------------------------------------------------------------- callbacks
class Recorder:
    def __init__(self, stop_at=None, use_attribute=False):
        self.calls, self.stop_at, self.use_attribute = [], stop_at, use_attribute
        self.stop_training = False

    def on_train_begin(self, logs):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs):
        self.calls.append(f"epoch_begin {epoch}")

    def on_after_backward(self, step, logs):
        assert all(p.grad is not None for p in logs["model"].parameters())
        self.calls.append("after_backward")

    def on_batch_end(self, step, logs):
        self.calls.append("batch_end")

    def on_epoch_end(self, epoch, logs):
        self.calls.append(f"epoch_end {epoch}")
        if epoch == self.stop_at:
            if self.use_attribute:
                self.stop_training = True
            else:
                return True

    def on_train_end(self, logs):
        self.calls.append("train_end")


@pytest.mark.parametrize("use_attribute", [False, True])
def test_callbacks_are_called_in_order_and_can_stop(use_attribute):
    X, y = np.random.default_rng(0).normal(size=(10, 4)), np.arange(10) % 3
    model = numpy_model(sizes=(4, 5, 3))
    rec = Recorder(stop_at=1, use_attribute=use_attribute)
    h = training.fit(model, nlosses.CrossEntropyLoss(), noptim.SGD(model.parameters(), lr=0.1),
                     (X, y), epochs=5, batch_size=4, callbacks=[rec],
                     generator=np.random.default_rng(0))
    epoch = ["after_backward", "batch_end"] * 3
    assert rec.calls == (["train_begin", "epoch_begin 0"] + epoch + ["epoch_end 0", "epoch_begin 1"]
                         + epoch + ["epoch_end 1", "train_end"])
    assert len(h.train_loss) == 2 and h.stopped_epoch == 1


# ------------------------------------------------------------------------- schedulers
class PlateauStandIn:
    """Has step(metrics): fit must hand it the validation loss."""

    def __init__(self):
        self.seen = []

    def step(self, metrics):
        self.seen.append(metrics)


def test_schedulers_step_per_epoch(digits):
    (Xtr, ytr), (Xv, yv), _ = digits
    Xtr, ytr = Xtr[:128], ytr[:128]
    model = torch_model()
    opt = toptim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    h = training.fit(model, torch.nn.functional.cross_entropy, opt, (Xtr, ytr), epochs=5,
                     scheduler=sched, generator=torch.Generator().manual_seed(0))
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-15)
    plateau = PlateauStandIn()
    h = training.fit(model, torch.nn.functional.cross_entropy, opt, (Xtr, ytr), (Xv, yv),
                     epochs=3, scheduler=plateau, generator=torch.Generator().manual_seed(0))
    assert plateau.seen == h.val_loss
    real = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    lr0 = opt.param_groups[0]["lr"]
    h = training.fit(model, torch.nn.functional.cross_entropy, opt, (Xtr, ytr),
                     (Xv, (yv + 1) % 10), epochs=4, scheduler=real,
                     generator=torch.Generator().manual_seed(0))
    assert opt.param_groups[0]["lr"] < lr0


# --------------------------------------------------------------------------- progress
def test_progress_is_quiet_under_pytest(capfd):
    X, y = np.random.default_rng(0).normal(size=(8, 4)), np.arange(8) % 3
    model = numpy_model(sizes=(4, 5, 3))
    opt = noptim.SGD(model.parameters(), lr=0.1)
    training.fit(model, nlosses.CrossEntropyLoss(), opt, (X, y), epochs=2)
    assert capfd.readouterr().err == ""
    training.fit(model, nlosses.CrossEntropyLoss(), opt, (X, y), epochs=2, progress=True)
    assert "epochs" in capfd.readouterr().err


# ----------------------------------------------------------------------- bad arguments
def test_fit_argument_errors():
    X, y = np.zeros((4, 4)), np.zeros(4, dtype=np.int64)
    model = numpy_model(sizes=(4, 3))
    opt = noptim.SGD(model.parameters(), lr=0.1)
    loss = nlosses.CrossEntropyLoss()
    with pytest.raises(ValueError, match="epochs"):
        training.fit(model, loss, opt, (X, y), epochs=0)
    with pytest.raises(TypeError, match="batch_size"):
        training.fit(model, loss, opt, (X, y), batch_size=2.5)
    with pytest.raises(TypeError, match="train_data"):
        training.fit(model, loss, opt, X)
    with pytest.raises(ValueError, match="device"):
        training.fit(model, loss, opt, (X, y), device="cpu")
    with pytest.raises(TypeError, match="loss_fn"):
        training.fit(model, nlosses.cross_entropy, opt, (X, y))
    with pytest.raises(TypeError, match="generator"):
        training.fit(model, loss, opt, (X, y), generator=torch.Generator())


def test_train_step_torch_returns_detached_loss():
    model = torch_model(sizes=(4, 3))
    opt = toptim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1])
    before = model.state_dict()["0.weight"].clone()
    loss, out = training.train_step(model, torch.nn.functional.cross_entropy, opt, x, y)
    assert isinstance(loss, torch.Tensor) and not loss.requires_grad and out.shape == (5, 3)
    assert not torch.equal(before, model.state_dict()["0.weight"])
    assert math.isfinite(float(loss))


# ------------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
def test_fit_on_cuda_without_per_step_syncs(digits):
    (Xtr, ytr), (Xv, yv), _ = digits
    model = torch_model()
    opt = toptim.Adam(model.parameters(), lr=1e-2)
    X, y = data.to_torch(Xtr, ytr, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    # the steps of an epoch: shuffling, indexing, forward, backward, Adam, loss sums
    model.to("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        total = 0.0
        for xb, yb in data.minibatches(X, y, 64, generator=gen):
            loss, _ = training.train_step(model, torch.nn.functional.cross_entropy, opt, xb, yb)
            total = total + loss * len(xb)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    h = training.fit(model, torch.nn.functional.cross_entropy, opt, (Xtr, ytr), (Xv, yv),
                     epochs=4, generator=gen, metric=training.accuracy, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    assert h.val_metric[-1] > 0.9 and len(h.train_loss) == 4


def test_fit_torch_model_accepts_numpy_generator_and_tensors(digits):
    (Xtr, ytr), _, _ = digits
    Xt, yt = data.to_torch(Xtr[:200], ytr[:200], device="cpu")
    losses = []
    for _ in range(2):
        model = torch_model(seed=1)
        h = training.fit(model, torch.nn.functional.cross_entropy,
                         toptim.SGD(model.parameters(), lr=0.1), (Xt, yt), epochs=2,
                         generator=np.random.default_rng(7))
        losses.append(h.train_loss)
    assert losses[0] == losses[1]


# --------------------------------------------------------------- TensorBoard logging
def _read_scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_tensorboard_logger_writes_the_history(digits, backend, tmp_path):
    (Xtr, ytr), (Xv, yv), _ = digits
    if backend == "torch":
        model, loss_fn = torch_model(), torch.nn.functional.cross_entropy
        opt, gen = toptim.SGD(model.parameters(), lr=0.05), torch.Generator().manual_seed(0)
    else:
        model, loss_fn = numpy_model(), nlosses.CrossEntropyLoss()
        opt, gen = noptim.SGD(model.parameters(), lr=0.05), np.random.default_rng(0)
    logger = training.TensorBoardLogger(tmp_path / "run", hparams={"lr": 0.05, "opt": "SGD"},
                                        log_every_n_steps=5)
    h = training.fit(model, loss_fn, opt, (Xtr, ytr), (Xv, yv), epochs=3, batch_size=64,
                     generator=gen, metric=training.accuracy, callbacks=[logger])
    scalars = _read_scalars(tmp_path / "run")
    for key in ("train_loss", "val_loss", "train_metric", "val_metric", "lr"):
        steps, values = zip(*scalars[key])
        assert steps == (0, 1, 2), key
        # TensorBoard stores float32
        np.testing.assert_array_equal(np.float32(values), np.float32(getattr(h, key)), err_msg=key)
    steps_per_epoch = math.ceil(len(Xtr) / 64)
    assert [s for s, _ in scalars["batch_loss"]] == list(range(0, 3 * steps_per_epoch, 5))
    assert scalars["final/val_loss"][0][1] == pytest.approx(h.val_loss[-1], rel=1e-6)


def test_tensorboard_logger_without_validation_or_hparams(tmp_path):
    X, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 3
    model = numpy_model(sizes=(4, 5, 3))
    logger = training.TensorBoardLogger(str(tmp_path / "a"))
    h = training.fit(model, nlosses.CrossEntropyLoss(), noptim.SGD(model.parameters(), lr=0.1),
                     (X, y), epochs=2, batch_size=8, callbacks=[logger],
                     generator=np.random.default_rng(0))
    scalars = _read_scalars(tmp_path / "a")
    assert set(scalars) == {"train_loss", "lr"}  # nothing logged that was not computed
    np.testing.assert_array_equal(np.float32([v for _, v in scalars["train_loss"]]),
                                  np.float32(h.train_loss))


def test_tensorboard_logger_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="log_dir"):
        training.TensorBoardLogger(3)
    with pytest.raises(TypeError, match="hparams"):
        training.TensorBoardLogger(tmp_path, hparams=[("lr", 0.1)])
    with pytest.raises(TypeError, match=r"hparams\['sizes'\]"):
        training.TensorBoardLogger(tmp_path, hparams={"sizes": [64, 10]})
    with pytest.raises(ValueError, match="log_every_n_steps"):
        training.TensorBoardLogger(tmp_path, log_every_n_steps=0)
