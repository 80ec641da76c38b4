"""Side-by-side benchmark of lstm_fast against PyTorch, TensorFlow/Keras, ONNX Runtime
and lstm_fast's NumPy reference, on the workloads of shared/BENCH.md.

    python bench/run.py                 # everything (about 10-15 minutes on 2 cores)
    python bench/run.py --quick         # smoke run, under a minute
    python bench/run.py --workloads seed,large,latency-256 --contenders torch,onnxruntime

Method (see bench/README.md): the same weights for every contender; each
contender's result is checked against lstm_fast's (lstm_fast's against the NumPy
reference in float64, lstm_fast_f16's against it on the weights rounded to half
precision) before anything is timed; warm-up; then rounds in which
every contender runs in turn (A B C A B C ...); median (and p99 for latency
rows, of steady calls: each turn's first call is reported apart, beside fixed
work that measures the machine's own spread); GFLOP/s by BENCH.md's formulas
and as a fraction of the matmul peak measured in the same run; peak RSS per
contender from its own worker process.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import sys
import time

import numpy as np

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

import contenders as contenders_mod  # noqa: E402
import machine  # noqa: E402
import workloads  # noqa: E402

SCHEMA = 1
# A result passes its check when max|a - b| <= TOL * max(1, max|b|) for every array,
# b being the baseline (lstm_fast, or the float64 NumPy reference for lstm_fast).
TOL = {"float32": 1e-4, "float64": 1e-10}
# The whole job compares predictions before and after one epoch of Adam (no
# shuffle); optimizer details (where epsilon sits) move those a little more.
TOL_JOB = {"float32": 2e-3, "float64": 1e-6}

FULL = dict(
    rounds=7,
    budget_s=3.0,
    warmup_s=0.5,
    min_latency_samples=200,
    min_step_samples=3000,
    min_train_samples=10,
    peak_n=4096,
    peak_repeats=5,
    job_rounds=2,
)
QUICK = dict(
    rounds=2,
    budget_s=0.1,
    warmup_s=0.03,
    min_latency_samples=20,
    min_step_samples=100,
    min_train_samples=2,
    peak_n=2048,
    peak_repeats=3,
    job_rounds=1,
)


def _ensure_lstm_fast_importable():
    try:
        import lstm_fast  # noqa: F401
    except ImportError:
        sys.path.insert(0, REPO_DIR)  # running from a checkout without installing


# ----------------------------------------------------------------------------- workers


class Worker:
    """A contender's process at a thread count (see worker.py)."""

    def __init__(self, ctx, name, n_threads):
        self.name, self.n_threads = name, n_threads
        self.conn, child = ctx.Pipe()
        import worker

        env = {
            "OMP_NUM_THREADS": str(n_threads),
            "OPENBLAS_NUM_THREADS": str(n_threads),
            "MKL_NUM_THREADS": str(n_threads),
            "LSTM_FAST_NUM_THREADS": str(n_threads),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # inherited by the child at exec, read by its libraries at import
        try:
            self.proc = ctx.Process(target=worker.main, args=(child, name, n_threads), daemon=True)
            self.proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.status, self.info, self.error = "starting", {}, None

    def wait_ready(self, timeout=600):
        status, payload = self.request(None, timeout)
        self.status = status
        if status == "ok":
            self.info = payload
        else:
            self.error = payload

    def request(self, msg, timeout=3600):
        try:
            if msg is not None:
                self.conn.send(msg)
            if not self.conn.poll(timeout):
                return "error", f"no answer from the {self.name} worker in {timeout} s"
            return self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self.proc.join(1)
            return "error", f"the {self.name} worker died (exit code {self.proc.exitcode})"

    def close(self):
        if self.proc.is_alive():
            try:
                self.conn.send(("exit",))
                self.conn.poll(5)
            except (BrokenPipeError, OSError):
                pass
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(5)


# ------------------------------------------------------------------------------ checks


def compare(got, want, tol):
    """Max abs error per array, and pass/fail against tol * max(1, max|want|)."""
    errors, ok = {}, True
    for key, w in want.items():
        g = got.get(key)
        if g is None or np.shape(g) != np.shape(w):
            errors[key] = {"error": f"shape {np.shape(g)} vs {np.shape(w)}"}
            ok = False
            continue
        w64, g64 = np.asarray(w, np.float64), np.asarray(g, np.float64)
        scale = max(1.0, float(np.max(np.abs(w64)))) if w64.size else 1.0
        err = float(np.max(np.abs(g64 - w64))) if w64.size else 0.0
        passed = bool(np.isfinite(err) and err <= tol * scale)
        errors[key] = {"max_abs_err": err, "scale": scale, "pass": passed}
        ok = ok and passed
    return {"pass": ok, "tol": tol, "rule": "max|a-b| <= tol * max(1, max|b|)", "arrays": errors}


def reference_check(row, data, half=False):
    """What lstm_fast must give: the NumPy reference, computed in float64 (with
    half: on the weights rounded to half precision, lstm_fast_f16's oracle)."""
    from lstm_fast import reference

    f64 = {k: np.asarray(v, np.float64) for k, v in data.items()}
    if half:
        for k in ("kernel", "recurrent_kernel"):
            f64[k] = np.asarray(data[k], np.float16).astype(np.float64)
    K, R, b = f64["kernel"], f64["recurrent_kernel"], f64["bias"]
    if row["kind"] == "train":
        y, _, _, cache = reference.lstm_forward(f64["x"], K, R, b, training=True)
        g = reference.lstm_backward(cache, f64["projection"])
        return {
            "y": y,
            "dx": g.dx,
            "dkernel": g.dkernel,
            "drecurrent_kernel": g.drecurrent_kernel,
            "dbias": g.dbias,
        }
    if row["kind"] == "infer":
        return {"y": reference.lstm_forward(f64["x"], K, R, b)[0]}
    B, H = f64["x_steps"].shape[1], R.shape[0]
    h, c, hs = np.zeros((B, H)), np.zeros((B, H)), []
    for x_t in f64["x_steps"]:
        _, h, c, _ = reference.lstm_forward(x_t[:, None, :], K, R, b, h, c)
        hs.append(h)
    return {"h": np.stack(hs), "c": c}


def _check_text(check):
    parts = []
    for key, e in check["arrays"].items():
        parts.append(
            f"{key} {e['max_abs_err']:.1e}" if "max_abs_err" in e else f"{key} {e['error']}"
        )
    return " ".join(parts)


# ------------------------------------------------------------------------------- rows


def label(name, threads, row):
    return f"{name}@{threads}" if len(row["threads"]) > 1 else name


def run_row(row, data, pool, names, settings, dtype, peak, peak_probe=None):
    """Set up, check, warm up and time one row on every contender; a result dict.
    With peak_probe (a machine.PeakProbe), a training row times the matmul peak
    again after each round (round_peak_fraction)."""
    kind = row["kind"]
    tol = (TOL_JOB if kind == "job" else TOL)[dtype]
    results, live = {}, []
    t_row = time.perf_counter()
    for name in names:
        if name not in row.get("only", names):
            continue
        for threads in row["threads"]:
            lab = label(name, threads, row)
            w = pool[(name, threads)]
            entry = {"contender": name, "threads": threads}
            results[lab] = entry
            if w.status != "ok":
                entry.update(status="missing" if w.status == "missing" else "error", error=w.error)
            elif name == "reference" and row["id"] not in workloads.REFERENCE_TIMED:
                entry.update(status="n/a", error="the reference is timed on the small rows only")
            elif name == "onnxruntime" and kind in ("train", "job"):
                entry.update(status="n/a", error="inference only")
            else:
                live.append((lab, w))

    # setup + check, all workers at once (nothing is timed yet)
    for _, w in live:
        w.conn.send(("setup", row, data))
    checks = {}
    for lab, w in list(live):
        status, payload = w.request(None)
        if status == "ok":
            checks[lab] = payload["check"]
            results[lab]["rss_base_mib"] = payload["rss_base_mib"]
        else:
            results[lab].update(
                status={"missing": "missing", "n/a": "n/a"}.get(status, "error"), error=payload
            )
            live.remove((lab, w))
            w.request(("teardown",))

    # checks: lstm_fast against the float64 reference; the others against lstm_fast
    threads_all = max(row["threads"])
    base_lab = label("lstm_fast", threads_all, row)
    if base_lab not in checks:  # lstm_fast failed: compare the rest with the first that ran
        base_lab = next(
            (lab for lab in checks if results[lab]["contender"] != "lstm_fast_f16"), None
        )
    if kind != "job":
        want = reference_check(row, data)
        half = [lab for lab in checks if results[lab]["contender"] == "lstm_fast_f16"]
        want_half = reference_check(row, data, half=True) if half else None
        for lab in checks:
            if results[lab]["contender"] == "lstm_fast":
                results[lab]["check"] = dict(
                    compare(checks[lab], want, tol), against="reference (float64)"
                )
            elif lab in half:
                results[lab]["check"] = dict(
                    compare(checks[lab], want_half, tol), against="reference, fp16 weights"
                )
                # its distance to the reference on the float32 weights: the
                # rounding's effect, far above its error against its own oracle
                results[lab]["check"]["vs_float32_reference_max_abs"] = max(
                    (a.get("max_abs_err", 0.0) for a in compare(checks[lab], want, tol)[
                        "arrays"].values()),
                    default=0.0,
                )
    for lab in checks:
        if "check" not in results[lab]:
            if lab == base_lab:
                results[lab]["check"] = {
                    "pass": True,
                    "against": None,
                    "note": "baseline of this row",
                }
            else:
                results[lab]["check"] = dict(
                    compare(checks[lab], checks[base_lab], tol), against=base_lab
                )
        c = results[lab]["check"]
        if c.get("against"):
            verdict = "PASS" if c["pass"] else "FAIL"
            print(
                f"    check {lab:<16} vs {c['against']:<20} {_check_text(c)}  "
                f"(tol {c['tol']:g} x max(1,|b|)) {verdict}",
                flush=True,
            )

    # warm-up, then interleaved rounds
    pause_gc = kind != "job"
    estimate = {}
    for lab, w in live:
        if kind == "job":
            estimate[lab] = None  # the check's 1-epoch fit was the warm-up
            continue
        status, times = w.request(("run", 1, pause_gc))
        if status != "ok":
            results[lab].update(status="error", error=times)
            continue
        t1 = max(times[0], 1e-7)
        n_warm = int(min(settings["warmup_s"] / t1, 2000))
        if n_warm:
            status, more = w.request(("run", n_warm, pause_gc))
            times = more if status == "ok" else times
        estimate[lab] = float(np.median(times))
        machine.wait_until_idle(w.proc.pid)
    live = [(lab, w) for lab, w in live if lab in estimate]

    rounds = settings["job_rounds"] if kind == "job" else settings["rounds"]
    if kind != "job" and estimate:  # a contender at seconds per call: fewer rounds (at least 3)
        slowest = max(estimate.values())
        rounds = int(min(rounds, max(3, math.ceil(2 * settings["budget_s"] / slowest))))
    # Training steps of a third of a second and more got 3-6 samples each with
    # a budget of 1.5 s, whose own spread (333-423 ms at the large step) was as
    # wide as the 10% between two rows of one run timing the same step.
    min_samples = settings["min_train_samples"] if kind == "train" else 1
    if kind == "step":
        min_samples = settings["min_step_samples"]
    elif _is_latency(row):
        min_samples = settings["min_latency_samples"]
    per_round = {}
    for lab, _ in live:
        if kind == "job":
            per_round[lab] = 1
        else:
            per_round[lab] = calls_per_round(
                settings["budget_s"], rounds, estimate[lab], min_samples
            )
    samples = {lab: [] for lab, _ in live}
    # each round's samples per contender ([] where it did not run that round),
    # and the matmul peak timed after each round (training rows): paired by index
    round_times = {lab: [] for lab, _ in live}
    round_peaks = []
    # Latency and streaming rows: p50 and p99 are of calls in a steady stream.
    # A turn's first call comes after the other contenders ran: its weights
    # evicted from the caches, its thread pool asleep, and the turn switch
    # itself costs (fixed work's first call is slower too: 2.44 against 2.12
    # ms, 71 against 41 us). B1 T150 H256 after 64 MB were read: 3.4 ms against
    # 2.65 for the calls after it. With ~40 calls a turn those first calls alone
    # made the p99 of every contender; each turn runs one more call, timed and
    # reported apart (first_call_ms), for every contender alike.
    steady = _is_steady(row)
    first_calls = {lab: [] for lab, _ in live}
    # Fixed work as long as lstm_fast's call, on one thread of lstm_fast's
    # worker, timed after the contenders' turns in each round. Its spread
    # (p99 / p50) is a reference for the machine's own (noise_lines). Sized
    # (calibrated once, in the worker) to the median of lstm_fast's steady
    # calls in the first round, not to its warm-up: with --quick's 30 ms of
    # warm-up the streaming step's warm-up median was 1.1-4.8x its steady one.
    ours_lab = label("lstm_fast", threads_all, row)
    fixed = None
    if steady and ours_lab in estimate:
        fixed = dict(worker=dict(live)[ours_lab], seconds=None, samples=[], first_calls=[])
    probe = machine.BackgroundLoad([os.getpid(), *(w.proc.pid for w in pool.values())])
    for r in range(rounds):
        order = live[r % len(live) :] + live[: r % len(live)] if live else []
        for lab, _ in live:
            round_times[lab].append([])
        for lab, w in order:
            if results[lab].get("status") == "error":
                continue
            status, times = w.request(("run", per_round[lab] + steady, pause_gc))
            if status != "ok":
                results[lab].update(status="error", error=times)
                continue
            if steady:
                first_calls[lab].append(times[0])
                times = times[1:]
            samples[lab].extend(times)
            round_times[lab][r] = times
            # the next contender starts once this one's thread pool has gone idle
            machine.wait_until_idle(w.proc.pid)
        if fixed is not None and results[ours_lab].get("status") != "error":
            fw = fixed["worker"]
            if fixed["seconds"] is None:  # after lstm_fast's first turn (this round)
                fixed["seconds"] = float(np.median(samples[ours_lab]))
            status, times = fw.request(("fixed", per_round[ours_lab] + 1, fixed["seconds"]))
            if status == "ok":
                fixed["first_calls"].append(times[0])
                fixed["samples"].extend(times[1:])
            else:
                fixed["error"] = times
            machine.wait_until_idle(fw.proc.pid)
        if peak_probe is not None and kind == "train" and row["flops"]:
            round_peaks.append(peak_probe.gflops())
            machine.wait_until_idle(os.getpid())  # NumPy's BLAS threads spin after it

    background = probe.cpus()
    for lab, w in live:
        entry = results[lab]
        status, rss = w.request(("rss",))
        if status == "ok":
            entry["rss_peak_mib"], entry["rss_method"] = rss["peak_mib"], rss["method"]
        w.request(("teardown",))
        if entry.get("status") == "error" or not samples[lab]:
            entry.setdefault("status", "error")
            continue
        t = np.asarray(samples[lab])
        entry.update(
            status="ok",
            n=len(t),
            median_ms=float(np.median(t)) * 1e3,
            p99_ms=float(np.percentile(t, 99)) * 1e3,
            min_ms=float(t.min()) * 1e3,
            mean_ms=float(t.mean()) * 1e3,
        )
        if first_calls[lab]:
            entry["first_call_ms"] = float(np.median(first_calls[lab])) * 1e3
            entry["first_call_max_ms"] = float(np.max(first_calls[lab])) * 1e3
        if row["flops"]:
            gflops = row["flops"] / float(np.median(t)) / 1e9
            entry["gflops"] = gflops
            entry["frac_peak"] = gflops / peak["best_gflops"]
            # the peak's product runs on every CPU: compare calls on as many
            if round_peaks and entry["threads"] == machine.usable_cpus():
                entry["round_median_ms"] = [
                    float(np.median(t)) * 1e3 if len(t) else None for t in round_times[lab]
                ]
                entry["frac_round_peak"] = round_peak_fraction(
                    row["flops"], round_times[lab], round_peaks
                )

    # speedups of lstm_fast over each contender at the same thread count
    for entry in results.values():
        ours = results.get(label("lstm_fast", entry["threads"], row), {})
        if (
            entry.get("status") == "ok"
            and ours.get("status") == "ok"
            and entry["contender"] not in ("lstm_fast", "lstm_fast_f16")  # float32 vs float32
        ):
            entry["speedup_median"] = entry["median_ms"] / ours["median_ms"]
            entry["speedup_p99"] = entry["p99_ms"] / ours["p99_ms"]
    fixed_work = None
    if fixed is not None and fixed.get("error"):
        fixed_work = dict(status="error", error=fixed["error"])
    elif fixed is not None and results[ours_lab].get("status") == "error":
        fixed_work = dict(status="error", error="not timed: lstm_fast failed in this row")
    elif fixed is not None and fixed["samples"]:
        t = np.asarray(fixed["samples"])
        fixed_work = dict(
            status="ok",
            threads=1,
            target_ms=fixed["seconds"] * 1e3,
            n=len(t),
            median_ms=float(np.median(t)) * 1e3,
            p99_ms=float(np.percentile(t, 99)) * 1e3,
            first_call_ms=float(np.median(fixed["first_calls"])) * 1e3,
            first_call_max_ms=float(np.max(fixed["first_calls"])) * 1e3,
        )
    return dict(
        row,
        results=results,
        round_peaks_gflops=round_peaks or None,
        fixed_work=fixed_work,
        tolerance=tol,
        background_cpus=background,
        elapsed_s=time.perf_counter() - t_row,
    )


def calls_per_round(budget_s, rounds, call_s, min_samples):
    """Calls a contender makes in each of `rounds` turns of a row: its share of
    the budget, and at least `min_samples` in all, except that a contender slower
    than six budgets' worth of them makes only those (and at least 50)."""
    n = math.ceil(budget_s / rounds / call_s)
    wanted = min(min_samples, max(50, math.ceil(6 * budget_s / call_s)))
    return int(min(max(n, math.ceil(wanted / rounds), 1), 100_000))


def round_peak_fraction(flops, round_times, round_peaks):
    """A contender's GEMM rate against the peak of the same minutes: the median
    over rounds of (flops / the round's median call time) / the matmul peak
    timed right after that round (GFLOP/s); round_times[r] and round_peaks[r]
    are of round r. None without a round of both."""
    ratios = [
        flops / float(np.median(t)) / 1e9 / p
        for t, p in zip(round_times, round_peaks)
        if len(t) and p > 0
    ]
    return float(np.median(ratios)) if ratios else None


def _is_latency(row):
    return row["workload"].startswith("latency")


def _is_steady(row):
    """Latency and streaming rows: p50 and p99 of steady calls (run_row)."""
    return row["kind"] == "step" or _is_latency(row)


# ------------------------------------------------------------------------------ output


def fmt_time(ms):
    if ms is None:
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 1:
        return f"{ms:.3g} ms" if ms < 100 else f"{ms:.0f} ms"
    return f"{ms * 1000:.3g} us"


def table_lines(result, names):
    """Rows x contenders; each cell the time and lstm_fast's speedup over it."""
    header = ["row", "stat", *names, "other load"]
    lines = []
    for row in result["rows"]:
        for threads in row["threads"]:
            stats = ["median"]
            if _is_steady(row):
                stats = ["p50", "p99"]
            for stat in stats:
                key = "p99_ms" if stat == "p99" else "median_ms"
                skey = "speedup_p99" if stat == "p99" else "speedup_median"
                name = row["id"] + (f" @{threads}t" if len(row["threads"]) > 1 else "")
                cells = [name, stat]
                for c in names:
                    e = row["results"].get(label(c, threads, row))
                    cells.append(_cell(e, key, skey))
                bg = row.get("background_cpus")
                cells.append("-" if bg is None else f"{bg:.2f} CPUs")
                lines.append(cells)
    return header, lines


def _cell(e, key, skey):
    if e is None:
        return ""
    if e.get("status") != "ok":
        return e.get("status", "?")
    text = fmt_time(e[key])
    if skey in e:
        text += f" ({e[skey]:.2f}x)"
    if e.get("check") and not e["check"].get("pass", True):
        text += " CHECK FAILED"
    return text


def print_table(header, lines, out=sys.stdout):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for cells in lines:
        print(fmt.format(*cells), file=out)


def md_table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in cells) + " |" for cells in lines]
    return "\n".join(out)


