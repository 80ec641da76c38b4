"""Streaming inference (Sequential.stream) against the model's own predict on
whole sequences: step t of a stream is the model's output at step t."""

import numpy as np
import pytest

from lstm_fast.layers import LSTM, Dense, Dropout
from lstm_fast.models import Sequential

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 model


def _model(return_sequences=True):
    model = Sequential([
        LSTM(12, input_shape=(None, 3), return_sequences=True),
        Dropout(0.3),
        LSTM(7, return_sequences=return_sequences),
        Dense(2, activation="tanh"),
    ])
    model.build((None, None, 3))
    return model


@pytest.mark.parametrize("batch_size", [1, 3])
def test_stream_steps_equal_predict_on_the_whole_sequence(batch_size):
    rng = np.random.default_rng(0)
    model = _model()
    x = rng.standard_normal((batch_size, 9, 3)).astype(np.float32)
    full = model.predict(x, verbose=0)  # (B, T, 2)
    stream = model.stream(batch_size=batch_size)
    outs = np.stack([stream.step(x[:, t]) for t in range(9)], axis=1)
    np.testing.assert_allclose(outs, full, **TOL)
    # a reset starts a new sequence
    stream.reset()
    np.testing.assert_allclose(stream.step(x[:, 0]), full[:, 0], **TOL)


def test_stream_of_a_last_step_model_tracks_every_prefix():
    rng = np.random.default_rng(1)
    model = _model(return_sequences=False)
    x = rng.standard_normal((1, 5, 3)).astype(np.float32)
    stream = model.stream()
    for t in range(5):
        y_t = stream.step(x[0, t])  # a 1-D step is accepted at batch size 1
        np.testing.assert_allclose(y_t, model.predict(x[:, : t + 1], verbose=0), **TOL)


def test_stream_uses_the_weights_it_was_made_with():
    model = _model()
    x = np.ones((1, 3), np.float32)
    stream = model.stream()
    before = stream.step(x)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    stream.reset()
    np.testing.assert_array_equal(stream.step(x), before)
    assert not np.allclose(model.stream().step(x), before)


def test_stream_bad_input():
    model = _model()
    stream = model.stream(batch_size=2)
    with pytest.raises(ValueError, match=r"x_t\.shape=\(batch_size, I\)=\(2, 3\)"):
        stream.step(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        model.stream(batch_size=0)
    with pytest.raises(ValueError, match="go_backwards"):
        m = Sequential([LSTM(4, input_shape=(None, 2), go_backwards=True)])
        m.build((None, None, 2))
        m.stream()
    with pytest.raises(ValueError, match="built"):
        Sequential([LSTM(4)]).stream()


# ------------------------------------------------------------ chunks of steps


@pytest.mark.parametrize("batch_size", [1, 3])
def test_chunks_of_steps_equal_predict_and_single_steps(batch_size):
    rng = np.random.default_rng(2)
    model = _model()
    x = rng.standard_normal((batch_size, 11, 3)).astype(np.float32)
    full = model.predict(x, verbose=0)
    stream = model.stream(batch_size=batch_size)
    chunks = [stream.steps(x[:, :4]), stream.steps(x[:, 4:5]), stream.steps(x[:, 5:])]
    assert [c.shape for c in chunks] == [(batch_size, 4, 2), (batch_size, 1, 2),
                                         (batch_size, 6, 2)]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), full, **TOL)
    # single steps and chunks carry the same state
    stream.reset()
    first = [stream.step(x[:, t]) for t in range(3)]
    rest = stream.steps(x[:, 3:])
    np.testing.assert_allclose(np.stack(first, axis=1), full[:, :3], **TOL)
    np.testing.assert_allclose(rest, full[:, 3:], **TOL)


def test_a_chunk_on_a_reset_stream_is_predict_bit_for_bit():
    """LSTM layers only: the same engine call as predict's, on weights packed
    once (packed and unpacked calls are bit-identical); wide input: the input
    projection is the engine's GEMM, not fused into the loop."""
    rng = np.random.default_rng(3)
    model = Sequential([LSTM(40, input_shape=(None, 48), return_sequences=True),
                        LSTM(24, return_sequences=True)])
    model.build((None, None, 48))
    x = rng.standard_normal((1, 30, 48)).astype(np.float32)
    stream = model.stream()
    stream.steps(x[:, :7])
    stream.reset()
    np.testing.assert_array_equal(stream.steps(x[0]), model.predict(x, verbose=0))


def test_a_chunk_of_a_last_step_model_ends_with_predict():
    rng = np.random.default_rng(4)
    model = _model(return_sequences=False)
    x = rng.standard_normal((2, 8, 3)).astype(np.float32)
    y = model.stream(batch_size=2).steps(x)
    assert y.shape == (2, 8, 2)
    np.testing.assert_allclose(y[:, -1], model.predict(x, verbose=0), **TOL)
    np.testing.assert_allclose(y[:, 4], model.predict(x[:, :5], verbose=0), **TOL)


def test_chunk_bad_input():
    stream = _model().stream(batch_size=2)
    for bad in (np.zeros((2, 3)), np.zeros((1, 5, 3)), np.zeros((2, 5, 4)),
                np.zeros((2, 5, 3, 1))):
        with pytest.raises(ValueError, match=r"x\.shape=\(batch_size, T, I\)=\(2, T, 3\)\. "
                                             r"Received: x\.shape="):
            stream.steps(bad)
    assert stream.steps(np.zeros((2, 0, 3))).shape == (2, 0, 2)  # no steps: no outputs
    # a (T, I) chunk at batch size 1: the message shows the shape given
    with pytest.raises(ValueError, match=r"\(1, T, 3\)\. Received: x\.shape=\(5, 4\)"):
        _model().stream().steps(np.zeros((5, 4)))
