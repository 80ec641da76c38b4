"""Losses with Keras 3's definitions, each with its exact gradient.

A loss maps ``(y_true, y_pred)`` to per-sample values: elementwise losses
(squared error, absolute error, Huber, binary crossentropy) are averaged over
the last axis; categorical crossentropies sum over the class axis. The
per-sample values (shape ``y_pred.shape[:-1]``) are then reduced as Keras's
``'sum_over_batch_size'``: ``sum(sample_weight * values) / values.size``.

Before that, ``y_true`` and ``y_pred`` are brought to the same rank as Keras
does: when their ranks differ by one and the longer one ends in an axis of
size 1, that axis is squeezed (or, when the shorter one is 1-D, an axis is
added to it). So ``y_true (N, 1)`` against ``y_pred (N, T, 1)`` compares every
step of ``y_pred`` with ``y_true``.

Probabilities are clipped to ``[epsilon, 1 - epsilon]`` with ``epsilon = 1e-7``
(the gradient is zero where the clip is active). With ``from_logits=True`` the
crossentropies are computed in their stable logit forms (log-sum-exp), which
equal Keras's value wherever the probabilities are not saturated.

`Loss.value_and_gradient` returns the loss and ``dL/dy_pred`` with the shape
of ``y_pred``; this is what a model trains with. A plain callable
``fn(y_true, y_pred) -> per-sample values`` is accepted as a loss for values
only; to train with a custom loss, subclass `Loss` and implement both
``call`` and ``call_gradient``.

Example:

>>> loss = lstm_fast.losses.get("mse")
>>> loss(np.array([[0.0], [1.0]]), np.array([[1.0], [1.0]]))
0.5
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EPSILON",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Huber",
    "Loss",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "deserialize",
    "get",
    "huber",
    "mae",
    "mean_absolute_error",
    "mean_squared_error",
    "mse",
    "serialize",
    "sparse_categorical_crossentropy",
]

EPSILON = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None)


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Bring two arrays to the same rank by Keras's rule (used by losses and metrics).

    When the ranks differ by exactly one and the longer array ends in an axis
    of size 1, that axis is dropped; if the shorter array is 1-D (and
    ``expand_rank_1``), an axis is added to it instead. Otherwise both are
    returned as they are.

    Args:
        x1, x2: NumPy arrays.
        expand_rank_1: add an axis to a 1-D array rather than squeeze the other.

    Returns:
        The pair ``(x1, x2)``, possibly reshaped.

    Example:

    >>> a, b = squeeze_or_expand_to_same_rank(np.zeros((4, 7, 1)), np.zeros((4, 7)))
    >>> a.shape, b.shape
    ((4, 7), (4, 7))
    """
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _sum_to_shape(grad, shape):
    """Undo broadcasting: sum ``grad`` down to ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _as_float(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype not in (np.float32, np.float64):
        y_pred = y_pred.astype(np.float32 if y_pred.dtype == np.float16 else np.float64)
    return y_pred


# ----------------------------------------------------------------- kernels
# Each kernel takes float arrays of the same rank and returns the per-sample
# values and, when asked, d(values)/d(y_pred) elementwise (y_pred's shape).


def _mean_last(a):
    """np.mean(a, axis=-1) of a float32/float64 array: the same sum and the same
    correctly rounded division, so the same bits, without np.mean's
    Python-level work (~20 us a call, a fifth of the loss in a seed-model
    training step). Anything else goes to np.mean itself."""
    if a.dtype not in (np.float32, np.float64) or a.ndim == 0 or not 0 < a.shape[-1] < 2**24:
        return np.mean(a, axis=-1)  # (an empty axis: NaN, with NumPy's warning)
    return np.add.reduce(a, axis=-1) / a.shape[-1]


def _mse_kernel(y_true, y_pred, need_grad):
    diff = y_pred - y_true
    values = _mean_last(np.square(diff))
    if not need_grad:
        return values, None
    grad = diff * (2.0 / diff.shape[-1])
    return values, _sum_to_shape(grad, y_pred.shape)


def _mae_kernel(y_true, y_pred, need_grad):
    diff = y_pred - y_true
    values = _mean_last(np.abs(diff))
    if not need_grad:
        return values, None
    grad = np.sign(diff) * (1.0 / diff.shape[-1])
    return values, _sum_to_shape(grad, y_pred.shape)


def _huber_kernel(y_true, y_pred, need_grad, delta=1.0):
    diff = y_pred - y_true
    abs_diff = np.abs(diff)
    quadratic = abs_diff <= delta
    elem = np.where(quadratic, 0.5 * np.square(diff), delta * abs_diff - 0.5 * delta * delta)
    values = _mean_last(elem)
    if not need_grad:
        return values, None
    grad = np.where(quadratic, diff, delta * np.sign(diff)) * (1.0 / diff.shape[-1])
    return values, _sum_to_shape(grad, y_pred.shape)


def _bce_kernel(y_true, y_pred, need_grad, from_logits=False, label_smoothing=0.0):
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    y_true, y_pred_b = np.broadcast_arrays(y_true, y_pred)
    n = y_pred_b.shape[-1]
    if from_logits:
        x = y_pred_b
        # max(x, 0) - x * t + log(1 + exp(-|x|)): the stable form of -t log s - (1-t) log(1-s)
        elem = np.maximum(x, 0) - x * y_true + np.log1p(np.exp(-np.abs(x)))
        values = _mean_last(elem)
        if not need_grad:
            return values, None
        s = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow
        grad = (s - y_true) * (1.0 / n)
        return values, _sum_to_shape(grad, y_pred.shape)
    eps = y_pred.dtype.type(EPSILON)
    p = np.clip(y_pred_b, eps, 1 - eps)
    elem = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
    values = _mean_last(elem)
    if not need_grad:
        return values, None
    inside = (y_pred_b >= eps) & (y_pred_b <= 1 - eps)
    grad = np.where(inside, (1.0 - y_true) / (1.0 - p) - y_true / p, 0) * (1.0 / n)
    return values, _sum_to_shape(grad, y_pred.shape)


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _cce_from_target(target, y_pred, need_grad, from_logits):
    """Crossentropy of a (B..., C) target distribution against predictions."""
    if from_logits:
        log_prob = _log_softmax(y_pred)
        values = -np.sum(target * log_prob, axis=-1)
        if not need_grad:
            return values, None
        grad = np.exp(log_prob) * np.sum(target, axis=-1, keepdims=True) - target
        return values, grad
    eps = y_pred.dtype.type(EPSILON)
    total = np.sum(y_pred, axis=-1, keepdims=True)
    normed = y_pred / total
    p = np.clip(normed, eps, 1 - eps)
    values = -np.sum(target * np.log(p), axis=-1)
    if not need_grad:
        return values, None
    # a = dL/d(normed); d(normed_k)/d(y_j) = (delta_kj - normed_k) / total
    inside = (normed >= eps) & (normed <= 1 - eps)
    a = np.where(inside, -target / p, 0)
    grad = (a - np.sum(a * normed, axis=-1, keepdims=True)) / total
    return values, grad


def _cce_kernel(y_true, y_pred, need_grad, from_logits=False, label_smoothing=0.0):
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "Expected y_true and y_pred of the same shape for categorical crossentropy. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    if label_smoothing:
        n_classes = y_true.shape[-1]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n_classes
    return _cce_from_target(y_true, y_pred, need_grad, from_logits)


def _sparse_labels(y_true, y_pred):
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            "Expected integer labels y_true of shape y_pred.shape[:-1] (or with a trailing 1). "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    labels = np.asarray(y_true)
    if labels.dtype.kind == "f" and (
        not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))
    ):
        raise ValueError("Expected integer class labels in y_true for a sparse loss/metric.")
    labels = labels.astype(np.intp)
    n_classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"Expected class labels in [0, {n_classes}). Received: labels in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels


def _one_hot(labels, n_classes, dtype):
    out = np.zeros(labels.shape + (n_classes,), dtype=dtype)
    np.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out


def _sparse_cce_kernel(y_true, y_pred, need_grad, from_logits=False):
    labels = _sparse_labels(y_true, y_pred)
    target = _one_hot(labels, y_pred.shape[-1], y_pred.dtype)
    return _cce_from_target(target, y_pred, need_grad, from_logits)


# -------------------------------------------------------- functional API


def _prepare(y_true, y_pred, sparse=False):
    y_pred = _as_float(y_pred)
    y_true = np.asarray(y_true)
    if not sparse:
        y_true = y_true.astype(y_pred.dtype, copy=False)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Mean squared error of each sample: ``mean((y_true - y_pred) ** 2, axis=-1)``.

    Args:
        y_true: the targets, an array with the shape of ``y_pred`` (an extra
            or missing trailing axis of size 1 is accepted).
        y_pred: the predictions, a float array of shape ``(..., d)``.

    Returns:
        A float array with one loss per sample: the shape of ``y_pred``
        without its last axis (``(B,)`` for ``(B, d)``, ``(B, T)`` for ``(B, T, d)``).

    Example:

    >>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> y_pred = np.array([[1.0, 1.0], [1.0, 0.0]])
    >>> lstm_fast.losses.mean_squared_error(y_true, y_pred)
    array([0.5, 0.5])
    """
    return _mse_kernel(*_prepare(y_true, y_pred), False)[0]