def detail_lines(result, names):
    header = [
        "row",
        "contender",
        "threads",
        "median",
        "p99",
        "n",
        "GFLOP/s",
        "% peak",
        "% round peak",
        "peak RSS MiB",
        "base RSS MiB",
        "check",
    ]
    lines = []
    for row in result["rows"]:
        for lab, e in row["results"].items():
            if e.get("status") != "ok":
                lines.append(
                    [
                        row["id"],
                        lab,
                        e["threads"],
                        e.get("status"),
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        str(e.get("error", "")).strip().splitlines()[-1][:80]
                        if e.get("error")
                        else "",
                    ]
                )
                continue
            check = e.get("check", {})
            if check.get("against"):
                worst = max(
                    (a.get("max_abs_err", float("inf")) for a in check["arrays"].values()),
                    default=0,
                )
                ctext = f"{'pass' if check['pass'] else 'FAIL'} {worst:.1e} vs {check['against']}"
            else:
                ctext = "baseline"
            lines.append(
                [
                    row["id"],
                    lab,
                    e["threads"],
                    fmt_time(e["median_ms"]),
                    fmt_time(e["p99_ms"]),
                    e["n"],
                    f"{e['gflops']:.1f}" if "gflops" in e else "-",
                    f"{100 * e['frac_peak']:.0f}%" if "frac_peak" in e else "-",
                    f"{100 * e['frac_round_peak']:.0f}%" if e.get("frac_round_peak") else "-",
                    f"{e['rss_peak_mib']:.0f}" if "rss_peak_mib" in e else "-",
                    f"{e['rss_base_mib']:.0f}" if e.get("rss_base_mib") is not None else "-",
                    ctext,
                ]
            )
    return header, lines


