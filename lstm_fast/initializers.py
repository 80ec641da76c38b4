"""Weight initializers (Keras names, arguments and formulas).

An initializer is called as `init(shape, dtype)` and returns a new array. The
random ones draw from `lstm_fast.utils.get_rng()` (seeded by
`lstm_fast.utils.set_random_seed`), or from their own generator when given a
`seed`.

Fans follow Keras: for a 2-D shape (fan_in, fan_out) = shape; for more axes the
leading axes multiply a receptive field.

Example:

>>> layer = lstm_fast.LSTM(8, kernel_initializer="he_uniform",
...                        recurrent_initializer=lstm_fast.initializers.Orthogonal(gain=0.5))
"""

from __future__ import annotations

import numpy as np

from . import utils

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "RandomUniform",
    "RandomNormal",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "Identity",
    "get",
    "serialize",
    "deserialize",
]


class Initializer:
    """Base class of initializers: ``init(shape, dtype=None)`` returns a new array.

    A subclass implements ``__call__(shape, dtype=None)`` and, when it takes
    arguments, ``get_config()``. A random initializer draws from ``self.rng()``
    so that `lstm_fast.utils.set_random_seed` (or its own ``seed``) makes it
    reproducible.

    Args:
        seed: optional int. With a seed the initializer draws from a private
            generator (the same values for the same sequence of calls); without
            one it draws from lstm_fast's global generator.

    Example:

    >>> init = lstm_fast.initializers.get("glorot_uniform")
    >>> w = init((10, 200), dtype="float32")
    >>> w.shape, w.dtype
    ((10, 200), dtype('float32'))
    >>> class Halves(lstm_fast.initializers.Initializer):
    ...     def __call__(self, shape, dtype=None):
    ...         return np.full(shape, 0.5, dtype or "float32")
    >>> lstm_fast.Dense(2, kernel_initializer=Halves())(np.ones((1, 3))).tolist()
    [[1.5, 1.5]]
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def rng(self):
        """The generator to draw from: the private one (seed given) or lstm_fast's.

        Returns:
            A `numpy.random.Generator`.
        """
        return self._rng if self._rng is not None else utils.get_rng()

    def __call__(self, shape, dtype=None):
        """A new array of the given shape.

        Args:
            shape: a tuple of ints.
            dtype: 'float32' or 'float64' (default: `lstm_fast.utils.floatx()`).

        Returns:
            A NumPy array of that shape and dtype.
        """
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, as a JSON-serializable dict.

        Returns:
            A dict that `from_config` turns back into an equal initializer.

        Example:

        >>> lstm_fast.initializers.RandomUniform(-0.1, 0.1, seed=3).get_config()
        {'minval': -0.1, 'maxval': 0.1, 'seed': 3}
        """
        return {"seed": self.seed} if "seed" in self._config_keys() else {}

    def _config_keys(self):
        return ("seed",)

    @classmethod
    def from_config(cls, config):
        """Create an initializer from the dict returned by `get_config`.

        Args:
            config: the dict of constructor arguments.

        Returns:
            A new initializer of this class.
        """
        return cls(**config)


class Zeros(Initializer):
    """Initializes to zeros (the default for biases).

    Example:

    >>> lstm_fast.initializers.Zeros()((2, 3))
    array([[0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """

    def __init__(self):
        super().__init__()

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, utils.standardize_dtype(dtype))

    def get_config(self):
        return {}


class Ones(Zeros):
    """Initializes to ones.

    Example:

    >>> lstm_fast.initializers.Ones()((2, 3), dtype="float64")
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """

    def __call__(self, shape, dtype=None):
        return np.ones(shape, utils.standardize_dtype(dtype))


