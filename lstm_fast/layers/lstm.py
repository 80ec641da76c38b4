"""The LSTM layer: Keras's arguments and defaults, the maths done by the compiled engine.

Shapes: B = batch, T = time, I = input features, H = units.
Weights (Keras layout): kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,),
gate column blocks in the order i, f, c (g), o. Forward and backward go through
`lstm_fast.ops.lstm_forward` / `lstm_backward`; this file only orchestrates.
"""

from __future__ import annotations

import numpy as np

from .. import activations, initializers, ops, regularizers, utils
from .base import Layer

__all__ = ["LSTM", "mask_to_lengths"]


def mask_to_lengths(mask, B, T, arg_name="mask"):
    """Per-sample lengths (B,) of a right-padded boolean mask (B, T), or None if all True.

    The engine carries the state over masked steps given per-sample lengths;
    a mask with a hole or a left padding cannot be expressed that way and
    raises ValueError.

    Args:
        mask: boolean array (B, T), True for the real steps; or None.
        B: the batch size the mask must have.
        T: the number of steps the mask must have.
        arg_name: the name used in error messages.

    Returns:
        An int64 array (B,) of lengths, or None when no step is masked.

    Example:

    >>> from lstm_fast.layers.lstm import mask_to_lengths
    >>> mask_to_lengths(np.array([[True, True, False], [True, True, True]]), 2, 3)
    array([2, 3])
    >>> mask_to_lengths(np.ones((2, 3), dtype=bool), 2, 3) is None
    True
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (B, T):
        raise ValueError(
            f"Expected {arg_name} to have shape (batch, time) = {(B, T)}. "
            f"Received: {arg_name}.shape={m.shape}"
        )
    m = m.astype(bool, copy=False)
    lengths = m.sum(axis=1)
    if lengths.min(initial=T) == T:
        return None
    if not np.array_equal(m, np.arange(T) < lengths[:, None]):
        raise ValueError(
            f"Expected {arg_name} to be right-padded: True for the first steps of each "
            "sample, then False (e.g. from Embedding(mask_zero=True) or Masking with padding "
            "at the end). Masks with holes or left padding are not supported by the engine; "
            f"pad sequences at the end (padding='post'). Received: a {arg_name} with a False "
            "step before a True step"
        )
    return lengths.astype(np.int64)


class LSTM(Layer):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber, 1997), as Keras's.

    Args:
        units: H, dimension of the output and of the state.
        activation: 'tanh' (other values raise NotImplementedError: the engine
            fuses tanh).
        recurrent_activation: 'sigmoid' (same).
        use_bias: whether the layer has a bias (default True).
        kernel_initializer: for kernel (I, 4H); default 'glorot_uniform'.
        recurrent_initializer: for recurrent_kernel (H, 4H); default 'orthogonal'.
        bias_initializer: default 'zeros'.
        unit_forget_bias: set the forget-gate block of the bias to exactly 1.0
            at initialization (default True).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: optional
            penalties added to the loss (see `lstm_fast.regularizers`).
        activity_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint: must be None (not supported yet).
        dropout: fraction of the input features dropped during training (one
            mask per sample, the same for every step, as Keras).
        recurrent_dropout: must be 0 (not supported by the engine).
        seed: optional int for the dropout masks.
        return_sequences: output every step (B, T, H) instead of the last (B, H).
        return_state: also return the final h and c: `[output, h, c]`.
        go_backwards: process the sequence backwards; the output sequence is in
            processing (reversed) order, as Keras.
        stateful: the final state of a batch is the initial state of the next
            batch (fixed batch size); see `reset_states()`.
        unroll, use_cudnn: accepted for compatibility, no effect.
        zero_output_for_mask: masked steps output zeros instead of the carried h.
        n_threads: engine threads (None: all cores, or LSTM_FAST_NUM_THREADS).

    Call arguments:
        inputs: (B, T, I).
        mask: optional boolean (B, T), right-padded.
        training: True enables dropout and keeps what `backward` needs.
        initial_state: optional [h0, c0], each (B, H).

    Example:

    >>> x = np.random.rand(32, 20, 10).astype("float32")   # (batch, time, features)
    >>> lstm = LSTM(50, return_sequences=True)
    >>> y = lstm(x)
    >>> y.shape
    (32, 20, 50)
    >>> gates = lstm.gate_activations(x)   # {'i','f','g','o','c','h'}, each (B, T, H)
    >>> gates["f"].shape
    (32, 20, 50)
    >>> output, h, c = LSTM(8, return_state=True)(x)
    >>> output.shape, h.shape, c.shape
    ((32, 8), (32, 8), (32, 8))
    """

    supports_masking = True
    _input_ndim = 3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        zero_output_for_mask=False,
        n_threads=None,
        **kwargs,
    ):
        if "input_shape" not in kwargs and ("input_dim" in kwargs or "input_length" in kwargs):
            # Keras 2's RNN arguments: input_shape = (input_length, input_dim)
            length, dim = kwargs.pop("input_length", None), kwargs.pop("input_dim", None)
            kwargs["input_shape"] = (length, dim)
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Expected units to be a positive int. Received: units={units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        if self.activation.name != "tanh":
            raise NotImplementedError(
                "The compiled LSTM engine fuses tanh as the cell activation. Expected "
                f"activation='tanh'. Received: activation={activation!r}"
            )
        if self.recurrent_activation.name != "sigmoid":
            raise NotImplementedError(
                "The compiled LSTM engine fuses sigmoid as the gate activation. Expected "
                f"recurrent_activation='sigmoid'. Received: "
                f"recurrent_activation={recurrent_activation!r}"
            )
        for arg, value in (
            ("activity_regularizer", activity_regularizer),
            ("kernel_constraint", kernel_constraint),
            ("recurrent_constraint", recurrent_constraint),
            ("bias_constraint", bias_constraint),
        ):
            if value is not None:
                raise NotImplementedError(
                    f"LSTM does not support {arg} yet. Expected {arg}=None. "
                    f"Received: {arg}={value!r}"
                )
        for arg, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"Expected {arg} in [0, 1). Received: {arg}={value!r}")
        if recurrent_dropout:
            raise NotImplementedError(
                "recurrent_dropout needs a new mask on h inside every step of the recurrence, "
                "which the compiled engine does not do. Expected recurrent_dropout=0. "
                f"Received: recurrent_dropout={recurrent_dropout!r} (use dropout= on the "
                "inputs, or a Dropout layer between LSTM layers)"
            )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self._dropout_rng = None if seed is None else np.random.default_rng(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.use_cudnn = use_cudnn
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.n_threads = n_threads
        self.states = None  # [h, c] carried between batches when stateful
        self.initial_state_gradients = None  # (dh0, dc0) after backward

    # ------------------------------------------------------------------ build

    def _input_layout(self):
        return "(batch, time, features)"

    def build(self, input_shape):
        I = input_shape[-1]  # noqa: E741 - the shape letter of DESIGN.md
        if I is None:
            raise ValueError(
                f"The last axis (features) of the input of LSTM '{self.name}' must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        H = self.units
        self.add_weight("kernel", (I, 4 * H), self.kernel_initializer, self.kernel_regularizer)
        self.add_weight(
            "recurrent_kernel", (H, 4 * H), self.recurrent_initializer, self.recurrent_regularizer
        )
        if self.use_bias:
            if self.unit_forget_bias:
                # blocks i, f, c, o: the forget block is exactly 1.0
                value = np.concatenate(
                    [
                        self.bias_initializer((H,), dtype=self.dtype),
                        np.ones(H, self.dtype),
                        self.bias_initializer((2 * H,), dtype=self.dtype),
                    ]
                )
            else:
                value = self.bias_initializer((4 * H,), dtype=self.dtype)
            self.add_weight("bias", (4 * H,), regularizer=self.bias_regularizer, value=value)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        out = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [out, (B, self.units), (B, self.units)]
        return out

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return [out, None, None] if self.return_state else out

    # --------------------------------------------------------------- forward

    def _initial_state(self, initial_state, B):
        if initial_state is not None:
            if self.stateful:
                pass  # an explicit initial state overrides the carried one, as Keras
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(
                    "Expected initial_state to be a list [h0, c0] of two (batch, units) arrays. "
                    f"Received: initial_state={type(initial_state).__name__} of length "
                    f"{len(initial_state) if hasattr(initial_state, '__len__') else '?'}"
                )
            states = []
            for name, s in zip(("h0", "c0"), initial_state):
                s = np.ascontiguousarray(s, dtype=self.dtype)
                if s.shape != (B, self.units):
                    raise ValueError(
                        f"Expected initial_state {name} to have shape {(B, self.units)}. "
                        f"Received: {name}.shape={s.shape}"
                    )
                states.append(s)
            return states
        if self.stateful and self.states is not None:
            h, c = self.states
            if h.shape[0] != B:
                raise ValueError(
                    f"A stateful LSTM keeps its state for a fixed batch size. Expected a batch "
                    f"of {h.shape[0]} samples (call reset_states() to change it). "
                    f"Received: inputs.shape[0]={B}"
                )
            return [h, c]
        return [None, None]

    def forward(self, x, mask=None, training=False, initial_state=None):
        B, T, _ = x.shape
        lengths = mask_to_lengths(mask, B, T)
        dropout_mask = None
        if training and self.dropout > 0:
            rng = self._dropout_rng or utils.get_rng()
            keep = 1.0 - self.dropout
            # one mask per sample over the features, the same for every step (Keras)
            dropout_mask = (rng.random((B, 1, x.shape[2])) < keep).astype(self.dtype) / keep
            x = x * dropout_mask
        h0, c0 = self._initial_state(initial_state, B)
        y, h, c, cache = ops.lstm_forward(
            x,
            self.kernel,
            self.recurrent_kernel,
            self.bias if self.use_bias else None,
            h0,
            c0,
            lengths=lengths,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
            training=training,
            n_threads=self.n_threads,
        )
        if self.stateful:
            self.states = [np.array(h, copy=True), np.array(c, copy=True)]
        self._cache = (cache, dropout_mask) if training else None
        if self.return_state:
            return [y, h, c]
        return y

    def __call__(self, inputs, training=False, mask=None, initial_state=None):
        return super().__call__(inputs, training=training, mask=mask, initial_state=initial_state)

    # -------------------------------------------------------------- backward

    def backward(self, dy, dh=None, dc=None, need_dx=True):
        """dL/dx from dL/dy (and dL/dh_T, dL/dc_T with return_state).

        Adds dL/dkernel, dL/drecurrent_kernel, dL/dbias into the gradient arrays;
        keeps dL/dh0, dL/dc0 in `initial_state_gradients`. With need_dx=False
        (the model's first layer) dL/dx is not computed and None is returned.
        """
        if self._cache is None:
            raise RuntimeError(
                f"LSTM '{self.name}': backward needs a forward pass with training=True first."
            )
        cache, dropout_mask = self._cache
        dtype = np.dtype(self.dtype)
        if dy is not None:
            dy = np.ascontiguousarray(dy, dtype=dtype)
        grads = ops.lstm_backward(
            cache,
            dy,
            dh,
            dc,
            n_threads=self.n_threads,
            dkernel=self._grads["kernel"],
            drecurrent_kernel=self._grads["recurrent_kernel"],
            dbias=self._grads["bias"] if self.use_bias else None,
            need_dx=need_dx,
        )
        self.initial_state_gradients = (grads.dh0, grads.dc0)
        dx = grads.dx
        if dx is not None and dropout_mask is not None:
            dx = dx * dropout_mask
        return dx

    # ----------------------------------------------------------- inspection

    def gate_activations(self, inputs, mask=None, initial_state=None):
        """The gates and states of every step for `inputs`, to see what the layer does.

        Args:
            inputs: (B, T, I) array.
            mask: optional right-padded boolean (B, T).
            initial_state: optional [h0, c0].

        Returns:
            dict with 'i', 'f', 'g' (cell candidate), 'o', 'c', 'h', each (B, T, H),
            indexed by original time t (also with go_backwards). Masked steps have
            zero gates and the carried c and h.

        Example:

        >>> x = np.random.rand(4, 20, 10).astype("float32")
        >>> lstm = LSTM(16)
        >>> g = lstm.gate_activations(x)
        >>> sorted(g), g["f"].shape
        (['c', 'f', 'g', 'h', 'i', 'o'], (4, 20, 16))
        >>> forget = g["f"].mean(axis=(0, 2))   # per step: how much the layer keeps of c
        """
        x = self._convert_input(inputs)
        self._maybe_build(x.shape)
        B, T, _ = x.shape
        if initial_state is None and self.stateful and self.states is not None:
            initial_state = self.states
        h0, c0 = self._initial_state(initial_state, B) if initial_state is not None else (
            None,
            None,
        )
        _, _, _, cache = ops.lstm_forward(
            x,
            self.kernel,
            self.recurrent_kernel,
            self.bias if self.use_bias else None,
            h0,
            c0,
            lengths=mask_to_lengths(mask, B, T),
            go_backwards=self.go_backwards,
            return_sequences=True,
            training=True,
            n_threads=self.n_threads,
        )
        H = self.units
        gates = np.asarray(cache.gates)
        return {
            "i": gates[..., 0:H],
            "f": gates[..., H : 2 * H],
            "g": gates[..., 2 * H : 3 * H],
            "o": gates[..., 3 * H : 4 * H],
            "c": np.asarray(cache.cell),
            "h": np.asarray(cache.hidden),
        }

    # ---------------------------------------------------------------- state

    def reset_states(self, states=None):
        """Reset the carried state of a stateful layer (to zeros, or to `states`).

        Args:
            states: optional [h, c], each (batch, units).
        """
        if states is None:
            self.states = None
            return
        self.states = self._initial_state(list(states), np.asarray(states[0]).shape[0])

    reset_state = reset_states

    # ---------------------------------------------------------------- config

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": self.activation.name,
                "recurrent_activation": self.recurrent_activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "unit_forget_bias": self.unit_forget_bias,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config
