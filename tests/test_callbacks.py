"""Callbacks: hook order, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
LearningRateScheduler, TerminateOnNaN, CSVLogger and the progress bar."""

import csv
import io
import math

import numpy as np
import pytest

from lstm_fast import callbacks, utils
from lstm_fast.layers import LSTM, Dense
from lstm_fast.models import Sequential


def data(n=24):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4, 2)).astype("float32")
    return x, x.sum(axis=(1, 2))[:, None].astype("float32")


def model_():
    utils.set_random_seed(0)
    m = Sequential([LSTM(3, input_shape=(4, 2)), Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    return m


class Inject(callbacks.Callback):
    """Puts a scripted value into the epoch logs (callbacks after it see it)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def test_hooks_are_called_in_keras_order():
    class Hooks(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_train_begin(self, logs=None):
            self.calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            self.calls.append(f"epoch_begin{epoch}")

        def on_train_batch_begin(self, batch, logs=None):
            self.calls.append(f"batch_begin{batch}")

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append(f"batch_end{batch}:{sorted(logs)}")

        def on_test_begin(self, logs=None):
            self.calls.append("test_begin")

        def on_test_end(self, logs=None):
            self.calls.append("test_end")

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append(f"epoch_end{epoch}:{sorted(logs)}")

        def on_train_end(self, logs=None):
            self.calls.append("train_end")

    hooks = Hooks()
    x, y = data(12)
    model_().fit(x, y, batch_size=8, epochs=1, validation_split=0.25, callbacks=[hooks],
                 verbose=0)
    assert hooks.calls == [
        "train_begin", "epoch_begin0",
        "batch_begin0", "batch_end0:['loss']",
        "batch_begin1", "batch_end1:['loss']",
        "test_begin", "test_end",
        "epoch_end0:['loss', 'val_loss']", "train_end",
    ]
    assert hooks.params == {"verbose": 0, "epochs": 1, "steps": 2}


def test_on_batch_end_alias_and_lambda_callback():
    seen = []
    x, y = data(16)
    model_().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[
        callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(("b", b))),
        callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(("e", e))),
    ])
    assert seen == [("b", 0), ("b", 1), ("e", 0), ("b", 0), ("b", 1), ("e", 1)]


def test_early_stopping_patience_and_restore_best_weights():
    m = model_()
    snapshots = {}
    keep = callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snapshots.__setitem__(e, m.get_weights())
    )
    stop = callbacks.EarlyStopping(monitor="val_fake", patience=2, restore_best_weights=True)
    x, y = data()
    h = m.fit(x, y, epochs=10, verbose=0,
              callbacks=[Inject("val_fake", [3.0, 2.0, 2.5, 2.6, 2.7, 1.0, 0, 0, 0, 0]), keep,
                         stop])
    # Keras: improvement at epochs 0 and 1, then wait reaches 2 at epoch 3
    assert h.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    for a, b in zip(m.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_mode_min_delta_and_baseline():
    stop = callbacks.EarlyStopping(monitor="val_accuracy", min_delta=0.1, patience=1)
    assert stop.mode == "max"
    m = model_()
    x, y = data()
    h = m.fit(x, y, epochs=5, verbose=0, callbacks=[
        Inject("val_accuracy", [0.5, 0.55, 0.9, 0.95, 0.96]), stop])
    assert h.epoch == [0, 1]  # +0.05 is not an improvement of min_delta 0.1
    # Keras 3: an improvement that does not beat the baseline does not reset the wait
    series = [1, 0.9, 0.95, 0.95, 0.95]
    runs = {}
    for baseline in (None, 0.1):
        stop = callbacks.EarlyStopping(monitor="loss", baseline=baseline, patience=2)
        h = model_().fit(x, y, epochs=5, verbose=0, callbacks=[Inject("loss", series), stop])
        runs[baseline] = h.epoch
    assert runs == {None: [0, 1, 2, 3], 0.1: [0, 1, 2]}


def test_reduce_lr_on_plateau_follows_keras_rules():
    m = model_()
    m.optimizer.learning_rate = 1.0
    lrs = []
    cb = callbacks.ReduceLROnPlateau(monitor="val_fake", factor=0.5, patience=2, cooldown=1,
                                     min_lr=0.2)
    record = callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: lrs.append(m.optimizer.learning_rate))
    x, y = data()
    h = m.fit(x, y, epochs=8, verbose=0, callbacks=[
        Inject("val_fake", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), cb, record])
    # Keras's order: the cooldown counter is decremented before the wait is counted, so
    # epoch 1: wait 1; 2: wait 2 -> 0.5, cooldown 1; 3: cooldown ends, wait 1;
    # 4: wait 2 -> 0.25; 5: wait 1; 6: wait 2 -> max(0.125, min_lr) = 0.2; 7: wait 1
    np.testing.assert_allclose(lrs, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2])
    assert h.history["learning_rate"][0] == 1.0
    with pytest.raises(ValueError, match="factor"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_learning_rate_scheduler():
    m = model_()
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    rec = callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(m.optimizer.learning_rate))
    x, y = data()
    h = m.fit(x, y, epochs=3, verbose=0, callbacks=[sched, rec])
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.1 / 3])
    np.testing.assert_allclose(h.history["learning_rate"], [0.1, 0.05, 0.1 / 3])
    m.fit(x, y, epochs=1, verbose=0,
          callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.07)])
    assert m.optimizer.learning_rate == pytest.approx(0.07)


def test_terminate_on_nan_stops_after_the_batch():
    class PoisonLoss(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                logs["loss"] = math.nan

    batches = []
    x, y = data(40)
    h = model_().fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[
        PoisonLoss(), callbacks.TerminateOnNaN(),
        callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))])
    assert batches == [0, 1] and h.epoch == [0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_with_a_diverging_model():
    m = model_()
    m.optimizer.learning_rate = 1e30
    x, y = data(64)
    h = m.fit(x * 1e3, y * 1e6, batch_size=8, epochs=5, verbose=0,
              callbacks=[callbacks.TerminateOnNaN()])
    assert len(h.epoch) == 1 and not math.isfinite(h.history["loss"][0])


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    x, y = data()
    m = model_()
    h = m.fit(x, y, epochs=3, validation_split=0.25, verbose=0,
              callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["epoch", "loss", "val_loss"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], h.history["loss"], rtol=1e-12)
    m.fit(x, y, epochs=1, verbose=0, validation_split=0.25,
          callbacks=[callbacks.CSVLogger(path, append=True)])
    assert len(list(csv.DictReader(open(path)))) == 4


def test_model_checkpoint_weights_best_only(tmp_path):
    m = model_()
    saved = {}
    keep = callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: saved.__setitem__(e, m.get_weights()))
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}.npz"), monitor="val_fake",
                                     save_best_only=True, save_weights_only=True)
    x, y = data()
    m.fit(x, y, epochs=4, verbose=0, callbacks=[Inject("val_fake", [3, 1, 2, 0.5]), keep, ckpt])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["w-01.npz", "w-02.npz", "w-04.npz"]
    other = model_()
    other.load_weights(tmp_path / "w-02.npz")
    for a, b in zip(other.get_weights(), saved[1]):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_every_n_batches_and_bad_key(tmp_path):
    x, y = data(32)
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "b{batch}.npz"), save_freq=3,
                                     save_weights_only=True)
    model_().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b2.npz", "b3.npz"]
    with pytest.raises(KeyError, match="val_loss"):
        model_().fit(x, y, epochs=1, verbose=0, callbacks=[
            callbacks.ModelCheckpoint(str(tmp_path / "{val_loss}.npz"), save_weights_only=True)])


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progbar_shows_eta_and_final_timing():
    out = FakeTTY()
    bar = callbacks.Progbar(4, width=10, stream=out, interval=0.0)
    bar.update(1, {"loss": 0.5})
    bar.update(4, {"loss": 0.25})
    text = out.getvalue()
    assert "\r1/4 [=>........] - ETA: 0s" in text and "loss: 0.5000" in text
    final = text.rsplit("\r", 1)[1]
    assert final.startswith("4/4 [==========] - ") and "/step - loss: 0.2500" in final
    assert final.endswith("\n")
    plain = io.StringIO()  # not a terminal: only the final line
    bar = callbacks.Progbar(4, stream=plain)
    bar.update(1, {"loss": 0.5})
    assert plain.getvalue() == ""
    bar.update(4, {"loss": 1e-5})
    assert plain.getvalue().startswith("4/4 [") and "loss: 1.0000e-05" in plain.getvalue()


def test_bad_callback():
    x, y = data()
    with pytest.raises(TypeError, match="Callback"):
        model_().fit(x, y, verbose=0, callbacks=[print])


def test_model_checkpoint_whole_model(tmp_path):
    from lstm_fast.models import load_model

    m = model_()
    x, y = data()
    path = tmp_path / "model.keras"
    m.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ModelCheckpoint(path, monitor="loss")])
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