def mean_absolute_error(y_true, y_pred):
    """Mean absolute error of each sample: ``mean(abs(y_true - y_pred), axis=-1)``.

    Args:
        y_true: the targets, an array with the shape of ``y_pred`` (an extra
            or missing trailing axis of size 1 is accepted).
        y_pred: the predictions, a float array of shape ``(..., d)``.

    Returns:
        A float array with one loss per sample: the shape of ``y_pred``
        without its last axis (``(B,)`` for ``(B, d)``, ``(B, T)`` for ``(B, T, d)``).

    Example:

    >>> y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> y_pred = np.array([[1.0, 1.0], [2.0, 0.0]])
    >>> lstm_fast.losses.mean_absolute_error(y_true, y_pred)
    array([0.5, 1. ])
    """
    return _mae_kernel(*_prepare(y_true, y_pred), False)[0]


def huber(y_true, y_pred, delta=1.0):
    """Huber loss of each sample: quadratic for small errors, linear for large ones.

    For an error ``x = y_pred - y_true`` the loss is ``0.5 * x**2`` when
    ``|x| <= delta`` and ``delta * |x| - 0.5 * delta**2`` beyond, averaged over
    the last axis. Large errors pull less than in the squared error.

    Args:
        y_true: the targets, an array with the shape of ``y_pred`` (an extra
            or missing trailing axis of size 1 is accepted).
        y_pred: the predictions, a float array of shape ``(..., d)``.
        delta: where the loss turns from quadratic to linear (default 1.0).

    Returns:
        A float array with one loss per sample: the shape of ``y_pred``
        without its last axis (``(B,)`` for ``(B, d)``, ``(B, T)`` for ``(B, T, d)``).

    Example:

    >>> lstm_fast.losses.huber(np.array([[0.0], [0.0]]), np.array([[0.5], [3.0]]))
    array([0.125, 2.5  ])
    """
    return _huber_kernel(*_prepare(y_true, y_pred), False, delta=delta)[0]


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Binary crossentropy of each sample, averaged over the last axis.

    Each element is ``-(t * log(p) + (1 - t) * log(1 - p))`` for a target ``t``
    in [0, 1] and a predicted probability ``p`` (clipped to ``[1e-7, 1 - 1e-7]``).

    Args:
        y_true: the targets (0 or 1, or soft targets in between), with the
            shape of ``y_pred`` (a trailing axis of size 1 may differ).
        y_pred: predicted probabilities, or logits with ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits (any real number) rather
            than probabilities; the logit form is computed stably.
        label_smoothing: in [0, 1]; the targets become
            ``t * (1 - label_smoothing) + 0.5 * label_smoothing``.

    Returns:
        A float array with one loss per sample (the shape of ``y_pred``
        without its last axis).

    Example:

    >>> y_true = np.array([[1.0], [0.0]])
    >>> np.round(lstm_fast.losses.binary_crossentropy(y_true, np.array([[0.9], [0.2]])), 4)
    array([0.1054, 0.2231])
    >>> logits = np.array([[2.0], [-1.0]])
    >>> np.round(lstm_fast.losses.binary_crossentropy(y_true, logits, from_logits=True), 4)
    array([0.1269, 0.3133])
    """
    return _bce_kernel(
        *_prepare(y_true, y_pred), False, from_logits=from_logits, label_smoothing=label_smoothing
    )[0]


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Categorical crossentropy of each sample, for one-hot (or soft) targets.

    The loss is ``-sum(t * log(p), axis=-1)``, where ``p`` is ``y_pred``
    normalized to sum to one over the class axis (or ``softmax(y_pred)`` with
    ``from_logits=True``).

    Args:
        y_true: one-hot (or soft) targets of shape ``(..., C)``, the shape of ``y_pred``.
        y_pred: predicted class probabilities ``(..., C)``, or logits with
            ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; the targets become
            ``t * (1 - label_smoothing) + label_smoothing / C``.

    Returns:
        A float array with one loss per sample: the shape of ``y_pred``
        without the class axis.

    Example:

    >>> y_true = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> y_pred = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    >>> np.round(lstm_fast.losses.categorical_crossentropy(y_true, y_pred), 4)
    array([0.2231, 0.6931])
    """
    return _cce_kernel(
        *_prepare(y_true, y_pred), False, from_logits=from_logits, label_smoothing=label_smoothing
    )[0]


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Categorical crossentropy of each sample, for integer class labels.

    The same as `categorical_crossentropy` with ``y_true`` one-hot encoded,
    without building the one-hot array yourself.

    Args:
        y_true: integer class indices with the shape of ``y_pred`` minus its
            last axis (a trailing axis of size 1 is accepted).
        y_pred: predicted class probabilities ``(..., C)``, or logits with
            ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.

    Returns:
        A float array with one loss per sample (the shape of ``y_true``).

    Example:

    >>> y_pred = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    >>> np.round(lstm_fast.losses.sparse_categorical_crossentropy([1, 2], y_pred), 4)
    array([0.2231, 0.6931])
    """
    return _sparse_cce_kernel(*_prepare(y_true, y_pred, sparse=True), False, from_logits)[0]


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


# ----------------------------------------------------------------- classes


def _weights_like(sample_weight, values):
    """``sample_weight`` brought to the shape of the per-sample ``values``.

    A trailing axis of size 1 is dropped; a weight of lower rank weights every
    trailing element of its sample (a (B,) weight applies to all T steps of a (B, T) loss).
    """
    w = np.asarray(sample_weight, dtype=values.dtype)
    if w.ndim == values.ndim + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim < values.ndim:
        w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
    try:
        return np.broadcast_to(w, values.shape)
    except ValueError:
        raise ValueError(
            "Expected sample_weight broadcastable to the per-sample losses. Received: "
            f"sample_weight.shape={np.shape(sample_weight)}, losses.shape={values.shape}"
        ) from None


class Loss:
    """Base class of losses: subclass it to train with a loss of your own.

    A subclass implements ``call(y_true, y_pred)``, which returns one loss
    value per sample, and ``call_gradient(y_true, y_pred)``, which returns
    those values and their derivative with respect to each element of
    ``y_pred``. Both receive float arrays already brought to the same rank.
    The base class does the rest: the reduction over the batch, sample
    weights, and the gradient of the reduced loss (`value_and_gradient`).

    Args:
        name: the name of the loss (default: the class name in lower case).
        reduction: how the per-sample values become one number:
            'sum_over_batch_size' (the default, Keras's: the weighted sum
            divided by the number of values), 'sum', or 'none' (no reduction:
            calling the loss returns the per-sample array).

    Example:

    >>> class MeanFourthPower(lstm_fast.losses.Loss):
    ...     def call(self, y_true, y_pred):
    ...         return np.mean((y_pred - y_true) ** 4, axis=-1)
    ...     def call_gradient(self, y_true, y_pred):
    ...         diff = y_pred - y_true
    ...         return self.call(y_true, y_pred), 4 * diff**3 / diff.shape[-1]
    >>> loss = MeanFourthPower()
    >>> loss(np.zeros((2, 1)), np.array([[1.0], [2.0]]))
    8.5
    >>> value, grad = loss.value_and_gradient(np.zeros((2, 1)), np.array([[1.0], [2.0]]))
    >>> grad.ravel()
    array([ 2., 16.])
    """

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Invalid reduction. Expected one of {_REDUCTIONS}. "
                f"Received: reduction={reduction!r}"
            )
        self.name = name or type(self).__name__.lower()
        self.reduction = "sum_over_batch_size" if reduction == "mean" else reduction

    # to be implemented by subclasses
    def call(self, y_true, y_pred):
        """The loss of each sample.

        Args:
            y_true: the targets, a float array of the rank of ``y_pred``
                (integer labels for a sparse loss).
            y_pred: the predictions, a float array.

        Returns:
            An array of per-sample losses, usually ``y_pred.shape[:-1]``.
        """
        raise NotImplementedError

    def call_gradient(self, y_true, y_pred):
        """The per-sample losses and their elementwise derivative.

        Args:
            y_true: the targets, as in `call`.
            y_pred: the predictions, as in `call`.

        Returns:
            ``(values, grad)``: ``values`` as `call` returns them, and ``grad``
            with the shape of ``y_pred``, where ``grad[..., k]`` is the
            derivative of the value of that sample with respect to
            ``y_pred[..., k]``.
        """
        raise NotImplementedError(
            f"Loss {self.name!r} has no gradient: implement `call_gradient(y_true, y_pred)` "
            "returning (per-sample values, d values / d y_pred)."
        )

    _sparse = False

    def _prepare(self, y_true, y_pred):
        return _prepare(y_true, y_pred, sparse=self._sparse)

    def _reduce(self, values, sample_weight):
        if sample_weight is not None:
            weights = _weights_like(sample_weight, values)
            values = values * weights
        else:
            weights = None
        if self.reduction in ("none", None):
            return values, weights, None
        total = values.sum(dtype=np.float64)
        if self.reduction == "sum":
            return float(total), weights, 1.0
        count = values.size
        return (float(total / count) if count else 0.0), weights, (1.0 / count if count else 0.0)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss of a batch.

        Args:
            y_true: the targets.
            y_pred: the predictions.
            sample_weight: optional weights, one per sample (shape ``(B,)``)
                or per step (``(B, T)`` for sequence outputs); a weight of 0
                leaves a sample out of the sum (it still counts in the
                divisor of 'sum_over_batch_size', as Keras).

        Returns:
            A float, or the array of weighted per-sample losses when
            ``reduction='none'``.
        """
        y_true, y_pred = self._prepare(y_true, y_pred)
        values = np.asarray(self.call(y_true, y_pred))
        return self._reduce(values, sample_weight)[0]

    def value_and_gradient(self, y_true, y_pred, sample_weight=None):
        """The reduced loss and its gradient with respect to ``y_pred``.

        This is what a model calls in each training step.

        Args:
            y_true: the targets.
            y_pred: the predictions.
            sample_weight: optional weights, as in calling the loss.

        Returns:
            ``(loss, grad)``: a float, and ``dL/dy_pred`` with the shape and
            (float) dtype of ``y_pred``.

        Example:

        >>> loss, grad = lstm_fast.losses.MeanSquaredError().value_and_gradient(
        ...     np.array([[0.0], [0.0]]), np.array([[1.0], [3.0]]))
        >>> loss, grad.ravel()
        (5.0, array([1., 3.]))
        """
        if self.reduction in ("none", None):
            raise ValueError("value_and_gradient needs a reduced loss. Received: reduction='none'")
        y_pred_arr = _as_float(y_pred)
        shape = y_pred_arr.shape
        y_true, y_pred_r = self._prepare(y_true, y_pred_arr)
        values, dvalues = self.call_gradient(y_true, y_pred_r)
        loss, weights, scale = self._reduce(values, sample_weight)
        scale = y_pred_arr.dtype.type(scale)
        if weights is None:
            grad = dvalues * scale  # the product below with every factor = scale
        else:
            factor = np.full(values.shape, scale, dtype=y_pred_arr.dtype) * weights
            grad = dvalues * factor[..., None]
        return loss, np.ascontiguousarray(grad.reshape(shape), dtype=y_pred_arr.dtype)

    def get_config(self):
        """The constructor arguments of the loss, as a JSON-serializable dict.

        Returns:
            A dict that `from_config` turns back into an equal loss.

        Example:

        >>> lstm_fast.losses.Huber(delta=2.0).get_config()
        {'name': 'huber_loss', 'reduction': 'sum_over_batch_size', 'delta': 2.0}
        """
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        """Create a loss from the dict returned by `get_config`.

        Args:
            config: the dict of constructor arguments.

        Returns:
            A new loss of this class.
        """
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class _KernelLoss(Loss):
    """A built-in loss defined by one of the kernels above."""

    _kernel = None

    def _kwargs(self):
        return {}

    def call(self, y_true, y_pred):
        return type(self)._kernel(y_true, y_pred, False, **self._kwargs())[0]

    def call_gradient(self, y_true, y_pred):
        return type(self)._kernel(y_true, y_pred, True, **self._kwargs())


