"""NumPy reference of one LSTM layer: the oracle the compiled engine is tested against.

Written to be read, not to be fast. The equations are those of DESIGN.md
(Keras's conventions), line by line:

    z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias      (B, 4H)
    i = sigmoid(z[:, 0:H])      f = sigmoid(z[:, H:2H])
    g = tanh(z[:, 2H:3H])       o = sigmoid(z[:, 3H:4H])
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Shapes: B = batch, T = time, I = input features, H = units.
x is (B, T, I), kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,).

Options, with the same meaning in `lstm_fast.ops`:
- ``lengths`` (B,) ints: step t of sample b is *masked* when t >= lengths[b];
  a masked step carries h and c unchanged. Its output is the carried h, or
  zeros when ``zero_output_for_mask``.
- ``go_backwards``: the steps are processed from t = T-1 down to 0 and the
  output sequence is returned in processing order (reversed time), as Keras.
- ``return_sequences``: y is (B, T, H) (every step's output) or (B, H) (the
  output of the last processed step).

`lstm_forward(..., training=True)` also returns an `LSTMCache` holding what
`lstm_backward` needs. Everything in the cache is indexed by original time t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LSTMCache", "LSTMGradients", "lstm_forward", "lstm_backward", "sigmoid"]


def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x)), elementwise (the gate nonlinearity).

    Args:
        x: array.

    Returns:
        Array of x's shape, values in (0, 1).

    Example:

    >>> sigmoid(np.array([0.0]))
    array([0.5])
    """
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class LSTMCache:
    """What the backward pass needs from the forward pass (training mode).

    Made by `lstm_forward(..., training=True)`, consumed by `lstm_backward`;
    not meant to be built by hand. Every array is indexed by original time t,
    whatever the direction.

    Args:
        x (B, T, I), kernel (I, 4H), recurrent_kernel (H, 4H): the inputs of
            the forward pass; has_bias: whether it had a bias.
        h0, c0 (B, H): the initial state.
        gates (B, T, 4H): activations [i, f, g, o] of step t (zeros where masked).
        cell (B, T, H): c after step t (the carried c where masked).
        hidden (B, T, H): h after step t (the carried h where masked).
        mask (B, T) bool: True where the step is computed.
        go_backwards, return_sequences, zero_output_for_mask: the forward options.

    Example:

    >>> from lstm_fast.reference import lstm_forward
    >>> H = 4
    >>> x = np.ones((2, 5, 3))
    >>> kernel, recurrent_kernel = np.full((3, 4 * H), 0.1), np.full((H, 4 * H), 0.1)
    >>> y, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, training=True)
    >>> forget = cache.gates[..., H:2 * H]   # the forget gate of every step
    >>> forget.shape, bool(np.all((0 < forget) & (forget < 1)))
    ((2, 5, 4), True)
    """

    x: np.ndarray
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    has_bias: bool
    h0: np.ndarray
    c0: np.ndarray
    gates: np.ndarray
    cell: np.ndarray
    hidden: np.ndarray
    mask: np.ndarray  # (B, T) bool, True where the step is computed
    go_backwards: bool
    return_sequences: bool
    zero_output_for_mask: bool


@dataclass
class LSTMGradients:
    """Gradients of a scalar loss with respect to every input of the layer.

    Returned by `lstm_backward`; iterating gives
    (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias).

    Args:
        dx (B, T, I), dh0 (B, H), dc0 (B, H), dkernel (I, 4H),
        drecurrent_kernel (H, 4H): gradients of the same shapes as the inputs.
        dbias (4H,): the bias gradient, None when the layer has no bias.

    Example:

    >>> from lstm_fast.reference import lstm_backward, lstm_forward
    >>> x = np.ones((2, 5, 3))
    >>> kernel, recurrent_kernel = np.full((3, 16), 0.1), np.full((4, 16), 0.1)
    >>> y, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, training=True)
    >>> dx, dh0, dc0, dkernel, drecurrent_kernel, dbias = lstm_backward(cache, np.ones_like(y))
    >>> dx.shape, dkernel.shape, dbias is None    # lstm_forward was given no bias
    ((2, 5, 3), (3, 16), True)
    """

    dx: np.ndarray  # (B, T, I)
    dh0: np.ndarray  # (B, H)
    dc0: np.ndarray  # (B, H)
    dkernel: np.ndarray  # (I, 4H)
    drecurrent_kernel: np.ndarray  # (H, 4H)
    dbias: np.ndarray | None  # (4H,), None when the layer has no bias

    def __iter__(self):
        return iter((self.dx, self.dh0, self.dc0, self.dkernel, self.drecurrent_kernel, self.dbias))


