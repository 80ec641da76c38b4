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
    """Squeeze or expand the last axis when the ranks differ by exactly one (Keras's rule)."""
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


def _mse_kernel(y_true, y_pred, need_grad):
    diff = y_pred - y_true
    values = np.mean(np.square(diff), axis=-1)
    if not need_grad:
        return values, None
    grad = diff * (2.0 / diff.shape[-1])
    return values, _sum_to_shape(grad, y_pred.shape)


def _mae_kernel(y_true, y_pred, need_grad):
    diff = y_pred - y_true
    values = np.mean(np.abs(diff), axis=-1)
    if not need_grad:
        return values, None
    grad = np.sign(diff) * (1.0 / diff.shape[-1])
    return values, _sum_to_shape(grad, y_pred.shape)


def _huber_kernel(y_true, y_pred, need_grad, delta=1.0):
    diff = y_pred - y_true
    abs_diff = np.abs(diff)
    quadratic = abs_diff <= delta
    elem = np.where(quadratic, 0.5 * np.square(diff), delta * abs_diff - 0.5 * delta * delta)
    values = np.mean(elem, axis=-1)
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
        values = np.mean(elem, axis=-1)
        if not need_grad:
            return values, None
        s = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow
        grad = (s - y_true) * (1.0 / n)
        return values, _sum_to_shape(grad, y_pred.shape)
    eps = y_pred.dtype.type(EPSILON)
    p = np.clip(y_pred_b, eps, 1 - eps)
    elem = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
    values = np.mean(elem, axis=-1)
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
    """Per-sample mean squared error: ``mean((y_true - y_pred)**2, axis=-1)``."""
    return _mse_kernel(*_prepare(y_true, y_pred), False)[0]


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error: ``mean(abs(y_true - y_pred), axis=-1)``."""
    return _mae_kernel(*_prepare(y_true, y_pred), False)[0]


def huber(y_true, y_pred, delta=1.0):
    """Per-sample Huber loss: quadratic for ``|error| <= delta``, linear beyond."""
    return _huber_kernel(*_prepare(y_true, y_pred), False, delta=delta)[0]


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample binary crossentropy, averaged over the last axis."""
    return _bce_kernel(
        *_prepare(y_true, y_pred), False, from_logits=from_logits, label_smoothing=label_smoothing
    )[0]


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample categorical crossentropy of one-hot (or soft) targets."""
    return _cce_kernel(
        *_prepare(y_true, y_pred), False, from_logits=from_logits, label_smoothing=label_smoothing
    )[0]


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample categorical crossentropy of integer class labels."""
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
    """Base class of losses.

    Subclasses implement ``call(y_true, y_pred)`` -> per-sample values, and
    ``call_gradient(y_true, y_pred)`` -> (values, d values / d y_pred), both
    on arrays already brought to the same rank.

    Args:
        name: the name of the loss.
        reduction: 'sum_over_batch_size' (default, Keras's), 'sum', or 'none'.
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
        raise NotImplementedError

    def call_gradient(self, y_true, y_pred):
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
        """The reduced loss (a float; an array of per-sample losses when reduction='none')."""
        y_true, y_pred = self._prepare(y_true, y_pred)
        values = np.asarray(self.call(y_true, y_pred))
        return self._reduce(values, sample_weight)[0]

    def value_and_gradient(self, y_true, y_pred, sample_weight=None):
        """The reduced loss and its gradient with respect to ``y_pred``.

        Returns:
            ``(loss, grad)``: a float, and ``dL/dy_pred`` with the shape and
            (float) dtype of ``y_pred``.
        """
        if self.reduction in ("none", None):
            raise ValueError("value_and_gradient needs a reduced loss. Received: reduction='none'")
        y_pred_arr = _as_float(y_pred)
        shape = y_pred_arr.shape
        y_true, y_pred_r = self._prepare(y_true, y_pred_arr)
        values, dvalues = self.call_gradient(y_true, y_pred_r)
        loss, weights, scale = self._reduce(values, sample_weight)
        factor = np.full(values.shape, scale, dtype=y_pred_arr.dtype)
        if weights is not None:
            factor = factor * weights
        grad = dvalues * factor[..., None]
        return loss, np.ascontiguousarray(grad.reshape(shape), dtype=y_pred_arr.dtype)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
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
    """Mean of squares of errors: ``mean((y_true - y_pred)**2, axis=-1)`` per sample."""

    _kernel = staticmethod(_mse_kernel)

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name=name, reduction=reduction)


class MeanAbsoluteError(_KernelLoss):
    """Mean of absolute errors: ``mean(abs(y_true - y_pred), axis=-1)`` per sample."""

    _kernel = staticmethod(_mae_kernel)

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(name=name, reduction=reduction)


class Huber(_KernelLoss):
    """Huber loss: ``0.5 * x**2`` if ``|x| <= delta`` else ``delta * |x| - 0.5 * delta**2``.

    Args:
        delta: where the loss changes from quadratic to linear. Defaults to 1.0.
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
    """Binary crossentropy, averaged over the last axis.

    Args:
        from_logits: whether ``y_pred`` holds logits (else probabilities).
        label_smoothing: in [0, 1]; targets become ``t * (1 - ls) + 0.5 * ls``.
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
    """Categorical crossentropy of one-hot (or soft) targets.

    Args:
        from_logits: whether ``y_pred`` holds logits (else probabilities,
            normalized to sum to one over the last axis).
        label_smoothing: in [0, 1]; targets become ``t * (1 - ls) + ls / C``.
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
    """Categorical crossentropy of integer class labels.

    ``y_true`` holds class indices with the shape of ``y_pred`` minus its last
    axis (a trailing axis of size 1 is accepted).

    Args:
        from_logits: whether ``y_pred`` holds logits (else probabilities).
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
    """A loss from a plain callable ``fn(y_true, y_pred) -> per-sample values``.

    Values only: training with it raises NotImplementedError (no gradient).
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)

    def call_gradient(self, y_true, y_pred):
        raise NotImplementedError(
            f"The loss {self.name!r} is a plain callable, so lstm_fast cannot differentiate it. "
            "Use a built-in loss, or subclass lstm_fast.losses.Loss and implement "
            "`call(y_true, y_pred)` and `call_gradient(y_true, y_pred)` (returning the "
            "per-sample values and their elementwise derivative with respect to y_pred)."
        )

    def get_config(self):
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
    """``{'class_name': ..., 'config': ...}`` of a built-in loss."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config):
    """Create a loss from ``{'class_name': ..., 'config': ...}``."""
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
    """Retrieve a loss.

    Args:
        identifier: a name ('mse', 'mean_squared_error', 'MeanSquaredError',
            'huber', 'binary_crossentropy', ...; case-insensitive), a `Loss`
            instance (returned as is), a config dict, one of this module's
            loss functions, or a plain callable ``fn(y_true, y_pred)`` (values only).

    Returns:
        A `Loss`.
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
