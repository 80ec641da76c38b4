"""fit, predict and evaluate of a model with LSTM layers run NumPy's OpenBLAS on one
thread (its spinning threads would take the cores from the engine's) and restore it."""

import pytest

from lstm_fast import _blas
from lstm_fast.layers import LSTM, Bidirectional, Dense, Input

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
def test_fit_predict_evaluate_limit_blas_threads_for_lstm_models(
    layers, expect_limited, sample_model_runs
):
    get, set_ = api
    before = get()
    set_(2)
    try:
        # OpenBLAS's thread count at the end of each batch, per phase
        seen = sample_model_runs(layers(), (8, 1) if expect_limited else (8, 3, 1), get)
        for phase, counts in seen.items():
            assert all(n == (1 if expect_limited else 2) for n in counts), (phase, counts)
        assert get() == 2  # restored
    finally:
        set_(before)