class Constant(Initializer):
    """Initializes every entry to the same value.

    Args:
        value: a float (default 0.0).

    Example:

    >>> lstm_fast.initializers.Constant(0.5)((2,))
    array([0.5, 0.5], dtype=float32)
    >>> layer = lstm_fast.LSTM(4, bias_initializer=lstm_fast.initializers.Constant(0.1))
    """

    def __init__(self, value=0.0):
        super().__init__()
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, utils.standardize_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    """Draws from a uniform distribution in ``[minval, maxval)``.

    Args:
        minval: the lower bound (default -0.05, as Keras).
        maxval: the upper bound (default 0.05).
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.RandomUniform(-0.1, 0.1, seed=0)((3, 4))
    >>> w.shape, bool(np.all(np.abs(w) <= 0.1))
    ((3, 4), True)
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        dtype = utils.standardize_dtype(dtype)
        return self.rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    """Draws from a normal distribution.

    Args:
        mean: the mean (default 0.0).
        stddev: the standard deviation (default 0.05, as Keras).
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.RandomNormal(stddev=0.01, seed=0)((100, 100))
    >>> bool(np.isclose(w.std(), 0.01, rtol=0.05))
    True
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        dtype = utils.standardize_dtype(dtype)
        return self.rng().normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(rng, shape, stddev):
    """Normal(0, stddev) redrawn outside two standard deviations (vectorised)."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class TruncatedNormal(Initializer):
    """Draws from a normal distribution, redrawing values more than two stddevs from the mean.

    Args:
        mean: the mean (default 0.0).
        stddev: the standard deviation before truncation (default 0.05, as Keras).
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.TruncatedNormal(stddev=0.02, seed=0)((100, 100))
    >>> bool(np.all(np.abs(w) <= 0.04))
    True
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        dtype = utils.standardize_dtype(dtype)
        return (self.mean + _truncated_normal(self.rng(), shape, self.stddev)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(Initializer):
    """Draws with a variance scaled to the size of the weight: ``scale / n``.

    ``n`` is the number of inputs (``fan_in``), of outputs (``fan_out``) or
    their average (``fan_avg``); for a 2-D shape ``(fan_in, fan_out) = shape``.
    The Glorot, He and LeCun initializers are special cases.

    Args:
        scale: a positive float (default 1.0).
        mode: 'fan_in' (default), 'fan_out' or 'fan_avg'.
        distribution: 'truncated_normal' (default; the stddev is corrected for
            the truncation, as Keras), 'untruncated_normal' or 'uniform'.
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> he = lstm_fast.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal", seed=0)
    >>> w = he((1000, 50))
    >>> bool(np.isclose(w.std(), np.sqrt(2.0 / 1000), rtol=0.05))
    True
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"Expected scale > 0. Received: scale={scale!r}")
        if mode not in self._MODES:
            raise ValueError(f"Expected mode in {self._MODES}. Received: mode={mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"Expected distribution in {self._DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype=None):
        dtype = utils.standardize_dtype(dtype)
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self.rng()
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, np.sqrt(variance), shape).astype(dtype)
        # stddev of a unit normal truncated at +-2
        return _truncated_normal(rng, shape, np.sqrt(variance) / 0.87962566103423978).astype(dtype)

    def get_config(self):
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


def _fixed(name, scale, mode, distribution, doc):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        """The constructor arguments, as a JSON-serializable dict: ``{'seed': ...}``.

        Returns:
            A dict that `from_config` turns back into an equal initializer.
        """
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                            "__doc__": doc})


GlorotUniform = _fixed(
    "GlorotUniform", 1.0, "fan_avg", "uniform",
    """Glorot (Xavier) uniform: the default kernel initializer of LSTM and Dense.

    Draws from ``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``.

    Args:
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.GlorotUniform(seed=1)((10, 200))
    >>> bool(np.all(np.abs(w) <= np.sqrt(6 / (10 + 200))))
    True
    """,
)
GlorotNormal = _fixed(
    "GlorotNormal", 1.0, "fan_avg", "truncated_normal",
    """Glorot (Xavier) normal: a truncated normal with stddev ``sqrt(2 / (fan_in + fan_out))``.

    Args:
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.GlorotNormal(seed=0)((500, 500))
    >>> bool(np.isclose(w.std(), np.sqrt(2 / (500 + 500)), rtol=0.05))
    True
    """,
)
HeUniform = _fixed(
    "HeUniform", 2.0, "fan_in", "uniform",
    """He uniform: draws from ``U(-limit, limit)`` with ``limit = sqrt(6 / fan_in)``.

    Suits layers followed by a ReLU.

    Args:
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.HeUniform(seed=0)((10, 20))
    >>> bool(np.all(np.abs(w) <= np.sqrt(6 / 10)))
    True
    """,
)
HeNormal = _fixed(
    "HeNormal", 2.0, "fan_in", "truncated_normal",
    """He normal: a truncated normal with stddev ``sqrt(2 / fan_in)``.

    Suits layers followed by a ReLU.

    Args:
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.HeNormal(seed=0)((1000, 50))
    >>> bool(np.isclose(w.std(), np.sqrt(2 / 1000), rtol=0.05))
    True
    """,
)
LecunUniform = _fixed(
    "LecunUniform", 1.0, "fan_in", "uniform",
    """LeCun uniform: draws from ``U(-limit, limit)`` with ``limit = sqrt(3 / fan_in)``.

    Args:
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.LecunUniform(seed=0)((10, 20))
    >>> bool(np.all(np.abs(w) <= np.sqrt(3 / 10)))
    True
    """,
)
LecunNormal = _fixed(
    "LecunNormal", 1.0, "fan_in", "truncated_normal",
    """LeCun normal: a truncated normal with stddev ``sqrt(1 / fan_in)``.

    Suits layers followed by a SELU.

    Args:
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.LecunNormal(seed=0)((1000, 50))
    >>> bool(np.isclose(w.std(), np.sqrt(1 / 1000), rtol=0.05))
    True
    """,
)


class Orthogonal(Initializer):
    """A random orthogonal matrix (rows or columns orthonormal), times ``gain``.

    The default for the recurrent kernel of LSTM: an orthogonal matrix keeps
    the size of the state through many steps. The leading axes are flattened
    into rows. It comes from the QR decomposition of a normal matrix, with the
    signs fixed so that the result is uniformly distributed.

    Args:
        gain: multiplicative factor (default 1.0).
        seed: optional int for a private generator (see `Initializer`).

    Example:

    >>> w = lstm_fast.initializers.Orthogonal(seed=0)((50, 200))
    >>> np.allclose(w @ w.T, np.eye(50), atol=1e-5)     # orthonormal rows
    True
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        dtype = utils.standardize_dtype(dtype)
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"Expected a shape of rank >= 2 for the orthogonal initializer. "
                f"Received: shape={shape}"
            )
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self.rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """The identity matrix (2-D shapes only; ones on the diagonal), times ``gain``.

    Args:
        gain: multiplicative factor (default 1.0).

    Example:

    >>> lstm_fast.initializers.Identity(gain=2.0)((2, 3))
    array([[2., 0., 0.],
           [0., 2., 0.]], dtype=float32)
    """

    def __init__(self, gain=1.0):
        super().__init__()
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"Expected a 2-D shape for Identity. Received: shape={tuple(shape)}")
        return self.gain * np.eye(*shape, dtype=utils.standardize_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


_CLASSES = {
    cls.__name__: cls
    for cls in (
        Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling,
        GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal,
        Orthogonal, Identity,
    )
}
_NAMES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "uniform": RandomUniform,
    "random_uniform": RandomUniform, "normal": RandomNormal, "random_normal": RandomNormal,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity,
}


