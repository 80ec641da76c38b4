"""One process per contender and thread count, driven by run.py over a pipe.

Why a process each: the libraries' thread pools and allocators do not share a
process, each gets its own thread count from its environment at import, and the
peak memory (RSS) of a row belongs to one contender alone.

Peak RSS of a row: just before the row's setup the worker frees the previous
row's objects, returns free heap to the OS (malloc_trim) and resets the kernel's
high-water mark (``echo 5 > /proc/self/clear_refs``); after the row it reads
VmHWM. So a row's peak includes the interpreter and the library (reported apart
as ``base``) but not earlier rows. Where clear_refs is not available the peak is
the process's lifetime maximum (``ru_maxrss``), and the result says so.

Messages (parent -> worker): ("setup", row, data), ("run", n, pause_gc), ("rss",),
("fixed", n, seconds), ("teardown",), ("exit",). Replies: ("ok", payload), ("missing", text),
("n/a", text), ("error", traceback text).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import resource
import time
import traceback


def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _reset_peak_rss():
    """Free what can be freed, then make the current RSS the new peak. True if done."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib(reset_ok):
    if reset_ok:
        hwm = _status_kib("VmHWM")
        if hwm is not None:
            return hwm / 1024.0, "VmHWM since the row's setup (clear_refs reset)"
    return resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss / 1024.0, "ru_maxrss (process lifetime)"


def _rss_mib():
    rss = _status_kib("VmRSS")
    return None if rss is None else rss / 1024.0


def main(conn, name, n_threads):
    import contenders

    try:
        t0 = time.perf_counter()
        contender = contenders.create(name, n_threads)
        info = contender.versions()
        info["import_s"] = time.perf_counter() - t0
        conn.send(("ok", info))
    except ImportError as exc:
        conn.send(("missing", f"{type(exc).__name__}: {exc}"))
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return

    case, reset_ok = None, False
    parent = os.getppid()
    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent:  # run.py is gone: do not linger
                return
        msg = conn.recv()
        cmd = msg[0]
        try:
            if cmd == "exit":
                conn.send(("ok", None))
                return
            if cmd == "setup":
                case = None
                reset_ok = _reset_peak_rss()
                base = _rss_mib()
                _, row, data = msg
                case = contender.setup(row, data)
                conn.send(("ok", {"check": case.check(), "rss_base_mib": base}))
            elif cmd == "run":
                conn.send(("ok", _run(case, msg[1], pause_gc=msg[2])))
            elif cmd == "fixed":
                conn.send(("ok", _run_fixed_work(msg[1], msg[2])))
            elif cmd == "rss":
                peak, method = _peak_rss_mib(reset_ok)
                conn.send(("ok", {"peak_mib": peak, "method": method}))
            elif cmd == "teardown":
                case = None
                gc.collect()
                conn.send(("ok", None))
            else:
                conn.send(("error", f"unknown command {cmd!r}"))
        except contenders.Missing as exc:
            conn.send(("missing", str(exc)))
        except contenders.NotApplicable as exc:
            conn.send(("n/a", str(exc)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


def _run(case, n, pause_gc):
    """Time n calls one by one (seconds each). For the layer rows the garbage
    collector is paused during the batch so that its pauses land on no
    contender's timings; a whole job runs with it, as a user's script does."""
    times = []
    gc.collect()
    if pause_gc:
        gc.disable()
    try:
        for _ in range(n):
            if case.prepare is not None:
                case.prepare()
            t0 = time.perf_counter()
            case.call()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times


def _fixed_work(n):
    """Work of a fixed size on one thread: n integer additions in the
    interpreter's loop (cache-resident, no other thread, no system call)."""
    s = 0
    for i in range(n):
        s += i
    return s


_FIXED_ITERS = {}


def _run_fixed_work(n, seconds):
    """Time n runs of fixed work lasting about `seconds` (its size calibrated
    once): whatever spreads these times is the machine's, not a library's
    (run.py: the timing noise table)."""
    if seconds not in _FIXED_ITERS:
        probe = 20_000
        best = min(_timed(_fixed_work, probe) for _ in range(5))
        iters = max(1, round(probe * seconds / max(best, 1e-9)))
        # then on the median of the size chosen (a loop of 1000 additions costs
        # more per addition than one of 20000)
        med = sorted(_timed(_fixed_work, iters) for _ in range(11))[5]
        _FIXED_ITERS[seconds] = max(1, round(iters * seconds / max(med, 1e-9)))
    iters = _FIXED_ITERS[seconds]
    gc.collect()
    gc.disable()
    try:
        return [_timed(_fixed_work, iters) for _ in range(n)]
    finally:
        gc.enable()


def _timed(fn, arg):
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0
