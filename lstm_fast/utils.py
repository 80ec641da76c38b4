"""Utilities: the random seed and the default float type.

Every random draw of lstm_fast (weight initializers, dropout masks, shuffling in
`fit`) comes from one module-level `numpy.random.Generator`, so
`set_random_seed(seed)` makes a whole script reproducible.

Example:

>>> lstm_fast.utils.set_random_seed(42)
>>> lstm_fast.utils.to_categorical([1, 0], num_classes=2)
array([[0., 1.],
       [1., 0.]], dtype=float32)
"""

from __future__ import annotations

import random as _py_random

import numpy as np

__all__ = ["set_random_seed", "get_rng", "floatx", "set_floatx", "to_categorical"]

_rng = np.random.default_rng()
_floatx = "float32"


def set_random_seed(seed):
    """Seed every random draw of lstm_fast (and NumPy's and Python's global ones).

    Args:
        seed: non-negative int.

    Example:

    >>> lstm_fast.utils.set_random_seed(0)
    >>> first = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3))])
    >>> lstm_fast.utils.set_random_seed(0)
    >>> second = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3))])
    >>> all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))
    True
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Expected seed to be a non-negative int. Received: seed={seed!r}")
    _rng = np.random.default_rng(int(seed))
    np.random.seed(int(seed) % (2**32))
    _py_random.seed(int(seed))


def get_rng():
    """The generator every initializer, dropout mask and shuffle draws from.

    Returns:
        The module-level `numpy.random.Generator` (replaced by `set_random_seed`).

    Example:

    >>> lstm_fast.utils.set_random_seed(1)
    >>> noise = lstm_fast.utils.get_rng().normal(size=3)
    >>> lstm_fast.utils.set_random_seed(1)
    >>> np.array_equal(noise, lstm_fast.utils.get_rng().normal(size=3))
    True
    """
    return _rng


def floatx():
    """The default float type of new layers, as a string ('float32' by default).

    Returns:
        'float32' or 'float64'.

    Example:

    >>> lstm_fast.utils.floatx()
    'float32'
    """
    return _floatx


def set_floatx(value):
    """Set the default float type of layers created from now on.

    Args:
        value: 'float32' or 'float64' (or the NumPy dtype).

    Example:

    >>> lstm_fast.utils.set_floatx("float64")  # e.g. for tight gradient checks
    >>> lstm_fast.Dense(2)(np.ones((1, 3))).dtype
    dtype('float64')
    >>> lstm_fast.utils.set_floatx("float32")  # back to the default
    """
    global _floatx
    _floatx = standardize_dtype(value, "value")


def standardize_dtype(dtype, arg_name="dtype"):
    """'float32' or 'float64' from a string or NumPy dtype; None gives floatx().

    Args:
        dtype: a dtype name, a NumPy dtype or type, or None.
        arg_name: the argument name used in the error message (ValueError
            for any other dtype).

    Returns:
        'float32' or 'float64'.

    Example:

    >>> standardize_dtype(np.float64), standardize_dtype(None)
    ('float64', 'float32')
    """
    if dtype is None:
        return _floatx
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(
            f"Expected {arg_name} to be 'float32' or 'float64'. Received: {arg_name}={dtype!r}"
        )
    return name


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels.

    Args:
        y: int array of labels, any shape.
        num_classes: number of classes; default max(y) + 1.
        dtype: dtype of the result.

    Returns:
        Array of shape y.shape + (num_classes,).

    Example:

    >>> to_categorical([0, 2], num_classes=3)
    array([[1., 0., 0.], [0., 0., 1.]], dtype=float32)
    """
    y = np.asarray(y, dtype="int64")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"Expected labels in [0, {num_classes}). Received: y with min={y.min()}, "
            f"max={y.max()}"
        )
    return np.eye(num_classes, dtype=dtype)[y]
