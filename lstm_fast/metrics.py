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

Example:

>>> m = lstm_fast.metrics.get("mae")
>>> m.update_state(np.array([[0.0], [1.0]]), np.array([[0.5], [1.0]]))
>>> m.result()
0.25
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
    """The fraction of exact matches in each sample: ``mean(y_pred == y_true, axis=-1)``.

    Args:
        y_true: the labels.
        y_pred: the predicted labels (compared exactly, so not probabilities),
            with the shape of ``y_true`` (a trailing axis of size 1 may differ).

    Returns:
        A float array with one value in [0, 1] per sample (the shape without
        the last axis).

    Example:

    >>> lstm_fast.metrics.accuracy(np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 5]]))
    array([1. , 0.5])
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
    return np.mean(np.equal(y_true, y_pred), axis=-1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """The fraction of correct yes/no predictions in each sample.

    A prediction counts as 1 when it is above ``threshold``, else 0, and is
    compared with the 0/1 label.

    Args:
        y_true: 0/1 labels, with the shape of ``y_pred`` (a trailing axis of
            size 1 may differ).
        y_pred: predicted probabilities.
        threshold: the probability above which a prediction means 1 (default 0.5).

    Returns:
        A float array with one value in [0, 1] per sample (the shape without
        the last axis).

    Example:

    >>> y_true = np.array([[1.0], [0.0], [1.0]])
    >>> lstm_fast.metrics.binary_accuracy(y_true, np.array([[0.7], [0.6], [0.2]]))
    array([1., 0., 0.])
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
    predicted = (y_pred > threshold).astype(y_true.dtype)
    return np.mean(np.equal(y_true, predicted), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """Whether the most likely class of each sample is the labelled one, for one-hot labels.

    Args:
        y_true: one-hot labels ``(..., C)``.
        y_pred: predicted class scores or probabilities ``(..., C)``.

    Returns:
        A float array (the shape without the class axis): 1.0 where
        ``argmax(y_pred, -1) == argmax(y_true, -1)``, else 0.0.

    Example:

    >>> y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    >>> y_pred = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    >>> lstm_fast.metrics.categorical_accuracy(y_true, y_pred)
    array([1., 0.])
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    return np.equal(np.argmax(y_true, axis=-1), np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """Whether the most likely class of each sample is the labelled one, for integer labels.

    Args:
        y_true: integer class labels, the shape of ``y_pred`` without its last
            axis (or with a trailing axis of size 1).
        y_pred: predicted class scores or probabilities ``(..., C)``.

    Returns:
        A float array with the shape of ``y_true``: 1.0 where
        ``argmax(y_pred, -1) == y_true``, else 0.0.

    Example:

    >>> y_pred = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    >>> lstm_fast.metrics.sparse_categorical_accuracy(np.array([1, 0]), y_pred)
    array([1., 0.])
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    shape = y_true.shape
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    matches = np.equal(y_true, np.argmax(y_pred, axis=-1)).astype(np.float64)
    return matches.reshape(shape) if matches.size == int(np.prod(shape)) else matches


# --------------------------------------------------------------- classes


class Metric:
    """Base class of metrics: a running value over the batches of an epoch.

    A metric keeps a state: `update_state` adds one batch to it, `result`
    gives the value so far, and `reset_state` starts over (the model does
    this at the start of each epoch). Subclass it for a metric of your own,
    implementing those three methods.

    Args:
        name: the name shown in the logs and the `History` (default: the class
            name in lower case).
        dtype: accepted for Keras compatibility; results are Python floats.

    Example:

    >>> class MaxError(lstm_fast.metrics.Metric):
    ...     def __init__(self, name="max_error"):
    ...         super().__init__(name=name)
    ...         self.reset_state()
    ...     def update_state(self, y_true, y_pred, sample_weight=None):
    ...         self.value = max(self.value, float(np.max(np.abs(y_pred - y_true))))
    ...     def result(self):
    ...         return self.value
    ...     def reset_state(self):
    ...         self.value = 0.0
    >>> m = MaxError()
    >>> m.update_state(np.zeros((2, 1)), np.array([[0.5], [-2.0]]))
    >>> m.result()
    2.0
    """

    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.dtype = dtype

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch to the state.

        Args:
            y_true: the targets of the batch.
            y_pred: the predictions of the batch.
            sample_weight: optional weights, one per sample (or per step).
        """
        raise NotImplementedError

    def result(self):
        """The value of the metric over the batches seen since the last reset.

        Returns:
            A float.
        """
        raise NotImplementedError

    def reset_state(self):
        """Forget the batches seen so far."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Add one batch to the state and return the result so far.

        Args:
            y_true: the targets of the batch.
            y_pred: the predictions of the batch.
            sample_weight: optional weights.

        Returns:
            A float, as `result` returns it.
        """
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self):
        """The constructor arguments of the metric, as a JSON-serializable dict.

        Returns:
            A dict that `from_config` turns back into an equal (fresh) metric.

        Example:

        >>> lstm_fast.metrics.BinaryAccuracy(threshold=0.7).get_config()
        {'name': 'binary_accuracy', 'threshold': 0.7}
        """
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        """Create a metric from the dict returned by `get_config`.

        Args:
            config: the dict of constructor arguments.

        Returns:
            A new metric of this class, with an empty state.
        """
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
    """The running (weighted) mean of the values it is given.

    Each call of ``update_state(values, sample_weight)`` adds one value per
    sample (a sample's values are first averaged over their trailing axes);
    the result is ``sum(weights * values) / sum(weights)`` over everything
    seen since the last reset. The other mean metrics build on it.

    Args:
        name: the name of the metric (default 'mean').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.Mean()
    >>> m.update_state([1.0, 2.0, 3.0])
    >>> m.update_state([10.0], sample_weight=[0.0])
    >>> m.result()
    2.0
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        """Set the running total and count to zero."""
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        """Add values to the running mean.

        Args:
            values: an array whose first axis is the samples (a scalar counts
                as one sample).
            sample_weight: optional weights, broadcastable to ``values``.
        """
        values, w = _samplewise(values, sample_weight)
        self.total += float(np.sum(values))
        if w is not None:
            self.count += float(np.sum(w))
        else:
            self.count += values.shape[0] if values.ndim >= 1 else 1

    def result(self):
        """The weighted mean so far (0.0 before any value).

        Returns:
            A float.
        """
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """A metric from a function: the mean of ``fn(y_true, y_pred, **kwargs)`` over the samples.

    ``metrics=[my_function]`` in `compile` wraps the function this way.

    Args:
        fn: a function of ``(y_true, y_pred)`` returning one value per sample.
        name: the metric's name (default: the function's name).
        dtype: accepted for Keras compatibility.
        **kwargs: extra keyword arguments passed to ``fn`` on every call.

    Example:

    >>> def max_error(y_true, y_pred):
    ...     return np.max(np.abs(y_pred - y_true), axis=-1)
    >>> m = lstm_fast.metrics.MeanMetricWrapper(max_error)
    >>> m.update_state(np.zeros((2, 2)), np.array([[1.0, -3.0], [0.0, 1.0]]))
    >>> m.name, m.result()
    ('max_error', 2.0)
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or fn.__name__, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch: the per-sample values of the function, weighted.

        Args:
            y_true: the targets of the batch.
            y_pred: the predictions of the batch.
            sample_weight: optional weights, one per sample (or per step).
        """
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, **self._fn_kwargs}


class Accuracy(MeanMetricWrapper):
    """How often the predictions equal the labels exactly (see `accuracy`).

    For probabilities use `BinaryAccuracy`, `CategoricalAccuracy` or
    `SparseCategoricalAccuracy` (or ``metrics=["accuracy"]``, which picks one
    of them from the shapes).

    Args:
        name: the name of the metric (default 'accuracy').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.Accuracy()
    >>> m.update_state(np.array([[1], [2], [3], [4]]), np.array([[1], [2], [3], [0]]))
    >>> m.result()
    0.75
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often a predicted probability is on the right side of ``threshold`` (0/1 labels).

    Args:
        name: the name of the metric (default 'binary_accuracy').
        dtype: accepted for Keras compatibility.
        threshold: the probability above which a prediction means 1. Defaults to 0.5.

    Example:

    >>> m = lstm_fast.metrics.BinaryAccuracy()
    >>> m.update_state(np.array([[1.0], [0.0], [1.0], [0.0]]),
    ...                np.array([[0.7], [0.6], [0.9], [0.1]]))
    >>> m.result()
    0.75
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the most likely predicted class is the labelled one (one-hot labels).

    Args:
        name: the name of the metric (default 'categorical_accuracy').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.CategoricalAccuracy()
    >>> m.update_state(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.3, 0.7], [0.4, 0.6]]))
    >>> m.result()
    0.5
    """

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the most likely predicted class is the labelled one (integer labels).

    Args:
        name: the name of the metric (default 'sparse_categorical_accuracy').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.SparseCategoricalAccuracy()
    >>> m.update_state(np.array([1, 0]), np.array([[0.3, 0.7], [0.4, 0.6]]))
    >>> m.result()
    0.5
    """

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class MeanSquaredError(MeanMetricWrapper):
    """The mean squared error over all samples seen since the last reset.

    Args:
        name: the name of the metric (default 'mean_squared_error').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.MeanSquaredError()
    >>> m.update_state(np.array([[0.0], [0.0]]), np.array([[1.0], [3.0]]))
    >>> m.result()
    5.0
    """

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(losses_module.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean absolute error over all samples seen since the last reset.

    Args:
        name: the name of the metric (default 'mean_absolute_error').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.MeanAbsoluteError()
    >>> m.update_state(np.array([[0.0], [0.0]]), np.array([[1.0], [-3.0]]))
    >>> m.result()
    2.0
    """

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(losses_module.mean_absolute_error, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """The square root of the mean squared error over all samples seen.

    The squares are averaged first, over every batch since the last reset,
    and the root is taken at the end (not the mean of per-batch roots).

    Args:
        name: the name of the metric (default 'root_mean_squared_error').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.RootMeanSquaredError()
    >>> m.update_state(np.array([[0.0], [0.0]]), np.array([[1.0], [7.0]]))
    >>> m.result()
    5.0
    """

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add the squared errors of one batch.

        Args:
            y_true: the targets of the batch.
            y_pred: the predictions of the batch.
            sample_weight: optional weights, one per sample (or per step).
        """
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_true = np.asarray(y_true, dtype=np.float64)
        y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
        super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        """The root of the mean squared error so far.

        Returns:
            A float.
        """
        return float(np.sqrt(super().result()))


class BinaryCrossentropy(MeanMetricWrapper):
    """The mean binary crossentropy over all samples seen (0/1 labels).

    Args:
        name: the name of the metric (default 'binary_crossentropy').
        dtype: accepted for Keras compatibility.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: in [0, 1], as in the loss.

    Example:

    >>> m = lstm_fast.metrics.BinaryCrossentropy()
    >>> m.update_state(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]]))
    >>> round(m.result(), 4)
    0.1643
    """

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
    """The mean categorical crossentropy over all samples seen (one-hot labels).

    Args:
        name: the name of the metric (default 'categorical_crossentropy').
        dtype: accepted for Keras compatibility.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: in [0, 1], as in the loss.

    Example:

    >>> m = lstm_fast.metrics.CategoricalCrossentropy()
    >>> m.update_state(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    >>> round(m.result(), 4)
    0.6931
    """

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
    """The mean categorical crossentropy over all samples seen (integer labels).

    Args:
        name: the name of the metric (default 'sparse_categorical_crossentropy').
        dtype: accepted for Keras compatibility.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.

    Example:

    >>> m = lstm_fast.metrics.SparseCategoricalCrossentropy()
    >>> m.update_state(np.array([1, 0]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    >>> round(m.result(), 4)
    0.6931
    """

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
    """The metric behind ``metrics=["accuracy"]``: it picks the right accuracy from the shapes.

    At the first batch it becomes binary accuracy when ``y_pred``'s last axis
    is 1, sparse categorical accuracy when ``y_true`` has a lower rank than
    ``y_pred`` (or a last axis of 1), and categorical accuracy otherwise (Keras
    3's rule).

    Args:
        name: the name of the metric (default 'accuracy').
        dtype: accepted for Keras compatibility.

    Example:

    >>> m = lstm_fast.metrics.get("accuracy")
    >>> m.update_state(np.array([[1.0], [0.0]]), np.array([[0.8], [0.4]]))
    >>> m.resolved, m.result()
    (<BinaryAccuracy name='accuracy'>, 1.0)
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
        """Add one batch (the first one decides which accuracy this is)."""
        if self.resolved is None:
            self.resolved = self._resolve(y_true, y_pred)
        self.resolved.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self):
        """The accuracy so far (0.0 before the first batch)."""
        return self.resolved.result() if self.resolved is not None else 0.0

    def reset_state(self):
        """Forget the batches seen so far (the choice of accuracy is kept)."""
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
    """Get a metric object from a name, a config, a function or a metric.

    This is how ``model.compile(metrics=[...])`` reads each entry.

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

    Example:

    >>> lstm_fast.metrics.get("mae")
    <MeanAbsoluteError name='mae'>
    >>> lstm_fast.metrics.get({"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}})
    <BinaryAccuracy name='binary_accuracy'>
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
