"""PNG plots of a bench/run.py result.

    python bench/plot.py bench/results/<machine>-<date>.json   # writes <stem>-*.png beside it

- ``<stem>-speedup.png``: lstm_fast's speedup over each contender, per row
  (median; > 1 means lstm_fast is faster), log scale.
- ``<stem>-batch.png``: time per time step vs batch size (inference forward,
  the batch-sweep rows), log-log.
- ``<stem>-scaling.png``: thread scaling: time of the scaling row at 1 thread and
  at all threads, per contender.
"""

from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "lstm_fast": "#d62728",
    "torch": "#1f77b4",
    "tensorflow": "#ff7f0e",
    "onnxruntime": "#2ca02c",
    "reference": "#7f7f7f",
}


def _title(result, what):
    m = result["machine"]
    loads = [r["background_cpus"] for r in result["rows"] if r.get("background_cpus") is not None]
    load = f"; other processes busy {sum(loads) / len(loads):.1f} CPUs" if loads else ""
    return (
        f"{what}\n{m['cpu_model']}, {result['threads']} threads, {result['dtype']}, "
        f"{m['date_utc'][:10]}{' (quick)' if result['quick'] else ''}{load}"
    )


def plot_speedup(result, path):
    rows = [r for r in result["rows"] if r.get("group") not in ("batch-sweep", "scaling")]
    others = [c for c in COLORS if c != "lstm_fast"]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows) + 2), 4.5))
    width = 0.8 / len(others)
    for k, c in enumerate(others):
        xs, ys = [], []
        for i, r in enumerate(rows):
            e = r["results"].get(c, {})
            if "speedup_median" in e:
                xs.append(i + (k - (len(others) - 1) / 2) * width)
                ys.append(e["speedup_median"])
        if xs:
            # bars grow from 1 (parity): up where lstm_fast is faster, down where slower
            heights = [y - 1.0 for y in ys]
            bars = ax.bar(xs, heights, width, bottom=1.0, label=c, color=COLORS[c])
            ax.bar_label(bars, labels=[f"{y:.2g}" for y in ys], fontsize=7, padding=1)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["id"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("lstm_fast speedup (contender time / lstm_fast time)")
    ax.set_title(
        _title(result, "lstm_fast speedup per workload (median, > 1: lstm_fast faster)"), fontsize=9
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_batch(result, path):
    rows = [r for r in result["rows"] if r.get("group") == "batch-sweep"]
    if not rows:
        return False
    s = rows[0]["shape"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for c, color in COLORS.items():
        pts = [
            (r["shape"]["B"], r["results"][c]["median_ms"] / r["shape"]["T"])
            for r in rows
            if r["results"].get(c, {}).get("status") == "ok"
        ]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=c, color=color)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("ms per time step (median / T)")
    ax.set_title(
        _title(
            result, f"inference forward, T={s['T']} I={s['I']} H={s['H']}: time per step vs batch"
        ),
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_scaling(result, path):
    rows = [r for r in result["rows"] if r.get("group") == "scaling"]
    if not rows:
        return False
    r = rows[0]
    lo, hi = min(r["threads"]), max(r["threads"])
    names = [
        c
        for c in COLORS
        if r["results"].get(f"{c}@{lo}", {}).get("status") == "ok"
        and r["results"].get(f"{c}@{hi}", {}).get("status") == "ok"
    ]
    if not names:
        return False
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, c in enumerate(names):
        t1, tn = r["results"][f"{c}@{lo}"]["median_ms"], r["results"][f"{c}@{hi}"]["median_ms"]
        ax.bar(
            [i - 0.2],
            [t1],
            0.4,
            color=COLORS[c],
            alpha=0.45,
            label=f"{lo} thread" if i == 0 else None,
        )
        ax.bar([i + 0.2], [tn], 0.4, color=COLORS[c], label=f"{hi} threads" if i == 0 else None)
        ax.text(i + 0.2, tn, f"{t1 / tn:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("ms per training step (median)")
    s = r["shape"]
    ax.set_title(
        _title(
            result, f"thread scaling, training step B={s['B']} T={s['T']} I={s['I']} H={s['H']}"
        ),
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_result(json_path):
    """Write the plots of one result file beside it; return the paths written."""
    with open(json_path) as f:
        result = json.load(f)
    stem = os.path.splitext(json_path)[0]
    written = []
    plot_speedup(result, stem + "-speedup.png")
    written.append(stem + "-speedup.png")
    if plot_batch(result, stem + "-batch.png"):
        written.append(stem + "-batch.png")
    if plot_scaling(result, stem + "-scaling.png"):
        written.append(stem + "-scaling.png")
    return written


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python bench/plot.py RESULT.json [...]")
    for p in sys.argv[1:]:
        for out in plot_result(p):
            print(f"wrote {out}")
