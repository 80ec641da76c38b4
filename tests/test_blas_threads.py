"""fit runs NumPy's OpenBLAS on one thread for small models and restores it after."""

import numpy as np
import pytest

from lstm_fast import _blas
from lstm_fast.layers import LSTM, Dense
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


@pytest.mark.parametrize("units,expect_limited", [(16, True), (300, False)])
def test_fit_limits_blas_threads_only_for_small_models(units, expect_limited):
    get, set_ = api
    before = get()
    set_(2)
    seen = []  # OpenBLAS's thread count at the end of each training batch
    try:
        from lstm_fast.callbacks import LambdaCallback

        m = Sequential([LSTM(units, input_shape=(3, 4)), Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        m.fit(np.zeros((8, 3, 4)), np.zeros((8, 1)), epochs=1, batch_size=4, verbose=0,
              callbacks=[LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(get()))])
        assert seen and all(n == (1 if expect_limited else 2) for n in seen), seen
        assert get() == 2  # restored
    finally:
        set_(before)
