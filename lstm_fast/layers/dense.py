"""Dense: y = activation(x @ kernel + bias) on the last axis of a 2-D or N-D input."""

from __future__ import annotations

import numpy as np

from .. import activations, initializers, regularizers
from .base import Layer

__all__ = ["Dense"]


class Dense(Layer):
    """Densely connected layer on the last axis, as Keras's.

    x (..., I) -> activation(x @ kernel + bias) (..., units); kernel (I, units),
    bias (units,). On a (B, T, I) input it applies to every step.

    Args:
        units: output size.
        activation: Keras name ('linear' when None, 'relu', 'sigmoid', 'tanh',
            'softmax', ...; see `lstm_fast.activations`).
        use_bias: default True.
        kernel_initializer: default 'glorot_uniform'.
        bias_initializer: default 'zeros'.
        kernel_regularizer, bias_regularizer: optional penalties.

    Example:

    >>> Dense(1)(np.ones((32, 20, 50), "float32")).shape
    (32, 20, 1)
    """

    supports_masking = True

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Expected units to be a positive int. Received: units={units!r}")
        for arg, value in (
            ("activity_regularizer", activity_regularizer),
            ("kernel_constraint", kernel_constraint),
            ("bias_constraint", bias_constraint),
        ):
            if value is not None:
                raise NotImplementedError(
                    f"Dense does not support {arg} yet. Expected {arg}=None. "
                    f"Received: {arg}={value!r}"
                )
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        I = input_shape[-1]  # noqa: E741
        if I is None:
            raise ValueError(
                f"The last axis of the input of Dense '{self.name}' must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.add_weight("kernel", (I, self.units), self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, mask=None, training=False):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])  # (N, I), a view for contiguous x
        z = np.dot(x2, self.kernel)  # (N, units)
        if self.use_bias:
            z += self.bias
        y = self.activation(z)
        self._cache = (x2, z, y) if training else None
        return y.reshape(lead + (self.units,))

    def backward(self, dy):
        x2, z, y = self._cache
        dz = self.activation.backward(dy.reshape(y.shape), z, y)
        # dK = x2.T @ dz ; db = sum(dz) ; dx = dz @ K.T  (np.dot: matmul is ~10x slower
        # on the units=1 outer product dz @ K.T)
        self._grads["kernel"] += np.dot(x2.T, dz)
        if self.use_bias:
            self._grads["bias"] += dz.sum(axis=0)
        return np.dot(dz, self.kernel.T).reshape(dy.shape[:-1] + (self.kernel.shape[0],))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            }
        )
        return config
