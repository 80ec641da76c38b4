"""Smoke test of bench/run.py --quick: it runs, writes its results, and every
correctness check it printed passed. Speed is not asserted (a benchmark is not a
test); contenders that are not installed here must be reported as missing."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(REPO, "bench", "run.py")
CONTENDERS = ["lstm_fast", "torch", "tensorflow", "onnxruntime", "lstm_fast_f16", "reference"]
MODULES = {"torch": "torch", "tensorflow": "tensorflow", "onnxruntime": "onnxruntime"}
STATUSES = {"ok", "missing", "n/a", "error"}


@pytest.mark.skipif(not os.path.exists(RUN), reason="bench/ is not in this checkout")
def test_bench_quick(tmp_path):
    # the installed lstm_fast (run.py falls back to the checkout only when none is)
    env = dict(os.environ)
    with_plots = importlib.util.find_spec("matplotlib") is not None
    cmd = [sys.executable, RUN, "--quick", "--out", str(tmp_path), "--name", "smoke"]
    if not with_plots:
        cmd.append("--no-plots")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "lstm_fast vs contenders" in proc.stdout

    result = json.loads((tmp_path / "smoke.json").read_text())
    md = (tmp_path / "smoke.md").read_text()
    assert "## Results" in md and "## Machine" in md
    if with_plots:
        assert (tmp_path / "smoke-speedup.png").stat().st_size > 0

    # the machine description every result must carry
    m = result["machine"]
    for key in ("cpu_model", "usable_cpus", "python", "numpy", "env", "date_utc"):
        assert key in m
    assert result["peak"]["best_gflops"] > 0
    assert result["contenders"]["lstm_fast"][str(result["threads"])]["info"]["isa"]

    # every contender is listed; an uninstalled one is missing, with the import error
    for name in CONTENDERS:
        assert name in result["contenders"], name
        for info in result["contenders"][name].values():
            installed = name not in MODULES or importlib.util.find_spec(MODULES[name]) is not None
            if installed:
                assert info["status"] == "ok", (name, info["error"])
            else:
                assert info["status"] == "missing" and info["error"], (name, info)

    ids = [row["id"] for row in result["rows"]]
    for expected in ("train/seed", "infer/latency-256", "infer/step-256", "job/seed"):
        assert expected in ids
    assert any(row.get("group") == "scaling" for row in result["rows"])
    assert any(row.get("group") == "batch-sweep" for row in result["rows"])

    for row in result["rows"]:
        for label, entry in row["results"].items():
            assert entry["status"] in STATUSES, (row["id"], label, entry)
            assert entry["status"] != "error", (row["id"], label, entry.get("error"))
            if entry["status"] == "ok":
                assert entry["n"] >= 1 and entry["median_ms"] > 0
                assert entry["check"]["pass"], (row["id"], label, entry["check"])
        lstm_fast = row["results"][
            f"lstm_fast@{max(row['threads'])}" if len(row["threads"]) > 1 else "lstm_fast"
        ]
        if row["kind"] == "job":  # the Keras-like API may not be there yet: then it is missing
            assert lstm_fast["status"] in ("ok", "missing")
        else:
            assert lstm_fast["status"] == "ok"
            assert lstm_fast["check"]["against"] == "reference (float64)"
        if row["kind"] == "train":
            assert "rss_peak_mib" in lstm_fast
            # the matmul peak timed after each round, and the rate against it
            peaks = row["round_peaks_gflops"]
            assert peaks and all(p > 0 for p in peaks), row["id"]
            assert 0 < lstm_fast["frac_round_peak"] < 10, (row["id"], lstm_fast)
            # each round's median beside its peak, so the fraction can be redone
            medians = lstm_fast["round_median_ms"]
            assert len(medians) == len(peaks) and all(m > 0 for m in medians), row["id"]
            redone = sorted(row["flops"] / (m * 1e-3) / 1e9 / p for m, p in zip(medians, peaks))
            assert min(redone) <= lstm_fast["frac_round_peak"] <= max(redone), row["id"]
        else:
            assert row["round_peaks_gflops"] is None, row["id"]
        # half-precision weights: inference rows only, checked against their own oracle
        half = row["results"].get(
            f"lstm_fast_f16@{max(row['threads'])}" if len(row["threads"]) > 1 else "lstm_fast_f16"
        )
        if "lstm_fast_f16" not in row.get("only", ["lstm_fast_f16"]):  # lstm_fast's own rows
            assert half is None
        elif row["kind"] in ("infer", "step"):
            assert half["status"] == "ok", half
            assert half["check"]["against"] == "reference, fp16 weights"
            worst = max(a["max_abs_err"] for a in half["check"]["arrays"].values())
            # the half copies were read: nearer the rounded weights' reference than the other
            assert half["check"]["vs_float32_reference_max_abs"] > 10 * worst
            assert "speedup_median" not in half  # not in lstm_fast's float32 ratios
        else:
            assert half["status"] == "n/a", half
    assert "## Half-precision weights" in md
    # latency and streaming rows: p50 / p99 of steady calls, each turn's first call
    # apart, and fixed work sized to lstm_fast's call beside them (the machine's spread)
    assert "## Timing noise" in md
    for row in result["rows"]:
        steady = row["kind"] == "step" or row["workload"].startswith("latency")
        fixed = row.get("fixed_work")
        if not steady:
            assert fixed is None, row["id"]
            continue
        ours = row["results"]["lstm_fast"]
        assert fixed["status"] == "ok", fixed
        assert fixed["n"] >= 1 and 0 < fixed["median_ms"] <= fixed["p99_ms"], fixed
        assert 0.25 < fixed["median_ms"] / ours["median_ms"] < 4, (fixed, ours)
        for entry in (fixed, ours):
            assert 0 < entry["first_call_ms"] <= entry["first_call_max_ms"], entry
    seed = next(row for row in result["rows"] if row["id"] == "train/seed")
    assert seed["results"]["reference"]["status"] == "ok"
    assert result["checks_passed"] is True


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_wait_until_idle_waits_for_a_busy_process():
    """The pause between contenders lasts while the previous one still burns CPU
    (a spinning thread pool), and not much longer once it stops."""
    sys.path.insert(0, os.path.join(REPO, "bench"))
    try:
        import machine
    finally:
        sys.path.pop(0)
    burn = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.3: pass\n" \
           "print('done', flush=True)\ntime.sleep(30)\n"
    proc = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.05)  # burning now
        waited = machine.wait_until_idle(proc.pid, quiet_s=0.03, timeout_s=2.0)
        assert proc.stdout.readline().strip() == "done"
        assert 0.1 < waited < 1.5
        quiet = machine.wait_until_idle(proc.pid, quiet_s=0.03, timeout_s=2.0)
        assert quiet < 0.5  # asleep: about one quiet window
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not os.path.exists(RUN), reason="bench/ is not in this checkout")
def test_calls_per_round_floor_and_cap():
    """How many calls a contender makes per round: its share of the budget, the
    row's floor (training steps, latency calls), and the cap for slow ones."""
    sys.path.insert(0, os.path.join(REPO, "bench"))
    try:
        import run
    finally:
        sys.path.pop(0)
    per_round = run.calls_per_round
    # the large training step at 0.37 s, 4 rounds of a 1.5 s budget: 2 a round by
    # the budget alone (8 steps), 3 a round (12) with the floor of 10
    assert per_round(1.5, 4, 0.37, 1) == 2
    assert per_round(1.5, 4, 0.37, 10) == 3
    # Keras at 0.93 s a step: 1 a round by the budget, 3 with the floor
    assert per_round(1.5, 4, 0.93, 1) == 1
    assert per_round(1.5, 4, 0.93, 10) == 3
    # a latency row wants 200 calls; a contender at 134 ms gets six budgets' worth
    # (68 calls, 14 a round over 5), one at 2 ms its share of the budget (150)
    assert per_round(1.5, 5, 0.134, 200) == 14
    assert per_round(1.5, 5, 0.002, 200) == 150
    # a contender slower than six budgets still makes at least 50 calls of a floor
    assert per_round(1.5, 5, 2.0, 200) == 10
    # never more than 100 000 a round
    assert per_round(1.5, 5, 1e-9, 1) == 100_000


@pytest.mark.skipif(not os.path.exists(RUN), reason="bench/ is not in this checkout")
def test_round_peak_fraction():
    """A training row's rate against the peak timed after each of its rounds:
    the median over rounds of (flops / the round's median time) / its peak."""
    sys.path.insert(0, os.path.join(REPO, "bench"))
    try:
        import run
    finally:
        sys.path.pop(0)
    frac = run.round_peak_fraction
    # 40 GFLOP a step; rounds at 0.2 s (200 GFLOP/s) against peaks of 250, 200
    # and 400: ratios 0.8, 1.0, 0.5 -> 0.8
    times = [[0.19, 0.2, 0.4], [0.2], [0.2, 0.2]]
    assert frac(40e9, times, [250.0, 200.0, 400.0]) == pytest.approx(0.8)
    # a round without samples or without a peak does not count
    assert frac(40e9, [[], [0.2]], [250.0, 400.0]) == pytest.approx(0.5)
    assert frac(40e9, [[0.2]], []) is None
