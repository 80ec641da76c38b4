"""fit, predict and evaluate of a model with LSTM layers run NumPy's OpenBLAS on one
thread (its spinning threads would take the cores from the engine's) and restore it."""

import numpy as np
import pytest

from lstm_fast import _blas
from lstm_fast.layers import LSTM, Bidirectional, Dense, Input
from lstm_fast.models import Sequential

api = _blas._find()
pytestmark = pytest.mark.skipif(not api, reason="NumPy here does not use OpenBLAS")


def test_limit_threads_sets_and_restores():
    get, set_ = api
    before = get()
    set_(2)
    try:
        with _blas.limit_threads(1):
            assert get() == 1
        assert get() == 2
    finally:
        set_(before)


@pytest.mark.parametrize("layers,expect_limited", [
    (lambda: [LSTM(16, input_shape=(3, 4)), Dense(1)], True),
    (lambda: [LSTM(300, input_shape=(3, 4)), Dense(1)], True),
    (lambda: [Bidirectional(LSTM(5), input_shape=(3, 4)), Dense(1)], True),
    (lambda: [Input((3, 4)), Dense(1)], False),  # no LSTM: NumPy's own setting
])
def test_fit_predict_evaluate_limit_blas_threads_for_lstm_models(layers, expect_limited):
    get, set_ = api
    before = get()
    set_(2)
    seen = {}  # OpenBLAS's thread count at the end of each batch, per phase
    try:
        from lstm_fast.callbacks import LambdaCallback

        def note(phase):
            return lambda b, logs: seen.setdefault(phase, []).append(get())

        cb = LambdaCallback(on_train_batch_end=note("fit"), on_predict_batch_end=note("predict"),
                            on_test_batch_end=note("evaluate"))
        m = Sequential(layers())
        m.compile(optimizer="sgd", loss="mse")
        x, y = np.zeros((8, 3, 4)), np.zeros((8, 3, 1) if not expect_limited else (8, 1))
        m.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[cb])
        m.predict(x, batch_size=4, verbose=0, callbacks=[cb])
        m.evaluate(x, y, batch_size=4, verbose=0, callbacks=[cb])
        assert set(seen) == {"fit", "predict", "evaluate"}, seen
        for phase, counts in seen.items():
            assert all(n == (1 if expect_limited else 2) for n in counts), (phase, counts)
        assert get() == 2  # restored
    finally:
        set_(before)
