"""Streaming inference: a trained model fed one time step, or a chunk of
steps, per call.

`Sequential.stream()` returns a `Stream`, which holds the state (h, c) of
every LSTM layer and the weights packed once for the engine, so a call costs
the kernels' work plus input validation, nothing more:

    stream = model.stream(batch_size=1)
    for x_t in sensor:                   # x_t: (1, I), one step of the input
        y_t = stream.step(x_t)           # the model's output for this step
    y = stream.steps(x_chunk)            # (1, T, I) -> (1, T, outputs): T steps at once

A stream gives the same numbers as `model.predict` on the whole sequence up
to that step (its step-t outputs, when the model returns sequences). A chunk
runs as one engine call per LSTM layer (the input projection batched over
its steps), so it is also the fastest way to run whole sequences at batch
size 1 on fixed weights: `stream.reset()` then `stream.steps(x)`. It
reads the weights as they were when it was made: after training further or
`set_weights`, make a new stream. Supported layers: LSTM (forward direction,
tanh/sigmoid), Dense, Dropout, Masking (steps are never masked in a stream),
InputLayer.
"""

from __future__ import annotations

import numpy as np

from . import ops

__all__ = ["Stream"]


class _LSTMStep:
    def __init__(self, layer, batch_size, weights_dtype=None):
        if layer.go_backwards:
            raise ValueError(
                f"Expected forward-direction LSTM layers in a stream (a backward LSTM needs the "
                f"whole sequence). Received: layer '{layer.name}' with go_backwards=True")
        # copies: the layer's weights are views of the model's buffer, which
        # training and set_weights change in place
        self.kernel = layer.kernel.copy()
        self.recurrent_kernel = layer.recurrent_kernel.copy()
        self.bias = layer.bias.copy() if layer.use_bias else None
        self.packed = ops.pack_weights(self.kernel, self.recurrent_kernel,
                                       weights_dtype=weights_dtype)
        self.units = layer.units
        self.batch_size = batch_size
        self.n_threads = getattr(layer, "n_threads", None)
        self.reset()

    def reset(self):
        dtype = self.kernel.dtype
        self.h = np.zeros((self.batch_size, self.units), dtype)
        self.c = np.zeros((self.batch_size, self.units), dtype)

    def __call__(self, x):
        self.h, self.c = ops.lstm_step(x, self.kernel, self.recurrent_kernel, self.bias, self.h,
                                       self.c, n_threads=self.n_threads, packed=self.packed)
        return self.h

    def run(self, x):
        """x (B, T, I) -> the outputs of its T steps (B, T, H), the state carried."""
        y, self.h, self.c, _ = ops.lstm_forward(
            x, self.kernel, self.recurrent_kernel, self.bias, self.h, self.c,
            return_sequences=True, n_threads=self.n_threads, packed=self.packed)
        return y


class _DenseStep:
    def __init__(self, layer):
        self.kernel = layer.kernel.copy()
        self.bias = layer.bias.copy() if layer.use_bias else None
        self.activation = layer.activation

    def __call__(self, x):
        z = x @ self.kernel
        if self.bias is not None:
            z += self.bias
        return self.activation(z)

    run = __call__  # x (B, T, F): the same on every step


