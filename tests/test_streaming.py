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