class MeanSquaredError(_KernelLoss):
    """Mean squared error: ``mean((y_true - y_pred) ** 2)`` over a batch.

    Each sample's loss is the mean of the squared errors over the last axis
    (see `mean_squared_error`); the batch loss is their (weighted) mean.
    ``loss="mse"`` in `compile` gives this loss.

    Args:
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss.

    Example:

    >>> loss = lstm_fast.losses.MeanSquaredError()
    >>> loss(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 0.0]]))
    0.5
    """

    _kernel = staticmethod(_mse_kernel)

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name=name, reduction=reduction)


class MeanAbsoluteError(_KernelLoss):
    """Mean absolute error: ``mean(abs(y_true - y_pred))`` over a batch.

    Each sample's loss is the mean of the absolute errors over the last axis
    (see `mean_absolute_error`); the batch loss is their (weighted) mean.
    ``loss="mae"`` in `compile` gives this loss.

    Args:
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss.

    Example:

    >>> loss = lstm_fast.losses.MeanAbsoluteError()
    >>> loss(np.array([[0.0], [0.0]]), np.array([[1.0], [-3.0]]))
    2.0
    """

    _kernel = staticmethod(_mae_kernel)

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name=name, reduction=reduction)


class Huber(_KernelLoss):
    """Huber loss: squared error for small errors, absolute error for large ones.

    For an error ``x``: ``0.5 * x**2`` if ``|x| <= delta``, else
    ``delta * |x| - 0.5 * delta**2`` (see `huber`), averaged over the batch.
    Less sensitive to outliers than the squared error.

    Args:
        delta: where the loss changes from quadratic to linear. Defaults to 1.0.
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss.

    Example:

    >>> loss = lstm_fast.losses.Huber(delta=1.0)
    >>> loss(np.array([[0.0], [0.0]]), np.array([[0.5], [3.0]]))
    1.3125
    """

    _kernel = staticmethod(_huber_kernel)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss"):
        super().__init__(name=name, reduction=reduction)
        self.delta = float(delta)

    def _kwargs(self):
        return {"delta": self.delta}

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class BinaryCrossentropy(_KernelLoss):
    """Binary crossentropy, for 0/1 targets and predicted probabilities.

    Use it for binary classification (one sigmoid output) or for several
    independent yes/no outputs (see `binary_crossentropy`).

    Args:
        from_logits: whether ``y_pred`` holds logits (e.g. a Dense layer
            without activation) rather than probabilities. Defaults to False.
        label_smoothing: in [0, 1]; the targets become
            ``t * (1 - label_smoothing) + 0.5 * label_smoothing``. Defaults to 0.
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss.

    Example:

    >>> loss = lstm_fast.losses.BinaryCrossentropy()
    >>> round(loss(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]])), 4)
    0.1643
    """

    _kernel = staticmethod(_bce_kernel)

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
    ):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _kwargs(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def get_config(self):
        return {**super().get_config(), **self._kwargs()}


class CategoricalCrossentropy(_KernelLoss):
    """Categorical crossentropy, for one-hot (or soft) targets over C classes.

    Use it for multi-class classification when the labels are one-hot
    vectors; for integer labels use `SparseCategoricalCrossentropy`.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities
            (probabilities are normalized to sum to one over the last axis).
            Defaults to False.
        label_smoothing: in [0, 1]; the targets become
            ``t * (1 - label_smoothing) + label_smoothing / C``. Defaults to 0.
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss.

    Example:

    >>> loss = lstm_fast.losses.CategoricalCrossentropy()
    >>> y_true = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> y_pred = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    >>> round(loss(y_true, y_pred), 4)
    0.4581
    """

    _kernel = staticmethod(_cce_kernel)

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
    ):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def _kwargs(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def get_config(self):
        return {**super().get_config(), **self._kwargs()}


class SparseCategoricalCrossentropy(_KernelLoss):
    """Categorical crossentropy, for integer class labels.

    ``y_true`` holds class indices with the shape of ``y_pred`` minus its last
    axis (a trailing axis of size 1 is accepted).

    Args:
        from_logits: whether ``y_pred`` holds logits rather than
            probabilities. Defaults to False.
        ignore_class: not supported (raises NotImplementedError unless None);
            give the ignored steps a zero ``sample_weight`` or a mask instead.
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss.

    Example:

    >>> loss = lstm_fast.losses.SparseCategoricalCrossentropy()
    >>> y_pred = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    >>> round(loss(np.array([1, 2]), y_pred), 4)
    0.4581
    """

    _kernel = staticmethod(_sparse_cce_kernel)
    _sparse = True

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
    ):
        super().__init__(name=name, reduction=reduction)
        if ignore_class is not None:
            raise NotImplementedError(
                "SparseCategoricalCrossentropy(ignore_class=...) is not supported; mask the "
                "ignored steps with sample_weight (or a Masking/Embedding(mask_zero=True) mask). "
                f"Received: ignore_class={ignore_class!r}"
            )
        self.from_logits = bool(from_logits)

    def _kwargs(self):
        return {"from_logits": self.from_logits}

    def get_config(self):
        return {**super().get_config(), **self._kwargs()}


