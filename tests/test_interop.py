# ruff: noqa: E741 - I is the input-size letter of DESIGN.md
"""Interop: Keras / PyTorch / ONNX weight layouts, checked by running the other framework.

torch and onnx/onnxruntime are optional: their tests skip with a visible reason.
"""

import sys

import numpy as np
import pytest

from lstm_fast import interop, reference
from lstm_fast.layers import LSTM, Bidirectional, Dense, Dropout
from lstm_fast.models import Sequential

ATOL32 = 1e-5  # float32 outputs of two implementations
ATOL64 = 1e-12


def _keras_weights(I, H, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(scale=0.4, size=(I, 4 * H)).astype(dtype),
        rng.normal(scale=0.4, size=(H, 4 * H)).astype(dtype),
        rng.normal(scale=0.4, size=4 * H).astype(dtype),
    )


# ------------------------------------------------------------ pure layouts


def test_torch_layout_round_trip_and_facts():
    K, R, b = _keras_weights(3, 5)
    sd = interop.lstm_weights_to_torch(K, R, b)
    assert sd["weight_ih_l0"].shape == (20, 3) and sd["weight_hh_l0"].shape == (20, 5)
    np.testing.assert_array_equal(sd["weight_ih_l0"], K.T)
    np.testing.assert_array_equal(sd["bias_ih_l0"] + sd["bias_hh_l0"], b)
    K2, R2, b2 = interop.lstm_weights_from_torch(sd)
    for u, v in ((K, K2), (R, R2), (b, b2)):
        np.testing.assert_array_equal(u, v)
    # two biases are summed
    sd["bias_hh_l0"] = np.ones_like(b)
    np.testing.assert_array_equal(interop.lstm_weights_from_torch(sd)[2], b + 1)


def test_onnx_layout_round_trip_and_gate_order():
    H = 2
    # each gate block of the kernel filled with its Keras index: i=0, f=1, c=2, o=3
    K = np.repeat(np.arange(4.0), H)[None, :].repeat(3, axis=0)
    R = np.repeat(np.arange(4.0), H)[None, :].repeat(H, axis=0)
    b = np.repeat(np.arange(4.0), H) + 10
    W, Rr, B = interop.lstm_weights_to_onnx(K, R, b)
    assert W.shape == (1, 4 * H, 3) and Rr.shape == (1, 4 * H, H) and B.shape == (1, 8 * H)
    # ONNX order i, o, f, c
    np.testing.assert_array_equal(W[0, :, 0], np.repeat([0.0, 3.0, 1.0, 2.0], H))
    np.testing.assert_array_equal(B[0, : 4 * H], np.repeat([10.0, 13.0, 11.0, 12.0], H))
    np.testing.assert_array_equal(B[0, 4 * H :], 0)
    K2, R2, b2 = interop.lstm_weights_from_onnx(W, Rr, B)
    for u, v in ((K, K2), (R, R2), (b, b2)):
        np.testing.assert_array_equal(u, v)


def test_keras_weights_list():
    K, R, b = _keras_weights(4, 3, dtype=np.float32)
    assert [w.shape for w in interop.lstm_weights_to_keras(K, R, b)] == [(4, 12), (3, 12), (12,)]
    with pytest.raises(ValueError, match="recurrent_kernel"):
        interop.lstm_weights_from_keras([K, R[:2], b])
    model = Sequential([LSTM(3, input_shape=(5, 4)), Dense(2)])
    rng = np.random.default_rng(0)
    dense_w = [rng.normal(size=(3, 2)).astype(np.float32), np.zeros(2, np.float32)]
    interop.load_keras_weights(model, [K, R, b, *dense_w])
    np.testing.assert_array_equal(model.get_weights()[1], R)
    exported = interop.export_keras_weights(model)
    assert [w.shape for w in exported] == [(4, 12), (3, 12), (12,), (3, 2), (2,)]
    np.testing.assert_array_equal(exported[0], K)
    with pytest.raises(ValueError, match="Expected 5 weight arrays"):
        interop.load_keras_weights(model, [K, R, b])
    with pytest.raises(ValueError, match="Expected weight 3 of shape"):
        interop.load_keras_weights(model, [K, R, b, dense_w[0].T, dense_w[1]])


def test_keras_golden_lstm_output():
    # constant weights, computed by hand: one unit, one step, x = 1
    # z = [0.1, 0.2, 0.3, 0.4] (+ bias 0), c = sig(0.1) * tanh(0.3), h = sig(0.4) * tanh(c)
    model = Sequential([LSTM(1, input_shape=(1, 1))])
    K = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    interop.load_keras_weights(model, [K, np.zeros((1, 4), np.float32), np.zeros(4, np.float32)])
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c = sig(0.1) * np.tanh(0.3)
    expected = sig(0.4) * np.tanh(c)
    np.testing.assert_allclose(
        model.predict(np.ones((1, 1, 1), np.float32), verbose=0), [[expected]], atol=1e-7
    )


