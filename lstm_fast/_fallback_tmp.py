"""TEMPORARY shim while the compiled engine is being written: same signatures as
lstm_fast._engine, backed by the NumPy reference. Removed when _engine lands."""
import numpy as np

from .reference import LSTMCache, LSTMGradients, lstm_forward as _ref_forward
from .reference import lstm_backward as _ref_backward


def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, *, lengths=None,
                 go_backwards=False, return_sequences=True, zero_output_for_mask=False,
                 training=False, n_threads=None):
    return _ref_forward(x, kernel, recurrent_kernel, bias, h0, c0, lengths=lengths,
                        go_backwards=go_backwards, return_sequences=return_sequences,
                        zero_output_for_mask=zero_output_for_mask, training=training)


def lstm_backward(cache, dy=None, dh_T=None, dc_T=None, *, n_threads=None, dkernel=None,
                  drecurrent_kernel=None, dbias=None):
    g = _ref_backward(cache, dy, dh_T, dc_T)
    if dkernel is not None:
        dkernel += g.dkernel
        g.dkernel = dkernel
    if drecurrent_kernel is not None:
        drecurrent_kernel += g.drecurrent_kernel
        g.drecurrent_kernel = drecurrent_kernel
    if dbias is not None and g.dbias is not None:
        dbias += g.dbias
        g.dbias = dbias
    return g


def lstm_step(x_t, kernel, recurrent_kernel, bias, h, c, *, n_threads=None):
    y, h, c, _ = _ref_forward(np.asarray(x_t)[:, None, :], kernel, recurrent_kernel, bias, h, c)
    return h, c


def get_isa():
    return "reference"


def set_isa(name):
    pass


def supported_isas():
    return ["reference"]


def get_num_threads():
    return 1
