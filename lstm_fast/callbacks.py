"""Callbacks: hooks called by `fit`, `evaluate` and `predict` (Keras's names).

A callback subclasses `Callback` and overrides any of: on_train_begin/end,
on_epoch_begin/end, on_train_batch_begin/end (alias on_batch_begin/end),
on_test_begin/end, on_test_batch_begin/end, on_predict_begin/end,
on_predict_batch_begin/end. `self.model` is the model, `self.params` holds
{'verbose', 'epochs', 'steps'}. Setting `self.model.stop_training = True`
stops `fit` after the current batch.

Example:

>>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")
>>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
>>> stop = lstm_fast.callbacks.EarlyStopping(monitor="loss", patience=3)
>>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[stop])
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings

import numpy as np

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "Progbar",
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "TerminateOnNaN",
    "CSVLogger",
    "LambdaCallback",
]


class Callback:
    """Base class of callbacks: every hook does nothing.

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> class PrintKeys(lstm_fast.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, sorted(logs))
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[PrintKeys()])
    0 ['loss']
    1 ['loss']
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        """Give the callback the model it observes (done by fit/evaluate/predict)."""
        self.model = model

    def set_params(self, params):
        """Give the callback the run's parameters: {'verbose', 'epochs', 'steps'}."""
        self.params = params

    def on_train_begin(self, logs=None):
        """Called once at the start of `fit`."""
        pass

    def on_train_end(self, logs=None):
        """Called once at the end of `fit`."""
        pass

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of every epoch (epoch index from 0)."""
        pass

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of every epoch with its logs (validation included); may add keys."""
        pass

    def on_batch_begin(self, batch, logs=None):
        """Alias of on_train_batch_begin (Keras 2 name)."""
        pass

    def on_batch_end(self, batch, logs=None):
        """Alias of on_train_batch_end (Keras 2 name)."""
        pass

    def on_train_batch_begin(self, batch, logs=None):
        """Called before every training batch."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after every training batch with the running logs of the epoch."""
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        """Called at the start of `evaluate` (and of validation in `fit`)."""
        pass

    def on_test_end(self, logs=None):
        """Called at the end of `evaluate` with its logs."""
        pass

    def on_test_batch_begin(self, batch, logs=None):
        """Called before every evaluation batch."""
        pass

    def on_test_batch_end(self, batch, logs=None):
        """Called after every evaluation batch."""
        pass

    def on_predict_begin(self, logs=None):
        """Called at the start of `predict`."""
        pass

    def on_predict_end(self, logs=None):
        """Called at the end of `predict`."""
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before every prediction batch."""
        pass

    def on_predict_batch_end(self, batch, logs=None):
        """Called after every prediction batch (logs['outputs'] holds the batch's outputs)."""
        pass


_BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


def _overrides(cb, hook):
    """Whether `cb` does something in `hook` (so per-batch calls can be skipped)."""
    if not isinstance(cb, Callback):
        return hasattr(cb, hook)
    # on_train_batch_* forward to on_batch_*
    alias = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}
    for name in (hook, alias.get(hook)):
        if name is None:
            continue
        if name in vars(cb) or getattr(type(cb), name) is not getattr(Callback, name):
            return True
    return False


class CallbackList:
    """Calls a hook on every callback; skips batch hooks nobody implements.

    Args:
        callbacks: list of callbacks.
        model: the model given to every callback.
        params: {'verbose', 'epochs', 'steps'}.

    Example:

    >>> history = lstm_fast.callbacks.History()
    >>> cbks = lstm_fast.callbacks.CallbackList([history], params={"epochs": 1})
    >>> cbks.on_epoch_end(0, {"loss": 0.1})
    >>> history.history
    {'loss': [0.1]}
    """

    def __init__(self, callbacks=None, model=None, params=None):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not hasattr(cb, "set_model"):
                raise TypeError(
                    "Expected callbacks to be lstm_fast.callbacks.Callback instances. "
                    f"Received: callback={cb!r}"
                )
            cb.set_model(model)
            cb.set_params(dict(params or {}))
        self._active = {h: [cb for cb in self.callbacks if _overrides(cb, h)] for h in _BATCH_HOOKS}

    def wants(self, hook):
        """Whether any callback implements batch hook `hook`."""
        return bool(self._active.get(hook, self.callbacks))

    def _call(self, hook, *args):
        # as Keras: every hook receives a logs dict ({} when there is nothing to log)
        indexed = hook.startswith("on_epoch") or "batch" in hook
        if len(args) < (2 if indexed else 1) or args[-1] is None:
            args = (args[:1] if indexed else ()) + ({},)
        for cb in self._active.get(hook, self.callbacks):
            getattr(cb, hook)(*args)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        return lambda *args: self._call(hook, *args)


