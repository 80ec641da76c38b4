"""`python -m lstm_fast demo` (and `info`, `--help`) as a user runs them.

The demo trains on the Mauna Loa CO2 record shipped in the package and must
beat the best naive forecast; its output names the plots (or says why they
were skipped) and the saved model, which lstm_fast.load_model reads back.
"""

import re
import subprocess
import sys

import numpy as np

import lstm_fast

TIMEOUT = 600


def run_cli(*args, cwd):
    result = subprocess.run(
        [sys.executable, "-m", "lstm_fast", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr}"
    return result.stdout


def rmse_lines(out):
    """{name: RMSE} from the demo's table ('  lstm_fast LSTM:   0.332')."""
    found = {}
    for match in re.finditer(r"^\s+(lstm_fast|naive)\s+(.+?):\s+([0-9.]+)\s*$", out, re.M):
        found[match.group(2)] = float(match.group(3))
    return found


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_demo_trains_and_beats_the_naive_forecasts(tmp_path):
    out_dir = tmp_path / "demo out"
    out = run_cli("demo", "--epochs", "15", "--out", str(out_dir), cwd=tmp_path)
    assert "Mauna Loa" in out
    assert "Epoch 1/15" in out and "Epoch 15/15" in out  # the progress bar
    assert re.search(r"11/11 \[=+\]", out)
    rmse = rmse_lines(out)
    assert set(rmse) == {
        "LSTM",
        "last value",
        "same month last year",
        "last value + last year's change",
    }
    # the naive forecasts need no training: their errors are fixed numbers of the data
    assert abs(rmse["last value"] - 1.264) < 0.002
    assert abs(rmse["same month last year"] - 1.703) < 0.002
    best = min(v for k, v in rmse.items() if k != "LSTM")
    assert rmse["LSTM"] < best
    assert "the LSTM beats the best naive forecast (last value + last year's change)" in out

    model_path = out_dir / "co2_lstm.lstmf"
    assert f"model saved: {model_path}" in out
    model = lstm_fast.load_model(str(model_path))
    assert model.predict(np.zeros((2, 24, 3), np.float32), verbose=0).shape == (2, 1)

    if has_matplotlib():
        for name in ("forecast.png", "training.png"):
            assert str(out_dir / name) in out
            assert (out_dir / name).read_bytes()[:4] == b"\x89PNG"
    else:
        assert "plots skipped: matplotlib is not installed" in out


def test_demo_quiet_has_no_progress_bar(tmp_path):
    out = run_cli("demo", "--epochs", "1", "--units", "4", "--quiet", "--out", "o", cwd=tmp_path)
    assert "Epoch" not in out and "Model:" not in out
    assert "LSTM" in rmse_lines(out)
    assert (tmp_path / "o" / "co2_lstm.lstmf").is_file()


def test_help_explains_the_options(tmp_path):
    out = run_cli("--help", cwd=tmp_path)
    assert "demo" in out and "info" in out
    out = run_cli("demo", "--help", cwd=tmp_path)
    for option in ("--epochs", "--units", "--out", "--seed", "--quiet"):
        assert option in out


def test_bad_option_is_an_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lstm_fast", "demo", "--epochs", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2 and "--epochs" in result.stderr


def test_info(tmp_path):
    out = run_cli("info", cwd=tmp_path)
    assert f"lstm_fast {lstm_fast.__version__}" in out
    assert f"ISA path: {lstm_fast.ops.get_isa()}" in out
    assert f"threads: {lstm_fast.ops.get_num_threads()}" in out
    assert f"numpy {np.__version__}" in out


def test_shipped_data():
    from lstm_fast.demo import load_co2

    co2 = load_co2()
    assert co2["co2_ppm"].shape == (526,)
    assert (co2["year"][0], co2["month"][0]) == (1958, 3)
    assert (co2["year"][-1], co2["month"][-1]) == (2001, 12)
    assert np.all((co2["co2_ppm"] > 310) & (co2["co2_ppm"] < 380))
    assert int((co2["n_weeks"] == 0).sum()) == 5  # the interpolated months
