"""Run every script of examples/ with tiny settings, so the examples cannot rot.

Each runs in a subprocess (this interpreter, a temporary working directory),
importing the installed lstm_fast, and its printed results are checked against
what the example claims: the streaming example equals the full-sequence
prediction, the classifier learns the negations, the forget gate drops at
resets.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 600  # seconds; the machine may be shared with benchmarks


def run_example(name, *args, cwd):
    script = EXAMPLES / name
    assert script.is_file(), f"missing example {script}"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, (
        f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def number_after(label, text):
    match = re.search(re.escape(label) + r"\s*([-+0-9.eE]+)", text)
    assert match, f"no {label!r} in the output:\n{text[-2000:]}"
    return float(match.group(1))


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_every_example_is_tested():
    tested = {
        "seed_example.py",
        "text_classification.py",
        "forecast_many_to_many.py",
        "streaming.py",
        "gate_heatmap.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_seed_example(tmp_path):
    out = run_example("seed_example.py", "--epochs", "2", cwd=tmp_path)
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "32/32" in out  # the progress bar
    assert "y_pred.shape=(200, 20, 1) dtype=float32" in out
    # y ~ U(0, 1): the loss starts near E[y^2] = 1/3 and falls towards Var(y) = 1/12
    assert 1 / 12 - 0.01 < number_after("final training loss:", out) < 0.3


def test_text_classification_learns_negations(tmp_path):
    out = run_example("text_classification.py", "--epochs", "3", "--samples", "1500", cwd=tmp_path)
    majority = number_after("(majority class:", out)
    assert majority < 0.6  # balanced classes: accuracy means something
    assert number_after("test accuracy:", out) > 0.85
    # word counts alone get the negated sentences wrong; the LSTM reads in order
    assert number_after("with a negation:", out) > 0.8
    assert re.search(r"'the film was not good': P\(positive\) = 0\.[0-4]", out)


def test_forecast_many_to_many(tmp_path):
    out = run_example("forecast_many_to_many.py", "--epochs", "3", "--units", "8", cwd=tmp_path)
    assert "bidirectional" in out.lower()  # the model summary lists the stacked layers
    rows = {}
    for name in ("LSTM:", "last year:"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        rows[name] = np.array([float(v) for v in line.split(":")[1].split()])
        assert rows[name].shape == (12,) and np.all(np.isfinite(rows[name]))
    # the baseline is deterministic (no training): last year's cycle on the last value
    np.testing.assert_allclose(rows["last year:"][[0, 11]], [0.38, 1.15], atol=0.01)
    # a model that learned nothing useful would be off by the whole seasonal swing (~6 ppm)
    assert number_after("mean test RMSE: LSTM", out) < 5.0


def test_streaming_equals_full_sequence(tmp_path):
    out = run_example("streaming.py", "--epochs", "1", "--steps", "60", cwd=tmp_path)
    assert (
        number_after("stateful model, step by step: max abs difference to the full sequence =", out)
        < 1e-5
    )
    assert (
        number_after("ops.lstm_step, step by step: max abs difference to the full sequence =", out)
        < 1e-5
    )
    assert (
        number_after("model.stream(), step by step: max abs difference to the full sequence =", out)
        < 1e-5
    )
    assert (
        number_after(
            "model.stream(), chunks of 16 steps: max abs difference to the full sequence =", out
        )
        < 1e-5
    )
    assert number_after("max abs difference:", out) < 1e-5
    half = "model.stream(weights_dtype='float16'): max abs difference to the full sequence ="
    assert 0 < number_after(half, out) < 1e-2  # the rounding shows, and stays small
    assert number_after("to the model with rounded weights =", out) < 1e-5
    assert number_after("model", out.split("denoising RMSE:")[1]) < number_after(
        "input", out.split("denoising RMSE:")[1]
    )


def test_gate_heatmap(tmp_path):
    out = run_example(
        "gate_heatmap.py",
        *("--epochs", "3", "--samples", "512", "--out", str(tmp_path / "plots")),
        cwd=tmp_path,
    )
    at_reset = number_after("at reset steps", out)
    elsewhere = number_after("at other steps", out)
    assert 0.0 <= at_reset <= 1.0 and 0.0 <= elsewhere <= 1.0
    assert at_reset < elsewhere  # the trained LSTM forgets its running total at a reset
    png = tmp_path / "plots" / "forget_gate.png"
    if has_matplotlib():
        assert f"heatmap written: {png}" in out
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "heatmap skipped: matplotlib is not installed" in out
        assert not png.exists()
