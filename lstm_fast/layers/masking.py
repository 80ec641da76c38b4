"""Masking: mark the time steps whose features all equal `mask_value` as padding."""

from __future__ import annotations

import numpy as np

from .base import Layer

__all__ = ["Masking"]


class Masking(Layer):
    """Masks time steps where every feature equals `mask_value`, as Keras's.

    The output is the input with masked steps set to zero; the mask (B, T) is
    passed to the next layers (an LSTM carries its state over masked steps;
    padding must be at the end of each sequence).

    Args:
        mask_value: the padding value (default 0.0).

    Example:

    >>> model = Sequential([Masking(0.0, input_shape=(20, 10)), LSTM(8)])
    """

    supports_masking = True
    _fixed_input_axes = ()

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        return np.any(inputs != self.mask_value, axis=-1)

    def forward(self, x, mask=None, training=False):
        keep = np.any(x != self.mask_value, axis=-1, keepdims=True)
        self._cache = keep if training else None
        return x * keep

    def backward(self, dy):
        return dy * self._cache

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
