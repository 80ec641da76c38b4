"""Weight initializers (Keras names, arguments and formulas).

An initializer is called as `init(shape, dtype)` and returns a new array. The
random ones draw from `lstm_fast.utils.get_rng()` (seeded by
`lstm_fast.utils.set_random_seed`), or from their own generator when given a
`seed`.

Fans follow Keras: for a 2-D shape (fan_in, fan_out) = shape; for more axes the
leading axes multiply a receptive field.
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
    """Base class: `__call__(shape, dtype=None)` and `get_config()`.

    Example:

    >>> init = lstm_fast.initializers.get("glorot_uniform")
    >>> w = init((10, 200), dtype="float32")
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def rng(self):
        """The generator to draw from: the private one (seed given) or lstm_fast's."""
        return self._rng if self._rng is not None else utils.get_rng()

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments (round-trips via from_config)."""
        return {"seed": self.seed} if "seed" in self._config_keys() else {}

    def _config_keys(self):
        return ("seed",)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    """All zeros.

    Example:

    >>> lstm_fast.initializers.Zeros()((2, 3))
    """

    def __init__(self):
        super().__init__()

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, utils.standardize_dtype(dtype))

    def get_config(self):
        return {}


class Ones(Zeros):
    """All ones.

    Example:

    >>> lstm_fast.initializers.Ones()((2, 3))
    """

    def __call__(self, shape, dtype=None):
        return np.ones(shape, utils.standardize_dtype(dtype))


class Constant(Initializer):
    """Every entry equal to `value`.

    Args:
        value: a float.

    Example:

    >>> LSTM(4, kernel_initializer=Constant(0.1))
    """

    def __init__(self, value=0.0):
        super().__init__()
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, utils.standardize_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    """Uniform in [minval, maxval).

    Args:
        minval, maxval: bounds (defaults -0.05, 0.05 as Keras).
        seed: optional int for a private generator.

    Example:

    >>> RandomUniform(-0.1, 0.1)((3, 4))
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
    """Normal with the given mean and stddev (defaults 0, 0.05).

    Example:

    >>> RandomNormal(stddev=0.01)((3, 4))
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
    """Normal truncated at two standard deviations (defaults mean 0, stddev 0.05).

    Example:

    >>> TruncatedNormal(stddev=0.02)((3, 4))
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
    """Keras's variance scaling: variance = scale / n, n from `mode`.

    Args:
        scale: positive float.
        mode: 'fan_in', 'fan_out' or 'fan_avg'.
        distribution: 'truncated_normal', 'untruncated_normal' or 'uniform'.
        seed: optional int.

    Example:

    >>> VarianceScaling(2.0, "fan_in", "truncated_normal")((10, 5))  # He normal
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
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                            "__doc__": doc})


GlorotUniform = _fixed(
    "GlorotUniform", 1.0, "fan_avg", "uniform",
    "Glorot (Xavier) uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).\n\n"
    "    Example:\n\n    >>> GlorotUniform(seed=1)((10, 200))\n",
)
GlorotNormal = _fixed(
    "GlorotNormal", 1.0, "fan_avg", "truncated_normal",
    "Glorot normal: truncated normal, stddev sqrt(2 / (fan_in + fan_out)).\n\n"
    "    Example:\n\n    >>> GlorotNormal()((10, 20))\n",
)
HeUniform = _fixed(
    "HeUniform", 2.0, "fan_in", "uniform",
    "He uniform: U(-l, l), l = sqrt(6 / fan_in).\n\n"
    "    Example:\n\n    >>> HeUniform()((10, 20))\n",
)
HeNormal = _fixed(
    "HeNormal", 2.0, "fan_in", "truncated_normal",
    "He normal: truncated normal, stddev sqrt(2 / fan_in).\n\n"
    "    Example:\n\n    >>> HeNormal()((10, 20))\n",
)
LecunUniform = _fixed(
    "LecunUniform", 1.0, "fan_in", "uniform",
    "LeCun uniform: U(-l, l), l = sqrt(3 / fan_in).\n\n"
    "    Example:\n\n    >>> LecunUniform()((10, 20))\n",
)
LecunNormal = _fixed(
    "LecunNormal", 1.0, "fan_in", "truncated_normal",
    "LeCun normal: truncated normal, stddev sqrt(1 / fan_in).\n\n"
    "    Example:\n\n    >>> LecunNormal()((10, 20))\n",
)


class Orthogonal(Initializer):
    """A random orthogonal matrix (rows or columns orthonormal), times `gain`.

    The leading axes are flattened into rows. From the QR decomposition of a
    normal matrix, with the signs fixed so the result is uniformly distributed.

    Args:
        gain: multiplicative factor (default 1.0).
        seed: optional int.

    Example:

    >>> w = Orthogonal()((50, 200))   # w @ w.T == I(50)
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
    """The identity matrix (2-D shapes only), times `gain`.

    Example:

    >>> Identity()((3, 3))
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
    """An `Initializer` from a Keras name, a config dict, an instance, or a callable.

    Args:
        identifier: e.g. 'glorot_uniform', `Constant(0.5)`,
            {'class_name': 'Constant', 'config': {'value': 0.5}}, or a function
            `f(shape, dtype)`.

    Returns:
        An initializer.

    Example:

    >>> get("orthogonal")((4, 16)).shape
    (4, 16)
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
    """{'class_name', 'config'} of an initializer (what get_config stores).

    A plain callable is returned as is (it cannot be written to a file).

    Example:

    >>> serialize(Constant(0.5))
    {'class_name': 'Constant', 'config': {'value': 0.5}}
    """
    if not isinstance(initializer, Initializer):
        return initializer
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    """Inverse of `serialize`.

    Example:

    >>> deserialize({'class_name': 'Constant', 'config': {'value': 0.5}})((2,))
    """
    return get(config)
