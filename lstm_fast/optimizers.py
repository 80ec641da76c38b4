"""Optimizers with Keras 3's update rules and defaults, on one flat parameter buffer.

A model keeps all its parameters in one contiguous 1-D array and its gradients
in another of the same length; each weight variable is a slice ``(offset, size)``
of them. An optimizer keeps each kind of state (first moments, second moments,
...) in one flat buffer of the same layout, so a step is a handful of
whole-buffer NumPy passes done in place. Per-variable work happens only where
Keras semantics need it (``clipnorm``, weight-decay exclusions).

The order of one step is Keras's: clip the gradients (``clipnorm`` per
variable, or ``global_clipnorm``, or ``clipvalue``; only one may be set), apply
weight decay ``w -= w * weight_decay * lr``, run the optimizer's update rule,
then ``iterations += 1``.

Most code only names an optimizer in `compile`; the model builds it on its
parameters and calls `Optimizer.apply` once per batch.

Example:

>>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
>>> model.compile(optimizer=lstm_fast.optimizers.Adam(learning_rate=1e-3), loss="mse")

Used directly, on a flat parameter vector:

>>> opt = lstm_fast.optimizers.get("sgd")               # SGD(learning_rate=0.01)
>>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
>>> opt.build([(0, 2), (2, 1)], "float32")              # two variables: [0:2] and [2:3]
>>> opt.apply(params, np.array([1.0, 1.0, -1.0], dtype="float32"))
>>> params
array([0.99, 1.99, 3.01], dtype=float32)
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np

from ._engine import _adam_update

__all__ = [
    "SGD",
    "CosineDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]


class LearningRateSchedule:
    """Base class of learning-rate schedules: a learning rate that changes with the step.

    A schedule is called with the optimizer's step count and returns the
    learning rate of that step: ``schedule(step) -> float``. The step is the
    optimizer's ``iterations`` before the update (0 for the first batch), as
    in Keras; it counts batches, not epochs. Pass a schedule as the
    optimizer's ``learning_rate``. A subclass implements ``__call__`` and
    ``get_config`` (so that a model compiled with it can be saved).

    Example:

    >>> class Halving(lstm_fast.optimizers.LearningRateSchedule):
    ...     def __init__(self, initial_learning_rate, every):
    ...         self.initial_learning_rate, self.every = initial_learning_rate, every
    ...     def __call__(self, step):
    ...         return self.initial_learning_rate * 0.5 ** (step // self.every)
    ...     def get_config(self):
    ...         return {"initial_learning_rate": self.initial_learning_rate, "every": self.every}
    >>> schedule = Halving(0.1, every=100)
    >>> schedule(0), schedule(100), schedule(250)
    (0.1, 0.05, 0.025)
    >>> opt = lstm_fast.optimizers.SGD(learning_rate=schedule)
    """

    def __call__(self, step):
        """The learning rate at ``step``.

        Args:
            step: the number of optimizer steps done so far (an int >= 0).

        Returns:
            The learning rate, a float.
        """
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments of the schedule, as a JSON-serializable dict.

        Returns:
            A dict that `from_config` turns back into an equal schedule.
        """
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        """Create a schedule from the dict returned by `get_config`.

        Args:
            config: the dict of constructor arguments.

        Returns:
            A new schedule of this class.
        """
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """A learning rate multiplied by ``decay_rate`` every ``decay_steps`` steps, smoothly.

    ``lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: the learning rate of the first step (a float).
        decay_steps: the number of steps (batches) over which the rate is
            multiplied by ``decay_rate``; an int > 0.
        decay_rate: the factor per ``decay_steps`` steps, e.g. 0.5 or 0.96.
        staircase: if True, ``step / decay_steps`` is rounded down, so the
            rate drops in steps instead of continuously. Defaults to False.
        name: optional name of the schedule.

    Example:

    >>> lr = lstm_fast.optimizers.schedules.ExponentialDecay(
    ...     0.1, decay_steps=100, decay_rate=0.5)
    >>> lr(0), lr(100), lr(200)
    (0.1, 0.05, 0.025)
    >>> round(lr(50), 4)
    0.0707
    >>> opt = lstm_fast.optimizers.SGD(learning_rate=lr)
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        if decay_steps <= 0:
            raise ValueError(f"`decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name or "ExponentialDecay"

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate**p

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class InverseTimeDecay(LearningRateSchedule):
    """A learning rate that decays as one over time.

    ``lr(step) = initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Args:
        initial_learning_rate: the learning rate of the first step (a float).
        decay_steps: an int > 0, the time scale of the decay in steps.
        decay_rate: a float, how fast the rate falls.
        staircase: if True, ``step / decay_steps`` is rounded down (the rate
            drops in steps). Defaults to False.
        name: optional name of the schedule.

    Example:

    >>> lr = lstm_fast.optimizers.schedules.InverseTimeDecay(
    ...     0.1, decay_steps=10, decay_rate=1.0)
    >>> lr(0), lr(10), lr(30)
    (0.1, 0.05, 0.025)
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        if decay_steps <= 0:
            raise ValueError(f"`decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name or "InverseTimeDecay"

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """A learning rate that is constant between given steps.

    The rate is ``values[0]`` while ``step <= boundaries[0]``, ``values[1]``
    while ``step <= boundaries[1]``, ..., and ``values[-1]`` after the last
    boundary.

    Args:
        boundaries: an increasing list of steps (ints).
        values: a list of ``len(boundaries) + 1`` learning rates.
        name: optional name of the schedule.

    Example:

    >>> lr = lstm_fast.optimizers.schedules.PiecewiseConstantDecay(
    ...     boundaries=[100, 200], values=[0.1, 0.01, 0.001])
    >>> lr(0), lr(100), lr(101), lr(500)
    (0.1, 0.1, 0.01, 0.001)
    """

    def __init__(self, boundaries, values, name=None):
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                "The length of `values` must be len(boundaries) + 1. Received: "
                f"len(boundaries)={len(boundaries)}, len(values)={len(values)}"
            )
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]
        self.name = name or "PiecewiseConstant"

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """A learning rate that follows half a cosine down to a floor, after an optional warmup.

    Without warmup: ``lr(step) = initial_learning_rate * ((1 - alpha) * c + alpha)``
    with ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``. With
    ``warmup_target``, the rate first rises linearly from ``initial_learning_rate``
    to ``warmup_target`` over ``warmup_steps``, then decays from ``warmup_target``.
    After the decay the rate stays at its final value.

    Args:
        initial_learning_rate: the learning rate of the first step (a float).
        decay_steps: the number of steps of the decay; an int > 0.
        alpha: the final rate as a fraction of the starting rate. Defaults to 0.
        name: optional name of the schedule.
        warmup_target: optional float, the rate reached at the end of the warmup.
        warmup_steps: the number of warmup steps. Defaults to 0.

    Example:

    >>> lr = lstm_fast.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    >>> [round(lr(step), 4) for step in (0, 50, 100, 1000)]
    [0.1, 0.05, 0.0, 0.0]
    >>> warm = lstm_fast.optimizers.schedules.CosineDecay(
    ...     0.0, decay_steps=100, warmup_target=0.1, warmup_steps=10)
    >>> [round(warm(step), 4) for step in (0, 5, 10, 60, 110)]
    [0.0, 0.05, 0.1, 0.05, 0.0]
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name=None,
        warmup_target=None,
        warmup_steps=0,
    ):
        if decay_steps <= 0:
            raise ValueError(f"`decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = decay_steps
        self.alpha = float(alpha)
        self.name = name or "CosineDecay"
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = warmup_steps

    def _decay(self, step, start):
        fraction = step / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.warmup_steps + self.decay_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * fraction
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


def _serialize_schedule(schedule):
    """Describe a learning-rate schedule as a JSON-serializable dict.

    Args:
        schedule: a `LearningRateSchedule`.

    Returns:
        ``{'class_name': ..., 'config': ...}``, read back by `schedules.deserialize`.

    Example:

    >>> lr = lstm_fast.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5)
    >>> lstm_fast.optimizers.schedules.serialize(lr)["class_name"]
    'ExponentialDecay'
    """
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def _deserialize_schedule(config):
    """Create a built-in learning-rate schedule from the dict that `schedules.serialize` returns.

    Args:
        config: ``{'class_name': ..., 'config': {...}}`` naming one of
            ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay.

    Returns:
        A new schedule.

    Example:

    >>> lr = lstm_fast.optimizers.schedules.deserialize(
    ...     {"class_name": "ExponentialDecay",
    ...      "config": {"initial_learning_rate": 0.1, "decay_steps": 100, "decay_rate": 0.5}})
    >>> lr(100)
    0.05
    """
    classes = {
        cls.__name__: cls
        for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)
    }
    cls = classes.get(config.get("class_name"))
    if cls is None:
        raise ValueError(
            f"Unknown learning-rate schedule: {config.get('class_name')!r}. "
            f"Expected one of {sorted(classes)}."
        )
    return cls.from_config(dict(config.get("config") or {}))


# `lstm_fast.optimizers.schedules.ExponentialDecay(...)`, as Keras's namespace. A
# module object (not registered in sys.modules) so that it has a docstring for help().
schedules = types.ModuleType(
    "lstm_fast.optimizers.schedules",
    """Learning-rate schedules, as ``keras.optimizers.schedules``.

    A schedule maps the optimizer's step (the number of batches done) to a
    learning rate; pass one as an optimizer's ``learning_rate``. The classes
    are `LearningRateSchedule` (the base class), `ExponentialDecay`,
    `InverseTimeDecay`, `PiecewiseConstantDecay` and `CosineDecay`;
    ``serialize`` and ``deserialize`` convert a schedule to and from a dict.

    Example::

        lr = lstm_fast.optimizers.schedules.ExponentialDecay(0.01, 1000, 0.9)
        model.compile(optimizer=lstm_fast.optimizers.Adam(learning_rate=lr), loss="mse")
    """,
)
schedules.LearningRateSchedule = LearningRateSchedule
schedules.ExponentialDecay = ExponentialDecay
schedules.InverseTimeDecay = InverseTimeDecay
schedules.PiecewiseConstantDecay = PiecewiseConstantDecay
schedules.CosineDecay = CosineDecay
schedules.serialize = _serialize_schedule
schedules.deserialize = _deserialize_schedule
schedules.__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "CosineDecay",
    "serialize",
    "deserialize",
]


def _check_positive_or_none(name, value):
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Expected `{name}` to be a float or None. Received: {name}={value!r}"
        ) from None
    if not value > 0:
        raise ValueError(f"Expected `{name}` to be > 0. Received: {name}={value}")
    return value


class Optimizer:
    """Base class of the optimizers: what they share (learning rate, clipping, weight decay).

    Args:
        learning_rate: A float, a schedule (`schedules.ExponentialDecay`, ...),
            or a callable taking the current step (int) and returning the
            learning rate.
        weight_decay: Float. If set, each step first applies
            ``w -= w * weight_decay * learning_rate`` to every variable (Keras's
            decoupled weight decay).
        clipnorm: Float. If set, the gradient of each weight variable is
            individually clipped so that its L2 norm is no higher than this value.
        clipvalue: Float. If set, every gradient element is clipped to
            ``[-clipvalue, clipvalue]``.
        global_clipnorm: Float. If set, the gradients of all weights are scaled
            so that their global L2 norm is no higher than this value.
        name: String, the name of the optimizer.
        use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps: Keras arguments accepted with their
            defaults only (other values raise NotImplementedError).

    Subclasses define ``_slot_names()`` (the kinds of state), optionally
    ``_slot_initial_value(name)``, and ``_update(params, grads, lr)``, which
    updates the flat buffers in place.

    Example:

    >>> opt = lstm_fast.optimizers.SGD(learning_rate=0.1, clipvalue=0.5)
    >>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
    >>> opt.build([(0, 3)], "float32")
    >>> opt.apply(params, np.array([2.0, 0.1, -3.0], dtype="float32"))
    >>> params
    array([0.95, 1.99, 3.05], dtype=float32)
    >>> opt.iterations
    1
    """

    _default_name = "optimizer"

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        **kwargs,
    ):
        if kwargs.pop("decay", None) is not None:
            warnings.warn(
                "Argument `decay` is no longer supported and will be ignored.", stacklevel=2
            )
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if use_ema:
            raise NotImplementedError("`use_ema=True` is not supported by lstm_fast optimizers.")
        if loss_scale_factor is not None or gradient_accumulation_steps is not None:
            raise NotImplementedError(
                "`loss_scale_factor` and `gradient_accumulation_steps` are not supported by "
                "lstm_fast optimizers."
            )
        n_clip = sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm))
        if n_clip > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        self.name = name if name is not None else self._default_name
        self.clipnorm = _check_positive_or_none("clipnorm", clipnorm)
        self.clipvalue = _check_positive_or_none("clipvalue", clipvalue)
        self.global_clipnorm = _check_positive_or_none("global_clipnorm", global_clipnorm)
        if weight_decay is not None:
            weight_decay = float(weight_decay)
            if weight_decay < 0:
                raise ValueError(
                    f"Expected `weight_decay` to be >= 0. Received: weight_decay={weight_decay}"
                )
        self.weight_decay = weight_decay
        self.learning_rate = learning_rate
        self.iterations = 0
        self.built = False
        self._var_slices = None
        self._var_names = None
        self._exclude_names = ()
        self._dtype = None
        self._slots = {}
        self._pending_state = None

    # ------------------------------------------------------------------ lr
    @property
    def learning_rate(self):
        """The learning rate of the next step (a float; settable at any time)."""
        if callable(self._learning_rate):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, dict):
            value = schedules.deserialize(value)
        if callable(value):
            self._learning_rate = value
            return
        try:
            lr = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                "Argument `learning_rate` should be a float or a callable taking the step. "
                f"Received: learning_rate={value!r}"
            ) from None
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"Expected `learning_rate` to be finite and >= 0. Received: {lr}")
        self._learning_rate = lr

    # ------------------------------------------------------------ building
    def _slot_names(self):
        return ()

    def _slot_initial_value(self, name):
        return 0.0

    def exclude_from_weight_decay(self, var_names=None):
        """Exclude the variables whose name contains one of ``var_names`` from weight decay.

        Must be called before ``build``; it needs the variable names given to ``build``.

        Args:
            var_names: a list of strings; a variable is excluded when its name
                contains one of them (e.g. ``["bias"]``).

        Example:

        >>> opt = lstm_fast.optimizers.AdamW(weight_decay=0.01)
        >>> opt.exclude_from_weight_decay(var_names=["bias"])
        """
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` must be called before `build()`.")
        self._exclude_names = tuple(var_names or ())

    def build(self, var_slices, dtype, var_names=None):
        """Create the optimizer state for a flat parameter vector.

        Args:
            var_slices: list of ``(offset, size)``, one per weight variable, into
                the model's flat 1-D parameter vector.
            dtype: float32 or float64, the dtype of the parameters.
            var_names: optional list of variable names (same order), used by
                ``exclude_from_weight_decay``.

        Example:

        >>> opt = lstm_fast.optimizers.Adam()
        >>> opt.build([(0, 12), (12, 4)], "float32", var_names=["kernel", "bias"])
        >>> opt.variables()["momentum"].shape
        (16,)
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"Expected dtype float32 or float64. Received: dtype={dtype}")
        slices = []
        for item in var_slices:
            offset, size = (int(v) for v in item)
            if offset < 0 or size < 0:
                raise ValueError(f"Expected non-negative (offset, size). Received: {item}")
            slices.append((offset, size))
        if var_names is not None and len(var_names) != len(slices):
            raise ValueError(
                f"Expected one name per variable. Received: {len(var_names)} names for "
                f"{len(slices)} variables"
            )
        ordered = sorted(slices)
        end = 0
        contiguous = True
        for offset, size in ordered:
            if offset < end:
                raise ValueError(f"Variable slices overlap. Received: var_slices={slices}")
            if offset != end:
                contiguous = False
            end = offset + size
        self._var_slices = slices
        self._var_names = list(var_names) if var_names is not None else None
        self._dtype = dtype
        self._size = end
        # When the variables do not tile [0, end) the step works on a gathered copy.
        self._index = (
            None
            if contiguous
            else np.concatenate([np.arange(o, o + s) for o, s in ordered]).astype(np.intp)
        )
        n = sum(size for _, size in slices)
        self._slots = {
            name: np.full(n, self._slot_initial_value(name), dtype=dtype)
            for name in self._slot_names()
        }
        self._scratch = [np.empty(n, dtype=dtype) for _ in range(2)]
        self._clipped = np.empty(n, dtype=dtype)
        self._decay_mask = self._build_decay_mask(n, ordered, dtype)
        self.iterations = 0
        self.built = True
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.set_variables(state)

    def _compact_slices(self):
        """(offset, size) of each variable in the compact (gathered) state layout."""
        if self._index is None:
            return list(self._var_slices)
        starts = {}
        pos = 0
        for offset, size in sorted(self._var_slices):
            starts[offset] = pos
            pos += size
        return [(starts[offset], size) for offset, size in self._var_slices]

    def _build_decay_mask(self, n, ordered, dtype):
        if self.weight_decay is None or not self._exclude_names or self._var_names is None:
            return None
        mask = np.ones(n, dtype=dtype)
        for (offset, size), name in zip(self._compact_slices(), self._var_names):
            if any(pattern in name for pattern in self._exclude_names):
                mask[offset : offset + size] = 0
        return mask

    # ------------------------------------------------------------ stepping
    def apply(self, params, grads):
        """Update ``params`` in place from ``grads`` (one optimizer step).

        The order is Keras's: clip the gradients, apply weight decay, apply the
        update rule, then add one to ``iterations``.

        Args:
            params: the model's flat 1-D, contiguous parameter vector.
            grads: the gradients, same length and dtype.

        Example:

        >>> opt = lstm_fast.optimizers.SGD(learning_rate=0.1)
        >>> params = np.array([1.0, 2.0], dtype="float32")
        >>> opt.build([(0, 2)], "float32")
        >>> opt.apply(params, np.array([1.0, -1.0], dtype="float32"))
        >>> params
        array([0.9, 2.1], dtype=float32)
        """
        if not self.built:
            raise ValueError("The optimizer must be built first: call `optimizer.build(...)`.")
        if not isinstance(params, np.ndarray) or params.ndim != 1 or not params.flags.c_contiguous:
            raise ValueError("Expected `params` to be a 1-D contiguous ndarray.")
        if params.dtype != self._dtype:
            raise ValueError(
                f"Expected params.dtype={self._dtype}. Received: params.dtype={params.dtype}"
            )
        grads = np.asarray(grads)
        if not grads.flags.c_contiguous:  # the update rules read it as one flat run
            grads = np.ascontiguousarray(grads)
        if grads.shape != params.shape:
            raise ValueError(
                f"Expected grads.shape == params.shape == {params.shape}. "
                f"Received: grads.shape={grads.shape}"
            )
        if params.shape[0] < self._size:
            raise ValueError(
                f"Expected params of length >= {self._size} (from build). "
                f"Received: params.shape={params.shape}"
            )
        if grads.dtype != self._dtype:
            grads = grads.astype(self._dtype)
        lr = self.learning_rate
        if self._index is None:
            p = params[: self._size]
            g = grads[: self._size]
            g = self._clip(g)
            self._apply_weight_decay(p, lr)
            self._update(p, g, lr)
        else:
            p = params[self._index]
            g = self._clip(grads[self._index])
            self._apply_weight_decay(p, lr)
            self._update(p, g, lr)
            params[self._index] = p
        self.iterations += 1

    def _clip(self, g):
        """The clipped gradient (a scratch buffer when clipping, else ``g`` itself)."""
        if self.clipnorm is not None:
            out = self._clipped
            for offset, size in self._compact_slices():
                gv = g[offset : offset + size]
                norm = math.sqrt(float(np.dot(gv, gv)))
                # g * clipnorm / max(norm, clipnorm), as Keras
                np.multiply(
                    gv, self.clipnorm / max(norm, self.clipnorm), out=out[offset : offset + size]
                )
            return out
        if self.global_clipnorm is not None:
            norm = math.sqrt(float(np.dot(g, g)))
            if not math.isfinite(norm):
                scale = float("nan")
            else:
                scale = self.global_clipnorm * min(
                    1.0 / norm if norm else math.inf, 1.0 / self.global_clipnorm
                )
            return np.multiply(g, scale, out=self._clipped)
        if self.clipvalue is not None:
            return np.clip(g, -self.clipvalue, self.clipvalue, out=self._clipped)
        return g

    def _apply_weight_decay(self, p, lr):
        if self.weight_decay is None:
            return
        tmp = self._scratch[0]
        np.multiply(p, self._dtype.type(self.weight_decay), out=tmp)
        tmp *= self._dtype.type(lr)
        if self._decay_mask is not None:
            tmp *= self._decay_mask
        p -= tmp

    def _update(self, p, g, lr):
        raise NotImplementedError

    # --------------------------------------------------------------- state
    def variables(self):
        """The optimizer state: a dict name -> ndarray (``iterations`` included).

        The arrays are copies, in the flat layout of the parameter vector the
        optimizer was built for.

        Returns:
            A dict such as ``{'iterations': ..., 'momentum': ..., 'velocity': ...}``
            for Adam; `set_variables` takes it back.

        Example:

        >>> opt = lstm_fast.optimizers.Adam()
        >>> opt.build([(0, 3)], "float32")
        >>> sorted(opt.variables())
        ['iterations', 'momentum', 'velocity']
        """
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for name, buf in self._slots.items():
            state[name] = buf.copy()
        return state

    def set_variables(self, state):
        """Restore the state returned by ``variables()`` (bit-exact).

        If the optimizer is not built yet, the state is kept and restored by ``build``.

        Args:
            state: a dict as `variables` returns it, from an optimizer of the
                same class built on the same layout.

        Example:

        >>> opt = lstm_fast.optimizers.Adam()
        >>> opt.build([(0, 3)], "float32")
        >>> opt.apply(np.zeros(3, "float32"), np.ones(3, "float32"))
        >>> copy = lstm_fast.optimizers.Adam()
        >>> copy.build([(0, 3)], "float32")
        >>> copy.set_variables(opt.variables())
        >>> copy.iterations
        1
        """
        state = dict(state)
        if "iterations" not in state:
            raise ValueError(
                f"Expected an optimizer state with 'iterations'. Received keys: {sorted(state)}"
            )
        if not self.built:
            self._pending_state = state
            return
        expected = set(self._slots) | {"iterations"}
        if set(state) != expected:
            raise ValueError(
                f"Optimizer state mismatch for {type(self).__name__}. Expected keys: "
                f"{sorted(expected)}. Received: {sorted(state)}"
            )
        for name, buf in self._slots.items():
            value = np.asarray(state[name])
            if value.shape != buf.shape:
                raise ValueError(
                    f"Optimizer state '{name}' has shape {buf.shape}. Received: shape={value.shape}"
                )
            np.copyto(buf, value, casting="same_kind")
        self.iterations = int(np.asarray(state["iterations"]))

    # -------------------------------------------------------------- config
    def get_config(self):
        """The constructor arguments, as a JSON-serializable dict.

        A schedule is stored as its `schedules.serialize` dict; a plain
        function as learning rate cannot be stored (TypeError).

        Returns:
            A dict that `from_config` turns back into an equal optimizer.

        Example:

        >>> config = lstm_fast.optimizers.SGD(learning_rate=0.1, momentum=0.9).get_config()
        >>> config["learning_rate"], config["momentum"]
        (0.1, 0.9)
        """
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            raise TypeError(
                "Cannot serialize an optimizer whose `learning_rate` is a plain callable "
                f"({lr!r}); use a float or a schedule from lstm_fast.optimizers.schedules."
            )
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config):
        """Create an optimizer from the dict returned by ``get_config()``.

        Args:
            config: the dict of constructor arguments.

        Returns:
            A new, unbuilt optimizer of this class.
        """
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate}>"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    With ``momentum == 0``: ``w = w - learning_rate * g``. Otherwise:

        velocity = momentum * velocity - learning_rate * g
        w = w + velocity                                  # nesterov=False
        w = w + momentum * velocity - learning_rate * g   # nesterov=True

    Args:
        learning_rate: Defaults to 0.01.
        momentum: float >= 0. Defaults to 0.0.
        nesterov: bool. Defaults to False.
        **kwargs: the arguments of `Optimizer` (``clipnorm``, ``weight_decay``, ...).

    Example:

    >>> opt = lstm_fast.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    >>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
    >>> opt.build([(0, 3)], "float32")
    >>> for _ in range(2):
    ...     opt.apply(params, np.array([1.0, 1.0, -1.0], dtype="float32"))
    >>> params
    array([0.71, 1.71, 3.29], dtype=float32)
    """

    _default_name = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        momentum = float(momentum)
        if not 0 <= momentum <= 1:
            raise ValueError(
                f"`momentum` must be in the range [0, 1]. Received: momentum={momentum}"
            )
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _slot_names(self):
        return ("momentum",) if self.momentum != 0 else ()

    def _update(self, p, g, lr):
        t = self._dtype.type
        tmp = self._scratch[0]
        np.multiply(g, t(lr), out=tmp)  # lr * g
        if self.momentum == 0:
            p -= tmp
            return
        m = self._slots["momentum"]
        m *= t(self.momentum)
        m -= tmp
        if self.nesterov:
            tmp2 = self._scratch[1]
            np.multiply(m, t(self.momentum), out=tmp2)
            tmp2 -= tmp
            p += tmp2
        else:
            p += m

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class Adam(Optimizer):
    """The Adam optimizer: per-parameter step sizes from running moments of the gradient.

    At step ``t = iterations + 1``:

        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        v_hat = max(v_hat, v); v = v_hat                  # amsgrad only
        alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w = w - m * alpha / (sqrt(v) + epsilon)

    Args:
        learning_rate: Defaults to 0.001.
        beta_1: Defaults to 0.9.
        beta_2: Defaults to 0.999.
        epsilon: Defaults to 1e-7.
        amsgrad: bool. Defaults to False.
        **kwargs: the arguments of `Optimizer` (``clipnorm``, ``weight_decay``, ...).

    The bias correction is Keras's form (folded into ``alpha``), so results
    match Keras's Adam step for step.

    Example:

    >>> opt = lstm_fast.optimizers.Adam(learning_rate=0.1)
    >>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
    >>> opt.build([(0, 3)], "float32")
    >>> opt.apply(params, np.array([1.0, 1.0, -1.0], dtype="float32"))
    >>> np.round(params, 4)        # the first step moves each weight by about learning_rate
    array([0.9, 1.9, 3.1], dtype=float32)
    """

    _default_name = "adam"

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def _slot_names(self):
        return (
            ("momentum", "velocity", "velocity_hat") if self.amsgrad else ("momentum", "velocity")
        )

    def _update(self, p, g, lr):
        t = self._dtype.type
        step = self.iterations + 1
        # the scalars in the parameter dtype, as Keras casts them
        beta_1_power = t(self.beta_1) ** t(step)
        beta_2_power = t(self.beta_2) ** t(step)
        alpha = t(lr) * np.sqrt(t(1) - beta_2_power) / (t(1) - beta_1_power)
        # In one pass of the engine, in this order, each operation rounded to
        # the dtype (bit-identical to the NumPy form, NaN payloads aside;
        # tests/test_optimizers.py):
        #   m += (g - m) * (1 - beta_1);  v += (g * g - v) * (1 - beta_2)
        #   v_hat = maximum(v_hat, v) (amsgrad; then used for v)
        #   p -= m * alpha / (sqrt(v) + epsilon)
        _adam_update(p, g, self._slots["momentum"], self._slots["velocity"],
                     self._slots["velocity_hat"] if self.amsgrad else None,
                     t(1 - self.beta_1), t(1 - self.beta_2), t(self.epsilon), alpha)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay: `Adam` with ``weight_decay`` defaulting to 0.004.

    Each step first applies ``w -= w * weight_decay * learning_rate``, then the Adam update.

    Args:
        learning_rate: Defaults to 0.001.
        weight_decay: a float (not None). Defaults to 0.004.
        **kwargs: the other arguments of `Adam` and `Optimizer`.

    Example:

    >>> opt = lstm_fast.optimizers.AdamW(learning_rate=0.1, weight_decay=0.1)
    >>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
    >>> opt.build([(0, 3)], "float32")
    >>> opt.apply(params, np.array([1.0, 1.0, -1.0], dtype="float32"))
    >>> np.round(params, 4)        # decayed by 1%, then the Adam step
    array([0.89, 1.88, 3.07], dtype=float32)
    """

    _default_name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """The RMSprop optimizer: steps scaled by a running average of squared gradients.

    Each step, as Keras's (``momentum_coef`` is the ``momentum`` argument):

        velocity = rho * velocity + (1 - rho) * g**2
        average_gradient = rho * average_gradient + (1 - rho) * g        # centered
        denominator = velocity - average_gradient**2 + epsilon           # centered
        denominator = velocity + epsilon                                 # otherwise
        increment = learning_rate * g / sqrt(denominator)
        momentum = momentum_coef * momentum + increment; w -= momentum   # momentum > 0
        w -= increment                                                   # otherwise

    Args:
        learning_rate: Defaults to 0.001.
        rho: Defaults to 0.9.
        momentum: Defaults to 0.0.
        epsilon: Defaults to 1e-7 (inside the square root, as Keras).
        centered: Defaults to False.
        **kwargs: the arguments of `Optimizer` (``clipnorm``, ``weight_decay``, ...).

    Example:

    >>> opt = lstm_fast.optimizers.RMSprop(learning_rate=0.1)
    >>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
    >>> opt.build([(0, 3)], "float32")
    >>> opt.apply(params, np.array([1.0, 1.0, -1.0], dtype="float32"))
    >>> np.round(params, 4)        # 0.1 / sqrt(0.1): the first steps are large
    array([0.6838, 1.6838, 3.3162], dtype=float32)
    """

    _default_name = "rmsprop"

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        for arg, value in (("rho", rho), ("momentum", momentum)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"`{arg}` must be in the range [0, 1]. Received: {arg}={value}")
        if not float(epsilon) > 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon}")
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def _slot_names(self):
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return tuple(names)

    def _update(self, p, g, lr):
        t = self._dtype.type
        rho = t(self.rho)
        tmp, tmp2 = self._scratch
        v = self._slots["velocity"]
        v *= rho
        np.multiply(g, g, out=tmp)
        tmp *= t(1 - self.rho)
        v += tmp
        if self.centered:
            a = self._slots["average_gradient"]
            a *= rho
            np.multiply(g, t(1 - self.rho), out=tmp)
            a += tmp
            np.multiply(a, a, out=tmp)
            np.subtract(v, tmp, out=tmp)
            tmp += t(self.epsilon)
        else:
            np.add(v, t(self.epsilon), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.multiply(g, t(lr), out=tmp2)
        tmp2 /= tmp  # increment
        if self.momentum > 0:
            mom = self._slots["momentum"]
            mom *= t(self.momentum)
            mom += tmp2
            p -= mom
        else:
            p -= tmp2

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config


class Adagrad(Optimizer):
    """The Adagrad optimizer: steps shrink with the sum of all squared gradients so far.

    Each step, as Keras's:

        accumulator = accumulator + g**2        (starts at initial_accumulator_value)
        w = w - learning_rate * g / sqrt(accumulator + epsilon)

    Args:
        learning_rate: Defaults to 0.001.
        initial_accumulator_value: Defaults to 0.1.
        epsilon: Defaults to 1e-7.
        **kwargs: the arguments of `Optimizer` (``clipnorm``, ``weight_decay``, ...).

    Example:

    >>> opt = lstm_fast.optimizers.Adagrad(learning_rate=0.1)
    >>> params = np.array([1.0, 2.0, 3.0], dtype="float32")
    >>> opt.build([(0, 3)], "float32")
    >>> opt.apply(params, np.array([1.0, 1.0, -1.0], dtype="float32"))
    >>> np.round(params, 4)        # 0.1 * 1 / sqrt(0.1 + 1)
    array([0.9047, 1.9047, 3.0953], dtype=float32)
    """

    _default_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if initial_accumulator_value < 0:
            raise ValueError(
                "`initial_accumulator_value` must be non-negative. "
                f"Received: initial_accumulator_value={initial_accumulator_value}"
            )
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _slot_names(self):
        return ("accumulator",)

    def _slot_initial_value(self, name):
        return self.initial_accumulator_value

    def _update(self, p, g, lr):
        t = self._dtype.type
        tmp, tmp2 = self._scratch
        acc = self._slots["accumulator"]
        np.multiply(g, g, out=tmp)
        acc += tmp
        np.add(acc, t(self.epsilon), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.multiply(g, t(lr), out=tmp2)
        tmp2 /= tmp
        p -= tmp2

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return config


_CLASSES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
_CHOICES = "'adam', 'adamw', 'sgd', 'rmsprop', 'adagrad'"


def serialize(optimizer):
    """Describe an optimizer's settings as a JSON-serializable dict (not its state).

    Args:
        optimizer: an `Optimizer`.

    Returns:
        ``{'class_name': ..., 'config': ...}``, which `deserialize` turns back
        into an optimizer with the same settings. The moments are not
        included: see `Optimizer.variables`.

    Example:

    >>> lstm_fast.optimizers.serialize(lstm_fast.optimizers.SGD(0.1))["config"]["learning_rate"]
    0.1
    """
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """Create an optimizer from the dict that `serialize` returns.

    Args:
        config: ``{'class_name': ..., 'config': {...}}``; the class name is
            one of 'SGD', 'Adam', 'AdamW', 'RMSprop', 'Adagrad' (any case).

    Returns:
        A new, unbuilt `Optimizer`.

    Example:

    >>> lstm_fast.optimizers.deserialize({"class_name": "SGD", "config": {"learning_rate": 0.5}})
    <SGD name='SGD' learning_rate=0.5>
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "Expected an optimizer config dict with keys 'class_name' and 'config'. "
            f"Received: {config!r}"
        )
    cls = _CLASSES.get(str(config["class_name"]).lower())
    if cls is None:
        raise ValueError(
            f"Unknown optimizer: class_name={config['class_name']!r}. Expected one of {_CHOICES}."
        )
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """Get an optimizer from a name, a config dict or an optimizer.

    This is how ``model.compile(optimizer=...)`` reads its argument.

    Args:
        identifier: a name ('adam', 'sgd', 'adamw', 'rmsprop', 'adagrad';
            case-insensitive) giving an optimizer with Keras's defaults, an
            `Optimizer` instance (returned as is), or a config dict
            ``{'class_name': ..., 'config': ...}``.

    Returns:
        An `Optimizer` (a new one, unless an instance was given).

    Example:

    >>> lstm_fast.optimizers.get("adam")
    <Adam name='adam' learning_rate=0.001>
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _CLASSES.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Unknown optimizer: optimizer={identifier!r}. Expected one of {_CHOICES}, "
                "an Optimizer instance or a config dict."
            )
        return cls()
    raise ValueError(
        f"Could not interpret optimizer identifier. Expected one of {_CHOICES}, an Optimizer "
        f"instance or a config dict. Received: optimizer={identifier!r}"
    )
