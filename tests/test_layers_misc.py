"""Dropout, Embedding, Masking, Bidirectional, Input: Keras semantics and the reference."""

import numpy as np
import pytest

from lstm_fast import initializers, reference, utils
from lstm_fast.layers import (
    LSTM,
    Bidirectional,
    Dropout,
    Embedding,
    Input,
    InputLayer,
    Masking,
    deserialize,
    serialize,
)

B, T, I, H = 3, 6, 4, 5  # noqa: E741 - shape letters


def test_dropout_training_and_inference():
    utils.set_random_seed(0)
    layer = Dropout(0.25)
    x = np.ones((200, 50))
    np.testing.assert_array_equal(layer(x), x)  # inference: identity
    y = layer(x, training=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)  # same mask, same scale
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)


def test_dropout_noise_shape_broadcasts():
    layer = Dropout(0.5, noise_shape=(None, 1, 4), seed=1)
    y = layer(np.ones((2, 3, 4)), training=True)
    np.testing.assert_array_equal(y[:, 0], y[:, 1])


def test_seed_makes_initialization_reproducible():
    utils.set_random_seed(7)
    a = LSTM(3)
    a(np.ones((1, 2, 4)))
    utils.set_random_seed(7)
    b = LSTM(3)
    b(np.ones((1, 2, 4)))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_embedding_lookup_mask_and_gradient():
    layer = Embedding(10, 3, mask_zero=True, dtype="float64")
    ids = np.array([[1, 2, 2, 0], [3, 0, 0, 0]])
    y = layer(ids, training=True)
    np.testing.assert_array_equal(y, layer.embeddings[ids])
    np.testing.assert_array_equal(layer.compute_mask(ids), ids != 0)
    dy = np.arange(24, dtype=np.float64).reshape(2, 4, 3)
    layer.zero_grads()
    layer.backward(dy)
    expected = np.zeros((10, 3))
    for b in range(2):
        for t in range(4):
            expected[ids[b, t]] += dy[b, t]
    np.testing.assert_array_equal(layer.gradients[0], expected)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        layer(np.array([[10]]))
    with pytest.raises(ValueError, match="integer"):
        layer(np.array([[1.5]]))


def test_masking_layer():
    x = np.ones((2, 4, 3))
    x[0, 2:] = 0.0
    layer = Masking(0.0)
    np.testing.assert_array_equal(layer.compute_mask(x), [[1, 1, 0, 0], [1, 1, 1, 1]])
    x[1, 1] = [0.0, 5.0, 0.0]  # not all features equal the mask value: kept
    assert layer.compute_mask(x)[1, 1]
    y = layer(x, training=True)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x))[0, 2:], 0.0)


def _bidirectional(merge_mode, return_sequences=True):
    layer = Bidirectional(LSTM(H, return_sequences=return_sequences, dtype="float64"),
                          merge_mode=merge_mode, dtype="float64")
    x = np.random.default_rng(0).standard_normal((B, T, I))
    layer(x)
    rng = np.random.default_rng(1)
    layer.set_weights([0.4 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    return layer, x


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_matches_two_reference_passes(merge_mode, return_sequences):
    layer, x = _bidirectional(merge_mode, return_sequences)
    kf, rf, bf, kb, rb, bb = layer.get_weights()
    y_f, _, _, cf = reference.lstm_forward(x, kf, rf, bf, return_sequences=return_sequences,
                                           training=True)
    y_b, _, _, cb = reference.lstm_forward(x, kb, rb, bb, go_backwards=True,
                                           return_sequences=return_sequences, training=True)
    y_b_aligned = y_b[:, ::-1] if return_sequences else y_b
    expected = {
        "concat": np.concatenate([y_f, y_b_aligned], -1),
        "sum": y_f + y_b_aligned,
        "mul": y_f * y_b_aligned,
        "ave": (y_f + y_b_aligned) / 2,
    }[merge_mode]
    y = layer(x, training=True)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)

    dy = np.random.default_rng(2).standard_normal(y.shape)
    if merge_mode == "concat":
        dyf, dyb = dy[..., :H], dy[..., H:]
    elif merge_mode == "mul":
        dyf, dyb = dy * y_b_aligned, dy * y_f
    else:
        scale = 0.5 if merge_mode == "ave" else 1.0
        dyf = dyb = dy * scale
    if return_sequences:
        dyb = dyb[:, ::-1]
    gf = reference.lstm_backward(cf, dyf)
    gb = reference.lstm_backward(cb, dyb)
    layer.zero_grads()
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, gf.dx + gb.dx, rtol=1e-9, atol=1e-12)
    expected_grads = [gf.dkernel, gf.drecurrent_kernel, gf.dbias,
                      gb.dkernel, gb.drecurrent_kernel, gb.dbias]
    for got, want in zip(layer.gradients, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_bidirectional_with_mask_zeroes_padding_in_both_directions():
    layer, x = _bidirectional("concat")
    lengths = np.array([6, 3, 1])
    mask = np.arange(T)[None] < lengths[:, None]
    y = layer(x, mask=mask)
    kf, rf, bf, kb, rb, bb = layer.get_weights()
    y_f = reference.lstm_forward(x, kf, rf, bf, lengths=lengths, zero_output_for_mask=True)[0]
    y_b = reference.lstm_forward(x, kb, rb, bb, lengths=lengths, go_backwards=True,
                                 zero_output_for_mask=True)[0][:, ::-1]
    np.testing.assert_allclose(y, np.concatenate([y_f, y_b], -1), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(y[1, 3:], 0.0)
    # the backward direction of sample 1 starts at its last valid step (t = 2)
    y_b1 = reference.lstm_forward(x[1:2, :3], kb, rb, bb, go_backwards=True)[0][:, ::-1]
    np.testing.assert_allclose(y[1:2, :3, H:], y_b1, rtol=1e-10)


def test_bidirectional_config_and_errors():
    layer = Bidirectional(LSTM(3, return_sequences=True), merge_mode="sum", input_shape=(4, 2))
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.forward_layer.name.startswith("forward_")
    assert layer.backward_layer.go_backwards
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="LSTM"):
        Bidirectional(Dropout(0.1))


def test_input_and_layer_serialization():
    inp = Input(shape=(20, 10))
    assert isinstance(inp, InputLayer) and inp.batch_shape == (None, 20, 10)
    clone = deserialize(serialize(inp))
    assert clone.batch_shape == (None, 20, 10)
    for layer in [Embedding(5, 2, mask_zero=True), Masking(-1.0), Dropout(0.3)]:
        again = deserialize(serialize(layer))
        assert again.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="Unknown layer class"):
        deserialize({"class_name": "Conv2D", "config": {}})


def test_initializers():
    w = initializers.get("orthogonal")((4, 12), dtype="float64")
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-12)
    g = initializers.GlorotUniform(seed=0)((100, 300), dtype="float64")
    assert np.abs(g).max() <= np.sqrt(6 / 400)
    assert abs(g.std() - np.sqrt(2 / 400)) < 0.002  # uniform(-l, l) has std l / sqrt(3)
    with pytest.raises(ValueError, match="Unknown initializer"):
        initializers.get("glorot")
