"""A pool worker that starts late (it lost its core to another process).

The forward time loop and the GEMM share their work out in chunks: the caller
takes over the chunks of a member that has not started, and a worker that
arrives after the caller finished skips the job. The testing aid
`_engine._set_late_workers(us)` makes every pool worker wait before it joins a
job. Checked here:

- results are bit-identical to a one-thread call (the chunks are computed the
  same way whoever runs them);
- a forward or matmul call does not wait for the late worker: with the
  workers 1.5 s late, each call returns long before that (a call alone takes
  milliseconds; with a barrier per step it would take the whole delay);
- so does the backward time loop of small layers (chunks of rows);
- the tasks that still split their work statically (the backward time loop
  of wide layers, by blocks) wait for the late worker and stay correct, also
  when the worker arrives after the job it woke up for was closed and the
  next one published.
"""

import time

import numpy as np
import pytest
from conftest import uses_team

from lstm_fast import _engine, ops

LATE_S = 1.5


@pytest.fixture
def late_workers():
    # the team exists and spins before the delay starts: the calls below are
    # sent to it (a sleeping team would run a small task alone)
    warm = np.ones((256, 256), np.float32)
    ops.matmul(warm, warm, n_threads=2)
    _engine._set_late_workers(int(LATE_S * 1e6))
    try:
        yield
    finally:
        _engine._set_late_workers(0)
        # the workers now wake, skip the closed jobs, and serve the next ones
        ops.matmul(warm, warm, n_threads=2)


def _lstm_args(B, T, I, H, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((B, T, I)).astype(np.float32),
        kernel=(rng.standard_normal((I, 4 * H)) * 0.1).astype(np.float32),
        recurrent_kernel=(rng.standard_normal((H, 4 * H)) * 0.1).astype(np.float32),
        bias=(rng.standard_normal(4 * H) * 0.1).astype(np.float32),
    )


# Wide layers share out each step's blocks of units; small ones (the engine's
# rows_pay: weights <= 160 KB, here B32 H50 as in the seed model, with the
# input fused into the loop and not) share out whole rows; both above the size
# that a cold team would run alone.
@pytest.mark.parametrize("B,T,I,H", [(1, 150, 256, 256), (32, 40, 64, 128), (5, 30, 64, 200),
                                     (32, 60, 10, 50), (32, 60, 40, 50)])
def test_forward_does_not_wait_for_a_late_worker(late_workers, B, T, I, H):
    assert uses_team(B, I, H, T=T)
    args = _lstm_args(B, T, I, H)
    _engine._set_late_workers(0)
    want = ops.lstm_forward(**args, return_sequences=True, n_threads=1)
    _engine._set_late_workers(int(LATE_S * 1e6))
    for _ in range(3):
        t0 = time.perf_counter()
        got = ops.lstm_forward(**args, return_sequences=True, n_threads=2)
        elapsed = time.perf_counter() - t0
        for g, w in zip(got[:3], want[:3]):
            np.testing.assert_array_equal(g, w)
        assert elapsed < LATE_S / 3, f"forward waited for the late worker: {elapsed:.3f} s"


# rows_pay sizes: the seed model's (its input fused into the forward's loop),
# and 31 rows (chunks of 5 and 6) with lengths, the reverse direction and the
# input projected by the GEMM (I = 40); both backwards above LF_COLD_FLOPS, so
# that they run on the team
@pytest.mark.parametrize("B,T,I,H,masked", [(32, 60, 10, 50, False), (31, 60, 40, 50, True)])
def test_small_backward_does_not_wait_for_a_late_worker(late_workers, B, T, I, H, masked):
    args = _lstm_args(B, T, I, H, seed=3)
    kw = dict(return_sequences=True, training=True)
    if masked:
        kw.update(lengths=np.arange(B) % T + 1, go_backwards=True)
    dy = np.cos(np.arange(B * T * H, dtype=np.float32)).reshape(B, T, H)

    def grads(n_threads):
        _, _, _, cache = ops.lstm_forward(**args, **kw, n_threads=n_threads)
        t0 = time.perf_counter()
        g = ops.lstm_backward(cache, dy=dy, n_threads=n_threads)
        return time.perf_counter() - t0, [g.dx, g.dh0, g.dc0, g.dkernel, g.drecurrent_kernel,
                                          g.dbias]

    _engine._set_late_workers(0)
    _, want = grads(1)
    _engine._set_late_workers(int(LATE_S * 1e6))
    for _ in range(3):
        elapsed, got = grads(2)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        assert elapsed < LATE_S / 3, f"backward waited for the late worker: {elapsed:.3f} s"


def test_matmul_does_not_wait_for_a_late_worker(late_workers):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 512)).astype(np.float32)
    b = rng.standard_normal((512, 700)).astype(np.float32)
    want = ops.matmul(a, b, n_threads=1)
    for _ in range(3):
        t0 = time.perf_counter()
        got = ops.matmul(a, b, n_threads=2)
        elapsed = time.perf_counter() - t0
        np.testing.assert_array_equal(got, want)
        assert elapsed < LATE_S / 3, f"matmul waited for the late worker: {elapsed:.3f} s"


def test_training_step_with_a_late_worker_equals_one_thread(late_workers):
    """forward (shared), backward (static: it waits), GEMMs (shared), in turn:
    the late worker wakes up for jobs already closed and must run only the
    one that needs it."""
    args = _lstm_args(8, 20, 24, 96, seed=2)
    assert uses_team(8, 24, 96) and uses_team(8, 24, 96, backward=True)
    _engine._set_late_workers(200_000)  # 0.2 s: the backward waits for it once

    def step(n_threads):
        y, _, _, cache = ops.lstm_forward(
            **args, return_sequences=True, training=True, n_threads=n_threads
        )
        g = ops.lstm_backward(cache, dy=np.cos(y), n_threads=n_threads)
        return [y, g.dx, g.dh0, g.dc0, g.dkernel, g.drecurrent_kernel, g.dbias]

    got = [step(2) for _ in range(2)]
    _engine._set_late_workers(0)
    want = step(1)
    for run in got:
        for g, w in zip(run, want):
            np.testing.assert_array_equal(g, w)
