"""What machine a result comes from, and its measured GEMM peak."""

from __future__ import annotations

import datetime
import os
import platform
import re
import socket
import subprocess
import time

import numpy as np

# Environment variables that change what the libraries do; recorded in every result.
ENV_VARS = [
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "LSTM_FAST_NUM_THREADS",
    "LSTM_FAST_ISA",
    "TF_ENABLE_ONEDNN_OPTS",
    "KERAS_BACKEND",
]
ISA_FLAGS = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
]


def usable_cpus():
    """CPUs this process may run on (its affinity), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_info():
    model, flags, physical = "unknown", set(), set()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        text = ""
    for block in text.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in block.splitlines())
            if k
        )
        if "model name" in fields:
            model = fields["model name"]
        if "flags" in fields:
            flags = set(fields["flags"].split())
        if "physical id" in fields and "core id" in fields:
            physical.add((fields["physical id"], fields["core id"]))
    logical = os.cpu_count() or 1
    usable = usable_cpus()
    return {
        "cpu_model": model,
        "logical_cpus": logical,
        "physical_cores": len(physical) or None,
        "usable_cpus": usable,
        "isa_flags": [f for f in ISA_FLAGS if f in flags],
    }


def memory_gib():
    try:
        with open("/proc/meminfo") as f:
            kib = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        return round(kib / 2**20, 1)
    except (OSError, AttributeError):
        return None


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        return [
            {
                k: v
                for k, v in pool.items()
                if k
                in ("internal_api", "version", "num_threads", "architecture", "threading_layer")
            }
            for pool in threadpool_info()
        ]
    except ImportError:
        return "threadpoolctl not installed"


def git_commit(repo_dir):
    try:
        commit = subprocess.run(
            ["git", "-C", repo_dir, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", repo_dir, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "") if commit else None
    except (OSError, subprocess.SubprocessError):
        return None


def describe(repo_dir):
    now = datetime.datetime.now(datetime.timezone.utc)
    info = cpu_info()
    info.update(
        {
            "hostname": socket.gethostname(),
            "date_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numpy_blas": blas_info(),
            "memory_gib": memory_gib(),
            "env": {k: os.environ.get(k) for k in ENV_VARS if os.environ.get(k) is not None},
            "repo_commit": git_commit(repo_dir),
        }
    )
    return info


def machine_slug(info):
    """A file-name-safe machine name: CPU model and core count, e.g. amd-epyc-2c."""
    model = re.sub(r"\((r|tm)\)|cpu|processor|@.*$", " ", info["cpu_model"].lower())
    model = re.sub(r"[^a-z0-9]+", "-", model).strip("-") or "cpu"
    return f"{model}-{info['usable_cpus']}c"


class PeakProbe:
    """A large square matmul through NumPy's BLAS on all cores, its operands
    made once and its threads started: measure_peak times it at a run's start
    and end, and run_row again between the rounds of a training row, so that
    the row's GEMM rate can be set against the peak of the same minutes. On a
    shared host the peak moves within a run (242 and 309 GFLOP/s at a run's
    start and end here), as much as the training steps' own times do, and
    one product took 152-318 GFLOP/s from one half second to the next (15 of
    them timed in one process, 2026-11-28)."""

    def __init__(self, dtype=np.float32, n=4096):
        rng = np.random.default_rng(0)
        self.n = n
        self.a = rng.standard_normal((n, n)).astype(dtype)
        self.b = rng.standard_normal((n, n)).astype(dtype)
        self.out = np.empty((n, n), dtype)
        np.matmul(self.a, self.b, out=self.out)  # threads started, pages touched

    def rates(self, repeats):
        """GFLOP/s of each of `repeats` products."""
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(self.a, self.b, out=self.out)
            out.append(2.0 * self.n**3 / (time.perf_counter() - t0) / 1e9)
        return out

    def gflops(self, repeats=2):
        """The best of `repeats` products. Between rounds it takes fewer than
        measure_peak (2 against 5, to keep the rounds short), so on a host
        whose rate swings it tends to come out lower than the run's peak, and
        a rate against it higher."""
        return max(self.rates(repeats))


def measure_peak(dtype=np.float32, n=4096, repeats=5):
    """GFLOP/s of a large square matmul through NumPy's BLAS on all cores:
    the machine's practical GEMM peak. Best and median of `repeats` runs."""
    rates = PeakProbe(dtype, n).rates(repeats)
    return {
        "dtype": np.dtype(dtype).name,
        "n": n,
        "best_gflops": max(rates),
        "median_gflops": float(np.median(rates)),
        "blas": blas_info(),
    }


def _clock_ticks():
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def cpu_busy_seconds():
    """CPU-seconds spent busy by the whole machine since boot (all CPUs), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / _clock_ticks()


def process_cpu_seconds(pids):
    """CPU-seconds used so far by these processes (all their threads)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _clock_ticks()  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total


def wait_until_idle(pid, quiet_s=0.03, timeout_s=0.5):
    """Return once process pid has used no CPU for quiet_s (its thread pool has
    stopped spinning), or after timeout_s; the seconds waited.

    Thread pools spin after their last call: measured here after a B1 T150 H256
    LSTM, ONNX Runtime's about 60 ms of one core, NumPy's OpenBLAS 80-110 ms
    (after a matmul), PyTorch's under 10 ms. A contender timed while another's
    pool spins gets half the cores for that long. Kernel CPU accounting moves in
    clock ticks (10 ms here), hence windows of 30 ms."""
    t0 = time.perf_counter()
    last = process_cpu_seconds([pid])
    quiet_since = t0
    while True:
        time.sleep(0.005)
        now = time.perf_counter()
        used = process_cpu_seconds([pid])
        if used > last:
            last, quiet_since = used, now
        elif now - quiet_since >= quiet_s or now - t0 >= timeout_s:
            return now - t0


class BackgroundLoad:
    """How many CPUs other processes kept busy while we measured: machine busy
    time (/proc/stat) minus our own processes' CPU time, over the wall time.
    On a shared machine this tells which numbers were taken under contention."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.t0 = time.perf_counter()
        self.busy0 = cpu_busy_seconds()
        self.ours0 = process_cpu_seconds(self.pids)

    def cpus(self):
        busy = cpu_busy_seconds()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        others = (busy - self.busy0) - (process_cpu_seconds(self.pids) - self.ours0)
        return max(0.0, others / wall) if wall > 0 else None


def background_load_now(seconds=1.0, pids=()):
    probe = BackgroundLoad([os.getpid(), *pids])
    time.sleep(seconds)
    return probe.cpus()
