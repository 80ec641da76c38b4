"""Moving LSTM weights between lstm_fast, Keras, PyTorch and ONNX layouts.

lstm_fast uses Keras's layout: ``kernel`` (I, 4H), ``recurrent_kernel`` (H, 4H)
and one ``bias`` (4H,), gate blocks in the order i, f, c (the cell candidate
g), o. So a Keras model's ``get_weights()`` list is ours as it is.

PyTorch's ``nn.LSTM`` stores ``weight_ih_l{k}`` (4H, I) = kernel.T,
``weight_hh_l{k}`` (4H, H) = recurrent_kernel.T, and two biases whose sum is
our bias; its gate order i, f, g, o is the same. Exporting puts the whole bias
in ``bias_ih`` and zeros in ``bias_hh`` (the sum is exact).

The ONNX ``LSTM`` operator takes W (dirs, 4H, I) and R (dirs, 4H, H) in gate
order i, o, f, c, B (dirs, 8H) = [Wb, Rb], and X (T, B, I) (layout 0).

Array functions come first (`lstm_weights_from_torch`, `lstm_weights_to_torch`,
`lstm_weights_to_onnx`, ...), then layer and model helpers (`load_torch_lstm`,
`export_torch_lstm`, `load_keras_weights`, `export_onnx`). PyTorch and ONNX are
optional: only `torch_lstm_from_layer`, `export_onnx` and passing a torch
module need them; every other function works on NumPy arrays.

Example:

>>> from lstm_fast import interop
>>> layer = lstm_fast.LSTM(2)
>>> layer.build((None, None, 3))
>>> state_dict = interop.export_torch_lstm(layer)      # nn.LSTM's keys, NumPy arrays
>>> state_dict["weight_ih_l0"].shape                   # (4H, I) = kernel.T
(8, 3)
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = [
    "export_keras_weights",
    "export_onnx",
    "export_torch_lstm",
    "load_keras_weights",
    "load_torch_lstm",
    "lstm_weights_from_keras",
    "lstm_weights_from_onnx",
    "lstm_weights_from_torch",
    "lstm_weights_to_keras",
    "lstm_weights_to_onnx",
    "lstm_weights_to_torch",
    "torch_lstm_from_layer",
]


def _to_numpy(value, name):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"Expected a numeric array for {name}. Received: dtype={array.dtype}")
    return array


def _check_lstm_shapes(kernel, recurrent_kernel, bias):
    if kernel.ndim != 2 or kernel.shape[1] % 4:
        raise ValueError(f"Expected kernel of shape (I, 4H). Received: kernel.shape={kernel.shape}")
    H = kernel.shape[1] // 4
    if recurrent_kernel.shape != (H, 4 * H):
        raise ValueError(
            f"Expected recurrent_kernel of shape {(H, 4 * H)} (from kernel.shape={kernel.shape}). "
            f"Received: recurrent_kernel.shape={recurrent_kernel.shape}"
        )
    if bias is not None and bias.shape != (4 * H,):
        raise ValueError(f"Expected bias of shape {(4 * H,)}. Received: bias.shape={bias.shape}")
    return H


# ------------------------------------------------------------------- Keras


def lstm_weights_from_keras(weights):
    """Split a Keras LSTM's ``get_weights()`` list into ``(kernel, recurrent_kernel, bias)``.

    The layout is the same as lstm_fast's, so no array changes; this checks
    the shapes.

    Args:
        weights: ``[kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,)]``,
            or the first two only for a layer with ``use_bias=False``. Arrays
            or tensors.

    Returns:
        ``(kernel, recurrent_kernel, bias)`` as NumPy arrays; bias is None
        when the list has two arrays.

    Example:

    >>> from lstm_fast import interop
    >>> layer = lstm_fast.LSTM(2)
    >>> layer.build((None, None, 3))
    >>> kernel, recurrent_kernel, bias = interop.lstm_weights_from_keras(layer.get_weights())
    >>> kernel.shape, recurrent_kernel.shape, bias.shape
    ((3, 8), (2, 8), (8,))
    """
    weights = [_to_numpy(w, "weights") for w in weights]
    if len(weights) not in (2, 3):
        raise ValueError(
            "Expected [kernel, recurrent_kernel, bias] (or without bias). "
            f"Received: a list of {len(weights)} arrays"
        )
    kernel, recurrent_kernel = weights[0], weights[1]
    bias = weights[2] if len(weights) == 3 else None
    _check_lstm_shapes(kernel, recurrent_kernel, bias)
    return kernel, recurrent_kernel, bias


def lstm_weights_to_keras(kernel, recurrent_kernel, bias=None):
    """The list a Keras LSTM takes in ``set_weights``: ``[kernel, recurrent_kernel, bias]``.

    Args:
        kernel: (I, 4H), gate blocks i, f, c, o.
        recurrent_kernel: (H, 4H).
        bias: (4H,), or None for a layer without bias.

    Returns:
        A list of copies of the arrays (two when ``bias`` is None).

    Example:

    >>> from lstm_fast import interop
    >>> weights = interop.lstm_weights_to_keras(np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8))
    >>> [w.shape for w in weights]
    [(3, 8), (2, 8), (8,)]
    """
    kernel, recurrent_kernel = _to_numpy(kernel, "kernel"), _to_numpy(recurrent_kernel, "rk")
    bias = None if bias is None else _to_numpy(bias, "bias")
    _check_lstm_shapes(kernel, recurrent_kernel, bias)
    out = [kernel.copy(), recurrent_kernel.copy()]
    return out if bias is None else [*out, bias.copy()]


def load_keras_weights(model, weights):
    """Set a model's weights from a Keras model's ``get_weights()`` list.

    lstm_fast layers use Keras's layouts and order, so this is ``set_weights``
    with a check of every shape against the model's.

    Args:
        model: a built lstm_fast model (or layer) of the same architecture.
        weights: list of arrays, e.g. ``keras_model.get_weights()``.

    Example:

    >>> from lstm_fast import interop
    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(2, input_shape=(4, 3)), lstm_fast.Dense(1)])
    >>> weights = [np.full(w.shape, 0.1, "float32") for w in model.get_weights()]
    >>> interop.load_keras_weights(model, weights)   # e.g. keras_model.get_weights()
    >>> bool(np.all(model.get_weights()[0] == np.float32(0.1)))
    True

    With Keras installed, ``interop.load_keras_weights(model,
    keras_model.get_weights())`` copies a trained Keras model of the same
    layers.
    """
    weights = [_to_numpy(w, "weights") for w in weights]
    current = model.get_weights()
    if len(weights) != len(current):
        raise ValueError(
            f"Expected {len(current)} weight arrays (the model's get_weights()). "
            f"Received: {len(weights)} arrays"
        )
    for k, (w, c) in enumerate(zip(weights, current)):
        if w.shape != c.shape:
            raise ValueError(
                f"Expected weight {k} of shape {c.shape}. Received: shape={w.shape} "
                "(is the architecture the same as the Keras model's?)"
            )
    model.set_weights(weights)


# ----------------------------------------------------------------- PyTorch


def lstm_weights_from_torch(state_dict, layer=0, reverse=False, dtype=None):
    """``(kernel, recurrent_kernel, bias)`` in Keras layout from an ``nn.LSTM`` state dict.

    Args:
        state_dict: ``torch_lstm.state_dict()`` (tensors or arrays).
        layer: which stacked layer (``_l{layer}``).
        reverse: the reverse direction of a bidirectional LSTM (``_reverse``).
        dtype: optional dtype of the returned arrays (default: the tensors').

    Returns:
        kernel (I, 4H) = weight_ih.T, recurrent_kernel (H, 4H) = weight_hh.T,
        bias (4H,) = bias_ih + bias_hh (None when the LSTM has no bias).

    Example:

    >>> from lstm_fast import interop
    >>> state_dict = {"weight_ih_l0": np.zeros((8, 3)), "weight_hh_l0": np.zeros((8, 2)),
    ...               "bias_ih_l0": np.ones(8), "bias_hh_l0": np.ones(8)}
    >>> kernel, recurrent_kernel, bias = interop.lstm_weights_from_torch(state_dict)
    >>> kernel.shape, recurrent_kernel.shape, bias[:2]
    ((3, 8), (2, 8), array([2., 2.]))

    With PyTorch, pass ``torch_lstm.state_dict()`` (tensors are converted).
    """
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    keys = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise ValueError(
            f"Expected the keys {keys} in the state dict. Received keys: {sorted(state_dict)}"
        )
    if f"weight_hr{suffix}" in state_dict:
        raise NotImplementedError("nn.LSTM with proj_size > 0 has no Keras equivalent.")
    w_ih = _to_numpy(state_dict[keys[0]], keys[0])
    w_hh = _to_numpy(state_dict[keys[1]], keys[1])
    dtype = np.dtype(dtype) if dtype is not None else w_ih.dtype
    kernel = np.ascontiguousarray(w_ih.T, dtype=dtype)
    recurrent_kernel = np.ascontiguousarray(w_hh.T, dtype=dtype)
    bias = None
    if f"bias_ih{suffix}" in state_dict:
        # sum in float64 so float32 results are the correctly rounded sum
        b = _to_numpy(state_dict[f"bias_ih{suffix}"], "bias_ih").astype(np.float64)
        b = b + _to_numpy(state_dict[f"bias_hh{suffix}"], "bias_hh").astype(np.float64)
        bias = b.astype(dtype)
    _check_lstm_shapes(kernel, recurrent_kernel, bias)
    return kernel, recurrent_kernel, bias


def lstm_weights_to_torch(kernel, recurrent_kernel, bias=None, layer=0, reverse=False, torch=None):
    """An ``nn.LSTM`` state dict (one layer, one direction) from Keras-layout weights.

    Args:
        kernel: (I, 4H), Keras layout.
        recurrent_kernel: (H, 4H).
        bias: (4H,), or None.
        layer: the stacked-layer index in the keys (``_l{layer}``).
        reverse: name the keys of the reverse direction (``_reverse``).
        torch: the ``torch`` module to get tensors (default: NumPy arrays).

    Returns:
        dict with ``weight_ih_l{k}`` = kernel.T, ``weight_hh_l{k}`` =
        recurrent_kernel.T, and (with a bias) ``bias_ih_l{k}`` = bias,
        ``bias_hh_l{k}`` = zeros.

    Example:

    >>> from lstm_fast import interop
    >>> state_dict = interop.lstm_weights_to_torch(np.zeros((3, 8)), np.zeros((2, 8)), np.ones(8))
    >>> {key: value.shape for key, value in state_dict.items()}
    {'weight_ih_l0': (8, 3), 'weight_hh_l0': (8, 2), 'bias_ih_l0': (8,), 'bias_hh_l0': (8,)}
    """
    kernel, recurrent_kernel = _to_numpy(kernel, "kernel"), _to_numpy(recurrent_kernel, "rk")
    bias = None if bias is None else _to_numpy(bias, "bias")
    _check_lstm_shapes(kernel, recurrent_kernel, bias)
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    out = {
        f"weight_ih{suffix}": np.ascontiguousarray(kernel.T),
        f"weight_hh{suffix}": np.ascontiguousarray(recurrent_kernel.T),
    }
    if bias is not None:
        out[f"bias_ih{suffix}"] = bias.copy()
        out[f"bias_hh{suffix}"] = np.zeros_like(bias)
    if torch is not None:
        out = {k: torch.from_numpy(v) for k, v in out.items()}
    return out


def _lstm_layers(layer):
    """[(lstm layer, reverse?)] of an LSTM or a Bidirectional(LSTM)."""
    from .layers import LSTM, Bidirectional

    if isinstance(layer, Bidirectional):
        return [(layer.forward_layer, False), (layer.backward_layer, True)]
    if isinstance(layer, LSTM):
        return [(layer, False)]
    raise TypeError(
        f"Expected an lstm_fast LSTM or Bidirectional(LSTM) layer. Received: {type(layer).__name__}"
    )


def load_torch_lstm(model_layer, torch_lstm, layer=0):
    """Copy the weights of a PyTorch ``nn.LSTM`` into an lstm_fast LSTM layer.

    Args:
        model_layer: an lstm_fast `LSTM` (or `Bidirectional` around one, for a
            bidirectional ``nn.LSTM``); built on the torch input size if needed.
        torch_lstm: an ``nn.LSTM`` module, or its state dict.
        layer: which of the stacked torch layers to copy.

    Example:

    >>> from lstm_fast import interop
    >>> source = lstm_fast.LSTM(2)
    >>> source.build((None, None, 3))
    >>> state_dict = interop.export_torch_lstm(source)    # stands in for torch_lstm.state_dict()
    >>> layer = lstm_fast.LSTM(2)
    >>> interop.load_torch_lstm(layer, state_dict)
    >>> np.array_equal(layer.kernel, source.kernel)
    True

    With PyTorch, ``interop.load_torch_lstm(layer, torch.nn.LSTM(3, 2,
    batch_first=True))`` copies the module's weights; the layer then gives
    the module's outputs (torch's ``h_n`` is the layer's final state).
    """
    state = torch_lstm.state_dict() if hasattr(torch_lstm, "state_dict") else torch_lstm
    if getattr(torch_lstm, "proj_size", 0):
        raise NotImplementedError("nn.LSTM with proj_size > 0 has no Keras equivalent.")
    targets = _lstm_layers(model_layer)
    key = f"weight_ih_l{layer}"
    if not model_layer.built and key in state:
        model_layer.build((None, None, int(state[key].shape[1])))
    for lstm, reverse in targets:
        kernel, recurrent_kernel, bias = lstm_weights_from_torch(
            state, layer=layer, reverse=reverse
        )
        if recurrent_kernel.shape[0] != lstm.units:
            raise ValueError(
                f"Expected a torch LSTM with hidden_size={lstm.units} for layer '{lstm.name}'. "
                f"Received: hidden_size={recurrent_kernel.shape[0]}"
            )
        if not lstm.built:
            lstm.build((None, None, kernel.shape[0]))
        if not lstm.use_bias:
            if bias is not None and np.any(bias):
                raise ValueError(
                    f"Layer '{lstm.name}' has use_bias=False but the torch LSTM has a nonzero bias."
                )
            lstm.set_weights([kernel, recurrent_kernel])
        else:
            if bias is None:
                bias = np.zeros(4 * lstm.units, kernel.dtype)
            lstm.set_weights([kernel, recurrent_kernel, bias])


def export_torch_lstm(model_layer, torch_lstm=None, layer=0):
    """The weights of an lstm_fast LSTM as an ``nn.LSTM`` state dict.

    Args:
        model_layer: a built `LSTM` (or `Bidirectional` around one).
        torch_lstm: optional ``nn.LSTM`` to load them into (its other layers
            are left as they are); tensors keep the torch module's dtype.
        layer: the stacked-layer index of the keys.

    Returns:
        The state dict (NumPy arrays; torch tensors when ``torch_lstm`` is given).

    Example:

    >>> from lstm_fast import interop
    >>> layer = lstm_fast.Bidirectional(lstm_fast.LSTM(2))
    >>> layer.build((None, None, 3))
    >>> sorted(interop.export_torch_lstm(layer))
    ['bias_hh_l0', 'bias_hh_l0_reverse', 'bias_ih_l0', 'bias_ih_l0_reverse',
     'weight_hh_l0', 'weight_hh_l0_reverse', 'weight_ih_l0', 'weight_ih_l0_reverse']

    With PyTorch, ``interop.export_torch_lstm(layer, torch_lstm)`` loads the
    weights into an existing ``nn.LSTM(3, 2, bidirectional=True)``.
    """
    out = {}
    for lstm, reverse in _lstm_layers(model_layer):
        if not lstm.built:
            raise ValueError(f"Layer '{lstm.name}' is not built: it has no weights to export.")
        bias = lstm.bias if lstm.use_bias else None
        out.update(lstm_weights_to_torch(lstm.kernel, lstm.recurrent_kernel, bias, layer, reverse))
    if torch_lstm is not None:
        import torch

        current = torch_lstm.state_dict()
        missing = [k for k in out if k not in current]
        if missing:
            raise ValueError(
                f"The torch LSTM has no parameters {missing} (bias=False? wrong num_layers or "
                "bidirectional?)"
            )
        tensors = {}
        for key, value in out.items():
            if current[key].shape != value.shape:
                raise ValueError(
                    f"Expected torch parameter {key} of shape {tuple(value.shape)}. "
                    f"Received: {tuple(current[key].shape)}"
                )
            tensors[key] = torch.from_numpy(value).to(current[key].dtype)
        current.update(tensors)
        torch_lstm.load_state_dict(current)
        return tensors
    return out


def torch_lstm_from_layer(model_layer, batch_first=True):
    """A new PyTorch ``nn.LSTM`` with the weights of an lstm_fast LSTM layer.

    Args:
        model_layer: a built `LSTM` (or `Bidirectional` around one).
        batch_first: the torch module's input layout (lstm_fast is batch-first).

    Returns:
        An ``nn.LSTM`` (float32 or float64 like the layer) giving the same outputs.

    Example:

    It needs PyTorch, so this one is shown without doctest prompts::

        layer = model.layers[0]                      # a trained lstm_fast LSTM
        torch_lstm = interop.torch_lstm_from_layer(layer)
        y, (h, c) = torch_lstm(torch.from_numpy(x))  # x: (B, T, I) float32
        # y.detach().numpy() equals LSTM(..., return_sequences=True) on x
    """
    import torch

    targets = _lstm_layers(model_layer)
    lstm = targets[0][0]
    if not lstm.built:
        raise ValueError(f"Layer '{lstm.name}' is not built: it has no weights to export.")
    module = torch.nn.LSTM(
        lstm.kernel.shape[0],
        lstm.units,
        bias=lstm.use_bias,
        batch_first=batch_first,
        bidirectional=len(targets) == 2,
    ).to(torch.float64 if lstm.kernel.dtype == np.float64 else torch.float32)
    export_torch_lstm(model_layer, module)
    return module


def export_keras_weights(model):
    """The list a Keras model of the same architecture takes in ``set_weights``.

    lstm_fast uses Keras's layouts and order: this is ``model.get_weights()``
    (copies), e.g. ``keras_model.set_weights(export_keras_weights(model))``.

    Args:
        model: a built lstm_fast model (or layer).

    Returns:
        A list of NumPy arrays (copies).

    Example:

    >>> from lstm_fast import interop
    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(2, input_shape=(4, 3)), lstm_fast.Dense(1)])
    >>> [w.shape for w in interop.export_keras_weights(model)]
    [(3, 8), (2, 8), (8,), (2, 1), (1,)]
    """
    return [np.array(w, copy=True) for w in model.get_weights()]


# -------------------------------------------------------------------- ONNX

# gate blocks: lstm_fast/Keras i, f, c, o -> ONNX i, o, f, c
_ONNX_ORDER = (0, 3, 1, 2)


def _reorder_gates(array, H, axis):
    blocks = [np.take(array, np.arange(k * H, (k + 1) * H), axis=axis) for k in _ONNX_ORDER]
    return np.concatenate(blocks, axis=axis)


def lstm_weights_to_onnx(kernel, recurrent_kernel, bias=None):
    """The inputs W, R, B of the ONNX ``LSTM`` operator from Keras-layout weights.

    The gate blocks are reordered from i, f, c, o to ONNX's i, o, f, c, and
    the matrices transposed.

    Args:
        kernel: (I, 4H).
        recurrent_kernel: (H, 4H).
        bias: (4H,), or None (zeros).

    Returns:
        ``(W, R, B)``: W (1, 4H, I), R (1, 4H, H), and B (1, 8H) with the
        whole bias in its first half and zeros in the second.

    Example:

    >>> from lstm_fast import interop
    >>> W, R, B = interop.lstm_weights_to_onnx(np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8))
    >>> W.shape, R.shape, B.shape
    ((1, 8, 3), (1, 8, 2), (1, 16))
    """
    kernel, recurrent_kernel = _to_numpy(kernel, "kernel"), _to_numpy(recurrent_kernel, "rk")
    bias = None if bias is None else _to_numpy(bias, "bias")
    H = _check_lstm_shapes(kernel, recurrent_kernel, bias)
    W = _reorder_gates(kernel.T, H, axis=0)[None]
    R = _reorder_gates(recurrent_kernel.T, H, axis=0)[None]
    wb = np.zeros(4 * H, kernel.dtype) if bias is None else _reorder_gates(bias, H, axis=0)
    B = np.concatenate([wb, np.zeros(4 * H, kernel.dtype)])[None]
    return np.ascontiguousarray(W), np.ascontiguousarray(R), np.ascontiguousarray(B)


def lstm_weights_from_onnx(W, R, B=None, direction=0):
    """Keras-layout ``(kernel, recurrent_kernel, bias)`` from the ONNX ``LSTM`` inputs W, R, B.

    The inverse of `lstm_weights_to_onnx` (the two halves of B are added).

    Args:
        W: (dirs, 4H, I), gate order i, o, f, c.
        R: (dirs, 4H, H).
        B: (dirs, 8H), or None.
        direction: which direction to take (0 forward, 1 reverse).

    Returns:
        ``(kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,) or None)``.

    Example:

    >>> from lstm_fast import interop
    >>> layer = lstm_fast.LSTM(2)
    >>> layer.build((None, None, 3))
    >>> W, R, B = interop.lstm_weights_to_onnx(layer.kernel, layer.recurrent_kernel, layer.bias)
    >>> kernel, recurrent_kernel, bias = interop.lstm_weights_from_onnx(W, R, B)
    >>> np.array_equal(kernel, layer.kernel), np.array_equal(bias, layer.bias)
    (True, True)
    """
    W, R = _to_numpy(W, "W")[direction], _to_numpy(R, "R")[direction]
    H = R.shape[1]
    inverse = np.argsort(_ONNX_ORDER)
    blocks_w = [W[k * H : (k + 1) * H] for k in range(4)]
    blocks_r = [R[k * H : (k + 1) * H] for k in range(4)]
    kernel = np.concatenate([blocks_w[k] for k in inverse], axis=0).T.copy()
    recurrent_kernel = np.concatenate([blocks_r[k] for k in inverse], axis=0).T.copy()
    bias = None
    if B is not None:
        b = _to_numpy(B, "B")[direction]
        b = b[: 4 * H] + b[4 * H :]
        bias = np.concatenate([b[k * H : (k + 1) * H] for k in inverse])
    return kernel, recurrent_kernel, bias


_ONNX_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


def _activation_name(activation):
    if activation is None:
        return "linear"
    name = getattr(activation, "name", None) or getattr(activation, "__name__", None)
    return str(name if name is not None else activation)


def export_onnx(model, path, opset=17):
    """Export a trained Sequential (LSTM layers, Dense, Dropout) to an ONNX file.

    The graph takes ``input`` (batch, time, features) float32 and gives the
    model's prediction, using the standard ONNX ``LSTM`` operator (inference
    only; dynamic batch and time sizes). Needs the ``onnx`` package.

    Supported layers: `LSTM` (also go_backwards; not stateful, no
    return_state, no masking), `Bidirectional(LSTM)` (merge modes concat, sum,
    mul, ave), `Dense` with activation linear/relu/sigmoid/tanh/softmax,
    `Dropout` (identity at inference), `InputLayer`. Weights are exported as
    float32.

    Args:
        model: a built `Sequential`.
        path: destination ``.onnx`` file (written atomically).
        opset: ONNX opset version (default 17).

    Returns:
        The ``onnx.ModelProto``.

    Example:

    It needs the ``onnx`` package (and ``onnxruntime`` to run the file), so
    this one is shown without doctest prompts::

        interop.export_onnx(model, "model.onnx")
        import onnxruntime
        session = onnxruntime.InferenceSession("model.onnx")
        (y,) = session.run(None, {"input": x.astype("float32")})   # ~ model.predict(x)
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError(
            "ONNX export needs the optional 'onnx' package. Install it with: pip install onnx "
            "(and onnxruntime to run the exported model)."
        ) from None
    from .layers import LSTM, Bidirectional, Dense, Dropout, InputLayer

    layers = list(getattr(model, "layers", []))
    if not layers or not getattr(model, "built", False):
        raise ValueError("Expected a built Sequential model with layers (call it on data first).")

    nodes, initializers = [], []
    first = next(layer for layer in layers if not isinstance(layer, (InputLayer, Dropout)))
    if isinstance(first, Bidirectional):
        first = first.forward_layer
    if not isinstance(first, LSTM):
        raise NotImplementedError(
            f"ONNX export expects the first layer to be an LSTM. Received: {type(first).__name__}"
        )
    n_features = first.kernel.shape[0]
    current, rank = "input", 3

    def fresh(base, _count=[0]):  # noqa: B006 - a counter shared by the calls of one export
        _count[0] += 1
        return f"{base}_{_count[0]}"

    def const(name, array):
        initializers.append(numpy_helper.from_array(np.asarray(array), name=name))
        return name

    state = {"time_major": False}

    def to_time_major(name):
        if state["time_major"]:
            return name
        out = fresh("time_major")
        nodes.append(helper.make_node("Transpose", [name], [out], perm=[1, 0, 2]))
        state["time_major"] = True
        return out

    def to_batch_major(name):
        if not state["time_major"]:
            return name
        out = fresh("batch_major")
        nodes.append(helper.make_node("Transpose", [name], [out], perm=[1, 0, 2]))
        state["time_major"] = False
        return out

    def take(name, index, axis):
        out = fresh(f"{name}_take")
        idx = const(fresh("index"), np.array(index, np.int64))
        nodes.append(helper.make_node("Gather", [name, idx], [out], axis=axis))
        return out

    def lstm_nodes(layer, x):
        """LSTM / Bidirectional(LSTM) on time-major x; returns (output name, output rank)."""
        bidirectional = isinstance(layer, Bidirectional)
        subs = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
        for sub in subs:
            for flag in ("stateful", "return_state"):
                if getattr(sub, flag):
                    raise NotImplementedError(f"ONNX export does not support LSTM({flag}=True).")
        if bidirectional:
            if layer.merge_mode not in ("concat", "sum", "mul", "ave"):
                raise NotImplementedError(
                    f"ONNX export supports merge modes concat, sum, mul, ave. "
                    f"Received: merge_mode={layer.merge_mode!r}"
                )
            if subs[0].go_backwards or not subs[1].go_backwards:
                raise NotImplementedError(
                    "ONNX export expects a forward layer and a go_backwards backward layer."
                )
            direction = "bidirectional"
        else:
            direction = "reverse" if layer.go_backwards else "forward"
        weights = [
            lstm_weights_to_onnx(s.kernel, s.recurrent_kernel, s.bias if s.use_bias else None)
            for s in subs
        ]
        prefix = layer.name
        w, r, b = (
            const(f"{prefix}_{part}", np.concatenate([wt[k] for wt in weights]).astype(np.float32))
            for k, part in enumerate("WRB")
        )
        y, y_h = fresh(f"{prefix}_Y"), fresh(f"{prefix}_Y_h")
        nodes.append(
            helper.make_node(
                "LSTM",
                [x, w, r, b],
                [y, y_h],
                hidden_size=subs[0].units,
                direction=direction,
                name=prefix,
            )
        )
        sequences = subs[0].return_sequences
        # Y (T, dirs, B, H) indexed by original time; Y_h (dirs, B, H) the final states
        parts = [take(y, d, 1) if sequences else take(y_h, d, 0) for d in range(len(subs))]
        if not bidirectional:
            out = parts[0]
            if sequences and layer.go_backwards:
                # Keras returns the steps in processing (reversed) order
                flipped = fresh(f"{prefix}_reversed")
                starts = const(fresh("starts"), np.array([-1], np.int64))
                ends = const(fresh("ends"), np.array([np.iinfo(np.int64).min], np.int64))
                axes = const(fresh("axes"), np.array([0], np.int64))
                steps = const(fresh("steps"), np.array([-1], np.int64))
                nodes.append(helper.make_node("Slice", [out, starts, ends, axes, steps], [flipped]))
                out = flipped
        else:
            out = fresh(f"{prefix}_{layer.merge_mode}")
            if layer.merge_mode == "concat":
                nodes.append(helper.make_node("Concat", parts, [out], axis=-1))
            elif layer.merge_mode == "mul":
                nodes.append(helper.make_node("Mul", parts, [out]))
            else:
                nodes.append(helper.make_node("Add", parts, [out]))
                if layer.merge_mode == "ave":
                    half = const(fresh("half"), np.array(0.5, np.float32))
                    averaged = fresh(f"{prefix}_ave")
                    nodes.append(helper.make_node("Mul", [out, half], [averaged]))
                    out = averaged
        if not sequences:
            state["time_major"] = False
            return out, 2
        return out, 3

    for layer in layers:
        if isinstance(layer, (InputLayer, Dropout)):
            continue
        if isinstance(layer, (LSTM, Bidirectional)):
            if rank != 3:
                raise NotImplementedError(
                    "An LSTM after a layer with 2-D output cannot be exported."
                )
            current = to_time_major(current)
            current, rank = lstm_nodes(layer, current)
        elif isinstance(layer, Dense):
            current = to_batch_major(current)
            kernel = const(f"{layer.name}_kernel", np.asarray(layer.kernel, np.float32))
            out = fresh(f"{layer.name}_matmul")
            nodes.append(helper.make_node("MatMul", [current, kernel], [out]))
            current = out
            if getattr(layer, "use_bias", True) and getattr(layer, "bias", None) is not None:
                bias = const(f"{layer.name}_bias", np.asarray(layer.bias, np.float32))
                out = fresh(f"{layer.name}_add")
                nodes.append(helper.make_node("Add", [current, bias], [out]))
                current = out
            act = _activation_name(layer.activation)
            if act != "linear":
                if act not in _ONNX_ACTIVATIONS:
                    raise NotImplementedError(
                        f"ONNX export supports Dense activations linear, "
                        f"{', '.join(_ONNX_ACTIVATIONS)}. Received: activation={act!r}"
                    )
                out = fresh(f"{layer.name}_{act}")
                kwargs = {"axis": -1} if act == "softmax" else {}
                nodes.append(helper.make_node(_ONNX_ACTIVATIONS[act], [current], [out], **kwargs))
                current = out
        else:
            raise NotImplementedError(
                f"ONNX export does not support layer {type(layer).__name__} ('{layer.name}')."
            )
    current = to_batch_major(current)
    nodes.append(helper.make_node("Identity", [current], ["output"]))
    out_dim = _last_units(layers)
    out_shape = ["batch", "time", out_dim] if rank == 3 else ["batch", out_dim]
    graph = helper.make_graph(
        nodes,
        "lstm_fast_model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "time", n_features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        initializer=initializers,
    )
    onnx_model = helper.make_model(
        graph,
        producer_name="lstm_fast",
        opset_imports=[helper.make_operatorsetid("", int(opset))],
    )
    onnx.checker.check_model(onnx_model)
    _write_bytes_atomic(path, onnx_model.SerializeToString())
    return onnx_model


def _last_units(layers):
    from .layers import LSTM, Bidirectional, Dense

    for layer in reversed(layers):
        if isinstance(layer, Bidirectional):
            units = layer.forward_layer.units
            return 2 * units if layer.merge_mode == "concat" else units
        if isinstance(layer, LSTM):
            return layer.units
        if isinstance(layer, Dense):
            return layer.units
    return None


def _write_bytes_atomic(path, data):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
