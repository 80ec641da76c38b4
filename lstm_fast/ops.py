"""Low-level functional API of the engine: one LSTM layer, forward and backward.

This is what the layers of the Keras-like API call. Arrays in, arrays out.
The maths, shapes and options are those of `lstm_fast.reference` (the oracle);
the work is done by the compiled kernels in `lstm_fast._engine`.

Shapes: B = batch, T = time, I = input features, H = units.
    x (B, T, I), kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,) or None,
    h0, c0 (B, H) or None (zeros).

The dtype of the computation is the dtype of ``kernel`` (float32 or float64);
the other arrays are converted to it. ``n_threads=None`` uses all cores (or
``LSTM_FAST_NUM_THREADS`` / ``OMP_NUM_THREADS`` when set).
"""

from __future__ import annotations

try:
    from ._engine import (  # noqa: F401
        LSTMCache,
        LSTMGradients,
        get_isa,
        get_num_threads,
        lstm_backward,
        lstm_forward,
        lstm_step,
        set_isa,
        supported_isas,
    )
except ImportError:  # TEMPORARY until the engine lands
    from ._fallback_tmp import *  # noqa: F401,F403
    from ._fallback_tmp import LSTMCache, LSTMGradients  # noqa: F401

__all__ = [
    "LSTMCache",
    "LSTMGradients",
    "lstm_forward",
    "lstm_backward",
    "lstm_step",
    "get_isa",
    "set_isa",
    "supported_isas",
    "get_num_threads",
]