def get(identifier):
    """Get an initializer from a Keras name, a config dict, an instance or a function.

    This is how layers read arguments such as ``kernel_initializer``.

    Args:
        identifier: a name such as 'glorot_uniform', 'orthogonal', 'zeros'
            (or a class name such as 'GlorotUniform'), an `Initializer`
            (returned as is), a config dict such as
            ``{'class_name': 'Constant', 'config': {'value': 0.5}}``, or a
            function ``f(shape, dtype)`` returning an array (returned as is).

    Returns:
        An initializer (a new one for a name or a dict).

    Example:

    >>> init = lstm_fast.initializers.get("orthogonal")
    >>> type(init).__name__, init((4, 16)).shape
    ('Orthogonal', (4, 16))
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown initializer. Expected one of {sorted(_NAMES)}. "
                f"Received: initializer={identifier!r}"
            )
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _CLASSES.get(identifier["class_name"])
        if cls is None:
            raise ValueError(
                f"Unknown initializer class. Expected one of {sorted(_CLASSES)}. "
                f"Received: class_name={identifier['class_name']!r}"
            )
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise TypeError(
        f"Expected initializer to be a string, an Initializer, a config dict or a callable. "
        f"Received: initializer={identifier!r}"
    )


def serialize(initializer):
    """Describe an initializer as a JSON-serializable dict (what a layer's config stores).

    Args:
        initializer: an `Initializer`. A plain function is returned as is (it
            cannot be written to a file).

    Returns:
        ``{'class_name': ..., 'config': ...}``, which `deserialize` turns back
        into an equal initializer.

    Example:

    >>> lstm_fast.initializers.serialize(lstm_fast.initializers.Constant(0.5))
    {'class_name': 'Constant', 'config': {'value': 0.5}}
    """
    if not isinstance(initializer, Initializer):
        return initializer
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    """Create an initializer from the dict that `serialize` returns (the inverse of `serialize`).

    Args:
        config: ``{'class_name': ..., 'config': {...}}`` (a name or an
            initializer is accepted too, as in `get`).

    Returns:
        A new initializer.

    Example:

    >>> init = lstm_fast.initializers.deserialize(
    ...     {"class_name": "Constant", "config": {"value": 0.5}})
    >>> init((2,))
    array([0.5, 0.5], dtype=float32)
    """
    return get(config)
