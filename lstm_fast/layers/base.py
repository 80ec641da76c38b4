"""The Layer base class: configuration, lazy build, weights, and the training protocol.

A layer stores its configuration in `__init__` and creates its weights in
`build(input_shape)`, on first use (or from `input_shape` / an `Input`). Its
weights are NumPy arrays held as attributes (`layer.kernel`, ...); a model
re-binds them to views into its one flat parameter buffer, and the gradient
arrays (`layer._grads[name]`) to views into its one flat gradient buffer, so an
optimizer step is one pass over one array.

Training protocol used by `Sequential` (no autodiff; every layer writes its own
backward):

    y = layer.forward(x, mask=None, training=True)   # keeps what backward needs
    dx = layer.backward(dy)                          # ADDS into layer._grads
    out_mask = layer.compute_mask(x, mask)

Shapes follow Keras: the first axis is the batch, `None` in shapes means "any".
"""

from __future__ import annotations

import re

import numpy as np

from .. import initializers, utils

__all__ = ["Layer"]

_NAME_COUNTS: dict[str, int] = {}


def unique_name(prefix):
    """'lstm', 'lstm_1', 'lstm_2', ... as Keras names layers."""
    n = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def _snake(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def normalize_shape(shape, arg_name):
    """A tuple of ints / None from a list, tuple or int."""
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"Expected {arg_name} to be a tuple of ints (or None). Received: {arg_name}={shape!r}"
        ) from None
    if any(d is not None and d < 0 for d in shape):
        raise ValueError(
            f"Expected {arg_name} to hold non-negative sizes. Received: {arg_name}={shape!r}"
        )
    return shape


def checked_weight(owner, name, value):
    """`value` as a real array of the shape of weight `name` of `owner`, or a clear error."""
    current = getattr(owner, name)
    w = np.asarray(value)
    if w.shape != current.shape:
        raise ValueError(
            f"Expected weight '{name}' of layer '{owner.name}' to have shape "
            f"{current.shape}. Received: shape={w.shape}"
        )
    if w.dtype.kind not in "biuf":
        raise TypeError(
            f"Expected weight '{name}' of layer '{owner.name}' to be a real numeric array. "
            f"Received: dtype={w.dtype}"
        )
    return w


