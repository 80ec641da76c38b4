"""Sequential: a stack of layers with Keras's compile / fit / predict / evaluate.

The parameters of a built model live in one contiguous 1-D array
(`model._params`), the gradients in another (`model._grads`); every layer
weight is a view into the first, its gradient a view into the second. One
training step is: zero the gradient buffer, forward every layer, the loss and
its gradient, backward every layer (the layers add into their gradient views),
the regularization gradients, and one optimizer pass over the flat buffers.
No per-sample Python loops: per batch, a handful of NumPy calls per layer.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext

import numpy as np

from . import _blas, _engine, utils
from . import callbacks as callbacks_module
from .layers import InputLayer, Layer
from .layers import deserialize as deserialize_layer
from .layers import serialize as serialize_layer
from .layers.base import checked_weight, unique_name
from .layers.bidirectional import Bidirectional
from .layers.embedding import Embedding

__all__ = ["Sequential", "load_model"]


# --------------------------------------------------------------- validation


def _as_array(value, arg_name):
    """A numeric ndarray from `value`, or a clear TypeError/ValueError."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], np.ndarray):
        value = value[0]  # Keras accepts [x] for a single-input model
    if isinstance(value, dict):
        raise TypeError(
            f"Expected {arg_name} to be a NumPy array (Sequential has one input and one output). "
            f"Received: {arg_name} of type dict"
        )
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise TypeError(
            f"Expected {arg_name} to be a numeric array. Received: {arg_name} that NumPy cannot "
            f"convert ({e})"
        ) from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(
            f"Expected {arg_name} to be a numeric array. Received: {arg_name} with "
            f"dtype={arr.dtype}"
        )
    if arr.ndim == 0:
        raise ValueError(
            f"Expected {arg_name} to have a batch axis. Received: {arg_name}.shape=() "
            f"(a scalar)"
        )
    return arr


def _check_finite(arr, arg_name):
    if arr is None or arr.dtype.kind != "f":
        return
    if not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        first = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"Expected {arg_name} to hold only finite values (training on NaN/Inf gives NaN "
            f"weights). Received: {arg_name} with {n_nan} NaN and {n_inf} infinite values, the "
            f"first at index {tuple(int(i) for i in first)}"
        )


def _check_positive_int(value, arg_name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"Expected {arg_name} to be a positive int. Received: {arg_name}={value!r}"
        )
    return int(value)


def _verbose_level(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"Expected verbose in ('auto', 0, 1, 2). Received: verbose={verbose!r}")
    return int(verbose)


def _mask_weights(mask, sample_weight, dtype):
    """Keras's loss weights for a masked output: mask * total / valid, times sample_weight.

    So that the 'sum over batch size' mean of the loss is the mean over valid steps.
    """
    m = mask.astype(dtype)
    valid = m.sum()
    m *= m.size / (valid + 1e-7)
    if sample_weight is None:
        return m
    sw = np.asarray(sample_weight, dtype)
    if sw.ndim < m.ndim:
        sw = sw.reshape(sw.shape + (1,) * (m.ndim - sw.ndim))
    return m * sw



@contextmanager
def _engine_threads():
    """NumPy's BLAS on one thread and the engine's team held awake (see
    Sequential._threads_scope)."""
    _engine._hold_team(1)
    try:
        with _blas.limit_threads(1):
            yield
    finally:
        _engine._hold_team(-1)

class _BatchIterator:
    """Batches of (x, y, sample_weight): views when not shuffled, one gather when shuffled."""

    def __init__(self, arrays, batch_size, shuffle=False):
        self.arrays = arrays
        self.n = len(arrays[0])
        self.batch_size = batch_size
        self.steps = max(1, math.ceil(self.n / batch_size)) if self.n else 0
        self.shuffle = shuffle

    def __iter__(self):
        perm = utils.get_rng().permutation(self.n) if self.shuffle else None
        bs = self.batch_size
        for step in range(self.steps):
            lo, hi = step * bs, min((step + 1) * bs, self.n)
            if perm is None:
                yield step, [None if a is None else a[lo:hi] for a in self.arrays]
            else:
                idx = perm[lo:hi]
                yield step, [None if a is None else a.take(idx, axis=0) for a in self.arrays]


# -------------------------------------------------------------------- model


