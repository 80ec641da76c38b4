"""fit, predict and evaluate of a model with LSTM layers hold the engine's
thread team awake between calls (_engine._hold_team), and release it after,
also when the run ends in an exception. Without the hold, the Python work of
a step outlasts the workers' idle spin and each small engine call that finds
them asleep runs alone (measured: the seed model's fit step 3.4 -> 1.8 ms)."""

import numpy as np
import pytest

from lstm_fast import _engine
from lstm_fast.callbacks import Callback
from lstm_fast.layers import LSTM, Bidirectional, Dense, Input
from lstm_fast.models import Sequential


def held():
    return _engine._hold_team(0)


def test_holds_nest_and_release():
    base = held()
    assert _engine._hold_team(1) == base + 1
    assert _engine._hold_team(1) == base + 2
    assert _engine._hold_team(-1) == base + 1
    assert _engine._hold_team(-1) == base


@pytest.mark.parametrize("layers,expect_held", [
    (lambda: [LSTM(16, input_shape=(3, 4)), Dense(1)], True),
    (lambda: [Bidirectional(LSTM(5), input_shape=(3, 4)), Dense(1)], True),
    (lambda: [Input((3, 4)), Dense(1)], False),
])
def test_fit_predict_evaluate_hold_the_team(layers, expect_held, sample_model_runs):
    assert held() == 0
    seen = sample_model_runs(layers(), (8, 1) if expect_held else (8, 3, 1), held)
    for phase, counts in seen.items():
        assert counts and all(n == (1 if expect_held else 0) for n in counts), (phase, counts)
    assert held() == 0


class Boom(Exception):
    pass


class RaiseOnBatch(Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise Boom

    def on_predict_batch_end(self, batch, logs=None):
        raise Boom


def test_released_when_the_run_raises():
    m = Sequential([LSTM(8, input_shape=(3, 4)), Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 3, 4)), np.zeros((8, 1))
    with pytest.raises(Boom):
        m.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[RaiseOnBatch()])
    assert held() == 0
    with pytest.raises(Boom):
        m.predict(x, batch_size=4, verbose=0, callbacks=[RaiseOnBatch()])
    assert held() == 0
