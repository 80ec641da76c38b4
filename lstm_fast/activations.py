"""Activation functions, each with the gradient the layers need for backprop.

Every activation is an `Activation` object: calling it applies the function,
`backward(dy, x, y)` gives dL/dx from dL/dy (x the input, y the output; some
gradients are cheaper from y). The module-level names (`relu`, `tanh`, ...) are
these objects, so `activations.relu(x)` works as in Keras.

The activations: linear, relu, relu6, leaky_relu (slope 0.2), elu, selu,
sigmoid, hard_sigmoid, tanh, softmax and log_softmax (over the last axis),
softplus, softsign, exponential, swish (also named silu) and gelu (the exact,
erf-based form). Layers take them by name: ``Dense(1, activation="sigmoid")``.
`help()` of each one (e.g. ``help(lstm_fast.activations.relu)``) shows its formula.

Example:

>>> lstm_fast.activations.relu(np.array([-1.0, 0.0, 2.0]))
array([0., 0., 2.])
>>> layer = lstm_fast.Dense(4, activation="tanh")
"""

from __future__ import annotations

import numpy as np

__all__ = ["Activation", "get", "serialize", "deserialize"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class Activation:
    """An activation function together with its gradient, as the layers need it.

    The function is elementwise (softmax and log_softmax work over the last
    axis). Calling the object applies the function; `backward` turns the
    gradient of the loss with respect to the output into the gradient with
    respect to the input. The module-level names (`relu`, `tanh`, ...) are
    instances of this class.

    Args:
        name: the Keras name, e.g. 'relu'.
        forward: ``f(x) -> y``, on NumPy arrays.
        backward: ``g(dy, x, y) -> dx``: the gradient with respect to ``x``
            from the gradient ``dy`` with respect to ``y = f(x)``.

    Example:

    >>> act = lstm_fast.activations.get("relu")
    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> y = act(x)
    >>> y
    array([0., 0., 2.])
    >>> act.backward(np.ones(3), x, y)
    array([0., 0., 1.])
    >>> cube = lstm_fast.activations.Activation(
    ...     "cube", lambda x: x**3, lambda dy, x, y: dy * 3 * x**2)
    >>> lstm_fast.Dense(2, activation=cube).activation.name
    'cube'
    """

    def __init__(self, name, forward, backward):
        self.name = name
        self._forward = forward
        self._backward = backward

    def __call__(self, x):
        """Apply the function.

        Args:
            x: an array (or anything NumPy converts to one).

        Returns:
            An array of the shape of ``x``.
        """
        return self._forward(np.asarray(x))

    def backward(self, dy, x, y):
        """The gradient with respect to the input, from the gradient with respect to the output.

        Args:
            dy: dL/dy, the shape of ``y``.
            x: the input the function was applied to.
            y: the output, ``self(x)`` (some gradients are cheaper from it).

        Returns:
            dL/dx, the shape of ``x``.

        Example:

        >>> x = np.array([0.0])
        >>> lstm_fast.activations.sigmoid.backward(np.ones(1), x, lstm_fast.activations.sigmoid(x))
        array([0.25])
        """
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

# name -> (what it computes, example input, the example's output rounded to 4 places)
_X = "np.array([-1.0, 0.0, 2.0])"
_DOCS = {
    "linear": ("The identity: ``x`` unchanged (no activation).", _X,
               "array([-1.,  0.,  2.])"),
    "relu": ("The rectified linear unit: ``max(x, 0)``.", _X, "array([0., 0., 2.])"),
    "relu6": ("ReLU capped at 6: ``min(max(x, 0), 6)``.", "np.array([-1.0, 3.0, 8.0])",
              "array([0., 3., 6.])"),
    "leaky_relu": ("Leaky ReLU: ``x`` for ``x > 0``, else ``0.2 * x``.", _X,
                   "array([-0.2,  0. ,  2. ])"),
    "elu": ("The exponential linear unit: ``x`` for ``x > 0``, else ``exp(x) - 1``.", _X,
            "array([-0.6321,  0.    ,  2.    ])"),
    "selu": ("The scaled ELU: ``scale * elu_alpha(x)``, with Keras's constants "
             "(alpha ~ 1.6733, scale ~ 1.0507).", _X, "array([-1.1113,  0.    ,  2.1014])"),
    "sigmoid": ("The logistic sigmoid: ``1 / (1 + exp(-x))``, in (0, 1).", _X,
                "array([0.2689, 0.5   , 0.8808])"),
    "hard_sigmoid": ("A piecewise-linear sigmoid (Keras 3's): ``clip(x / 6 + 0.5, 0, 1)``.",
                     "np.array([-4.0, 0.0, 1.5, 4.0])", "array([0.  , 0.5 , 0.75, 1.  ])"),
    "tanh": ("The hyperbolic tangent, in (-1, 1).", _X,
             "array([-0.7616,  0.    ,  0.964 ])"),
    "softmax": ("Softmax over the last axis: ``exp(x) / sum(exp(x))``, summing to 1.",
                "np.array([0.0, np.log(3.0)])", "array([0.25, 0.75])"),
    "log_softmax": ("The logarithm of softmax over the last axis, computed stably.",
                    "np.array([0.0, np.log(3.0)])", "array([-1.3863, -0.2877])"),
    "softplus": ("Softplus: ``log(1 + exp(x))``, a smooth ReLU.", _X,
                 "array([0.3133, 0.6931, 2.1269])"),
    "softsign": ("Softsign: ``x / (1 + |x|)``, in (-1, 1).", _X,
                 "array([-0.5   ,  0.    ,  0.6667])"),
    "exponential": ("The exponential: ``exp(x)``.", _X, "array([0.3679, 1.    , 7.3891])"),
    "swish": ("Swish (also named silu): ``x * sigmoid(x)``.", _X,
              "array([-0.2689,  0.    ,  1.7616])"),
    "gelu": ("The Gaussian error linear unit, exact form: ``x * Phi(x)`` with Phi the "
             "standard normal CDF.", _X, "array([-0.1587,  0.    ,  1.9545])"),
}


def _activation_doc(name):
    summary, example_input, output = _DOCS[name]
    return f"""{summary}

    Args:
        x: an array (float32 or float64).

    Returns:
        An array of the shape and dtype of ``x``.

    Example:

    >>> np.round(lstm_fast.activations.{name}({example_input}), 4)
    {output}
    """


for _name, _activation in _REGISTRY.items():
    _activation.__doc__ = _activation_doc(_name)  # shown by inspect.getdoc(relu)
# doctest does not look at instances: hand it their docstrings
__test__ = {_name: _activation.__doc__ for _name, _activation in _REGISTRY.items()}


def get(identifier):
    """Get an activation from a Keras name, an `Activation`, or None (linear).

    This is how layers read their ``activation`` argument. A plain Python
    function is refused (TypeError): lstm_fast needs the gradient too, so
    wrap it in an `Activation` with its ``backward``.

    Args:
        identifier: a name such as 'relu', 'softmax' or 'silu', None or ''
            (linear), an `Activation` (returned as is), or the dict a saved
            config holds.

    Returns:
        An `Activation`.

    Example:

    >>> lstm_fast.activations.get("tanh").name
    'tanh'
    >>> lstm_fast.activations.get(None)
    <activation linear>
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
    """The name of an activation: what a layer's config stores.

    Args:
        activation: an `Activation`, a name or None.

    Returns:
        The canonical name, a string ('silu' gives 'swish', None gives 'linear').

    Example:

    >>> lstm_fast.activations.serialize(lstm_fast.activations.relu)
    'relu'
    >>> lstm_fast.activations.serialize("silu")
    'swish'
    """
    return get(activation).name


def deserialize(name):
    """The activation of a name (the inverse of `serialize`).

    Args:
        name: a name such as 'relu' (anything `get` accepts).

    Returns:
        An `Activation`.

    Example:

    >>> lstm_fast.activations.deserialize("relu")(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    return get(name)
