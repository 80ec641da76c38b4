"""Dropout: zero a fraction of the inputs during training, scale the rest."""

from __future__ import annotations

import numpy as np

from .. import utils
from .base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Sets each input to 0 with probability `rate` during training and scales the
    others by 1 / (1 - rate); the identity at inference, as Keras's.

    Args:
        rate: float in [0, 1), the fraction dropped.
        noise_shape: optional shape of the mask, broadcast against the input
            (None entries take the input's size), e.g. (None, 1, features) to
            drop the same features at every step.
        seed: optional int for a private generator.

    Example:

    >>> model = Sequential([LSTM(32, return_sequences=True), Dropout(0.2), Dense(1)])
    """

    supports_masking = True
    _fixed_input_axes = ()

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Expected rate in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def forward(self, x, mask=None, training=False):
        if not training or self.rate == 0:
            self._cache = None
            return x
        shape = x.shape
        if self.noise_shape is not None:
            if len(self.noise_shape) != x.ndim:
                raise ValueError(
                    f"Expected noise_shape of rank {x.ndim} for inputs of shape {x.shape}. "
                    f"Received: noise_shape={self.noise_shape}"
                )
            shape = tuple(s if n is None else n for s, n in zip(x.shape, self.noise_shape))
        keep = 1.0 - self.rate
        rng = self._rng or utils.get_rng()
        drop_mask = (rng.random(shape) < keep).astype(x.dtype) / np.asarray(keep, x.dtype)
        self._cache = drop_mask
        return x * drop_mask

    def backward(self, dy):
        return dy if self._cache is None else dy * self._cache

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed})
        if self.noise_shape is not None:
            config["noise_shape"] = list(self.noise_shape)
        return config