def half_lines(result, names):
    """lstm_fast_f16 (half-precision weights) against lstm_fast and the others:
    each cell that contender's p50 / lstm_fast_f16's."""
    others = [c for c in names if c not in ("lstm_fast_f16", "reference")]
    header = ["row", "lstm_fast_f16 p50", *(f"vs {c}" for c in others)]
    lines = []
    for row in result["rows"]:
        threads = max(row["threads"])
        half = row["results"].get(label("lstm_fast_f16", threads, row), {})
        if half.get("status") != "ok":
            continue
        cells = [row["id"], fmt_time(half["median_ms"])]
        for c in others:
            e = row["results"].get(label(c, threads, row), {})
            cells.append(
                f"{e['median_ms'] / half['median_ms']:.2f}x" if e.get("status") == "ok" else "-"
            )
        lines.append(cells)
    return header, lines


HALF_TEXT = (
    "lstm_fast_f16 reads half-precision copies of the weights in its time loop (float32 "
    "arithmetic; checked against the reference on the weights rounded to half precision), "
    "a different precision from every other column. Each cell: that contender's p50 (median) "
    "over lstm_fast_f16's, so the 'vs lstm_fast' column is what the half-precision copies gain."
)


def scaling_lines(result):
    header = ["row", "contender", "1 thread", "all threads", "speedup from threads"]
    lines = []
    for row in result["rows"]:
        if row.get("group") != "scaling":
            continue
        lo, hi = min(row["threads"]), max(row["threads"])
        for c in dict.fromkeys(e["contender"] for e in row["results"].values()):
            a, b = row["results"].get(f"{c}@{lo}", {}), row["results"].get(f"{c}@{hi}", {})
            if a.get("status") == "ok" and b.get("status") == "ok":
                lines.append(
                    [
                        row["id"],
                        c,
                        fmt_time(a["median_ms"]),
                        fmt_time(b["median_ms"]) + f" ({hi} threads)",
                        f"{a['median_ms'] / b['median_ms']:.2f}x",
                    ]
                )
    return header, lines