# ------------------------------------------------------------------ PyTorch


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch not installed: PyTorch interop tests")


def _torch_lstm(torch, I, H, **kwargs):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(I, H, batch_first=True, **kwargs)
    with torch.no_grad():
        for p in lstm.parameters():
            p.uniform_(-0.5, 0.5)  # nonzero biases in both b_ih and b_hh
    return lstm


def test_torch_lstm_matches_reference_with_converted_weights(torch):
    B, T, I, H = 4, 7, 3, 5
    lstm = _torch_lstm(torch, I, H)
    x = np.random.default_rng(1).normal(size=(B, T, I)).astype(np.float32)
    with torch.no_grad():
        y_t, (h_t, c_t) = lstm(torch.from_numpy(x))
    K, R, b = interop.lstm_weights_from_torch(lstm.state_dict())
    y, h, c, _ = reference.lstm_forward(x, K, R, b, return_sequences=True)
    np.testing.assert_allclose(y, y_t.numpy(), atol=ATOL32)
    np.testing.assert_allclose(h, h_t[0].numpy(), atol=ATOL32)
    np.testing.assert_allclose(c, c_t[0].numpy(), atol=ATOL32)


def test_torch_lstm_into_layer_and_back(torch):
    B, T, I, H = 3, 6, 4, 8
    lstm = _torch_lstm(torch, I, H)
    x = np.random.default_rng(2).normal(size=(B, T, I)).astype(np.float32)
    layer = LSTM(H, return_sequences=True)
    interop.load_torch_lstm(layer, lstm)
    with torch.no_grad():
        y_t, _ = lstm(torch.from_numpy(x))
    np.testing.assert_allclose(layer(x), y_t.numpy(), atol=ATOL32)
    # back: perturb our weights, export into a fresh torch LSTM, compare outputs
    layer.set_weights([w * 0.9 for w in layer.get_weights()])
    fresh = torch.nn.LSTM(I, H, batch_first=True)
    interop.export_torch_lstm(layer, fresh)
    with torch.no_grad():
        y_back, _ = fresh(torch.from_numpy(x))
    np.testing.assert_allclose(layer(x), y_back.numpy(), atol=ATOL32)


def test_torch_gradients_match(torch):
    # same weights: the layer's backward pass gives torch's gradients
    B, T, I, H = 2, 5, 3, 4
    lstm = _torch_lstm(torch, I, H).double()
    x = np.random.default_rng(3).normal(size=(B, T, I))
    dy = np.random.default_rng(4).normal(size=(B, T, H))
    xt = torch.from_numpy(x).requires_grad_(True)
    y_t, _ = lstm(xt)
    (y_t * torch.from_numpy(dy)).sum().backward()
    K, R, b = interop.lstm_weights_from_torch(lstm.state_dict())
    y, _, _, cache = reference.lstm_forward(x, K, R, b, training=True)
    grads = reference.lstm_backward(cache, dy=dy)
    np.testing.assert_allclose(grads.dx, xt.grad.numpy(), atol=ATOL64)
    np.testing.assert_allclose(grads.dkernel, lstm.weight_ih_l0.grad.numpy().T, atol=ATOL64)
    np.testing.assert_allclose(
        grads.drecurrent_kernel, lstm.weight_hh_l0.grad.numpy().T, atol=ATOL64
    )
    np.testing.assert_allclose(grads.dbias, lstm.bias_ih_l0.grad.numpy(), atol=ATOL64)


def test_torch_gradients_match_the_layer(torch):
    # the compiled engine's backward pass (through the layer) against torch autograd
    B, T, I, H = 3, 6, 4, 5
    lstm = _torch_lstm(torch, I, H).double()
    x = np.random.default_rng(8).normal(size=(B, T, I))
    dy = np.random.default_rng(9).normal(size=(B, T, H))
    xt = torch.from_numpy(x).requires_grad_(True)
    y_t, _ = lstm(xt)
    (y_t * torch.from_numpy(dy)).sum().backward()
    layer = LSTM(H, return_sequences=True, dtype="float64")
    interop.load_torch_lstm(layer, lstm)
    y = layer(x, training=True)
    np.testing.assert_allclose(y, y_t.detach().numpy(), atol=ATOL64)
    layer.zero_grads()
    dx = layer.backward(dy)
    dkernel, drecurrent, dbias = layer.gradients
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dkernel, lstm.weight_ih_l0.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(drecurrent, lstm.weight_hh_l0.grad.numpy().T, atol=1e-10)
    np.testing.assert_allclose(dbias, lstm.bias_ih_l0.grad.numpy(), atol=1e-10)


