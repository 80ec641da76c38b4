"""LSTM layer against the NumPy reference (float64, tight tolerance) and Keras semantics."""

import numpy as np
import pytest

from lstm_fast import reference
from lstm_fast.initializers import Constant
from lstm_fast.layers import LSTM

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
ATOL = {np.float32: 1e-5, np.float64: 1e-12}
B, T, I, H = 3, 5, 4, 6  # noqa: E741 - shape letters


def make_x(seed=0, shape=(B, T, I)):
    return np.random.default_rng(seed).standard_normal(shape)


def built_lstm(**kwargs):
    layer = LSTM(H, dtype="float64", **kwargs)
    layer(make_x())
    rng = np.random.default_rng(42)
    layer.set_weights([0.3 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_forward_and_backward_match_reference(return_sequences, go_backwards):
    layer = built_lstm(return_sequences=return_sequences, go_backwards=go_backwards)
    x = make_x(1)
    kernel, recurrent, bias = layer.get_weights()
    y = layer(x, training=True)
    y_ref, _, _, cache = reference.lstm_forward(
        x, kernel, recurrent, bias, go_backwards=go_backwards,
        return_sequences=return_sequences, training=True,
    )
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)

    dy = np.random.default_rng(2).standard_normal(y.shape)
    layer.zero_grads()
    dx = layer.backward(dy)
    g = reference.lstm_backward(cache, dy)
    np.testing.assert_allclose(dx, g.dx, rtol=1e-9, atol=1e-12)
    dk, dr, db = layer.gradients
    np.testing.assert_allclose(dk, g.dkernel, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dr, g.drecurrent_kernel, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(db, g.dbias, rtol=1e-9, atol=1e-12)


def test_gradients_accumulate_until_zeroed():
    layer = built_lstm(return_sequences=True)
    x = make_x(1)
    dy = np.ones((B, T, H))
    layer.zero_grads()
    layer(x, training=True)
    layer.backward(dy)
    once = [g.copy() for g in layer.gradients]
    layer(x, training=True)
    layer.backward(dy)
    for g1, g2 in zip(once, layer.gradients):
        np.testing.assert_allclose(g2, 2 * g1, rtol=1e-12)


def test_float32_default_close_to_float64_reference():
    layer = LSTM(H, return_sequences=True)
    x = make_x(3)
    y = layer(x)
    assert y.dtype == np.float32 and layer.kernel.dtype == np.float32
    k, r, b = (w.astype(np.float64) for w in layer.get_weights())
    y_ref = reference.lstm_forward(x.astype(np.float32).astype(np.float64), k, r, b)[0]
    np.testing.assert_allclose(y, y_ref, rtol=RTOL[np.float32], atol=ATOL[np.float32])


def test_default_initialization_is_keras():
    layer = LSTM(H)
    layer(make_x())
    kernel, recurrent, bias = layer.get_weights()
    assert kernel.shape == (I, 4 * H) and recurrent.shape == (H, 4 * H) and bias.shape == (4 * H,)
    limit = np.sqrt(6.0 / (I + 4 * H))  # glorot_uniform
    assert np.abs(kernel).max() <= limit
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(H), atol=1e-5)  # orthogonal
    np.testing.assert_array_equal(bias[H : 2 * H], 1.0)  # unit_forget_bias: exactly 1
    np.testing.assert_array_equal(np.delete(bias, np.s_[H : 2 * H]), 0.0)
    assert LSTM(H, unit_forget_bias=False, dtype="float64")(make_x()) is not None


def test_golden_values_with_constant_initializers():
    # One unit, one feature, two steps, every weight 0.5, bias 0.5 except forget block = 1.
    layer = LSTM(
        1,
        kernel_initializer=Constant(0.5),
        recurrent_initializer=Constant(0.5),
        bias_initializer=Constant(0.5),
        return_sequences=True,
        dtype="float64",
    )
    y = layer(np.array([[[1.0], [2.0]]]))

    # hand computation of DESIGN.md's equations
    def sig(v):
        return 1 / (1 + np.exp(-v))

    h = c = 0.0
    expected = []
    for xt in (1.0, 2.0):
        zi = 0.5 * xt + 0.5 * h + 0.5
        zf = 0.5 * xt + 0.5 * h + 1.0
        c = sig(zf) * c + sig(zi) * np.tanh(zi)
        h = sig(zi) * np.tanh(c)
        expected.append(h)
    np.testing.assert_allclose(y[0, :, 0], expected, rtol=1e-12)
    # golden numbers: step 1 by hand is sig(1) * tanh(sig(1) * tanh(1)) = 0.369606...
    np.testing.assert_allclose(y[0, :, 0], [0.36960635293570, 0.72424160198276], rtol=1e-12)


def test_return_state_and_initial_state():
    layer = built_lstm(return_sequences=True, return_state=True)
    x = make_x(4)
    rng = np.random.default_rng(5)
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    y, h, c = layer(x, initial_state=[h0, c0], training=True)
    k, r, b = layer.get_weights()
    y_ref, h_ref, c_ref, cache = reference.lstm_forward(x, k, r, b, h0, c0, training=True)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=1e-10, atol=1e-12)
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dy = rng.standard_normal(y.shape)
    layer.zero_grads()
    dx = layer.backward(dy, dh, dc)
    g = reference.lstm_backward(cache, dy, dh, dc)
    np.testing.assert_allclose(dx, g.dx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.initial_state_gradients[0], g.dh0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.initial_state_gradients[1], g.dc0, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=[h0[:1], c0])