def _time_order(T, go_backwards):
    """Original time index of each processing step."""
    return list(range(T - 1, -1, -1)) if go_backwards else list(range(T))


def _step_mask(lengths, B, T):
    if lengths is None:
        return np.ones((B, T), dtype=bool)
    lengths = np.asarray(lengths).reshape(B, 1)
    return np.arange(T).reshape(1, T) < lengths


def lstm_forward(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    h0=None,
    c0=None,
    *,
    lengths=None,
    go_backwards=False,
    return_sequences=True,
    zero_output_for_mask=False,
    training=False,
):
    """Run one LSTM layer over a whole sequence.

    The computation is done in the dtype of ``kernel``.

    Args:
        x: (B, T, I) inputs.
        kernel: (I, 4H), gate blocks i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,) or None (no bias).
        h0, c0: (B, H) initial state, or None (zeros).
        lengths: optional (B,) ints: steps t >= lengths[b] of sample b are
            masked (they carry h and c unchanged).
        go_backwards: process t = T-1 down to 0; y is in processing order.
        return_sequences: y is every step's output (B, T, H), else the last (B, H).
        zero_output_for_mask: masked steps output zeros instead of the carried h.
        training: also return the `LSTMCache` that `lstm_backward` needs.

    Returns:
        (y, h_T, c_T, cache): the output, the final state (B, H) each, and
        the cache (None unless ``training``).

    Example:

    >>> B, T, I, H = 2, 5, 3, 4
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((B, T, I))
    >>> kernel = 0.1 * rng.standard_normal((I, 4 * H))
    >>> recurrent_kernel = 0.1 * rng.standard_normal((H, 4 * H))
    >>> y, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, training=True)
    >>> y.shape, h.shape
    ((2, 5, 4), (2, 4))
    """
    dtype = np.asarray(kernel).dtype
    x = np.asarray(x, dtype=dtype)
    kernel = np.asarray(kernel, dtype=dtype)
    recurrent_kernel = np.asarray(recurrent_kernel, dtype=dtype)
    B, T, I = x.shape
    H = recurrent_kernel.shape[0]
    b = np.zeros(4 * H, dtype) if bias is None else np.asarray(bias, dtype=dtype)
    h = np.zeros((B, H), dtype) if h0 is None else np.array(h0, dtype=dtype)
    c = np.zeros((B, H), dtype) if c0 is None else np.array(c0, dtype=dtype)
    mask = _step_mask(lengths, B, T)
    cache_h0, cache_c0 = h.copy(), c.copy()

    gates = np.zeros((B, T, 4 * H), dtype)
    cell = np.zeros((B, T, H), dtype)
    hidden = np.zeros((B, T, H), dtype)
    outputs = []
    for t in _time_order(T, go_backwards):
        z = x[:, t] @ kernel + h @ recurrent_kernel + b
        i = sigmoid(z[:, 0:H])
        f = sigmoid(z[:, H : 2 * H])
        g = np.tanh(z[:, 2 * H : 3 * H])
        o = sigmoid(z[:, 3 * H : 4 * H])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)

        m = mask[:, t : t + 1]  # (B, 1): masked rows keep their state
        c = np.where(m, c_new, c)
        h = np.where(m, h_new, h)
        gates[:, t] = np.where(m, np.concatenate([i, f, g, o], axis=1), 0)
        cell[:, t] = c
        hidden[:, t] = h
        out = np.where(m, h, 0) if zero_output_for_mask else h
        outputs.append(out)

    if return_sequences:
        y = np.stack(outputs, axis=1) if T else np.zeros((B, 0, H), dtype)
    else:
        y = outputs[-1] if T else h.copy()
    cache = None
    if training:
        cache = LSTMCache(
            x=x,
            kernel=kernel,
            recurrent_kernel=recurrent_kernel,
            has_bias=bias is not None,
            h0=cache_h0,
            c0=cache_c0,
            gates=gates,
            cell=cell,
            hidden=hidden,
            mask=mask,
            go_backwards=go_backwards,
            return_sequences=return_sequences,
            zero_output_for_mask=zero_output_for_mask,
        )
    return y, h, c, cache


