"""Determinism: seeded fits are bit-identical, whatever the engine's thread count.

- `lstm_fast.utils.set_random_seed` seeds every draw (initializers, dropout,
  shuffling), so two seeded `fit` runs give bit-identical weights.
- The engine's kernels compute each output element with the same operations
  in the same order whichever thread owns it, so `n_threads` /
  `LSTM_FAST_NUM_THREADS` = 1 or 2 give bit-identical weights too. This costs
  no speed: threads own whole blocks of units or rows, or whole tiles of a
  product, and there are no split reductions. That includes the LSTM layers'
  time-batched GEMMs, which run on the engine's own GEMM.
- NumPy's BLAS still computes the Dense layers' products. OpenBLAS's results
  may depend on its own thread count (when it ran the LSTM's GEMMs too,
  OPENBLAS_NUM_THREADS=1 vs 2 changed the last bits of x.T @ dz and
  dz @ kernel.T; OpenBLAS 0.3.31), though they are reproducible at a fixed
  count. So bit-identical runs are promised at the same OpenBLAS thread
  count; across counts the weights agree to rounding.
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from lstm_fast import utils
from lstm_fast.layers import LSTM, Bidirectional, Dense, Dropout
from lstm_fast.models import Sequential


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 8, 6)).astype(np.float32)
    return x, x.mean(axis=(1, 2))[:, None].astype(np.float32)


def seeded_fit(seed=0, n_threads=None, dtype="float32"):
    utils.set_random_seed(seed)
    m = Sequential([
        LSTM(24, input_shape=(8, 6), return_sequences=True, dropout=0.1, n_threads=n_threads,
             dtype=dtype),
        Dropout(0.2, dtype=dtype),
        Bidirectional(LSTM(20, n_threads=n_threads, dtype=dtype)),
        Dense(1, dtype=dtype),
    ])
    m.compile(optimizer="adam", loss="mse")
    x, y = data()
    m.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, shuffle=True, verbose=0)
    return m.get_weights()


def assert_identical(a, b):
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(u, v, err_msg=f"weight {i}")


def test_two_seeded_fits_are_bit_identical_and_another_seed_differs():
    a = seeded_fit(0)
    assert_identical(a, seeded_fit(0))
    b = seeded_fit(1)
    assert not all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_thread_count_does_not_change_training(dtype):
    assert_identical(seeded_fit(0, n_threads=1, dtype=dtype),
                     seeded_fit(0, n_threads=2, dtype=dtype))


def test_thread_environment_variable_does_not_change_training(monkeypatch):
    monkeypatch.setenv("LSTM_FAST_NUM_THREADS", "1")
    one = seeded_fit(0)
    monkeypatch.setenv("LSTM_FAST_NUM_THREADS", "2")
    two = seeded_fit(0)
    monkeypatch.setenv("LSTM_FAST_NUM_THREADS", "5")  # more threads than cores
    five = seeded_fit(0)
    assert_identical(one, two)
    assert_identical(one, five)


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import test_determinism as td
np.save(sys.stdout.buffer, np.concatenate([w.ravel() for w in td.seeded_fit(0)]))
"""


def _fit_in_process(env_extra):
    import lstm_fast

    root = os.path.dirname(os.path.dirname(os.path.abspath(lstm_fast.__file__)))
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", CHILD, os.path.dirname(__file__)], env=env,
                         capture_output=True, timeout=300, check=True).stdout
    import io

    return np.load(io.BytesIO(out))


def test_across_processes_and_blas_thread_counts():
    a1 = _fit_in_process({"OPENBLAS_NUM_THREADS": "1", "LSTM_FAST_NUM_THREADS": "2"})
    b1 = _fit_in_process({"OPENBLAS_NUM_THREADS": "1", "LSTM_FAST_NUM_THREADS": "1"})
    b2 = _fit_in_process({"OPENBLAS_NUM_THREADS": "2", "LSTM_FAST_NUM_THREADS": "1"})
    np.testing.assert_array_equal(a1, b1)  # same BLAS threads: bit-identical across processes
    # different BLAS threads: the same training up to float32 rounding
    np.testing.assert_allclose(b2, b1, rtol=1e-3, atol=1e-5)
    digest = {k: hashlib.sha256(v.tobytes()).hexdigest()[:12] for k, v in
              {"blas1": b1, "blas2": b2}.items()}
    print("weights digest by OpenBLAS thread count:", digest)
