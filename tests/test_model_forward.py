"""Whole models against a hand-written NumPy forward (lstm_fast.reference) and finite differences.

float64 throughout, so the comparisons are tight: RTOL 1e-10 for values, 1e-6 for
central finite differences.
"""

import numpy as np
import pytest

from lstm_fast import optimizers, reference, regularizers
from lstm_fast.layers import LSTM, Dense, Embedding, Input, Masking
from lstm_fast.models import Sequential

F64 = "float64"


def randomize(model, scale=0.4, seed=1):
    rng = np.random.default_rng(seed)
    model.set_weights([scale * rng.standard_normal(w.shape) for w in model.get_weights()])


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_stacked_model_matches_reference_chain():
    T, I = 7, 4  # noqa: E741
    model = Sequential([
        Input(shape=(T, I), dtype=F64),
        LSTM(5, return_sequences=True, dtype=F64),
        LSTM(6, go_backwards=True, dtype=F64),
        Dense(3, activation="softmax", dtype=F64),
    ])
    randomize(model)
    x = np.random.default_rng(0).standard_normal((9, T, I))
    k1, r1, b1, k2, r2, b2, kd, bd = model.get_weights()
    h1 = reference.lstm_forward(x, k1, r1, b1, return_sequences=True)[0]
    h2 = reference.lstm_forward(h1, k2, r2, b2, go_backwards=True, return_sequences=False)[0]
    expected = softmax(h2 @ kd + bd)
    np.testing.assert_allclose(model.predict(x, batch_size=4, verbose=0), expected, rtol=1e-10)
    np.testing.assert_allclose(model(x), expected, rtol=1e-10)
    np.testing.assert_allclose(model.predict_on_batch(x), expected, rtol=1e-10)


def test_weights_and_gradients_are_views_of_one_buffer():
    model = Sequential([LSTM(4, input_shape=(3, 2), return_sequences=True), Dense(1)])
    assert model._params.ndim == 1 and model._params.flags.c_contiguous
    assert model._params.size == model.count_params() == (2 * 16 + 4 * 16 + 16) + (4 + 1)
    for layer in model.layers:
        for w in layer.weights:
            assert np.shares_memory(w, model._params)
        for g in layer.gradients:
            assert np.shares_memory(g, model._grads)
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    model.train_on_batch(np.ones((2, 3, 2)), np.ones((2, 1)))
    # the optimizer's in-place update of the flat buffer is seen by the layers
    assert not np.allclose(before[0], model.layers[0].kernel)


def _tiny_model(reg=None):
    model = Sequential([
        LSTM(3, input_shape=(4, 2), return_sequences=True, dtype=F64, kernel_regularizer=reg),
        Dense(1, dtype=F64, kernel_regularizer=reg),
    ])
    randomize(model, 0.5)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    return model


def _hand_loss(model, x, y):
    """mse with Keras's squeeze rule, computed from the reference: y (B, 1) vs y_pred (B, T, 1)."""
    k, r, b, kd, bd = model.get_weights()
    h = reference.lstm_forward(x, k, r, b, return_sequences=True)[0]
    y_pred = (h @ kd + bd)[..., 0]  # (B, T): squeezed
    loss = np.mean(np.mean((y - y_pred) ** 2, axis=-1))  # y (B, 1) broadcasts over T
    for layer in model.layers:
        loss += layer.regularization_loss()
    return loss


@pytest.mark.parametrize("reg", [None, regularizers.L1L2(0.01, 0.02)])
def test_model_gradients_match_finite_differences(reg):
    model = _tiny_model(reg)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 2))
    y = rng.standard_normal((5, 1))
    loss, grads = model.compute_gradients(x, y)
    np.testing.assert_allclose(loss, _hand_loss(model, x, y), rtol=1e-12)
    eps = 1e-6
    for w, g in zip(model.weights, grads):
        flat = w.reshape(-1)
        numeric = np.zeros(flat.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = _hand_loss(model, x, y)
            flat[i] = old - eps
            down = _hand_loss(model, x, y)
            flat[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g.reshape(-1), numeric, rtol=1e-6, atol=1e-9)


def test_train_on_batch_is_one_sgd_step():
    model = _tiny_model()
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 4, 2)), rng.standard_normal((6, 1))
    before = model.get_weights()
    loss_before, grads = model.compute_gradients(x, y)
    loss = model.train_on_batch(x, y)
    np.testing.assert_allclose(loss, loss_before, rtol=1e-12)
    for w0, g, w1 in zip(before, grads, model.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.1 * g, rtol=1e-12, atol=1e-15)


def test_squeeze_rule_of_the_seed_example():
    # y (N, 1) against an output (N, T, 1): Keras squeezes the output to (N, T) and the
    # target broadcasts, so the loss is the mean over samples and steps of (y - y_t)^2.
    model = _tiny_model()
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 4, 2)), rng.standard_normal((8, 1))
    y_pred = model.predict(x, verbose=0)
    assert y_pred.shape == (8, 4, 1)
    expected = np.mean((y - y_pred[..., 0]) ** 2)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), expected, rtol=1e-12)


