"""Input / InputLayer: declare the shape of a model's input before any data."""

from __future__ import annotations

from .base import Layer, normalize_shape

__all__ = ["Input", "InputLayer"]


class InputLayer(Layer):
    """The input of a model: its shape (without batch axis) and dtype; no weights.

    Args:
        shape: shape of one sample, e.g. (20, 10).
        batch_size: optional fixed batch size.
        batch_shape: the full shape with the batch axis (instead of shape).
        dtype: the model's float type.
        name: optional name.

    Example:

    >>> model = Sequential([InputLayer(shape=(20, 10)), LSTM(50)])
    """

    _fixed_input_axes = ()

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None,
                 input_shape=None, batch_input_shape=None, **kwargs):
        if shape is None:
            shape = input_shape
        if batch_shape is None:
            batch_shape = batch_input_shape
        if batch_shape is None:
            if shape is None:
                raise ValueError(
                    "Expected shape (or batch_shape) for an Input. Received: shape=None"
                )
            batch_shape = (batch_size,) + normalize_shape(shape, "shape")
        super().__init__(name=name, dtype=dtype, batch_input_shape=batch_shape, **kwargs)
        self.batch_shape = self._batch_input_shape
        self.shape = self.batch_shape

    def forward(self, x, mask=None, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
    """Declare a model's input shape (an `InputLayer`, usable first in `Sequential`).

    Args:
        shape: shape of one sample, without the batch axis, e.g. (20, 10).
        batch_size: optional fixed batch size.
        dtype: 'float32' or 'float64' (default: `lstm_fast.utils.floatx()`).
        batch_shape: full shape including the batch axis (instead of shape).
        name: optional name.

    Returns:
        An `InputLayer`.

    Example:

    >>> model = Sequential([Input(shape=(20, 10)), LSTM(50), Dense(1)])
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                      name=name, **kwargs)
