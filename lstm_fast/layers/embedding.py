"""Embedding: integer ids (B, T) -> vectors (B, T, output_dim)."""

from __future__ import annotations

import numpy as np

from .. import initializers, regularizers
from .base import Layer

__all__ = ["Embedding"]


class Embedding(Layer):
    """Turns non-negative integer ids into dense vectors, as Keras's.

    Args:
        input_dim: vocabulary size (ids are in [0, input_dim)).
        output_dim: size of each vector.
        embeddings_initializer: default 'uniform' (U(-0.05, 0.05)).
        embeddings_regularizer: optional penalty.
        mask_zero: id 0 is padding; the layer outputs a mask (ids != 0) that
            the following LSTM uses (padding at the end of each sequence).
        input_length: accepted for compatibility (Keras 2), sets input_shape.

    Example:

    >>> model = Sequential([Embedding(1000, 64, mask_zero=True), LSTM(32), Dense(1)])
    """

    _fixed_input_axes = ()
    _input_ndim = None

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        input_length=None,
        **kwargs,
    ):
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Expected {arg} to be a positive int. Received: {arg}={value!r}")
        if embeddings_constraint is not None:
            raise NotImplementedError(
                "Embedding does not support embeddings_constraint yet. Expected None. "
                f"Received: embeddings_constraint={embeddings_constraint!r}"
            )
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length

    def _check_input_shape(self, shape, arg_name="inputs"):
        if len(shape) < 1:
            raise ValueError(
                f"Input of Embedding '{self.name}' must be at least 1-D (batch, ...). "
                f"Received: {arg_name}.shape={tuple(shape)}"
            )

    def _convert_input(self, inputs):
        ids = np.asarray(inputs)
        if ids.dtype.kind == "f":
            if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
                raise ValueError(
                    f"Expected integer ids as input of Embedding '{self.name}'. "
                    "Received: inputs with non-integer values"
                )
        elif ids.dtype.kind not in "iu":
            raise TypeError(
                f"Expected integer ids as input of Embedding '{self.name}'. "
                f"Received: inputs with dtype={ids.dtype}"
            )
        ids = ids.astype(np.intp, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(
                f"Expected ids in [0, {self.input_dim}) for Embedding '{self.name}' "
                f"(input_dim={self.input_dim}). Received: ids with min={ids.min()}, "
                f"max={ids.max()}"
            )
        return ids

    def build(self, input_shape):
        self.add_weight(
            "embeddings",
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            self.embeddings_regularizer,
        )
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def forward(self, x, mask=None, training=False):
        ids = self._convert_input(x)
        self._cache = ids if training else None
        return self.embeddings.take(ids, axis=0)

    def backward(self, dy):
        ids = self._cache
        # scatter-add the rows of dy into the rows of the looked-up ids
        np.add.at(self._grads["embeddings"], ids.ravel(), dy.reshape(-1, self.output_dim))
        return None  # no gradient with respect to integer ids

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "mask_zero": self.mask_zero,
            }
        )
        return config