class LossFunctionWrapper(Loss):
    """A loss made from a plain function ``fn(y_true, y_pred) -> per-sample values``.

    It computes values only (e.g. to evaluate): lstm_fast cannot differentiate
    an arbitrary function, so training with it raises NotImplementedError.
    To train with a loss of your own, subclass `Loss`.

    Args:
        fn: the function; it gets ``y_true`` and ``y_pred`` as float arrays of
            the same rank and returns one value per sample.
        reduction: 'sum_over_batch_size' (default), 'sum' or 'none'; see `Loss`.
        name: the name of the loss (default: the function's name).

    Example:

    >>> def max_error(y_true, y_pred):
    ...     return np.max(np.abs(y_pred - y_true), axis=-1)
    >>> loss = lstm_fast.losses.LossFunctionWrapper(max_error)
    >>> loss(np.zeros((2, 3)), np.array([[1.0, -2.0, 0.0], [0.5, 0.0, 0.0]]))
    1.25
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn = fn

    def call(self, y_true, y_pred):
        """The per-sample values: ``fn(y_true, y_pred)``."""
        return self.fn(y_true, y_pred)

    def call_gradient(self, y_true, y_pred):
        """Always raises NotImplementedError: a plain function has no known gradient."""
        raise NotImplementedError(
            f"The loss {self.name!r} is a plain callable, so lstm_fast cannot differentiate it. "
            "Use a built-in loss, or subclass lstm_fast.losses.Loss and implement "
            "`call(y_true, y_pred)` and `call_gradient(y_true, y_pred)` (returning the "
            "per-sample values and their elementwise derivative with respect to y_pred)."
        )

    def get_config(self):
        """Always raises TypeError: a wrapped function cannot be written to a file."""
        raise TypeError(f"The loss {self.name!r} wraps a plain callable and is not serializable.")


_CLASSES = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        Huber,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}

# name (lower case) -> (class, name the loss gets)
_NAMES = {
    "mse": (MeanSquaredError, "mse"),
    "mean_squared_error": (MeanSquaredError, "mean_squared_error"),
    "mae": (MeanAbsoluteError, "mae"),
    "mean_absolute_error": (MeanAbsoluteError, "mean_absolute_error"),
    "huber": (Huber, "huber"),
    "huber_loss": (Huber, "huber_loss"),
    "bce": (BinaryCrossentropy, "binary_crossentropy"),
    "binary_crossentropy": (BinaryCrossentropy, "binary_crossentropy"),
    "categorical_crossentropy": (CategoricalCrossentropy, "categorical_crossentropy"),
    "sparse_categorical_crossentropy": (
        SparseCategoricalCrossentropy,
        "sparse_categorical_crossentropy",
    ),
}
for _cls in _CLASSES.values():
    _NAMES.setdefault(_cls.__name__.lower(), (_cls, None))

_FUNCTIONS = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}

_CHOICES = ", ".join(repr(n) for n in sorted(_NAMES))


def serialize(loss):
    """Describe a built-in loss as a JSON-serializable dict (for saving a model).

    Args:
        loss: a `Loss` instance.

    Returns:
        ``{'class_name': ..., 'config': ...}``, which `deserialize` turns back
        into an equal loss.

    Example:

    >>> lstm_fast.losses.serialize(lstm_fast.losses.Huber(delta=2.0))["config"]["delta"]
    2.0
    """
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config):
    """Create a loss from the dict that `serialize` returns.

    Args:
        config: ``{'class_name': ..., 'config': {...}}`` naming a built-in loss
            class ('MeanSquaredError', 'Huber', ...).

    Returns:
        A new `Loss`.

    Example:

    >>> lstm_fast.losses.deserialize({"class_name": "Huber", "config": {"delta": 2.0}})
    <Huber name='huber_loss'>
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Expected a loss config dict with 'class_name' and 'config'. Received: {config!r}"
        )
    cls = _CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(
            f"Unknown loss class: {config['class_name']!r}. Expected one of {sorted(_CLASSES)}."
        )
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """Get a loss object from a name, a config, a function or a loss.

    This is how ``model.compile(loss=...)`` reads its argument.

    Args:
        identifier: a name ('mse', 'mean_squared_error', 'MeanSquaredError',
            'huber', 'binary_crossentropy', ...; case-insensitive), a `Loss`
            instance (returned as is), a `Loss` subclass, a config dict, one of
            this module's loss functions, or a plain callable
            ``fn(y_true, y_pred)`` (wrapped in a `LossFunctionWrapper`: values only).

    Returns:
        A `Loss`. A loss given by name is named by it.

    Example:

    >>> lstm_fast.losses.get("mse")
    <MeanSquaredError name='mse'>
    >>> lstm_fast.losses.get(lstm_fast.losses.huber)
    <Huber name='huber'>
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        entry = _NAMES.get(identifier.lower())
        if entry is None:
            raise ValueError(f"Unknown loss: loss={identifier!r}. Expected one of {_CHOICES}.")
        cls, name = entry
        return cls() if name is None else cls(name=name)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        cls = _FUNCTIONS.get(identifier)
        if cls is not None:
            return cls(name=identifier.__name__)
        return LossFunctionWrapper(identifier)
    raise ValueError(
        f"Could not interpret loss identifier. Expected a name ({_CHOICES}), a Loss or a "
        f"callable. Received: loss={identifier!r}"
    )