class Stream:
    """Runs a Sequential model one time step per call, carrying the LSTM states.

    Args:
        model: a built `Sequential` of LSTM / Dense / Dropout / Masking layers.
        batch_size: number of independent streams advanced together.
        weights_dtype: None, or ``"float16"`` (a float32 model): the LSTM
            layers read half-precision copies of their weights, widened to
            float32 as they are loaded, all arithmetic float32. The outputs
            are those of the model with its LSTM weights rounded to half
            precision (at most 2**-11 relative, 2**-25 absolute for |w| <
            2**-14); at batch size 1, where reading the weights bounds a
            step, it is faster on the AVX2 / AVX-512 paths (README,
            Performance). Dense layers keep their weights.

    Example:

    >>> model = lstm_fast.Sequential([
    ...     lstm_fast.LSTM(4, input_shape=(None, 3), return_sequences=True),
    ...     lstm_fast.Dense(1)])
    >>> x = np.random.rand(1, 6, 3).astype("float32")
    >>> stream = model.stream()            # a Stream of this model, batch_size 1
    >>> y_0 = stream.step(x[:, 0])         # (1, output features)
    >>> y_0.shape
    (1, 1)
    >>> steps = [y_0] + [stream.step(x[:, t]) for t in range(1, 6)]
    >>> np.allclose(np.stack(steps, axis=1), model.predict(x, verbose=0), atol=1e-5)
    True
    >>> stream.reset()                     # start a new sequence
    >>> y = stream.steps(x)                # all 6 steps in one call: (1, 6, 1)
    >>> np.allclose(y, model.predict(x, verbose=0), atol=1e-5)
    True
    """

    def __init__(self, model, batch_size=1, weights_dtype=None):
        from .layers import LSTM, Dense, Dropout, InputLayer, Masking

        if not getattr(model, "built", False):
            raise ValueError(
                "Expected a built model for a stream (fit it, call it once, or give an "
                "input_shape). Received: an unbuilt model")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(
                f"Expected batch_size to be a positive integer. "
                f"Received: batch_size={batch_size!r}")
        self.batch_size = int(batch_size)
        self._steps = []
        self._lstms = []
        for layer in model.layers:
            if isinstance(layer, LSTM):
                step = _LSTMStep(layer, self.batch_size, weights_dtype)
                self._lstms.append(step)
                self._steps.append(step)
            elif isinstance(layer, Dense):
                self._steps.append(_DenseStep(layer))
            elif isinstance(layer, (Dropout, Masking, InputLayer)):
                continue  # identity at inference, and no step of a stream is masked
            else:
                raise ValueError(
                    f"Expected only LSTM, Dense, Dropout and Masking layers in a stream. "
                    f"Received: layer '{layer.name}' of type {type(layer).__name__}")
        if not self._lstms:
            raise ValueError("Expected at least one LSTM layer in a stream. Received: none")
        first = model.layers[0] if not isinstance(model.layers[0], InputLayer) else model.layers[1]
        self.input_dim = int(first.kernel.shape[0])
        self.dtype = self._lstms[0].kernel.dtype

    def step(self, x_t):
        """Advance every stream by one time step.

        Args:
            x_t: (batch_size, I) array, or (I,) when batch_size is 1.

        Returns:
            The model's output for this step, (batch_size, output features).
        """
        x = np.asarray(x_t)
        if x.ndim == 1 and self.batch_size == 1:
            x = x[None, :]
        if x.shape != (self.batch_size, self.input_dim):
            raise ValueError(
                f"Expected x_t.shape=(batch_size, I)=({self.batch_size}, {self.input_dim}). "
                f"Received: x_t.shape={np.shape(x_t)}")
        for step in self._steps:
            x = step(x)
        return x

    def steps(self, x):
        """Advance every stream by the T time steps of `x` in one call per layer.

        Equal (to rounding) to T calls of `step`, and on a fresh or reset
        stream to `model.predict(x)` of a model that returns sequences.

        Args:
            x: (batch_size, T, I) array, or (T, I) when batch_size is 1.

        Returns:
            The model's outputs for these steps, (batch_size, T, output features).
        """
        given = np.shape(x)
        x = np.asarray(x)
        if x.ndim == 2 and self.batch_size == 1:
            x = x[None]
        if x.ndim != 3 or x.shape[0] != self.batch_size or x.shape[2] != self.input_dim:
            raise ValueError(
                f"Expected x.shape=(batch_size, T, I)=({self.batch_size}, T, {self.input_dim}). "
                f"Received: x.shape={given}")
        for step in self._steps:
            x = step.run(x)
        return x

    def reset(self):
        """Zero every LSTM state: the next step starts a new sequence."""
        for lstm in self._lstms:
            lstm.reset()

    @property
    def states(self):
        """[(h, c)] of every LSTM layer, (batch_size, units) each."""
        return [(lstm.h, lstm.c) for lstm in self._lstms]
