"""Weight regularizers: a penalty added to the loss, and its gradient.

`reg(w)` gives the penalty (a float), `reg.gradient(w)` its gradient with
respect to w. Keras's formulas: L1 = l1 * sum(|w|), L2 = l2 * sum(w**2).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


class Regularizer:
    """Base class: `__call__(w) -> float`, `gradient(w) -> array`, `get_config()`.

    Example:

    >>> LSTM(8, kernel_regularizer=lstm_fast.regularizers.L2(1e-4))
    """

    def __call__(self, w):
        raise NotImplementedError

    def gradient(self, w):
        """d penalty / d w, an array shaped as w."""
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments (round-trips via from_config)."""
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2).

    Args:
        l1: float >= 0 (default 0).
        l2: float >= 0 (default 0).

    Example:

    >>> L1L2(l1=1e-5, l2=1e-4)(np.ones((2, 2)))
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
    """l1 * sum(|w|) (default l1=0.01, as Keras).

    Example:

    >>> Dense(4, kernel_regularizer=L1(0.01))
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w**2) (default l2=0.01, as Keras).

    Example:

    >>> Dense(4, kernel_regularizer=L2(0.01))
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1=0.01):
    """Alias of `L1`.

    Example:

    >>> Dense(4, kernel_regularizer=l1(1e-4))
    """
    return L1(l1)


def l2(l2=0.01):
    """Alias of `L2`.

    Example:

    >>> Dense(4, kernel_regularizer=l2(1e-4))
    """
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """`L1L2` with Keras's function defaults (0.01, 0.01).

    Example:

    >>> Dense(4, kernel_regularizer=l1_l2(1e-5, 1e-4))
    """
    return L1L2(l1, l2)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": lambda: L1L2(0.01, 0.01)}


def get(identifier):
    """A `Regularizer` from None, a name ('l1', 'l2', 'l1_l2'), a config dict or an instance.

    Example:

    >>> get("l2").l2
    0.01
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
    """{'class_name', 'config'} or None.

    Example:

    >>> serialize(L2(0.1))
    {'class_name': 'L2', 'config': {'l2': 0.1}}
    """
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config):
    """Inverse of `serialize`.

    Example:

    >>> deserialize({'class_name': 'L2', 'config': {'l2': 0.1}}).l2
    0.1
    """
    return get(config)