class Sequential:
    """A linear stack of layers, as Keras's `Sequential`.

    Args:
        layers: optional list of layers (an `Input`/`InputLayer` may come first).
        name: model name (default 'sequential', 'sequential_1', ...).

    Example:

    >>> model = Sequential([
    ...     LSTM(50, input_shape=(20, 10), return_sequences=True),
    ...     Dense(1, activation="linear"),
    ... ])
    >>> model.compile(optimizer="adam", loss="mean_squared_error")
    >>> history = model.fit(x, y, epochs=10, batch_size=32)
    >>> y_pred = model.predict(x_test)
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name if name is not None else unique_name("sequential")
        self.trainable = trainable
        self._layers: list[Layer] = []
        self._input_layer = None
        self.built = False
        self._build_input_shape = None
        self._params = None
        self._grads = None
        self._slots = []
        self._var_slices = []
        self.optimizer = None
        self.loss = None
        self.compiled_loss = None
        self.compiled_metrics = []
        self._compiled_weighted_metrics = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._in_fit = False
        if layers is not None:
            if isinstance(layers, Layer):
                layers = [layers]
            for layer in layers:
                self.add(layer)

    # ----------------------------------------------------------- structure

    def add(self, layer):
        """Append a layer (an `InputLayer` only as the first element).

        Args:
            layer: a Layer.
        """
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(
                    "An Input/InputLayer can only be the first element of a Sequential model. "
                    f"Received: layer={layer.name!r} after {len(self._layers)} layers"
                )
            self._input_layer = layer
            self._maybe_build_from_spec()
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                "Expected an lstm_fast layer (e.g. LSTM, Dense). "
                f"Received: layer={layer!r} of type {type(layer).__name__}"
            )
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"Layer '{layer.name}' has return_state=True and outputs several arrays; a "
                "Sequential model needs one output per layer. Expected return_state=False. "
                "Received: return_state=True"
            )
        if isinstance(layer, Bidirectional) and layer.merge_mode is None:
            raise ValueError(
                f"Bidirectional layer '{layer.name}' with merge_mode=None outputs two arrays; a "
                "Sequential model needs one. Expected merge_mode in ('concat', 'sum', 'mul', "
                "'ave'). Received: merge_mode=None"
            )
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in the model.")
        names = {existing.name for existing in self._layers}
        if layer.name in names:
            raise ValueError(
                f"All layers of a model need unique names. Received: a second layer named "
                f"{layer.name!r}"
            )
        self._layers.append(layer)
        self.built = False
        self._maybe_build_from_spec()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError("There are no layers in the model to pop.")
        layer = self._layers.pop()
        self.built = False
        self._maybe_build_from_spec()
        return layer

    @property
    def layers(self):
        """The layers (without the InputLayer)."""
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer by name or by index."""
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[layer.name for layer in self._layers]}"
        )

    def _input_spec(self):
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        if self._layers and self._layers[0]._batch_input_shape is not None:
            return self._layers[0]._batch_input_shape
        return None

    def _maybe_build_from_spec(self):
        spec = self._input_spec()
        if spec is not None and self._layers:
            self.build(spec)

    @property
    def dtype(self):
        """The float type of the parameters (and of the inputs given to the first layer)."""
        if self._params is not None:
            return self._params.dtype.name
        return self._layers[0].dtype if self._layers else utils.floatx()

    # --------------------------------------------------------------- build

    def build(self, input_shape=None):
        """Build every layer for `input_shape` (batch axis first) and gather the weights
        into one flat parameter buffer (and one gradient buffer).

        Args:
            input_shape: e.g. (None, 20, 10); default: from Input / input_shape.
        """
        if input_shape is None:
            input_shape = self._input_spec()
        if input_shape is None:
            raise ValueError(
                "The model has no input shape to build from. Expected an Input(shape=...) "
                "first, input_shape= on the first layer, a call to build(input_shape), or data "
                "(fit/predict build from it). Received: input_shape=None"
            )
        if not self._layers:
            raise ValueError("The model has no layers. Add layers before building it.")
        shape = (None,) + tuple(input_shape)[1:]
        self._build_input_shape = shape
        for layer in self._layers:
            if layer.built:
                layer._check_input_shape(shape, "inputs")
            else:
                layer._maybe_build(shape)
            shape = layer.compute_output_shape(shape)
        self._output_shape = shape
        self._allocate_buffers()
        self.built = True
        if self.optimizer is not None:
            self._build_optimizer()

    def _allocate_buffers(self):
        slots = [slot for layer in self._layers for slot in layer._weight_slots()]
        dtypes = {getattr(owner, n).dtype for owner, n in slots}
        if len(dtypes) > 1:
            detail = ", ".join(
                f"{layer.name}: {layer.dtype}" for layer in self._layers if layer.weights
            )
            raise ValueError(
                "All layers of a model must have the same dtype (one parameter buffer). "
                f"Received: {detail}"
            )
        dtype = dtypes.pop() if dtypes else np.dtype(self._layers[0].dtype)
        sizes = [getattr(owner, n).size for owner, n in slots]
        total = int(sum(sizes))
        params = np.empty(total, dtype)
        grads = np.zeros(total, dtype)
        offset = 0
        self._var_slices = []
        for (owner, n), size in zip(slots, sizes):
            shape = getattr(owner, n).shape
            owner._bind(
                n,
                params[offset : offset + size].reshape(shape),
                grads[offset : offset + size].reshape(shape),
            )
            self._var_slices.append((offset, size))
            offset += size
        self._slots = slots
        self._params, self._grads = params, grads
        self._reg_slots = [
            (owner, n, owner._weight_regularizers[n])
            for owner, n in slots
            if owner._weight_regularizers.get(n) is not None
        ]

    def _build_optimizer(self):
        names = [f"{owner.name}/{n}" for owner, n in self._slots]
        self.optimizer.build(self._var_slices, self._params.dtype, var_names=names)

    def _ensure_built(self, x_shape=None, arg_name="x"):
        if self.built:
            return
        spec = self._input_spec()
        if spec is None and x_shape is None:
            raise ValueError(
                "This model has not yet been built. Build it by passing input_shape= to the "
                "first layer, starting it with Input(shape=...), calling build(input_shape), or "
                "by calling fit/predict on data."
            )
        if not self._layers:
            raise ValueError("The model has no layers. Add layers before using it.")
        self.build(spec if spec is not None else (None,) + tuple(x_shape[1:]))

    # ------------------------------------------------------------- weights

    @property
    def weights(self):
        """The weight arrays (views into the parameter buffer), in Keras's order."""
        self._ensure_built()
        return [getattr(owner, n) for owner, n in self._slots]

    @property
    def trainable_weights(self):
        return [w for layer in self._layers if layer.trainable for w in layer.weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self._layers if not layer.trainable for w in layer.weights]

    def get_weights(self):
        """Copies of all weights, in Keras's order and layout.

        Returns:
            list of arrays; for LSTM(50) on 10 features then Dense(1):
            [(10, 200), (50, 200), (200,), (50, 1), (1,)].
        """
        return [np.array(w, copy=True) for w in self.weights]

    def set_weights(self, weights):
        """Set all weights from a list of arrays (Keras's order and layout), in place.

        Args:
            weights: list of arrays shaped as `get_weights()`.
        """
        self._ensure_built()
        weights = list(weights)
        if len(weights) != len(self._slots):
            raise ValueError(
                f"Expected a list of {len(self._slots)} weight arrays for model '{self.name}'. "
                f"Received: a list of {len(weights)} arrays"
            )
        values = [checked_weight(owner, n, w) for (owner, n), w in zip(self._slots, weights)]
        for (owner, n), w in zip(self._slots, values):  # all checked first: all or nothing
            getattr(owner, n)[...] = w

    def count_params(self):
        """Number of scalars in all weights."""
        self._ensure_built()
        return int(self._params.size)

    @property
    def input_shape(self):
        self._ensure_built()
        return self._build_input_shape

    @property
    def output_shape(self):
        self._ensure_built()
        return self._output_shape

    # ------------------------------------------------------------- compile

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        metrics=None,
        loss_weights=None,
        weighted_metrics=None,
        run_eagerly=None,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        """Configure the model for training.

        Args:
            optimizer: name ('adam', 'sgd', 'rmsprop', 'adamw', 'adagrad'), an
                Optimizer, or a config dict (default 'rmsprop', as Keras).
            loss: name ('mse', 'mean_squared_error', 'mae', 'huber',
                'binary_crossentropy', 'categorical_crossentropy',
                'sparse_categorical_crossentropy'), a Loss, or a function.
            metrics: list of metric names ('accuracy', 'mae', 'mse'), Metrics or
                functions; they do not use sample weights.
            weighted_metrics: metrics that use `sample_weight`/`class_weight`.
            loss_weights, run_eagerly, steps_per_execution, jit_compile,
                auto_scale_loss: accepted for compatibility, no effect.

        Example:

        >>> model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        """
        from . import losses, optimizers
        from . import metrics as metrics_module

        if loss is None:
            raise ValueError(
                "Expected a loss to compile with, e.g. loss='mse'. Received: loss=None"
            )
        if isinstance(loss, (list, tuple, dict)):
            raise TypeError(
                "Sequential has one output: expected a single loss. "
                f"Received: loss of type {type(loss).__name__}"
            )
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss
        self.compiled_loss = losses.get(loss)

        def metric_list(values, arg_name):
            if values is None:
                return []
            if isinstance(values, dict):
                raise TypeError(
                    f"Sequential has one output: expected {arg_name} to be a list. "
                    f"Received: {arg_name} of type dict"
                )
            if isinstance(values, (str,)) or not isinstance(values, (list, tuple)):
                values = [values]
            return [metrics_module.get(m, loss=self.compiled_loss) for m in values]

        self.compiled_metrics = metric_list(metrics, "metrics")
        self._compiled_weighted_metrics = metric_list(weighted_metrics, "weighted_metrics")
        names = ["loss"] + [m.name for m in self.compiled_metrics + self._compiled_weighted_metrics]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"Expected unique metric names. Received duplicates: {sorted(dupes)}")
        self.compiled = True
        if self.built:
            self._build_optimizer()

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m in self.compiled_metrics + self._compiled_weighted_metrics]

    def _assert_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(
                f"You must compile the model before calling {method}(): call "
                "model.compile(optimizer=..., loss=...) first."
            )

    # ------------------------------------------------------- data checking

    def _prepare_x(self, x, arg_name="x", check_finite=False):
        if x is None:
            raise ValueError(f"Expected {arg_name} to be an array. Received: {arg_name}=None")
        x = _as_array(x, arg_name)
        first = self._layers[0] if self._layers else None
        if first is None:
            raise ValueError("The model has no layers. Add layers before using it.")
        spec = self._build_input_shape if self.built else self._input_spec()
        if spec is not None:
            if x.ndim != len(spec):
                raise ValueError(
                    f"Expected {arg_name} of rank {len(spec)}, shape {spec} (batch first) for "
                    f"model '{self.name}'. Received: {arg_name}.shape={x.shape}"
                )
            if spec[-1] is not None and x.shape[-1] != spec[-1] and len(spec) > 1:
                raise ValueError(
                    f"Expected {arg_name} with {spec[-1]} features on the last axis (the model "
                    f"input shape is {spec}). Received: {arg_name}.shape={x.shape}"
                )
        else:
            first._check_input_shape(x.shape, arg_name)
        if not isinstance(first, Embedding):
            if check_finite:
                _check_finite(x, arg_name)
            x = np.ascontiguousarray(x, dtype=self.dtype)
        return x

    def _prepare_y(self, y, n, x_shape, arg_name="y", check_finite=False):
        if y is None:
            raise ValueError(
                f"Expected target data {arg_name} (an array of {n} samples). "
                f"Received: {arg_name}=None"
            )
        y = _as_array(y, arg_name)
        if len(y) != n:
            raise ValueError(
                f"Expected x and {arg_name} to have the same number of samples (first axis). "
                f"Received: x.shape={x_shape}, {arg_name}.shape={y.shape}"
            )
        out = self._output_shape
        ok_rank = y.ndim in (len(out) - 1, len(out)) or (
            y.ndim == len(out) + 1 and y.shape[-1] == 1
        )
        if not ok_rank or y.ndim == 0:
            raise ValueError(
                f"Expected {arg_name} of rank {len(out)} (or {len(out) - 1}) to match the model "
                f"output shape {out}. Received: {arg_name}.shape={y.shape}"
            )
        if y.ndim == len(out):
            for axis in range(1, y.ndim):
                a, b = y.shape[axis], out[axis]
                if b is not None and a != b and a != 1 and b != 1:
                    raise ValueError(
                        f"Expected {arg_name} compatible with the model output shape {out} "
                        f"(axis {axis}: {b}). Received: {arg_name}.shape={y.shape}"
                    )
        if check_finite:
            _check_finite(y, arg_name)
        if y.dtype.kind == "f" or y.dtype.kind == "b":
            y = np.ascontiguousarray(y, dtype=self.dtype)
        return y

    def _prepare_sample_weight(self, sw, n, arg_name="sample_weight"):
        if sw is None:
            return None
        sw = _as_array(sw, arg_name)
        if len(sw) != n or sw.ndim > 2:
            raise ValueError(
                f"Expected {arg_name} of shape ({n},) or ({n}, T), one weight per sample. "
                f"Received: {arg_name}.shape={sw.shape}"
            )
        _check_finite(sw, arg_name)
        return np.ascontiguousarray(sw, dtype=self.dtype)

    def _class_weights(self, class_weight, y, sw):
        if class_weight is None:
            return sw
        if not isinstance(class_weight, dict):
            raise TypeError(
                f"Expected class_weight to be a dict {{class index: weight}}. "
                f"Received: class_weight of type {type(class_weight).__name__}"
            )
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            labels = np.rint(y.reshape(-1)).astype(np.int64)
        elif y.ndim == 2:
            labels = y.argmax(axis=1)
        else:
            raise ValueError(
                "class_weight is only supported for targets of rank 1 or 2 (one label per "
                f"sample). Received: y.shape={y.shape}"
            )
        top = max(int(labels.max(initial=0)), max(int(k) for k in class_weight) if class_weight
                  else 0)
        table = np.ones(top + 1, self.dtype)
        for k, v in class_weight.items():
            table[int(k)] = v
        cw = table[labels]
        return cw if sw is None else sw * cw.reshape((-1,) + (1,) * (sw.ndim - 1))

    # ---------------------------------------------------------------- steps

    def _forward(self, x, training):
        mask = None
        for layer in self._layers:
            out_mask = layer.compute_mask(x, mask)
            x = layer.forward(x, mask=mask, training=training)
            mask = out_mask
        return x, mask

    def _backward(self, dy):
        from .layers.lstm import LSTM

        for idx in range(len(self._layers) - 1, -1, -1):
            layer = self._layers[idx]
            if idx == 0 and type(layer) is LSTM:
                layer.backward(dy, need_dx=False)  # no layer below needs dL/dx
                break
            dy = layer.backward(dy)
            if dy is None:
                break

    def _regularization(self, add_gradients):
        total = 0.0
        for owner, n, reg in self._reg_slots:
            w = getattr(owner, n)
            total += reg(w)
            if add_gradients:
                owner._grads[n] += reg.gradient(w)
        return total

    def _loss_weights(self, sample_weight, mask, y_pred):
        if mask is not None and y_pred.ndim == 3 and mask.shape == y_pred.shape[:2]:
            return _mask_weights(mask, sample_weight, y_pred.dtype)
        return sample_weight

    def _loss_and_gradients(self, x, y, sw):
        """Loss of one batch (training mode) with the gradients left in `self._grads`."""
        self._grads.fill(0)
        y_pred, mask = self._forward(x, training=True)
        weights = self._loss_weights(sw, mask, y_pred)
        # The loss applies Keras's rank rule (squeeze_or_expand_to_same_rank): y (B, 1)
        # against y_pred (B, T, 1) squeezes y_pred to (B, T), so every step is trained
        # towards y; dy comes back in y_pred's shape.
        loss, dy = self.compiled_loss.value_and_gradient(y, y_pred, weights)
        self._backward(dy)
        if self._reg_slots:
            loss += self._regularization(add_gradients=True)
        return loss, y_pred, mask

    def compute_gradients(self, x, y, sample_weight=None):
        """The loss of one batch and its gradient for every weight (no update).

        Runs in training mode (dropout active). The model must be compiled.

        Args:
            x, y: one batch.
            sample_weight: optional (B,) weights.

        Returns:
            (loss, [gradient arrays in the order of get_weights()]).

        Example:

        >>> loss, grads = model.compute_gradients(x[:32], y[:32])
        """
        self._assert_compiled("compute_gradients")
        x = self._prepare_x(x, "x", check_finite=True)
        self._ensure_built(x.shape)
        y = self._prepare_y(y, len(x), x.shape, "y", check_finite=True)
        sw = self._prepare_sample_weight(sample_weight, len(x))
        loss = self._loss_and_gradients(x, y, sw)[0]
        return loss, [np.array(owner._grads[n], copy=True) for owner, n in self._slots]

    def _train_step(self, x, y, sw):
        loss, y_pred, mask = self._loss_and_gradients(x, y, sw)
        frozen = [(o, s, self._params[o : o + s].copy()) for o, s in self._frozen]
        self.optimizer.apply(self._params, self._grads)
        for o, s, saved in frozen:
            self._params[o : o + s] = saved
        self._update_metrics(y, y_pred, sw, mask)
        return loss

    def _update_metrics(self, y, y_pred, sw, mask):
        if not (self.compiled_metrics or self._compiled_weighted_metrics):
            return
        mw = None
        if mask is not None and y_pred.ndim == 3 and mask.shape == y_pred.shape[:2]:
            mw = mask.astype(y_pred.dtype)
        for m in self.compiled_metrics:
            m.update_state(y, y_pred, mw)
        if self._compiled_weighted_metrics:
            w = sw if mw is None else (mw if sw is None else _mask_weights(mask, sw, y_pred.dtype))
            for m in self._compiled_weighted_metrics:
                m.update_state(y, y_pred, w)

    def _all_metrics(self):
        return self.compiled_metrics + self._compiled_weighted_metrics

    def _reset_metrics(self):
        for m in self._all_metrics():
            m.reset_state()

    def reset_metrics(self):
        """Reset the state of every compiled metric."""
        self._reset_metrics()

    def _logs(self, loss_mean):
        logs = {"loss": float(loss_mean)}
        for m in self._all_metrics():
            logs[m.name] = float(m.result())
        return logs

    def _prepare_training(self):
        self._frozen = [
            self._var_slices[i]
            for i, (owner, _) in enumerate(self._slots)
            if not self._owner_trainable(owner)
        ]
        if not self.trainable:
            self._frozen = list(self._var_slices)

    def _owner_trainable(self, owner):
        if not owner.trainable:
            return False
        for layer in self._layers:  # a Bidirectional's sublayers follow the wrapper
            if isinstance(layer, Bidirectional) and owner in (
                layer.forward_layer,
                layer.backward_layer,
            ):
                return layer.trainable
        return True

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        """Train the model for a number of epochs.

        Args:
            x: inputs (N, T, I) (or (N, T) ids for an Embedding first layer).
            y: targets, first axis N. When y's rank is one less than the output's
                and the output's last axis is 1, the output is squeezed (Keras).
            batch_size: samples per gradient step (default 32).
            epochs: index of the last epoch (training starts at `initial_epoch`).
            verbose: 'auto' or 1 (progress bar), 2 (one line per epoch), 0 (silent).
            callbacks: list of `lstm_fast.callbacks.Callback`.
            validation_split: fraction of the data, taken from the END before
                shuffling, held out for validation.
            validation_data: (x_val, y_val) or (x_val, y_val, sample_weight_val);
                overrides validation_split.
            shuffle: shuffle the training samples before each epoch.
            class_weight: {class index: weight} multiplying the loss of samples.
            sample_weight: (N,) (or (N, T)) weights of the samples' losses.
            initial_epoch: epoch to start from (to resume training).
            steps_per_epoch: cap on the batches per epoch.
            validation_steps, validation_batch_size: for the validation pass.
            validation_freq: validate every this many epochs.

        Returns:
            A `History`; `history.history` maps 'loss', metric names and
            'val_...' to per-epoch lists.

        Example:

        >>> history = model.fit(x, y, epochs=10, validation_split=0.2)
        >>> history.history["val_loss"][-1]
        """
        self._assert_compiled("fit")
        batch_size = _check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"Expected epochs to be an int >= 0. Received: epochs={epochs!r}")
        if not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(
                "Expected initial_epoch to be an int >= 0. "
                f"Received: initial_epoch={initial_epoch!r}"
            )
        verbose = _verbose_level(verbose)
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise ValueError(
                "Expected validation_split in [0, 1). "
                f"Received: validation_split={validation_split!r}"
            )
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"Expected shuffle to be a bool. Received: shuffle={shuffle!r}")
        steps_per_epoch = _check_positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
        validation_freq = _check_positive_int(validation_freq, "validation_freq")

        x = self._prepare_x(x, "x", check_finite=True)
        if len(x) == 0:
            raise ValueError(f"Expected at least one training sample. Received: x.shape={x.shape}")
        self._ensure_built(x.shape)
        y = self._prepare_y(y, len(x), x.shape, "y", check_finite=True)
        sw = self._prepare_sample_weight(sample_weight, len(x))
        sw = self._class_weights(class_weight, y, sw)

        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "Expected validation_data to be a tuple (x_val, y_val) or (x_val, y_val, "
                    f"val_sample_weight). Received: validation_data of type "
                    f"{type(validation_data).__name__}"
                    + (f" and length {len(validation_data)}" if hasattr(validation_data, "__len__")
                       else "")
                )
            xv = self._prepare_x(validation_data[0], "validation_data[0]", check_finite=True)
            yv = self._prepare_y(
                validation_data[1], len(xv), xv.shape, "validation_data[1]", check_finite=True
            )
            swv = None
            if len(validation_data) == 3:
                swv = self._prepare_sample_weight(
                    validation_data[2], len(xv), "validation_data[2]"
                )
            val = (xv, yv, swv)
        elif validation_split:
            split_at = int(math.floor(len(x) * (1.0 - validation_split)))
            if split_at <= 0 or split_at >= len(x):
                raise ValueError(
                    f"validation_split={validation_split} leaves no training or no validation "
                    f"sample with {len(x)} samples. Expected a split giving both. "
                    f"Received: validation_split={validation_split}"
                )
            val = (x[split_at:], y[split_at:], None if sw is None else sw[split_at:])
            x, y = x[:split_at], y[:split_at]
            sw = None if sw is None else sw[:split_at]

        batches = _BatchIterator([x, y, sw], batch_size, shuffle=bool(shuffle))
        steps = batches.steps if steps_per_epoch is None else min(steps_per_epoch, batches.steps)
        cb_list = list(callbacks or [])
        history = callbacks_module.History()
        extra = [history]
        if verbose:
            extra.append(callbacks_module.ProgbarLogger())
        cbks = callbacks_module.CallbackList(
            cb_list + extra,
            model=self,
            params={"verbose": verbose, "epochs": epochs, "steps": steps},
        )
        want_batch_begin = cbks.wants("on_train_batch_begin")
        self._prepare_training()
        self.stop_training = False
        self._in_fit = True
        self.history = history
        logs = {}
        threads = self._threads_scope()
        threads.__enter__()
        try:
            cbks.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                self._reset_metrics()
                cbks.on_epoch_begin(epoch)
                loss_sum, seen = 0.0, 0
                for step, (xb, yb, swb) in batches:
                    if step >= steps:
                        break
                    if want_batch_begin:
                        cbks.on_train_batch_begin(step)
                    loss = self._train_step(xb, yb, swb)
                    n = len(xb)
                    loss_sum += loss * n
                    seen += n
                    logs = self._logs(loss_sum / seen)
                    cbks.on_train_batch_end(step, logs)
                    if self.stop_training:
                        break
                epoch_logs = dict(logs)
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_arrays(
                        *val,
                        batch_size=validation_batch_size or batch_size,
                        steps=validation_steps,
                        cbks=cbks,
                    )
                    epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
                cbks.on_epoch_end(epoch, epoch_logs)
                logs = epoch_logs
                if self.stop_training:
                    break
            cbks.on_train_end(logs)
        finally:
            threads.__exit__(None, None, None)
            self._in_fit = False
        return history

    def _threads_scope(self):
        """The threads of a model run (fit, evaluate, predict), if it has LSTM layers.

        NumPy's BLAS on one thread: the engine does all of an LSTM layer's
        work on its own threads; NumPy's OpenBLAS (Dense layers, losses,
        optimizers) keeps its worker threads spinning for a while after each
        call, and they take the cores from the engine's: right after a NumPy
        matmul on both cores, a B1 T150 H256 forward took 26 ms instead of
        2.7 ms for its first calls. Measured on 2 cores, 512 samples, batch
        64: LSTM(512) + Dense(512) fit 3.5 -> 2.8 s and predict 0.85-0.91 ->
        0.47-0.68 s with one BLAS thread; LSTM(512) + Dense(4096) unchanged
        within noise.

        The engine's team held awake between calls (_engine._hold_team): the
        Python work of a step (Dense layers, loss, optimizer) outlasts the
        workers' idle spin, and an engine call below ~30 MFLOP that finds
        them asleep runs alone. Seed model (B32 T20 H50), ms per fit step in
        one process, alternating: 3.38 -> 1.77 (both cores busy only
        inside the engine's calls and 2 ms after each).

        Both restored afterwards.
        """
        from .layers.bidirectional import Bidirectional
        from .layers.lstm import LSTM

        if any(isinstance(layer, (LSTM, Bidirectional)) for layer in self._layers):
            return _engine_threads()
        return nullcontext()

    # ------------------------------------------------------------- evaluate

    def _evaluate_arrays(self, x, y, sw, batch_size, steps=None, cbks=None):
        with self._threads_scope():
            return self._evaluate_batches(x, y, sw, batch_size, steps, cbks)

    def _evaluate_batches(self, x, y, sw, batch_size, steps, cbks):
        self._reset_metrics()
        batches = _BatchIterator([x, y, sw], batch_size)
        if cbks is not None:
            cbks.on_test_begin()
        loss_sum, seen = 0.0, 0
        logs = {}
        for step, (xb, yb, swb) in batches:
            if steps is not None and step >= steps:
                break
            if cbks is not None:
                cbks.on_test_batch_begin(step)
            y_pred, mask = self._forward(xb, training=False)
            loss = self.compiled_loss(yb, y_pred, self._loss_weights(swb, mask, y_pred))
            self._update_metrics(yb, y_pred, swb, mask)
            loss_sum += loss * len(xb)
            seen += len(xb)
            if cbks is not None:
                logs = self._logs(loss_sum / seen + self._regularization(False))
                cbks.on_test_batch_end(step, logs)
        logs = self._logs(loss_sum / max(seen, 1) + self._regularization(False))
        if cbks is not None:
            cbks.on_test_end(logs)
        return logs

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """The loss (and metrics) of the model on data, in inference mode.

        Args:
            x, y: data and targets (as in `fit`).
            batch_size: default 32.
            verbose: 'auto'/1 (progress bar), 2 (one line), 0.
            sample_weight: optional (N,) weights.
            steps: optional cap on the number of batches.
            callbacks: optional list of callbacks (on_test_* hooks).
            return_dict: return {'loss': ..., metric: ...} instead of a list.

        Returns:
            The loss (a float) when there are no metrics, else [loss, *metrics]
            (or a dict with return_dict=True).

        Example:

        >>> loss, mae = model.evaluate(x_test, y_test)   # compiled with metrics=['mae']
        """
        self._assert_compiled("evaluate")
        batch_size = _check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        verbose = _verbose_level(verbose)
        x = self._prepare_x(x, "x")
        self._ensure_built(x.shape)
        y = self._prepare_y(y, len(x), x.shape, "y")
        sw = self._prepare_sample_weight(sample_weight, len(x))
        n_steps = max(1, math.ceil(len(x) / batch_size))
        if steps is not None:
            n_steps = min(n_steps, steps)
        extra = [callbacks_module.ProgbarLogger()] if verbose else []
        cbks = callbacks_module.CallbackList(
            list(callbacks or []) + extra, model=self, params={"verbose": verbose,
                                                                 "steps": n_steps}
        )
        logs = self._evaluate_arrays(x, y, sw, batch_size, steps, cbks)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # -------------------------------------------------------------- predict

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for `x`, in batches, in inference mode.

        An unbuilt model (no input shape given) is built from `x`, as Keras does.

        NaN and Inf are not checked here (nor in `evaluate` or layer calls): they
        propagate as in the NumPy reference, and only into the samples that
        contain them; every other output row is unchanged. `fit`,
        `train_on_batch` and `compute_gradients` reject NaN/Inf in x, y,
        sample_weight and validation data with a ValueError, before any step.

        Args:
            x: inputs (N, T, I).
            batch_size: default 32.
            verbose: 'auto'/1 (progress bar), 2, 0.
            steps: optional cap on the number of batches.
            callbacks: optional list of callbacks (on_predict_* hooks).

        Returns:
            Array of the outputs, first axis N.

        Example:

        >>> y_pred = model.predict(X_test)   # (200, 20, 1) for the seed model
        """
        batch_size = _check_positive_int(32 if batch_size is None else batch_size, "batch_size")
        verbose = _verbose_level(verbose)
        x = self._prepare_x(x, "x")
        self._ensure_built(x.shape)
        batches = _BatchIterator([x], batch_size)
        n_steps = batches.steps if steps is None else min(steps, batches.steps)
        extra = [callbacks_module.ProgbarLogger()] if verbose else []
        cbks = callbacks_module.CallbackList(
            list(callbacks or []) + extra, model=self, params={"verbose": verbose,
                                                                 "steps": n_steps}
        )
        cbks.on_predict_begin()
        outputs = []
        with self._threads_scope():
            for step, (xb,) in batches:
                if step >= n_steps:
                    break
                cbks.on_predict_batch_begin(step)
                y_pred, _ = self._forward(xb, training=False)
                outputs.append(y_pred)
                cbks.on_predict_batch_end(step, {"outputs": y_pred})
        cbks.on_predict_end()
        if not outputs:
            return np.zeros((0,) + tuple(self._output_shape[1:]), self.dtype)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=0)

    def gate_activations(self, x, layer=None):
        """The gate activations of one LSTM (or Bidirectional) layer of the model for `x`.

        The layers before it run in inference mode (masks propagate), then the
        layer's own `gate_activations` runs on their output.

        Args:
            x: model inputs (B, T, I).
            layer: index, name or instance of the layer (default: the first LSTM
                or Bidirectional layer).

        Returns:
            dict 'i', 'f', 'g', 'o', 'c', 'h', each (B, T, H) (for a Bidirectional
            layer: {'forward': dict, 'backward': dict}).

        Example:

        >>> gates = model.gate_activations(x_test[:4])
        >>> gates["f"].mean(axis=(0, 2))   # forget gate over time
        """
        x = self._prepare_x(x, "x")
        self._ensure_built(x.shape)
        candidates = [lay for lay in self._layers if hasattr(lay, "gate_activations")]
        if layer is None:
            if not candidates:
                raise ValueError("The model has no LSTM or Bidirectional layer to inspect.")
            target = candidates[0]
        elif isinstance(layer, (int, np.integer)):
            target = self._layers[layer]
        elif isinstance(layer, str):
            target = self.get_layer(layer)
        else:
            target = layer
        if target not in candidates:
            raise ValueError(
                "Expected layer to be an LSTM or Bidirectional layer of the model. Received: "
                f"layer={getattr(target, 'name', target)!r}; recurrent layers: "
                f"{[lay.name for lay in candidates]}"
            )
        mask = None
        for lay in self._layers:
            if lay is target:
                return lay.gate_activations(x, mask=mask)
            out_mask = lay.compute_mask(x, mask)
            x = lay.forward(x, mask=mask, training=False)
            mask = out_mask

    def __call__(self, inputs, training=False):
        """Apply the model to a batch (building it on first call); returns the output array."""
        x = self._prepare_x(inputs, "inputs")
        self._ensure_built(x.shape)
        return self._forward(x, training=bool(training))[0]

    # -------------------------------------------------------- on one batch

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        """One gradient step on one batch.

        Args:
            x, y: one batch of data and targets.
            sample_weight, class_weight: as in `fit`.
            reset_metrics: reset the metrics first (else they accumulate).
            return_dict: return a dict of the logs.

        Returns:
            The loss, or [loss, *metrics] (or a dict).

        Example:

        >>> loss = model.train_on_batch(x[:32], y[:32])
        """
        self._assert_compiled("train_on_batch")
        x = self._prepare_x(x, "x", check_finite=True)
        self._ensure_built(x.shape)
        y = self._prepare_y(y, len(x), x.shape, "y", check_finite=True)
        sw = self._prepare_sample_weight(sample_weight, len(x))
        sw = self._class_weights(class_weight, y, sw)
        if reset_metrics:
            self._reset_metrics()
        self._prepare_training()
        logs = self._logs(self._train_step(x, y, sw))
        return self._format_logs(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        """The loss (and metrics) on one batch, without training."""
        self._assert_compiled("test_on_batch")
        x = self._prepare_x(x, "x")
        self._ensure_built(x.shape)
        y = self._prepare_y(y, len(x), x.shape, "y")
        sw = self._prepare_sample_weight(sample_weight, len(x))
        logs = self._evaluate_arrays(x, y, sw, max(len(x), 1))
        return self._format_logs(logs, return_dict)

    def stream(self, batch_size=1, weights_dtype=None):
        """A `lstm_fast.streaming.Stream`: this model fed one time step (`step`)
        or a chunk of steps (`steps`) per call.

        The stream carries every LSTM layer's state between calls and reads the
        weights packed once, so a call costs the kernels' work and validation
        (`predict` packs them again on every call: at batch size 1,
        `stream.reset()` then `stream.steps(x)` is the faster way to run whole
        sequences on fixed weights). It uses the weights as they are now: make
        a new one after training.

        Args:
            batch_size: number of independent sequences advanced together.
            weights_dtype: None, or ``"float16"`` to read half-precision
                copies of the LSTM weights (float32 models; faster at batch
                size 1, the outputs those of the weights rounded to half
                precision; see `lstm_fast.streaming.Stream`).

        Example:
            >>> stream = model.stream()
            >>> for x_t in x[0]:                       # x_t: (I,)
            ...     y_t = stream.step(x_t)             # (1, output features)
            >>> y = stream.steps(x[:1])                # the next T steps: (1, T, outputs)
        """
        from .streaming import Stream

        return Stream(self, batch_size=batch_size, weights_dtype=weights_dtype)

    def predict_on_batch(self, x):
        """The model's outputs for one batch (no batching, no callbacks).

        Example:

        >>> model.predict_on_batch(x[:8]).shape
        """
        x = self._prepare_x(x, "x")
        self._ensure_built(x.shape)
        return self._forward(x, training=False)[0]

    @staticmethod
    def _format_logs(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def reset_states(self):
        """Reset the carried state of every stateful layer."""
        for layer in self._layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()

    # -------------------------------------------------------------- summary

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Print a table of the layers, their output shapes and parameter counts.

        Args:
            line_length: total width (default 65).
            positions: relative or absolute column ends (default [.45, .85, 1.]).
            print_fn: function of one string (default print).

        Example:

        >>> model.summary()
        Model: "sequential"
        ...
        """
        self._ensure_built()
        print_fn = print_fn or print
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        if positions[-1] <= 1:
            positions = [int(line_length * p) for p in positions]
        headers = ["Layer (type)", "Output Shape", "Param #"]

        def row(fields):
            line = ""
            for i, field in enumerate(fields):
                line = (line + " " + str(field))[: positions[i]]
                line += " " * (positions[i] - len(line))
            return line

        lines = [f'Model: "{self.name}"', "_" * line_length, row(headers), "=" * line_length]
        shape = self._build_input_shape
        for i, layer in enumerate(self._layers):
            shape = layer.compute_output_shape(shape)
            n = int(sum(w.size for w in layer.weights))
            lines.append(row([f"{layer.name} ({type(layer).__name__})", str(shape), n]))
            if i < len(self._layers) - 1:
                lines.append("")
        total = self.count_params()
        trainable = int(sum(w.size for w in self.trainable_weights)) if self.trainable else 0
        itemsize = self._params.dtype.itemsize
        lines += [
            "=" * line_length,
            f"Total params: {total:,} ({_bytes(total * itemsize)})",
            f"Trainable params: {trainable:,} ({_bytes(trainable * itemsize)})",
            f"Non-trainable params: {total - trainable:,} "
            f"({_bytes((total - trainable) * itemsize)})",
            "_" * line_length,
        ]
        for line in lines:
            print_fn(line)

    # --------------------------------------------------------------- config

    def get_config(self):
        """The architecture as a JSON-friendly dict (layers' configs, in order)."""
        layers = []
        spec = self._input_spec() or self._build_input_shape
        if self._input_layer is not None:
            layers.append(serialize_layer(self._input_layer))
        layers += [serialize_layer(layer) for layer in self._layers]
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers,
            "build_input_shape": None if spec is None else list(spec),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new model from `get_config()` (weights freshly initialized).

        Args:
            config: the dict of `get_config()`.
            custom_objects: optional {class_name: class} for user layers.
        """
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for layer_config in config["layers"]:
            model.add(deserialize_layer(layer_config, custom_objects))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
        return model

    # --------------------------------------------------------------- saving

    def save(self, filepath, overwrite=True, **kwargs):
        """Save architecture, weights and optimizer state (see `lstm_fast.saving`).

        Example:

        >>> model.save("model.lf"); model2 = lstm_fast.models.load_model("model.lf")
        """
        from . import saving

        return saving.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        """Write the weights (Keras order) to a versioned file, atomically (no pickle).

        Args:
            filepath: destination path.
            overwrite: replace an existing file.

        Example:

        >>> model.save_weights("model.weights.lf"); model.load_weights("model.weights.lf")
        """
        from . import saving

        self._ensure_built()
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Read weights written by `save_weights` (or `save`) into this model."""
        from . import saving

        self._ensure_built()
        saving.load_weights(self, filepath)

    def __repr__(self):
        return f"<Sequential name={self.name}, layers={len(self._layers)}, built={self.built}>"


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024.0
    return f"{n:.2f} GB"


def load_model(filepath, custom_objects=None, compile=True, **kwargs):
    """Load a model written by `Sequential.save` (see `lstm_fast.saving`).

    Args:
        filepath: path of the saved model.
        custom_objects: optional {name: class} for user layers.
        compile: restore the optimizer/loss/metrics too.

    Returns:
        A Sequential model.

    Example:

    >>> model.save("model.keras")
    >>> same = lstm_fast.models.load_model("model.keras")
    """
    from . import saving

    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile, **kwargs)
