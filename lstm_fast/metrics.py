"""Stateful metrics with Keras 3's definitions.

A metric accumulates over batches (``update_state``) and reports one float
(``result``). The mean metrics (accuracies, mae, mse, crossentropies) follow
Keras's ``Mean``: each batch contributes its per-sample values (reduced to one
value per sample by a mean over the trailing axes), weighted by
``sample_weight``; the result is ``sum(weights * values) / sum(weights)``.

``'accuracy'`` / ``'acc'`` resolve to binary, sparse categorical or categorical
accuracy by the shapes of the first batch, as Keras 3 does: binary when
``y_pred``'s last axis is 1; sparse categorical when ``y_true`` has a lower rank
than ``y_pred`` or a last axis of 1; categorical otherwise.
"""

from __future__ import annotations

import numpy as np

from . import losses as losses_module

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "Mean",
    "MeanAbsoluteError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "sparse_categorical_accuracy",
]

_squeeze_or_expand = losses_module.squeeze_or_expand_to_same_rank


# ------------------------------------------------------------- functions


def accuracy(y_true, y_pred):
    """Per-sample fraction of elements where ``y_pred == y_true`` exactly."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
    return np.mean(np.equal(y_true, y_pred), axis=-1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample fraction of elements where ``(y_pred > threshold) == y_true``."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
    predicted = (y_pred > threshold).astype(y_true.dtype)
    return np.mean(np.equal(y_true, predicted), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true, -1) == argmax(y_pred, -1)``, else 0.0 (per sample)."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    return np.equal(np.argmax(y_true, axis=-1), np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label ``y_true`` equals ``argmax(y_pred, -1)``, else 0.0."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    shape = y_true.shape
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    matches = np.equal(y_true, np.argmax(y_pred, axis=-1)).astype(np.float64)
    return matches.reshape(shape) if matches.size == int(np.prod(shape)) else matches


# --------------------------------------------------------------- classes


class Metric:
    """Base class of stateful metrics.

    Subclasses implement ``update_state``, ``result`` and ``reset_state``.
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.dtype = dtype

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Update the state with one batch and return the result."""
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _samplewise(values, sample_weight):
    """Keras's reduction of per-element values to per-sample values and weights."""
    values = np.asarray(values, dtype=np.float64)
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        values, w = _squeeze_or_expand(values, w)
        if values.ndim > w.ndim:
            values = np.mean(values, axis=tuple(range(w.ndim, values.ndim)))
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError:
            raise ValueError(
                "Expected sample_weight broadcastable to the metric values. Received: "
                f"sample_weight.shape={np.shape(sample_weight)}, values.shape={values.shape}"
            ) from None
        values = values * w
        if w.ndim > 1:
            w = np.mean(w, axis=tuple(range(1, w.ndim)))
    else:
        w = None
    if values.ndim > 1:
        values = np.mean(values, axis=tuple(range(1, values.ndim)))
    return values, w


