"""Activation functions, each with the gradient the layers need for backprop.

Every activation is an `Activation` object: calling it applies the function,
`backward(dy, x, y)` gives dL/dx from dL/dy (x the input, y the output; some
gradients are cheaper from y). The module-level names (`relu`, `tanh`, ...) are
these objects, so `activations.relu(x)` works as in Keras.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Activation", "get", "serialize", "deserialize"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class Activation:
    """An elementwise (or last-axis, for softmax) function and its gradient.

    Args:
        name: the Keras name, e.g. 'relu'.
        forward: f(x) -> y.
        backward: g(dy, x, y) -> dx.

    Example:

    >>> act = lstm_fast.activations.get("relu")
    >>> y = act(x); dx = act.backward(dy, x, y)
    """

    def __init__(self, name, forward, backward):
        self.name = name
        self._forward = forward
        self._backward = backward

    def __call__(self, x):
        return self._forward(np.asarray(x))

    def backward(self, dy, x, y):
        """dL/dx given dL/dy, the input x and the output y."""
        return self._backward(dy, x, y)

    def __repr__(self):
        return f"<activation {self.name}>"


def _sigmoid(x):
    # exp of a non-positive number only: no overflow warnings for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_backward(dy, x, y):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _log_softmax(x):
    s = x - x.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _erf(x):
    # Numerical Recipes' erfc Chebyshev fit (fractional error < 1.2e-7): NumPy has
    # no erf and SciPy is not a dependency.
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * a)
    y = t * np.exp(
        -a * a
        - 1.26551223
        + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
            0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))
        ))))
    )
    return np.sign(x) * (1.0 - y)


def _gelu_backward(dy, x, y):
    cdf = 0.5 * (1.0 + _erf(x / np.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    return (dy * (cdf + x * pdf)).astype(x.dtype, copy=False)


def _softplus(x):
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def _selu(x):
    return (_SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))).astype(
        x.dtype, copy=False
    )


def _hard_sigmoid(x):
    # Keras 3: relu6(x + 3) / 6
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0).astype(x.dtype, copy=False)


_TABLE = {
    "linear": (lambda x: x, lambda dy, x, y: dy),
    "relu": (lambda x: np.maximum(x, 0), lambda dy, x, y: dy * (x > 0)),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda dy, x, y: dy * ((x > 0) & (x < 6))),
    "sigmoid": (_sigmoid, lambda dy, x, y: dy * y * (1 - y)),
    "tanh": (np.tanh, lambda dy, x, y: dy * (1 - y * y)),
    "softmax": (_softmax, _softmax_backward),
    "log_softmax": (
        _log_softmax,
        lambda dy, x, y: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True),
    ),
    "softplus": (_softplus, lambda dy, x, y: dy * _sigmoid(x)),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda dy, x, y: dy / (1 + np.abs(x)) ** 2),
    "elu": (_elu, lambda dy, x, y: dy * np.where(x > 0, 1, y + 1)),
    "selu": (
        _selu,
        lambda dy, x, y: dy * np.where(x > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA),
    ),
    "exponential": (np.exp, lambda dy, x, y: dy * y),
    "swish": (lambda x: x * _sigmoid(x), None),
    "gelu": (lambda x: (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(x.dtype, copy=False),
             _gelu_backward),
    "hard_sigmoid": (_hard_sigmoid, lambda dy, x, y: dy * ((x > -3) & (x < 3)) / 6.0),
    "leaky_relu": (
        lambda x: np.where(x > 0, x, 0.2 * x).astype(x.dtype, copy=False),
        lambda dy, x, y: dy * np.where(x > 0, 1.0, 0.2).astype(dy.dtype, copy=False),
    ),
}


def _swish_backward(dy, x, y):
    s = _sigmoid(x)
    return dy * (s + x * s * (1 - s))


_TABLE["swish"] = (_TABLE["swish"][0], _swish_backward)
_ALIASES = {"silu": "swish", None: "linear", "": "linear"}

_REGISTRY = {name: Activation(name, f, b) for name, (f, b) in _TABLE.items()}
globals().update(_REGISTRY)
silu = _REGISTRY["swish"]
__all__ += sorted(_REGISTRY) + ["silu"]


def get(identifier):
    """An `Activation` from a Keras name, an `Activation`, or None (linear).

    Args:
        identifier: e.g. 'relu', 'softmax', None, or `lstm_fast.activations.relu`.

    Returns:
        An `Activation`.

    Example:

    >>> lstm_fast.activations.get("tanh").name
    'tanh'
    """
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, dict):  # serialized form
        identifier = identifier.get("config", identifier.get("name"))
    if identifier is None or isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name in _REGISTRY:
            return _REGISTRY[name]
        raise ValueError(
            f"Unknown activation. Expected one of {sorted(_REGISTRY) + ['silu']}. "
            f"Received: activation={identifier!r}"
        )
    if callable(identifier):
        raise TypeError(
            "Custom activation functions are not supported (lstm_fast needs the gradient). "
            "Expected a name from lstm_fast.activations or an Activation with a backward. "
            f"Received: activation={identifier!r}"
        )
    raise TypeError(
        f"Expected activation to be a string, an Activation or None. "
        f"Received: activation={identifier!r}"
    )


def serialize(activation):
    """The name of an activation (what get_config stores).

    Example:

    >>> serialize("silu")
    'swish'
    """
    return get(activation).name


def deserialize(name):
    """The activation of a name (inverse of `serialize`).

    Example:

    >>> deserialize("relu")(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    return get(name)