def test_masked_loss_is_the_mean_over_valid_steps():
    model = Sequential([
        Embedding(6, 3, mask_zero=True, input_shape=(5,), dtype=F64),
        LSTM(4, return_sequences=True, dtype=F64),
        Dense(1, dtype=F64),
    ])
    randomize(model)
    model.compile(optimizer="sgd", loss="mse")
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0], [1, 1, 1, 1, 1]])
    y = np.random.default_rng(6).standard_normal((3, 5, 1))
    emb, k, r, b, kd, bd = model.get_weights()
    lengths = (ids != 0).sum(1)
    h = reference.lstm_forward(emb[ids], k, r, b, lengths=lengths)[0]
    err = ((h @ kd + bd) - y)[..., 0] ** 2
    valid = ids != 0
    expected = err[valid].mean()
    np.testing.assert_allclose(model.evaluate(ids, y, verbose=0), expected, rtol=1e-6)


def test_masking_then_stacked_lstms_match_reference():
    T, I = 6, 3  # noqa: E741
    model = Sequential([
        Masking(0.0, input_shape=(T, I), dtype=F64),
        LSTM(4, return_sequences=True, dtype=F64),
        LSTM(2, dtype=F64),
    ])
    randomize(model)
    x = np.random.default_rng(7).standard_normal((3, T, I))
    lengths = np.array([6, 4, 2])
    x[np.arange(T)[None] >= lengths[:, None]] = 0.0
    k1, r1, b1, k2, r2, b2 = model.get_weights()
    h1 = reference.lstm_forward(x, k1, r1, b1, lengths=lengths)[0]
    h2 = reference.lstm_forward(h1, k2, r2, b2, lengths=lengths, return_sequences=False)[0]
    np.testing.assert_allclose(model.predict(x, verbose=0), h2, rtol=1e-10)


def test_float32_model_default_and_float64_via_floatx():
    from lstm_fast import utils

    model = Sequential([LSTM(2, input_shape=(3, 2)), Dense(1)])
    assert model._params.dtype == np.float32
    assert model.predict(np.ones((1, 3, 2)), verbose=0).dtype == np.float32
    utils.set_floatx("float64")
    try:
        model64 = Sequential([LSTM(2, input_shape=(3, 2)), Dense(1)])
        assert model64._params.dtype == np.float64
    finally:
        utils.set_floatx("float32")
    with pytest.raises(ValueError, match="same dtype"):
        Sequential([LSTM(2, input_shape=(3, 2), dtype=F64), Dense(1, dtype="float32")])


def test_model_gate_activations_of_a_stacked_layer():
    T, I = 5, 3  # noqa: E741
    model = Sequential([
        Masking(0.0, input_shape=(T, I), dtype=F64),
        LSTM(4, return_sequences=True, dtype=F64, name="first"),
        LSTM(2, dtype=F64, name="second"),
    ])
    randomize(model)
    x = np.random.default_rng(8).standard_normal((2, T, I))
    x[1, 3:] = 0.0
    lengths = np.array([5, 3])
    k1, r1, b1, k2, r2, b2 = model.get_weights()
    h1 = reference.lstm_forward(x, k1, r1, b1, lengths=lengths)[0]
    cache = reference.lstm_forward(h1, k2, r2, b2, lengths=lengths, training=True)[3]
    gates = model.gate_activations(x, layer="second")
    np.testing.assert_allclose(gates["f"], cache.gates[..., 2:4], rtol=1e-10)
    np.testing.assert_allclose(gates["h"], cache.hidden, rtol=1e-10)
    first = model.gate_activations(x)  # default: the first LSTM
    assert first["i"].shape == (2, T, 4)
    with pytest.raises(ValueError, match="LSTM or Bidirectional"):
        model.gate_activations(x, layer=0)


def test_masked_bidirectional_model_gradients_match_finite_differences():
    from lstm_fast.layers import Bidirectional

    model = Sequential([
        Embedding(7, 3, mask_zero=True, input_shape=(5,), dtype=F64),
        Bidirectional(LSTM(2, return_sequences=True, dtype=F64), merge_mode="mul", dtype=F64),
        LSTM(2, return_sequences=True, go_backwards=True, dtype=F64),
        Dense(3, activation="softmax", dtype=F64),
    ])
    randomize(model, 0.6, seed=4)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ids = np.array([[1, 2, 3, 4, 0], [5, 6, 0, 0, 0], [1, 3, 5, 2, 6]])
    labels = np.random.default_rng(9).integers(0, 3, (3, 5))
    loss, grads = model.compute_gradients(ids, labels)
    np.testing.assert_allclose(loss, model.test_on_batch(ids, labels), rtol=1e-12)
    eps = 1e-6
    for w, g in zip(model.weights, grads):
        flat = w.reshape(-1)
        numeric = np.zeros(flat.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = model.test_on_batch(ids, labels)
            flat[i] = old - eps
            down = model.test_on_batch(ids, labels)
            flat[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g.reshape(-1), numeric, rtol=1e-5, atol=1e-9)