def test_torch_stacked_and_bidirectional(torch):
    B, T, I, H = 3, 5, 4, 6
    x = np.random.default_rng(5).normal(size=(B, T, I)).astype(np.float32)
    stacked = _torch_lstm(torch, I, H, num_layers=2)
    first, second = LSTM(H, return_sequences=True), LSTM(H, return_sequences=True)
    interop.load_torch_lstm(first, stacked, layer=0)
    interop.load_torch_lstm(second, stacked, layer=1)
    with torch.no_grad():
        y_t, _ = stacked(torch.from_numpy(x))
    np.testing.assert_allclose(second(first(x)), y_t.numpy(), atol=ATOL32)

    bi = _torch_lstm(torch, I, H, bidirectional=True)
    ours = Bidirectional(LSTM(H, return_sequences=True))
    interop.load_torch_lstm(ours, bi)
    with torch.no_grad():
        y_t, _ = bi(torch.from_numpy(x))
    np.testing.assert_allclose(ours(x), y_t.numpy(), atol=ATOL32)


def test_torch_lstm_from_layer(torch):
    x = np.random.default_rng(6).normal(size=(2, 5, 3)).astype(np.float32)
    for layer in (LSTM(4, return_sequences=True), Bidirectional(LSTM(4, return_sequences=True))):
        expected = layer(x)
        module = interop.torch_lstm_from_layer(layer)
        with torch.no_grad():
            y_t, _ = module(torch.from_numpy(x))
        np.testing.assert_allclose(y_t.numpy(), expected, atol=ATOL32)


def test_torch_size_mismatch(torch):
    lstm = _torch_lstm(torch, 3, 5)
    with pytest.raises(ValueError, match="hidden_size=4"):
        interop.load_torch_lstm(LSTM(4), lstm)


# --------------------------------------------------------------------- ONNX


def _onnx_model(seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(
        [
            LSTM(8, input_shape=(None, 3), return_sequences=True),
            Dropout(0.2),
            LSTM(6),
            Dense(4, activation="softmax"),
        ]
    )
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


@pytest.mark.parametrize("which", ["stacked_softmax", "seed_like"])
def test_onnx_export_matches_onnxruntime(tmp_path, which):
    pytest.importorskip("onnx", reason="onnx not installed: ONNX export test")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: ONNX check")
    if which == "seed_like":
        model = Sequential(
            [LSTM(10, input_shape=(20, 3), return_sequences=True), Dense(1, activation="linear")]
        )
        x = np.random.default_rng(1).normal(size=(5, 20, 3)).astype(np.float32)
    else:
        model = _onnx_model()
        x = np.random.default_rng(1).normal(size=(5, 9, 3)).astype(np.float32)
    path = tmp_path / "model.onnx"
    interop.export_onnx(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x})
    expected = model.predict(x, verbose=0)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=ATOL32)
    # dynamic batch and time sizes
    x2 = x[:2, :7]
    (out2,) = session.run(None, {"input": x2})
    np.testing.assert_allclose(out2, model.predict(x2, verbose=0), atol=ATOL32)


ONNX_RECURRENT = {
    "go_backwards_sequences": lambda: [LSTM(5, return_sequences=True, go_backwards=True)],
    "go_backwards_last": lambda: [LSTM(5, go_backwards=True)],
    "bidirectional_concat": lambda: [Bidirectional(LSTM(5, return_sequences=True))],
    "bidirectional_sum_last": lambda: [Bidirectional(LSTM(5), merge_mode="sum")],
    "bidirectional_mul": lambda: [Bidirectional(LSTM(5, return_sequences=True), "mul")],
    "bidirectional_ave_stacked": lambda: [
        Bidirectional(LSTM(5, return_sequences=True), merge_mode="ave"),
        LSTM(4),
    ],
}


@pytest.mark.parametrize("which", sorted(ONNX_RECURRENT))
def test_onnx_export_directions_and_merge_modes(tmp_path, which):
    pytest.importorskip("onnx", reason="onnx not installed: ONNX export test")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: ONNX check")
    rng = np.random.default_rng(7)
    model = Sequential([*ONNX_RECURRENT[which](), Dense(2)])
    model.build((None, 6, 3))
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    path = tmp_path / f"{which}.onnx"
    interop.export_onnx(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x})
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=ATOL32)


def test_onnx_missing_package_gives_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="pip install onnx"):
        interop.export_onnx(_onnx_model(), tmp_path / "m.onnx")


def test_onnx_unsupported_layer(tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed: ONNX export test")
    model = Sequential([LSTM(4, input_shape=(5, 3), stateful=True), Dense(1)])
    with pytest.raises(NotImplementedError, match="stateful"):
        interop.export_onnx(model, tmp_path / "m.onnx")
