"""Weight regularizers: a penalty added to the loss, and its gradient.

`reg(w)` gives the penalty (a float), `reg.gradient(w)` its gradient with
respect to w. Keras's formulas: L1 = l1 * sum(|w|), L2 = l2 * sum(w**2).
A layer adds the penalties of its weights to the loss that `fit` minimizes
(and reports).

Example:

>>> layer = lstm_fast.LSTM(8, kernel_regularizer=lstm_fast.regularizers.L2(1e-4))
"""

from __future__ import annotations

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


class Regularizer:
    """Base class of regularizers: a penalty on a weight array, and its gradient.

    A subclass implements ``__call__(w)`` (the penalty, a float),
    ``gradient(w)`` (its derivative with respect to ``w``, since lstm_fast
    does not differentiate automatically) and, if it takes arguments,
    ``get_config()``.

    Example:

    >>> class SumPenalty(lstm_fast.regularizers.Regularizer):
    ...     def __call__(self, w):
    ...         return 0.01 * float(np.sum(w))
    ...     def gradient(self, w):
    ...         return np.full_like(w, 0.01)
    >>> SumPenalty()(np.ones((2, 2)))
    0.04
    >>> layer = lstm_fast.Dense(4, kernel_regularizer=SumPenalty())
    """

    def __call__(self, w):
        """The penalty of a weight array.

        Args:
            w: the weight array.

        Returns:
            A float.
        """
        raise NotImplementedError

    def gradient(self, w):
        """The derivative of the penalty with respect to the weights.

        Args:
            w: the weight array.

        Returns:
            An array shaped as ``w``.
        """
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, as a JSON-serializable dict.

        Returns:
            A dict that `from_config` turns back into an equal regularizer.

        Example:

        >>> lstm_fast.regularizers.L1L2(l1=1e-5, l2=1e-4).get_config()
        {'l1': 1e-05, 'l2': 0.0001}
        """
        return {}

    @classmethod
    def from_config(cls, config):
        """Create a regularizer from the dict returned by `get_config`.

        Args:
            config: the dict of constructor arguments.

        Returns:
            A new regularizer of this class.
        """
        return cls(**config)


class L1L2(Regularizer):
    """Penalizes both the absolute values and the squares: ``l1 * sum(|w|) + l2 * sum(w**2)``.

    Args:
        l1: float >= 0 (default 0).
        l2: float >= 0 (default 0).

    Example:

    >>> reg = lstm_fast.regularizers.L1L2(l1=0.1, l2=0.1)
    >>> w = np.array([[1.0, -2.0], [0.5, 0.0]])
    >>> round(reg(w), 4)                 # 0.1 * 3.5 + 0.1 * 5.25
    0.875
    >>> reg.gradient(w)                  # 0.1 * sign(w) + 0.2 * w
    array([[ 0.3, -0.5],
           [ 0.2,  0. ]])
    """

    def __init__(self, l1=0.0, l2=0.0):
        for name, value in (("l1", l1), ("l2", l2)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"Expected {name} to be a finite float >= 0. Received: {name}={value!r}"
                )
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w).sum())
        if self.l2:
            total += self.l2 * float(np.square(w).sum())
        return total

    def gradient(self, w):
        g = np.zeros_like(w)
        if self.l1:
            g += self.l1 * np.sign(w)
        if self.l2:
            g += (2.0 * self.l2) * w
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """Penalizes the absolute values of the weights: ``l1 * sum(|w|)``; pushes weights to 0.

    Args:
        l1: float >= 0 (default 0.01, as Keras).

    Example:

    >>> reg = lstm_fast.regularizers.L1(0.1)
    >>> round(reg(np.array([1.0, -2.0, 0.5])), 4)
    0.35
    >>> layer = lstm_fast.Dense(4, kernel_regularizer=reg)
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """Penalizes the squares of the weights: ``l2 * sum(w**2)`` (weight decay in the loss).

    Args:
        l2: float >= 0 (default 0.01, as Keras).

    Example:

    >>> reg = lstm_fast.regularizers.L2(0.1)
    >>> round(reg(np.array([1.0, -2.0, 0.5])), 4)
    0.525
    >>> layer = lstm_fast.Dense(4, kernel_regularizer=reg)
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1=0.01):
    """The same as `L1` (Keras's lower-case alias).

    Args:
        l1: float >= 0 (default 0.01).

    Returns:
        An `L1` regularizer.

    Example:

    >>> layer = lstm_fast.Dense(4, kernel_regularizer=lstm_fast.regularizers.l1(1e-4))
    """
    return L1(l1)


def l2(l2=0.01):
    """The same as `L2` (Keras's lower-case alias).

    Args:
        l2: float >= 0 (default 0.01).

    Returns:
        An `L2` regularizer.

    Example:

    >>> layer = lstm_fast.Dense(4, kernel_regularizer=lstm_fast.regularizers.l2(1e-4))
    """
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """An `L1L2` regularizer, with Keras's defaults for this function (0.01 and 0.01).

    Args:
        l1: float >= 0 (default 0.01).
        l2: float >= 0 (default 0.01).

    Returns:
        An `L1L2` regularizer.

    Example:

    >>> reg = lstm_fast.regularizers.l1_l2(l1=1e-5, l2=1e-4)
    >>> layer = lstm_fast.Dense(4, kernel_regularizer=reg)
    """
    return L1L2(l1, l2)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": lambda: L1L2(0.01, 0.01)}


def get(identifier):
    """Get a regularizer from None, a name ('l1', 'l2', 'l1_l2'), a config dict or an instance.

    This is how layers read arguments such as ``kernel_regularizer``.

    Args:
        identifier: None (no regularizer), 'l1', 'l2' or 'l1_l2' (with the
            default factor 0.01), a `Regularizer` (returned as is), or a
            config dict ``{'class_name': 'L2', 'config': {'l2': 0.1}}``.

    Returns:
        A `Regularizer`, or None.

    Example:

    >>> lstm_fast.regularizers.get("l2").l2
    0.01
    >>> lstm_fast.regularizers.get(None) is None
    True
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _NAMES:
            raise ValueError(
                f"Unknown regularizer. Expected one of {sorted(_NAMES)}. "
                f"Received: regularizer={identifier!r}"
            )
        return _NAMES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise TypeError(
        f"Expected regularizer to be None, a string, a Regularizer or a config dict. "
        f"Received: regularizer={identifier!r}"
    )


def serialize(regularizer):
    """Describe a regularizer as a JSON-serializable dict (what a layer's config stores).

    Args:
        regularizer: a `Regularizer`, or None.

    Returns:
        ``{'class_name': ..., 'config': ...}``, or None for None.

    Example:

    >>> lstm_fast.regularizers.serialize(lstm_fast.regularizers.L2(0.1))
    {'class_name': 'L2', 'config': {'l2': 0.1}}
    """
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config):
    """Create a regularizer from the dict that `serialize` returns (the inverse of `serialize`).

    Args:
        config: ``{'class_name': ..., 'config': {...}}``, or None.

    Returns:
        A new `Regularizer`, or None.

    Example:

    >>> lstm_fast.regularizers.deserialize({"class_name": "L2", "config": {"l2": 0.1}}).l2
    0.1
    """
    return get(config)
