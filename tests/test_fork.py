"""fork() after the engine's thread team has run: the child predicts and trains, right and fast.

The parent first runs `fit` and `predict` with 2 threads, so the team's worker
threads exist (and are spinning or sleeping) when it forks. A child gets only
the forking thread; the engine's atfork handler forgets the lost workers and
the child makes new ones on use (csrc/threadpool.c). Every child must finish
within CHILD_TIMEOUT seconds: a hang is killed and fails the test instead of
blocking CI. Results are compared bit for bit with the parent's (the kernels
do not depend on the thread count).
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import traceback

import numpy as np
import pytest
from conftest import uses_team

from lstm_fast import utils
from lstm_fast.layers import LSTM, Dense
from lstm_fast.models import Sequential

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILD_TIMEOUT = 30.0  # seconds; a healthy child needs well under one
N, T, I, H = 8, 6, 4, 144  # noqa: E741 - big enough that the engine uses 2 threads


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, I)).astype("float32")
    return x, (x.mean(axis=(1, 2))[:, None]).astype("float32")


def trained_model():
    utils.set_random_seed(0)
    m = Sequential([LSTM(H, input_shape=(T, I), return_sequences=True, n_threads=2),
                    LSTM(H, n_threads=2), Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    x, y = data()
    m.fit(x, y, epochs=1, batch_size=4, verbose=0)
    m.predict(x, verbose=0)
    return m


def child_work(m):
    """What a child does: predict, then one more epoch of fit (seeded)."""
    x, y = data()
    pred = m.predict(x, verbose=0)
    utils.set_random_seed(7)
    m.fit(x, y, epochs=1, batch_size=4, verbose=0)
    return {"pred": pred, **{f"w{i}": w for i, w in enumerate(m.get_weights())}}


def run_in_fork(fn, tmp_path):
    """fn() in a child made by os.fork; its dict of arrays, or a failure (with a deadline)."""
    out = tmp_path / f"child-{time.monotonic_ns()}.npz"
    err = out.with_suffix(".err")
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            np.savez(out, **fn())
            code = 0
        except BaseException:
            err.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung (killed after {CHILD_TIMEOUT} s)")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"child failed with status {status}: {err.read_text() if err.exists() else ''}")
    with np.load(out) as f:
        return dict(f)


def expected_after_child_work(m):
    state = m.get_weights()
    opt_state = {k: v.copy() for k, v in m.optimizer.variables().items()}
    result = child_work(m)
    m.set_weights(state)
    m.optimizer.set_variables(opt_state)
    return result


def test_the_sizes_use_the_team():
    """The model's layers at fit's batch of 4 and predict's of N, and the
    busy parent's forward, run on two threads: the team is what forks."""
    for B in (4, N):
        for I_, backward in ((I, False), (I, True), (H, False), (H, True)):
            assert uses_team(B, I_, H, backward=backward)
    assert uses_team(8, 32, 96)  # FORK_WHILE_BUSY


def test_os_fork_child_predicts_and_fits(tmp_path):
    m = trained_model()
    t0 = time.monotonic()
    got = run_in_fork(lambda: child_work(m), tmp_path)
    elapsed = time.monotonic() - t0
    want = expected_after_child_work(m)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert elapsed < 10, f"the child took {elapsed:.1f} s"


def test_repeated_forks_and_grandchildren(tmp_path):
    m = trained_model()
    want = m.predict(data()[0], verbose=0)

    def grandchild():
        return {"pred": m.predict(data()[0], verbose=0)}

    def child():
        first = m.predict(data()[0], verbose=0)
        return {"pred": first, **run_in_fork(grandchild, tmp_path)}

    for _ in range(3):
        got = run_in_fork(child, tmp_path)
        np.testing.assert_array_equal(got["pred"], want)