def lstm_backward(cache, dy=None, dh_T=None, dc_T=None):
    """Gradients of a loss given dL/dy, dL/dh_T and dL/dc_T (each may be None).

    Args:
        cache: the `LSTMCache` of `lstm_forward(..., training=True)`.
        dy: dL/dy, of the shape of the forward output y: (B, T, H) with
            return_sequences, (B, H) without; None for zeros.
        dh_T, dc_T: (B, H) gradients with respect to the final state, or None.

    Returns:
        `LSTMGradients` (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias).

    Example:

    >>> from lstm_fast.reference import lstm_backward, lstm_forward
    >>> x = np.ones((2, 5, 3))
    >>> kernel, recurrent_kernel = np.full((3, 16), 0.1), np.full((4, 16), 0.1)
    >>> y, h, c, cache = lstm_forward(x, kernel, recurrent_kernel, training=True)
    >>> grads = lstm_backward(cache, dy=np.ones_like(y))   # the gradients of y.sum()
    >>> grads.dkernel.shape
    (3, 16)
    """
    x, K, R = cache.x, cache.kernel, cache.recurrent_kernel
    dtype = K.dtype
    B, T, I = x.shape
    H = R.shape[0]
    order = _time_order(T, cache.go_backwards)

    dh = np.zeros((B, H), dtype) if dh_T is None else np.array(dh_T, dtype=dtype)
    dc = np.zeros((B, H), dtype) if dc_T is None else np.array(dc_T, dtype=dtype)
    dx = np.zeros((B, T, I), dtype)
    dK = np.zeros_like(K)
    dR = np.zeros_like(R)
    db = np.zeros(4 * H, dtype)

    for step in range(T - 1, -1, -1):
        t = order[step]
        m = cache.mask[:, t : t + 1]
        # dL/d(output of this step)
        if dy is not None:
            if cache.return_sequences:
                dout = np.asarray(dy, dtype)[:, step]
            else:
                dout = np.asarray(dy, dtype) if step == T - 1 else np.zeros((B, H), dtype)
            if cache.zero_output_for_mask:
                dout = np.where(m, dout, 0)
            dh = dh + dout

        # state before this step
        prev = order[step - 1] if step > 0 else None
        h_prev = cache.hidden[:, prev] if prev is not None else cache.h0
        c_prev = cache.cell[:, prev] if prev is not None else cache.c0

        gate = cache.gates[:, t]
        i, f, g, o = gate[:, 0:H], gate[:, H : 2 * H], gate[:, 2 * H : 3 * H], gate[:, 3 * H :]
        tanh_c = np.tanh(cache.cell[:, t])

        do = dh * tanh_c
        dc_total = dc + dh * o * (1.0 - tanh_c**2)
        di = dc_total * g
        df = dc_total * c_prev
        dg = dc_total * i
        dz = np.concatenate(
            [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)],
            axis=1,
        )
        dz = np.where(m, dz, 0)

        dx[:, t] = dz @ K.T
        dK += x[:, t].T @ dz
        dR += h_prev.T @ dz
        db += dz.sum(axis=0)

        # masked rows pass dh and dc through unchanged
        dh = np.where(m, dz @ R.T, dh)
        dc = np.where(m, dc_total * f, dc)

    return LSTMGradients(
        dx=dx,
        dh0=dh,
        dc0=dc,
        dkernel=dK,
        drecurrent_kernel=dR,
        dbias=db if cache.has_bias else None,
    )