class History(Callback):
    """Records the logs of every epoch: `history.history['loss']` is a list, one per epoch.

    `fit` returns it (and sets `model.history`).

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    >>> sorted(history.history), len(history.history["val_loss"])
    (['loss', 'val_loss'], 3)
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


def _format_value(v):
    if isinstance(v, (float, np.floating)):
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"
    return str(v)


def _format_duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def _format_per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """A Keras-style text progress bar.

    `update(current, values)` redraws (at most every `interval` seconds, and
    only on a terminal) `12/32 [=======>......] - ETA: 3s - loss: 0.1234`; the
    final update prints `32/32 [=====] - 2s 7ms/step - loss: ...` (always).

    Args:
        target: number of steps (None if unknown).
        width: bar width in characters.
        verbose: 1 (bar) or 2 (one final line, no bar).
        interval: minimum seconds between redraws.
        stream: output stream (default sys.stdout).

    Example:

    >>> bar = lstm_fast.callbacks.Progbar(100)
    >>> for i in range(100):
    ...     bar.update(i + 1, {"loss": 0.5})
    100/100 [==============================] - ... - loss: 0.5000
    """

    def __init__(self, target, width=30, verbose=1, interval=0.05, stream=None, unit_name="step"):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stream = stream or sys.stdout
        self.unit_name = unit_name
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._dynamic = bool(getattr(self.stream, "isatty", lambda: False)()) or (
            "ipykernel" in sys.modules
        )
        self._prev_len = 0

    def _line(self, current, values, finalize):
        now = time.perf_counter()
        elapsed = now - self._start
        metrics = "".join(f" - {k}: {_format_value(v)}" for k, v in (values or {}).items())
        if self.target is not None:
            n = len(str(self.target))
            head = f"{current:{n}d}/{self.target}"
        else:
            head = f"{current}"
        if self.verbose == 2:
            per_step = elapsed / max(current, 1)
            return f"{head} - {_format_duration(elapsed)} - {_format_per_step(per_step)}{metrics}"
        bar = ""
        if self.target:
            done = int(self.width * min(current, self.target) / self.target)
            arrow = ">" if done < self.width else ""
            bar = " [" + "=" * max(done - (1 if arrow else 0), 0) + arrow
            bar += "." * (self.width - max(done, 1 if arrow else 0)) + "]"
        if finalize:
            per_step = elapsed / max(current, 1)
            timing = f" - {_format_duration(elapsed)} {_format_per_step(per_step)}"
        else:
            eta = elapsed / max(current, 1) * ((self.target or current) - current)
            timing = f" - ETA: {_format_duration(eta)}"
        return f"{head}{bar}{timing}{metrics}"

    def update(self, current, values=None, finalize=None):
        """Show progress `current` with the metrics `values` (a dict).

        Args:
            current: the number of steps done.
            values: optional dict of metric values to show after the bar.
            finalize: print the final line (default: when ``current``
                reaches ``target``).
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if not self.verbose:
            return
        now = time.perf_counter()
        if not finalize:
            if not self._dynamic or self.verbose == 2 or now - self._last_draw < self.interval:
                return
        self._last_draw = now
        line = self._line(current, values, finalize)
        if self._dynamic:
            pad = max(self._prev_len - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self._prev_len = len(line)
        else:
            self.stream.write(line)
        if finalize:
            self.stream.write("\n")
        self.stream.flush()


class ProgbarLogger(Callback):
    """Prints 'Epoch i/N' and a progress bar (verbose=1) or one line per epoch (verbose=2).

    Added by `fit` / `evaluate` / `predict` when verbose is not 0.

    Args:
        verbose: 1 or 2 (default: the `verbose` of fit).
        stream: output stream (default sys.stdout).

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> logger = lstm_fast.callbacks.ProgbarLogger(verbose=2)   # one line per epoch
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
    Epoch 1/2
    1/1 - ... - loss: ...
    Epoch 2/2
    1/1 - ... - loss: ...
    """

    def __init__(self, verbose=None, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self._bar = None
        self._mode = "train"

    def _v(self):
        return self.verbose if self.verbose is not None else self.params.get("verbose", 1)

    def _out(self):
        return self.stream or sys.stdout

    def on_train_begin(self, logs=None):
        self._mode = "train"

    def on_epoch_begin(self, epoch, logs=None):
        self._mode = "train"
        epochs = self.params.get("epochs")
        if self._v() and epochs is not None:
            self._out().write(f"Epoch {epoch + 1}/{epochs}\n")
        self._bar = Progbar(self.params.get("steps"), verbose=self._v(), stream=self._out())
        self._seen = 0
        self._last_logs = {}

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        self._last_logs = logs or {}
        if self._v() == 1 and self._bar is not None:
            steps = self.params.get("steps")
            if steps is None or self._seen < steps:
                self._bar.update(self._seen, self._last_logs, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.update(max(self._seen, 1), logs, finalize=True)
            self._bar = None

    def on_test_begin(self, logs=None):
        if self.model is not None and getattr(self.model, "_in_fit", False):
            self._test_bar = None  # validation inside fit: no bar of its own
        else:
            self._test_bar = Progbar(
                self.params.get("steps"), verbose=self._v(), stream=self._out()
            )
        self._test_seen = 0

    def on_test_batch_end(self, batch, logs=None):
        self._test_seen = batch + 1
        self._test_logs = logs or {}
        if self._test_bar is not None and self._v() == 1:
            steps = self.params.get("steps")
            if steps is None or self._test_seen < steps:
                self._test_bar.update(self._test_seen, self._test_logs, finalize=False)

    def on_test_end(self, logs=None):
        if self._test_bar is not None:
            self._test_bar.update(max(self._test_seen, 1), logs, finalize=True)
            self._test_bar = None

    def on_predict_begin(self, logs=None):
        self._pred_bar = Progbar(self.params.get("steps"), verbose=self._v(), stream=self._out())
        self._pred_seen = 0

    def on_predict_batch_end(self, batch, logs=None):
        self._pred_seen = batch + 1
        steps = self.params.get("steps")
        if self._v() == 1 and (steps is None or self._pred_seen < steps):
            self._pred_bar.update(self._pred_seen, None, finalize=False)

    def on_predict_end(self, logs=None):
        self._pred_bar.update(max(self._pred_seen, 1), None, finalize=True)


def _monitor_op(mode, monitor, name):
    if mode not in ("auto", "min", "max"):
        raise ValueError(
            f"Expected mode in ('auto', 'min', 'max') for {name}. Received: mode={mode!r}"
        )
    if mode == "auto":
        m = monitor.lower()
        mode = "max" if ("acc" in m or "auc" in m) and "loss" not in m else "min"
    return mode


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving (Keras's rules).

    Args:
        monitor: the log key to watch (default 'val_loss').
        min_delta: a change smaller than this is not an improvement.
        patience: epochs without improvement before stopping.
        verbose: 1 prints a message when stopping / restoring.
        mode: 'auto', 'min' or 'max'.
        baseline: the value to beat (the wait counter is not reset until it is).
        restore_best_weights: at the end of training, restore the weights of
            the best epoch.
        start_from_epoch: epochs to wait before monitoring.

    Example:

    The usual setting watches the validation loss and keeps the best weights:

    >>> stop = lstm_fast.callbacks.EarlyStopping(
    ...     monitor="val_loss", patience=3, restore_best_weights=True)

    Here the learning rate is 0, so the loss cannot improve and training
    stops after the first epoch and ``patience`` more:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer=lstm_fast.optimizers.SGD(learning_rate=0.0), loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> stop = lstm_fast.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=0.01)
    >>> history = model.fit(x, y, epochs=100, verbose=0, callbacks=[stop])
    >>> len(history.history["loss"])
    3
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = _monitor_op(mode, monitor, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.best_weights = None

    def _better(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(
                f"EarlyStopping is conditioned on metric '{self.monitor}', which is not "
                f"available. Available metrics are: {','.join(logs or {})}",
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) every epoch or every `save_freq` batches.

    Args:
        filepath: path, may hold format fields: `"ckpt-{epoch:02d}-{val_loss:.3f}.lf"`.
        monitor: log key used with `save_best_only` (default 'val_loss').
        verbose: 1 prints a message on each save.
        save_best_only: only save when `monitor` improves.
        save_weights_only: `model.save_weights(path)` instead of `model.save(path)`.
        mode: 'auto', 'min' or 'max'.
        save_freq: 'epoch' or an int number of batches.
        initial_value_threshold: the value `monitor` must beat first.

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> ckpt = lstm_fast.callbacks.ModelCheckpoint("best.keras", monitor="loss",
    ...                                           save_best_only=True)
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt])
    >>> best = lstm_fast.load_model("best.keras")
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = _monitor_op(mode, monitor, "ModelCheckpoint")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(
                f"Expected save_freq to be 'epoch' or a positive int. Received: "
                f"save_freq={save_freq!r}"
            )
        self.save_freq = save_freq
        self.best = initial_value_threshold
        self._batches_seen = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._batches_seen += 1
            if self._batches_seen % self.save_freq == 0:
                self._save(self._epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _improved(self, current):
        if self.best is None:
            return True
        return current < self.best if self.mode == "min" else current > self.best

    def _save(self, epoch, batch, logs):
        logs = dict(logs or {})
        try:
            if batch is None:
                path = self.filepath.format(epoch=epoch + 1, **logs)
            else:
                path = self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(
                f"Failed to format this ModelCheckpoint filepath: {self.filepath!r}. "
                f"Reason: the key {e} is not in the logs (available: {sorted(logs)})"
            ) from None
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(
                    f"Can save best model only with {self.monitor} available, skipping.",
                    stacklevel=2,
                )
                return
            if not self._improved(current):
                if self.verbose > 0:
                    print(
                        f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best}"
                    )
                return
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} to "
                    f"{current}, saving model to {path}"
                )
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` stops improving (Keras's rules).

    Args:
        monitor: log key (default 'val_loss').
        factor: new_lr = lr * factor, factor < 1 (default 0.1).
        patience: epochs without improvement before reducing (default 10).
        verbose: 1 prints a message when reducing.
        mode: 'auto', 'min' or 'max'.
        min_delta: threshold of a significant improvement (default 1e-4).
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound of the learning rate.

    Example:

    Here the learning rate is too small for the loss to improve by
    ``min_delta`` (1e-4), so after ``patience`` epochs it is divided by ten,
    at every epoch (``cooldown`` is 0). The logs record the rate each epoch
    ran with:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer=lstm_fast.optimizers.SGD(1e-6), loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> reduce = lstm_fast.callbacks.ReduceLROnPlateau(monitor="loss", patience=1)
    >>> history = model.fit(x, y, epochs=3, verbose=0, callbacks=[reduce])
    >>> history.history["learning_rate"], model.optimizer.learning_rate
    ([1e-06, 1e-06, 1e-07], 1e-08)
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        **kwargs,
    ):
        super().__init__()
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments for ReduceLROnPlateau: {kwargs}")
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received: factor={factor}"
            )
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = _monitor_op(mode, monitor, "ReduceLROnPlateau")
        self.min_delta = float(min_delta)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self):
        self.best = np.inf if self.mode == "min" else -np.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _better(self, a, b):
        return a < b - self.min_delta if self.mode == "min" else a > b + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is "
                f"not available. Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate)
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                            f"to {new_lr}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from `schedule(epoch, lr)`.

    Args:
        schedule: function (epoch index from 0, current lr) -> new lr (or
            (epoch) -> new lr).
        verbose: 1 prints the new rate.

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> halve = lstm_fast.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5**epoch)
    >>> history = model.fit(x, y, epochs=3, verbose=0, callbacks=[halve])
    >>> history.history["learning_rate"]
    [0.01, 0.005, 0.0025]
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:  # a schedule of the epoch only
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, int, np.floating, np.integer)) or not math.isfinite(lr):
            raise ValueError(
                'The output of the "schedule" function should be a finite float. '
                f"Received: lr={lr!r}"
            )
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss of a batch is NaN or infinite.

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> history = model.fit(x, y, verbose=0, callbacks=[lstm_fast.callbacks.TerminateOnNaN()])

    What it does when a batch ends with a NaN loss:

    >>> stop = lstm_fast.callbacks.TerminateOnNaN()
    >>> stop.set_model(model)
    >>> stop.on_batch_end(0, {"loss": float("nan")})
    Batch 0: Invalid loss, terminating training
    >>> model.stop_training
    True
    """

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write the logs of every epoch as a row of a CSV file (columns sorted, as Keras).

    Args:
        filename: path of the CSV file.
        separator: column separator (default ',').
        append: append to an existing file instead of overwriting it.

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> csv_logger = lstm_fast.callbacks.CSVLogger("training.csv")
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[csv_logger])
    >>> with open("training.csv") as f:
    ...     print(f.read())
    epoch,loss
    0,...
    1,...
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        self._append_header = not (
            self.append and os.path.exists(self.filename) and os.path.getsize(self.filename)
        )
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        self._keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(
                self._file, fieldnames=["epoch"] + self._keys, delimiter=self.sep
            )
            if self._append_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self._keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda e, logs: ...)`.

    Args:
        on_epoch_begin, on_epoch_end: f(epoch, logs).
        on_train_batch_begin, on_train_batch_end (or on_batch_begin/end): f(batch, logs).
        on_train_begin, on_train_end: f(logs).

    Example:

    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x, y = np.random.rand(32, 5, 3), np.random.rand(32, 1)
    >>> done = lstm_fast.callbacks.LambdaCallback(
    ...     on_epoch_end=lambda epoch, logs: print(f"epoch {epoch} done"))
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[done])
    epoch 0 done
    epoch 1 done
    """

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"Unknown callback hook. Received: {name}")
            setattr(self, name, fn)