class Layer:
    """Base class of every lstm_fast layer.

    Args:
        name: unique name (default: from the class name, e.g. 'lstm_1').
        dtype: 'float32' (default, see `lstm_fast.utils.set_floatx`) or 'float64'.
        trainable: False freezes the layer's weights during `fit`.
        input_shape: shape of one sample, without the batch axis, e.g. (20, 10);
            lets a `Sequential` model build before seeing data.
        batch_input_shape / batch_size: the same with the batch axis / batch size.

    Example:

    >>> layer = Dense(4)
    >>> y = layer(np.ones((2, 3)))   # builds on first call
    >>> [w.shape for w in layer.get_weights()]
    [(3, 4), (4,)]
    """

    supports_masking = False
    # axes (from the end) whose size is fixed by the weights once built
    _fixed_input_axes = (-1,)
    _input_ndim = None  # exact rank required, None: at least 2

    def __init__(
        self,
        name=None,
        dtype=None,
        trainable=True,
        input_shape=None,
        batch_input_shape=None,
        batch_size=None,
        input_dim=None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        self.name = name if name is not None else unique_name(_snake(type(self).__name__))
        if not isinstance(self.name, str):
            raise TypeError(f"Expected name to be a string. Received: name={name!r}")
        self.dtype = utils.standardize_dtype(dtype)
        self.trainable = bool(trainable)
        if input_shape is None and input_dim is not None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = normalize_shape(batch_input_shape, "batch_input_shape")
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + normalize_shape(input_shape, "input_shape")
        else:
            self._batch_input_shape = None
        self.built = False
        self._build_input_shape = None
        self._weight_names: list[str] = []
        self._weight_regularizers: dict[str, object] = {}
        self._grads: dict[str, np.ndarray] = {}
        self._cache = None

    # ---------------------------------------------------------------- weights

    def add_weight(self, name, shape, initializer="zeros", regularizer=None, value=None):
        """Create a weight array (attribute `name`), its gradient array and regularizer.

        Args:
            name: attribute name, e.g. 'kernel'.
            shape: tuple of ints.
            initializer: name or initializer, used when `value` is None.
            regularizer: None or a regularizer.
            value: optional initial value (array of `shape`).

        Returns:
            The weight array.
        """
        if value is None:
            value = initializers.get(initializer)(tuple(shape), dtype=self.dtype)
        w = np.ascontiguousarray(value, dtype=self.dtype).reshape(shape)
        setattr(self, name, w)
        self._grads[name] = np.zeros_like(w)
        if regularizer is not None:
            self._weight_regularizers[name] = regularizer
        if name not in self._weight_names:
            self._weight_names.append(name)
        return w

    def _weight_slots(self):
        """(owner layer, attribute name) of every weight, in Keras's get_weights order."""
        return [(self, n) for n in self._weight_names]

    def _bind(self, name, param_view, grad_view):
        """Move weight `name` into `param_view` and use `grad_view` as its gradient."""
        param_view[...] = getattr(self, name)
        setattr(self, name, param_view)
        self._grads[name] = grad_view

    @property
    def weights(self):
        """The weight arrays (live, not copies), in Keras's order."""
        return [getattr(owner, n) for owner, n in self._weight_slots()]

    @property
    def trainable_weights(self):
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else self.weights

    def get_weights(self):
        """Copies of the weights, in Keras's order and layout.

        Returns:
            A list of NumPy arrays (e.g. LSTM: kernel (I, 4H), recurrent_kernel (H, 4H),
            bias (4H,)).
        """
        return [np.array(w, copy=True) for w in self.weights]

    def set_weights(self, weights):
        """Set the weights from a list of arrays (Keras's order and layout), in place.

        Args:
            weights: list of arrays, the shapes of `get_weights()`.
        """
        slots = self._weight_slots()
        weights = list(weights)
        if len(weights) != len(slots):
            raise ValueError(
                f"Expected a list of {len(slots)} weight arrays for layer '{self.name}'. "
                f"Received: a list of {len(weights)} arrays"
            )
        values = [checked_weight(owner, n, w) for (owner, n), w in zip(slots, weights)]
        for (owner, n), w in zip(slots, values):  # all checked first: all or nothing
            getattr(owner, n)[...] = w

    def count_params(self):
        """Number of scalars in the weights."""
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' has not been built yet: call it on data or build it first."
            )
        return int(sum(w.size for w in self.weights))

    def regularization_loss(self, add_gradients=False):
        """Sum of the weight penalties of this layer (and sublayers).

        Args:
            add_gradients: also add each penalty's gradient into the gradient arrays.

        Returns:
            A float.
        """
        total = 0.0
        for owner, n in self._weight_slots():
            reg = owner._weight_regularizers.get(n)
            if reg is None:
                continue
            w = getattr(owner, n)
            total += reg(w)
            if add_gradients:
                owner._grads[n] += reg.gradient(w)
        return total

    @property
    def losses(self):
        """[the regularization penalty] when the layer has regularizers (as Keras)."""
        has_reg = any(o._weight_regularizers.get(n) for o, n in self._weight_slots())
        return [self.regularization_loss()] if has_reg else []

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        """Create the weights for inputs of `input_shape` (batch axis first)."""
        self._build_input_shape = tuple(input_shape)
        self.built = True

    def _check_input_shape(self, shape, arg_name="inputs"):
        """Raise a clear ValueError when `shape` does not fit this layer."""
        shape = tuple(shape)
        if self._input_ndim is not None and len(shape) != self._input_ndim:
            raise ValueError(
                f"Input of layer '{self.name}' ({type(self).__name__}) must be "
                f"{self._input_ndim}-D {self._input_layout()}. Expected ndim={self._input_ndim}. "
                f"Received: {arg_name}.shape={shape}"
            )
        if self._input_ndim is None and len(shape) < 2:
            raise ValueError(
                f"Input of layer '{self.name}' ({type(self).__name__}) must be at least 2-D "
                f"(batch, ...). Received: {arg_name}.shape={shape}"
            )
        if self.built and self._build_input_shape is not None:
            built = self._build_input_shape
            for axis in self._fixed_input_axes:
                if len(built) >= -axis and built[axis] is not None and shape[axis] != built[axis]:
                    raise ValueError(
                        f"Input of layer '{self.name}' is incompatible with the layer: expected "
                        f"axis {axis} of the input shape to have value {built[axis]} (the layer "
                        f"was built for input shape {built}). Received: {arg_name}.shape={shape}"
                    )

    def _input_layout(self):
        return "(batch, ...)"

    def _maybe_build(self, input_shape):
        self._check_input_shape(input_shape)
        if not self.built:
            self.build(tuple(input_shape))

    # ---------------------------------------------------------------- calling

    def __call__(self, inputs, training=False, mask=None, **kwargs):
        """Apply the layer (building it on first call).

        Args:
            inputs: NumPy array, batch axis first.
            training: True for training behaviour (dropout) and to keep what
                `backward` needs.
            mask: optional boolean mask of the input's (batch, time) axes.

        Returns:
            The output array (a list for LSTM with return_state=True).
        """
        inputs = self._convert_input(inputs)
        self._maybe_build(inputs.shape)
        return self.forward(inputs, mask=mask, training=bool(training), **kwargs)

    def call(self, inputs, training=False, mask=None, **kwargs):
        """Same as calling the layer (Keras's name for the computation)."""
        return self(inputs, training=training, mask=mask, **kwargs)

    def _convert_input(self, inputs):
        x = np.asarray(inputs)
        if x.dtype.kind not in "biuf":
            raise TypeError(
                f"Expected a numeric array as input of layer '{self.name}'. "
                f"Received: inputs with dtype={x.dtype}"
            )
        return x.astype(self.dtype, copy=False)

    def forward(self, x, mask=None, training=False):
        """The layer's computation on an already converted, shape-checked array.

        With `training=True` it keeps what `backward` needs (in `self._cache`).
        """
        raise NotImplementedError

    def backward(self, dy):
        """dL/d(input) from dL/d(output); adds the weight gradients into `self._grads`."""
        raise NotImplementedError

    def compute_mask(self, inputs, mask=None):
        """The output mask (Keras rule: pass the input mask through when supported)."""
        return mask if self.supports_masking else None

    def compute_output_shape(self, input_shape):
        """The output shape (batch axis first, None for unknown sizes) for `input_shape`."""
        return tuple(input_shape)

    def zero_grads(self):
        """Zero this layer's gradient arrays (a model zeroes its whole buffer instead)."""
        for owner, n in self._weight_slots():
            owner._grads[n].fill(0)

    @property
    def gradients(self):
        """The gradient arrays, in the order of `weights` (what `backward` accumulated)."""
        return [owner._grads[n] for owner, n in self._weight_slots()]

    # ----------------------------------------------------------------- config

    def get_config(self):
        """The constructor arguments as a JSON-friendly dict (round-trips via from_config)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        """A new, unbuilt layer from `get_config()`'s dict."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

