"""Low-level functional API of the engine: one LSTM layer, forward and backward.

This is what the layers of the Keras-like API call. Arrays in, arrays out.
The maths, shapes and options are those of `lstm_fast.reference` (the oracle);
the work is done by the compiled kernels in `lstm_fast._engine` (C time loops
fused with the gate nonlinearities and the cell update, and the engine's own
GEMM for the time-batched products, on the same threads).

Shapes: B = batch, T = time, I = input features, H = units.
    x (B, T, I), kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,) or None,
    h0, c0 (B, H) or None (zeros). Gate blocks in Keras order i, f, c, o.

The dtype of the computation is the dtype of ``kernel`` (float32 or float64);
the other arrays are converted to it (integers and bools too; complex, object
and string arrays raise TypeError). NaN and Inf propagate: they are not
checked here. ``n_threads=None`` uses all cores (or ``LSTM_FAST_NUM_THREADS``
/ ``OMP_NUM_THREADS`` when set); results do not depend on the thread count.

Example:
    >>> import numpy as np
    >>> from lstm_fast import ops
    >>> B, T, I, H = 2, 5, 3, 4
    >>> x = np.ones((B, T, I), np.float32)
    >>> kernel = np.full((I, 4 * H), 0.1, np.float32)
    >>> recurrent_kernel = np.full((H, 4 * H), 0.1, np.float32)
    >>> y, h, c, cache = ops.lstm_forward(x, kernel, recurrent_kernel, training=True)
    >>> grads = ops.lstm_backward(cache, dy=np.ones_like(y))
    >>> grads.dkernel.shape
    (3, 16)
"""

from ._engine import (
    LSTMCache,
    PackedWeights,
    block_units,
    get_isa,
    get_num_threads,
    half_weights_supported,
    lstm_backward,
    lstm_forward,
    lstm_step,
    matmul,
    pack_weights,
    set_isa,
    supported_isas,
)
from .reference import LSTMGradients

__all__ = [
    "LSTMCache",
    "LSTMGradients",
    "lstm_forward",
    "lstm_backward",
    "lstm_step",
    "matmul",
    "pack_weights",
    "PackedWeights",
    "get_isa",
    "set_isa",
    "supported_isas",
    "half_weights_supported",
    "block_units",
    "get_num_threads",
]