def noise_lines(result, names):
    """The spread of the latency and streaming rows' calls, per contender, and
    of fixed work as long as lstm_fast's call timed in the same rounds
    (run_row): how much of a tail is the machine's."""
    header = ["row", "contender", "p50", "p99", "p99 / p50", "a turn's first call (median, max)"]
    lines = []
    for row in result["rows"]:
        if not _is_steady(row):
            continue
        threads = max(row["threads"])
        entries = [(c, row["results"].get(label(c, threads, row))) for c in names]
        entries.append(("fixed work (1 thread)", row.get("fixed_work")))
        for who, e in entries:
            if e is None or e.get("status") != "ok":
                continue
            first = (
                f"{fmt_time(e['first_call_ms'])}, {fmt_time(e['first_call_max_ms'])}"
                if "first_call_ms" in e
                else "-"
            )
            lines.append(
                [
                    row["id"],
                    who,
                    fmt_time(e["median_ms"]),
                    fmt_time(e["p99_ms"]),
                    f"{e['p99_ms'] / e['median_ms']:.2f}",
                    first,
                ]
            )
    return header, lines


NOISE_TEXT = (
    "The latency and streaming rows time calls in a steady stream: each contender's turn in "
    "a round starts with one more call, timed apart and left out of p50 and p99 (its weights "
    "were evicted from the caches by the contenders before it, its threads asleep, and the "
    "turn switch itself costs: fixed work's first call is slower too). Fixed work: a loop of "
    "integer additions on one thread (cache-resident, no other thread, no system call) sized "
    "to about the median of lstm_fast's steady calls in the first round, timed after the "
    "contenders' turns in each round. What spreads its times is the machine (other virtual "
    "machines, interrupts, clock changes): a reference for the machine's own spread at that "
    "length, for a call on one CPU; a call on two threads is exposed on both."
)