def test_stateful_carries_state_and_resets():
    layer = built_lstm(stateful=True)
    x = make_x(6, (B, 2 * T, I))
    k, r, b = layer.get_weights()
    whole = reference.lstm_forward(x, k, r, b, return_sequences=False)[0]
    layer.reset_states()  # building called the layer once
    layer(x[:, :T])
    second = layer(x[:, T:])
    np.testing.assert_allclose(second, whole, rtol=1e-10, atol=1e-12)
    layer.reset_states()
    np.testing.assert_allclose(
        layer(x[:, T:]),
        reference.lstm_forward(x[:, T:], k, r, b, return_sequences=False)[0],
        rtol=1e-10, atol=1e-12,
    )
    with pytest.raises(ValueError, match="fixed batch size"):
        layer(x[:1, :T])


def test_right_padded_mask_becomes_lengths():
    layer = built_lstm(return_sequences=True)
    x = make_x(7)
    lengths = np.array([5, 2, 0])
    mask = np.arange(T)[None, :] < lengths[:, None]
    y = layer(x, mask=mask)
    k, r, b = layer.get_weights()
    y_ref = reference.lstm_forward(x, k, r, b, lengths=lengths)[0]
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    # masked steps carry h: step 3 of sample 1 equals its step 1
    np.testing.assert_allclose(y[1, 3], y[1, 1], rtol=1e-12)


def test_mask_with_hole_or_left_padding_raises():
    layer = built_lstm()
    mask = np.ones((B, T), bool)
    mask[0, 1] = False
    with pytest.raises(ValueError, match="right-padded"):
        layer(make_x(), mask=mask)
    with pytest.raises(ValueError, match="mask.shape"):
        layer(make_x(), mask=np.ones((B, T + 1), bool))


def test_dropout_uses_one_mask_per_sample_for_all_steps():
    layer = built_lstm(return_sequences=True, dropout=0.5, seed=3)
    x = make_x(8)
    y = layer(x, training=True)
    _, drop = layer._cache
    assert drop.shape == (B, 1, I)
    assert set(np.unique(drop)) <= {0.0, 2.0}
    k, r, b = layer.get_weights()
    np.testing.assert_allclose(y, reference.lstm_forward(x * drop, k, r, b)[0], rtol=1e-10)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx[np.broadcast_to(drop == 0, dx.shape)], 0.0)
    # inference: no dropout
    np.testing.assert_allclose(layer(x), reference.lstm_forward(x, k, r, b)[0], rtol=1e-10)


def test_unsupported_options_raise_clearly():
    with pytest.raises(NotImplementedError, match="recurrent_dropout"):
        LSTM(4, recurrent_dropout=0.2)
    with pytest.raises(NotImplementedError, match="activation='tanh'"):
        LSTM(4, activation="relu")
    with pytest.raises(NotImplementedError, match="recurrent_activation"):
        LSTM(4, recurrent_activation="hard_sigmoid")
    with pytest.raises(ValueError, match="units"):
        LSTM(0)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(4, dropout=1.5)
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        LSTM(4, unitz=3)


def test_wrong_input_shapes_raise():
    layer = built_lstm()
    with pytest.raises(ValueError, match="3-D"):
        layer(np.ones((B, I)))
    with pytest.raises(ValueError, match="axis -1"):
        layer(np.ones((B, T, I + 1)))


def test_gate_activations_match_reference_cache():
    layer = built_lstm(go_backwards=True)
    x = make_x(9)
    gates = layer.gate_activations(x)
    k, r, b = layer.get_weights()
    cache = reference.lstm_forward(x, k, r, b, go_backwards=True, training=True)[3]
    for i, name in enumerate("ifgo"):
        assert gates[name].shape == (B, T, H)
        np.testing.assert_allclose(gates[name], cache.gates[..., i * H : (i + 1) * H], rtol=1e-10)
    np.testing.assert_allclose(gates["c"], cache.cell, rtol=1e-10)
    np.testing.assert_allclose(gates["h"], cache.hidden, rtol=1e-10)
    # the definition: h = o * tanh(c)
    np.testing.assert_allclose(gates["h"], gates["o"] * np.tanh(gates["c"]), rtol=1e-10)


def test_no_bias():
    layer = LSTM(H, use_bias=False, dtype="float64", return_sequences=True)
    x = make_x(10)
    y = layer(x, training=True)
    assert len(layer.get_weights()) == 2
    k, r = layer.get_weights()
    np.testing.assert_allclose(y, reference.lstm_forward(x, k, r, None)[0], rtol=1e-10)
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape


def test_config_round_trip():
    layer = LSTM(7, return_sequences=True, go_backwards=True, dropout=0.1,
                 kernel_initializer=Constant(0.2), kernel_regularizer="l2", input_shape=(5, 3))
    clone = LSTM.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(make_x(0, (2, 5, 3)))
    np.testing.assert_array_equal(clone.kernel, np.float32(0.2))