class Mean(Metric):
    """The (weighted) mean of the values given to ``update_state(values, sample_weight)``."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        values, w = _samplewise(values, sample_weight)
        self.total += float(np.sum(values))
        if w is not None:
            self.count += float(np.sum(w))
        else:
            self.count += values.shape[0] if values.ndim >= 1 else 1

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)`` over all samples seen.

    Args:
        fn: a function returning per-sample values.
        name: the metric's name.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or fn.__name__, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, **self._fn_kwargs}


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches binary labels.

    Args:
        threshold: Defaults to 0.5.
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of ``y_pred`` matches the argmax of one-hot labels."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of ``y_pred`` matches integer labels."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class MeanSquaredError(MeanMetricWrapper):
    """The mean squared error over all samples seen."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(losses_module.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean absolute error over all samples seen."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(losses_module.mean_absolute_error, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """The square root of the mean squared error over all elements seen."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_true = np.asarray(y_true, dtype=np.float64)
        y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
        super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return float(np.sqrt(super().result()))


class BinaryCrossentropy(MeanMetricWrapper):
    """The mean binary crossentropy over all samples seen."""

    def __init__(
        self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0.0
    ):
        super().__init__(
            losses_module.binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class CategoricalCrossentropy(MeanMetricWrapper):
    """The mean categorical crossentropy over all samples seen."""

    def __init__(
        self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0.0
    ):
        super().__init__(
            losses_module.categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """The mean sparse categorical crossentropy over all samples seen."""

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False):
        super().__init__(
            losses_module.sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
        )


def _is_binary_or_sparse_categorical(y_true, y_pred):
    y_true_shape, y_pred_shape = np.shape(y_true), np.shape(y_pred)
    is_binary = y_pred_shape[-1] == 1
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (
        y_true_shape[-1] == 1 and y_pred_shape[-1] > 1
    )
    return is_binary, is_sparse


class AutoAccuracy(Metric):
    """``'accuracy'``: binary, sparse categorical or categorical accuracy, chosen by
    the shapes of the first batch (Keras 3's rule).
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.resolved = None

    def _resolve(self, y_true, y_pred):
        is_binary, is_sparse = _is_binary_or_sparse_categorical(y_true, y_pred)
        if is_binary:
            return BinaryAccuracy(name=self.name)
        if is_sparse:
            return SparseCategoricalAccuracy(name=self.name)
        return CategoricalAccuracy(name=self.name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.resolved is None:
            self.resolved = self._resolve(y_true, y_pred)
        self.resolved.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self):
        return self.resolved.result() if self.resolved is not None else 0.0

    def reset_state(self):
        if self.resolved is not None:
            self.resolved.reset_state()


_CLASSES = {
    cls.__name__: cls
    for cls in (
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        RootMeanSquaredError,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        Mean,
    )
}

# lower-case name -> class; the metric is named with the identifier as given
_NAMES = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "rmse": RootMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_CLASS_NAMES = {name.lower(): cls for name, cls in _CLASSES.items()}

_FUNCTIONS = {
    accuracy: Accuracy,
    binary_accuracy: BinaryAccuracy,
    categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy,
    losses_module.mean_squared_error: MeanSquaredError,
    losses_module.mean_absolute_error: MeanAbsoluteError,
}

_CHOICES = ", ".join(repr(n) for n in ["accuracy", "acc", *sorted(_NAMES), *sorted(_CLASSES)])


def get(identifier, loss=None):
    """Retrieve a metric.

    Args:
        identifier: 'accuracy' / 'acc' (resolved by shapes at the first update,
            as Keras 3), a metric name ('mae', 'mean_squared_error',
            'binary_accuracy', ...) or class name ('MeanSquaredError'), a
            `Metric` instance (returned as is), or a function
            ``fn(y_true, y_pred) -> per-sample values`` (wrapped in a mean).
        loss: the compiled loss. Keras 3 resolves 'accuracy' by shapes only, and
            so do we; the argument is accepted for callers that have it.

    Returns:
        A `Metric`. A metric given by a string is named by that string
        (``'mae'`` gives a metric named ``'mae'``), as Keras's `compile` names them.
    """
    del loss  # 'accuracy' is resolved by shapes, as Keras 3
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            return AutoAccuracy(name=identifier)
        if key in _NAMES:
            return _NAMES[key](name=identifier)
        if key in _CLASS_NAMES:
            return _CLASS_NAMES[key](name=identifier)
        raise ValueError(f"Unknown metric: metric={identifier!r}. Expected one of {_CHOICES}.")
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _CLASSES.get(identifier["class_name"])
        if cls is None:
            raise ValueError(
                f"Unknown metric class: {identifier['class_name']!r}. "
                f"Expected one of {sorted(_CLASSES)}."
            )
        return cls.from_config(dict(identifier.get("config") or {}))
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        cls = _FUNCTIONS.get(identifier)
        if cls is not None:
            return cls(name=identifier.__name__)
        return MeanMetricWrapper(identifier)
    raise ValueError(
        f"Could not interpret metric identifier. Expected one of {_CHOICES}, a Metric or a "
        f"function. Received: metric={identifier!r}"
    )
