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

Usage:

    opt = get("adam")                       # or Adam(learning_rate=1e-3)
    opt.build([(0, 12), (12, 4)], np.float32)
    opt.apply(params, grads)                # params updated in place
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np

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
    """Base class of learning-rate schedules: ``schedule(step) -> learning rate``.

    ``step`` is the optimizer's ``iterations`` before the update (0 for the
    first step), as Keras.
    """

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: float.
        decay_steps: int > 0.
        decay_rate: float.
        staircase: if True, ``step / decay_steps`` is floored (a step function).
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
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Args:
        initial_learning_rate: float.
        decay_steps: int > 0.
        decay_rate: float.
        staircase: if True, ``step / decay_steps`` is floored.
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
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``step <= boundaries[1]``, ..., ``values[-1]`` after the last boundary.

    Args:
        boundaries: increasing list of steps.
        values: list of ``len(boundaries) + 1`` learning rates.
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
    """Cosine decay, with an optional linear warmup.

    Without warmup: ``lr(step) = initial_learning_rate * ((1 - alpha) * c + alpha)``
    with ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``. With
    ``warmup_target``, the rate first rises linearly from ``initial_learning_rate``
    to ``warmup_target`` over ``warmup_steps``, then decays from ``warmup_target``.

    Args:
        initial_learning_rate: float.
        decay_steps: int > 0.
        alpha: the final rate as a fraction of the starting rate. Defaults to 0.
        warmup_target: optional float.
        warmup_steps: int. Defaults to 0.
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
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def _deserialize_schedule(config):
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


# `lstm_fast.optimizers.schedules.ExponentialDecay(...)`, as Keras's namespace
schedules = types.SimpleNamespace(
    LearningRateSchedule=LearningRateSchedule,
    ExponentialDecay=ExponentialDecay,
    InverseTimeDecay=InverseTimeDecay,
    PiecewiseConstantDecay=PiecewiseConstantDecay,
    CosineDecay=CosineDecay,
    serialize=_serialize_schedule,
    deserialize=_deserialize_schedule,
)


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
    """Base class of the optimizers.

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

    Subclasses define ``_slot_names()`` (the kinds of state), optionally
    ``_slot_initial_value(name)``, and ``_update(params, grads, lr)``, which
    updates the flat buffers in place.
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

        Args:
            params: the model's flat 1-D, contiguous parameter vector.
            grads: the gradients, same length and dtype.
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
        """
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for name, buf in self._slots.items():
            state[name] = buf.copy()
        return state

    def set_variables(self, state):
        """Restore the state returned by ``variables()`` (bit-exact).

        If the optimizer is not built yet, the state is kept and restored by ``build``.
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
        """The constructor arguments, as a JSON-serializable dict."""
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
        """Create an optimizer from the dict returned by ``get_config()``."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate}>"


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum.

    With ``momentum == 0``: ``w = w - learning_rate * g``. Otherwise:

        velocity = momentum * velocity - learning_rate * g
        w = w + velocity                                  # nesterov=False
        w = w + momentum * velocity - learning_rate * g   # nesterov=True

    Args:
        learning_rate: Defaults to 0.01.
        momentum: float >= 0. Defaults to 0.0.
        nesterov: bool. Defaults to False.
        (and the arguments of `Optimizer`.)
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
    """Adam, with Keras's form of the bias correction.

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
        (and the arguments of `Optimizer`.)
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
        m, v = self._slots["momentum"], self._slots["velocity"]
        tmp, tmp2 = self._scratch
        np.subtract(g, m, out=tmp)
        tmp *= t(1 - self.beta_1)
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= t(1 - self.beta_2)
        v += tmp
        if self.amsgrad:
            v_hat = self._slots["velocity_hat"]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        np.sqrt(v, out=tmp)
        tmp += t(self.epsilon)
        np.multiply(m, alpha, out=tmp2)
        tmp2 /= tmp
        p -= tmp2

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
    """

    _default_name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (plain momentum, optionally centered), as Keras.

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
        (and the arguments of `Optimizer`.)
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
    """Adagrad, as Keras.

        accumulator = accumulator + g**2        (starts at initial_accumulator_value)
        w = w - learning_rate * g / sqrt(accumulator + epsilon)

    Args:
        learning_rate: Defaults to 0.001.
        initial_accumulator_value: Defaults to 0.1.
        epsilon: Defaults to 1e-7.
        (and the arguments of `Optimizer`.)
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
    """``{'class_name': ..., 'config': ...}`` of an optimizer (JSON-serializable)."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """Create an optimizer from ``{'class_name': ..., 'config': ...}``."""
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
    """Retrieve an optimizer.

    Args:
        identifier: a name ('adam', 'sgd', 'adamw', 'rmsprop', 'adagrad';
            case-insensitive) giving an optimizer with Keras's defaults, an
            `Optimizer` instance (returned as is), or a config dict
            ``{'class_name': ..., 'config': ...}``.

    Returns:
        An `Optimizer`.
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