# fork() while another thread runs the engine. Run in a fresh interpreter with
# OpenBLAS single-threaded: forking while another thread is inside a threaded
# OpenBLAS GEMM hangs the child in its next GEMM (and can stall the parent's
# thread) with np.matmul alone, no lstm_fast involved; that is OpenBLAS's
# limitation, not the engine's. The engine's own team must survive it.
FORK_WHILE_BUSY = r"""
import os, sys, threading, time
import numpy as np
from lstm_fast import ops

rng = np.random.default_rng(1)
H = 96  # big enough that the engine uses 2 threads (test_the_sizes_use_the_team)
x = rng.standard_normal((8, 64, 32)).astype(np.float32)
k = (rng.standard_normal((32, 4 * H)) * 0.2).astype(np.float32)
r = (rng.standard_normal((H, 4 * H)) * 0.2).astype(np.float32)
want = ops.lstm_forward(x, k, r, n_threads=1)[0]
stop = threading.Event()
bad = []

def busy():
    while not stop.is_set():
        if not np.array_equal(ops.lstm_forward(x, k, r, n_threads=2)[0], want):
            bad.append("parent thread got a different result")

th = threading.Thread(target=busy)
th.start()
for i in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(ops.lstm_forward(x, k, r, n_threads=2)[0], want)
        os._exit(0 if ok else 3)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            bad.append(f"child {i} hung")
            status = 0
            break
        time.sleep(0.005)
    if status:
        bad.append(f"child {i} exited with status {status}")
stop.set()
th.join()
print("ERRORS:", bad) if bad else print("OK")
"""


def test_fork_while_another_thread_runs_the_engine():
    """The atfork handler holds the team across fork: no half-published job in the child."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=_package_root())
    proc = subprocess.run([sys.executable, "-c", FORK_WHILE_BUSY, "20"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stdout + proc.stderr


def _package_root():
    import lstm_fast

    root = os.path.dirname(os.path.dirname(os.path.abspath(lstm_fast.__file__)))
    return os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p])


def _mp_child(weights, queue):
    m = Sequential([LSTM(H, input_shape=(T, I), return_sequences=True, n_threads=2),
                    LSTM(H, n_threads=2), Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    m.set_weights(weights)
    queue.put(child_work(m))


def _mp_child_inherited(queue):
    queue.put(child_work(_INHERITED[0]))


_INHERITED = []


@pytest.mark.parametrize("inherit", [True, False], ids=["inherited-model", "new-model"])
def test_multiprocessing_fork_context(inherit):
    m = trained_model()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    if inherit:
        _INHERITED[:] = [m]
        p = ctx.Process(target=_mp_child_inherited, args=(queue,))
    else:
        p = ctx.Process(target=_mp_child, args=(m.get_weights(), queue))
    p.start()
    try:
        got = queue.get(timeout=CHILD_TIMEOUT)
    except Exception:
        p.kill()
        p.join()
        pytest.fail(f"the multiprocessing child hung or died (exitcode {p.exitcode})")
    finally:
        _INHERITED.clear()
    p.join(timeout=CHILD_TIMEOUT)
    assert p.exitcode == 0
    if inherit:
        want = expected_after_child_work(m)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    else:  # a fresh optimizer: compare the prediction, and that training moved the weights
        np.testing.assert_array_equal(got["pred"], m.predict(data()[0], verbose=0))
        assert all(np.isfinite(got[f"w{i}"]).all() for i in range(5))


def test_multiprocessing_pool_map():
    m = trained_model()
    x = data()[0]
    want = m.predict(x, verbose=0)
    _INHERITED[:] = [m]
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            parts = pool.map_async(_predict_rows, [(0, 4), (4, 8)]).get(timeout=CHILD_TIMEOUT)
    finally:
        _INHERITED.clear()
    np.testing.assert_array_equal(np.concatenate(parts), want)


def _predict_rows(bounds):
    lo, hi = bounds
    return _INHERITED[0].predict(data()[0][lo:hi], verbose=0)