def _fmt_cpus(x):
    return "unknown" if x is None else f"{x:.2f} CPUs busy"


def _round_peak_text(result):
    spans = [
        f"{row['id']} {min(p):.1f}-{max(p):.1f}"
        for row in result["rows"]
        if (p := row.get("round_peaks_gflops"))
    ]
    return "; after each round of " + ", ".join(spans) if spans else ""


def write_markdown(path, result, names):
    m, peak, runs = result["machine"], result["peak"], result["peak_runs"]
    lines = [
        f"# lstm_fast benchmark: {result['name']}",
        "",
        f"Command: `{result['command']}`  ",
        f"Date (UTC): {m['date_utc']}, commit {m.get('repo_commit')}, dtype {result['dtype']}, "
        f"threads {result['threads']}, mode {'quick' if result['quick'] else 'full'}.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['usable_cpus']} usable CPUs ({m['logical_cpus']} logical, "
        f"{m.get('physical_cores')} physical cores), ISA flags: {', '.join(m['isa_flags'])}",
        f"- Memory: {m.get('memory_gib')} GiB; OS: {m['os']}; Python {m['python']}; "
        f"NumPy {m['numpy']}",
        f"- NumPy BLAS: {m['numpy_blas']}",
        f"- Environment: {m['env'] or 'none of ' + ', '.join(machine.ENV_VARS)}",
        f"- Peak ({peak['dtype']} {peak['n']}x{peak['n']} matmul through NumPy, all cores): "
        f"{peak['best_gflops']:.1f} GFLOP/s best "
        f"(start {runs[0]['best_gflops']:.1f}, end {runs[-1]['best_gflops']:.1f})"
        + _round_peak_text(result),
        f"- Other processes' load: {_fmt_cpus(result.get('background_cpus_before'))} before the "
        f"start; load average {result['loadavg_before'][0]:.2f} at the start, "
        f"{result['loadavg_after'][0]:.2f} at the end (per row: the 'other load' column). Rows "
        "taken while other processes kept CPUs busy are slower than on an idle machine, most "
        "for multi-threaded runs.",
        "",
        "## Contenders",
        "",
    ]
    for c, info in result["contenders"].items():
        for threads, i in info.items():
            who = f"- **{c}** ({threads} thread{'s' if str(threads) != '1' else ''})"
            if i["status"] == "ok":
                v = ", ".join(f"{k}: {val}" for k, val in i["info"].items() if k != "import_s")
                lines.append(f"{who}: {v}")
            else:
                err = str(i["error"]).strip().splitlines()[-1] if i["error"] else ""
                lines.append(f"{who}: {i['status'].upper()}: {err}")
    header, tl = table_lines(result, names)
    lines += [
        "",
        "## Results",
        "",
        "Median (p50/p99 for latency rows, of steady calls: see Timing noise) per call; in "
        "brackets lstm_fast's speedup over that contender (its time / lstm_fast's time).",
        "",
        md_table(header, tl),
        "",
    ]
    header, hl = half_lines(result, names)
    if hl:
        lines += ["## Half-precision weights", "", HALF_TEXT, "", md_table(header, hl), ""]
    header, sl = scaling_lines(result)
    if sl:
        lines += ["## Thread scaling", "", md_table(header, sl), ""]
    header, nl = noise_lines(result, names)
    if nl:
        lines += ["## Timing noise (p99 / p50)", "", NOISE_TEXT, "", md_table(header, nl), ""]
    header, dl = detail_lines(result, names)
    lines += [
        "## Details",
        "",
        "GFLOP/s by BENCH.md's formulas (train 24·T·B·H·(I+H), forward 8·T·B·H·(I+H)); "
        "% peak of the matmul peak above (the best of its timings at the run's start and "
        "end); % round peak (training rows, on every CPU): the median over the row's "
        "rounds of the GFLOP/s in that round against the matmul peak timed right after it "
        "(the peak of the same minutes, which on a shared host moves within a run as much "
        "as the steps' times do; the row's range of it under Machine; the best of two "
        "products, where the run's peak is the best of five, so it tends to come out "
        "lower); RSS from each contender's "
        "own worker process (peak during the row, and the process's base at the row's "
        "start: interpreter + library).",
        "",
        md_table(header, dl),
        "",
    ]
    lines += [
        "## Checks",
        "",
        f"Rule: max|a-b| <= tol * max(1, max|b|) per array; tol {TOL[result['dtype']]:g} "
        f"for layer rows, {TOL_JOB[result['dtype']]:g} for the whole job (predictions before "
        "and after one epoch without shuffle).",
        "",
    ]
    for row in result["rows"]:
        for lab, e in row["results"].items():
            c = e.get("check")
            if c and c.get("against"):
                lines.append(
                    f"- {row['id']} {lab} vs {c['against']}: {_check_text(c)}: "
                    f"{'PASS' if c['pass'] else 'FAIL'}"
                )
    stem = os.path.splitext(os.path.basename(path))[0]
    plots = [
        p
        for p in ("speedup", "batch", "scaling")
        if os.path.exists(os.path.join(os.path.dirname(path), f"{stem}-{p}.png"))
    ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({stem}-{p}.png)" for p in plots]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# -------------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: small rows, few repeats (under a minute)"
    )
    p.add_argument(
        "--workloads",
        help=f"comma list from: {','.join(workloads.ALL)} (default: all; "
        f"--quick: {','.join(workloads.QUICK_DEFAULT)})",
    )
    p.add_argument(
        "--contenders",
        help=f"comma list from: {','.join(contenders_mod.NAMES)} (default: all; "
        "lstm_fast always runs)",
    )
    p.add_argument(
        "--threads", type=int, help="threads for every contender (default: all usable CPUs)"
    )
    p.add_argument("--repeats", type=int, help="interleaved rounds per row (default 7, --quick 3)")
    p.add_argument(
        "--budget", type=float, help="seconds of timed calls per contender per row (default 3)"
    )
    p.add_argument(
        "--epochs", type=int, help="epochs of the whole seed job (default 100, --quick 1)"
    )
    p.add_argument(
        "--job-repeats", type=int, help="timed fits per contender in the whole job (default 2)"
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--out",
        default=os.path.join(BENCH_DIR, "results"),
        help="directory for the JSON/MD results",
    )
    p.add_argument("--name", help="result file stem (default: <machine>-<date>[-quick])")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # a kill still runs the finally below that stops the workers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _ensure_lstm_fast_importable()
    settings = dict(QUICK if args.quick else FULL)
    if args.repeats:
        settings["rounds"] = args.repeats
    if args.budget:
        settings["budget_s"] = args.budget
    if args.job_repeats:
        settings["job_rounds"] = args.job_repeats
    names = contenders_mod.NAMES
    if args.contenders:
        wanted = [c.strip() for c in args.contenders.split(",") if c.strip()]
        unknown = set(wanted) - set(names)
        if unknown:
            raise SystemExit(f"Unknown contenders {sorted(unknown)}. Expected some of {names}.")
        names = [c for c in names if c == "lstm_fast" or c in wanted]
    chosen = workloads.QUICK_DEFAULT if args.quick else workloads.FULL_DEFAULT
    if args.workloads:
        chosen = [w.strip() for w in args.workloads.split(",") if w.strip()]
    info = machine.describe(REPO_DIR)
    threads_all = args.threads or info["usable_cpus"]
    try:
        rows = workloads.make_rows(chosen, args.quick, threads_all)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    for row in rows:
        row.setdefault("threads", [threads_all])
        if row["kind"] == "job" and args.epochs:
            row["job"]["epochs"] = args.epochs
    dtype = args.dtype
    t_start = time.perf_counter()

    print(
        f"lstm_fast bench: {info['cpu_model']}, {info['usable_cpus']} CPUs, dtype {dtype}, "
        f"{threads_all} threads, {'quick' if args.quick else 'full'} mode",
        flush=True,
    )
    if info["env"]:
        print(f"  environment: {info['env']}")

    # one worker per contender and thread count, started together (imports overlap)
    ctx = multiprocessing.get_context("spawn")
    needed = sorted(
        {
            (c, t)
            for row in rows
            for t in row["threads"]
            for c in names
            if c in row.get("only", names)
        },
        key=lambda k: (names.index(k[0]), -k[1]),
    )
    pool = {key: Worker(ctx, *key) for key in needed}
    try:
        for w in pool.values():
            w.wait_ready()
        contenders_info = {}
        for (c, t), w in pool.items():
            contenders_info.setdefault(c, {})[str(t)] = {
                "status": w.status,
                "info": w.info,
                "error": w.error,
            }
            if w.status == "ok":
                brief = {k: v for k, v in w.info.items() if k not in ("import_s", "lstm_fast_path")}
                print(f"  {c} ({t} threads): {brief}")
            else:
                err = str(w.error).strip().splitlines()[-1] if w.error else ""
                print(f"  {c} ({t} threads): {w.status.upper()}: {err}")

        pids = [w.proc.pid for w in pool.values()]
        background_before = machine.background_load_now(1.0, pids)
        loadavg_before = os.getloadavg()
        print(
            f"  other processes' load before start: {background_before:.2f} CPUs busy "
            f"(load average {loadavg_before[0]:.2f})",
            flush=True,
        )
        if background_before and background_before > 0.2:
            print(
                "  WARNING: the machine is not idle; timings below are taken under contention "
                "(see the 'other load' column)",
                flush=True,
            )

        peak_dtype = np.float64 if dtype == "float64" else np.float32
        peak_runs = [machine.measure_peak(peak_dtype, settings["peak_n"], settings["peak_repeats"])]
        print(
            f"  peak: {peak_runs[0]['best_gflops']:.1f} GFLOP/s ({np.dtype(peak_dtype).name} "
            f"{settings['peak_n']}^3 matmul, NumPy BLAS, all cores)",
            flush=True,
        )

        # timed again after each round of the training rows (run_row)
        peak_probe = (
            machine.PeakProbe(peak_dtype, settings["peak_n"])
            if any(row["kind"] == "train" and row["flops"] for row in rows)
            else None
        )
        results = []
        for row in rows:
            s = row["shape"]
            print(
                f"\n== {row['id']}  B={s['B']} T={s['T']} I={s['I']} H={s['H']}  "
                f"threads {row['threads']}",
                flush=True,
            )
            data = workloads.make_data(row, dtype)
            r = run_row(row, data, pool, names, settings, dtype, peak_runs[0], peak_probe)
            for lab, e in r["results"].items():
                if e.get("status") == "ok":
                    speed = (
                        f"  lstm_fast's speedup {e['speedup_median']:.2f}x"
                        if "speedup_median" in e
                        else ""
                    )
                    print(
                        f"    {lab:<16} median {fmt_time(e['median_ms']):>10}  "
                        f"p99 {fmt_time(e['p99_ms']):>10}  n={e['n']}{speed}",
                        flush=True,
                    )
                else:
                    err = str(e.get("error", "")).strip().splitlines()
                    print(f"    {lab:<16} {e.get('status')}: {err[-1] if err else ''}", flush=True)
            fw = r.get("fixed_work")
            if fw and fw.get("status") == "ok":
                print(
                    f"    {'fixed work (1t)':<16} median {fmt_time(fw['median_ms']):>10}  "
                    f"p99 {fmt_time(fw['p99_ms']):>10}  n={fw['n']}  (the machine's spread)",
                    flush=True,
                )
            if r.get("round_peaks_gflops"):
                ours = r["results"].get(label("lstm_fast", max(row["threads"]), row), {})
                at = (
                    f"; lstm_fast at {100 * ours['frac_round_peak']:.0f}% of its round's"
                    if ours.get("frac_round_peak")
                    else ""
                )
                print(
                    f"    matmul peak after each round: {min(r['round_peaks_gflops']):.1f}-"
                    f"{max(r['round_peaks_gflops']):.1f} GFLOP/s{at}",
                    flush=True,
                )
            if r.get("background_cpus") is not None:
                print(
                    f"    other processes kept {r['background_cpus']:.2f} CPUs busy meanwhile; "
                    f"row took {r['elapsed_s']:.1f} s",
                    flush=True,
                )
            results.append(r)
        peak_runs.append(
            machine.measure_peak(peak_dtype, settings["peak_n"], settings["peak_repeats"])
        )
    finally:
        peak_probe = None  # its operands: 3 x n^2 elements
        for w in pool.values():
            w.close()

    peak = max(peak_runs, key=lambda p: p["best_gflops"])
    # the fractions of peak above used the first measurement; restate them on the best
    for r in results:
        for e in r["results"].values():
            if "gflops" in e:
                e["frac_peak"] = e["gflops"] / peak["best_gflops"]
    date = info["date_utc"][:10]  # the day the run started
    stem = args.name or f"{machine.machine_slug(info)}-{date}" + (
        "-quick" if args.quick else ""
    ) + ("" if dtype == "float32" else f"-{dtype}")
    result = {
        "schema": SCHEMA,
        "name": stem,
        "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "dtype": dtype,
        "threads": threads_all,
        "machine": info,
        "peak": peak,
        "peak_runs": peak_runs,
        "settings": settings,
        "contenders": contenders_info,
        "tolerance": {"layer": TOL[dtype], "job": TOL_JOB[dtype]},
        "rows": results,
        "background_cpus_before": background_before,
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
        "elapsed_s": time.perf_counter() - t_start,
    }
    failed = [
        (r["id"], lab)
        for r in results
        for lab, e in r["results"].items()
        if e.get("check") and not e["check"].get("pass", True)
    ]
    result["checks_passed"] = not failed

    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, stem + ".json")
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1, default=_json_default)

    print(
        f"\n== lstm_fast vs contenders ({dtype}, {threads_all} threads; "
        "in brackets: lstm_fast's speedup)"
    )
    print_table(*table_lines(result, names))
    header, sl = scaling_lines(result)
    if sl:
        print("\n== thread scaling")
        print_table(header, sl)
    header, nl = noise_lines(result, names)
    if nl:
        print("\n== timing noise: p99 / p50 (fixed work: the machine's spread, on one thread)")
        print_table(header, nl)
    print(
        f"\npeak {peak['best_gflops']:.1f} GFLOP/s; "
        f"checks {'all passed' if not failed else 'FAILED: ' + str(failed)}"
    )
    print(f"wrote {json_path} and .md ({result['elapsed_s']:.0f} s)")
    if not args.no_plots:
        try:
            import plot

            for path in plot.plot_result(json_path):
                print(f"wrote {path}")
        except ImportError as exc:
            print(f"plots skipped: {exc}")
    write_markdown(os.path.join(args.out, stem + ".md"), result, names)
    return 1 if failed else 0


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
