"""`python -m lstm_fast demo`: an LSTM forecasting real data (Mauna Loa CO2), no network.

The task: from the last `WINDOW` months of the monthly CO2 record, predict the
next month. Training uses 1958-1991, the test is the last ten years
(1992-2001), which the model never sees, and its error is compared with naive
forecasts that need no training.

The series rises by about 1.5 ppm a year, so in the test years CO2 is above
anything seen in training. A network fed raw levels would have to extrapolate;
instead each input window is expressed relative to its own last month, and the
model predicts the change to the next month (both divided by the standard
deviation of the month-to-month changes of the training years). Two more
features give the calendar month as a point on a circle (sin, cos), so the
seasonal cycle need not be inferred from the window alone.

Shapes: N windows, T = WINDOW steps, I = 3 features (deviation, sin, cos).
"""

from __future__ import annotations

import csv
import os
import time

import numpy as np

WINDOW = 24  # months of history per input
TEST_MONTHS = 120  # the last ten years are the test set
CO2_CSV = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "data", "co2_mauna_loa_monthly.csv"
)

__all__ = [
    "load_co2",
    "make_windows",
    "naive_forecasts",
    "run_demo",
    "CO2_CSV",
    "WINDOW",
    "TEST_MONTHS",
]


def load_co2():
    """Monthly mean atmospheric CO2 at Mauna Loa, March 1958 - December 2001 (526 months).

    The public-domain Scripps/CDIAC record of weekly averages, averaged per
    month and shipped in the package (`lstm_fast/data/`, whose README.md gives
    the source, citation and license). The 5 months without any weekly average
    are linearly interpolated (their `n_weeks` is 0).

    Returns:
        dict of NumPy arrays, each (526,): 'year' and 'month' (int64),
        'co2_ppm' (float64, parts per million), 'n_weeks' (int64, weekly
        averages behind each month's mean; 0 = interpolated).

    Example:

    >>> from lstm_fast.demo import load_co2
    >>> co2 = load_co2()
    >>> co2["co2_ppm"][:3]
    array([316.1 , 317.2 , 317.43])
    """
    with open(CO2_CSV, newline="") as f:
        rows = list(csv.reader(line for line in f if not line.startswith("#")))
    header, body = rows[0], rows[1:]
    columns = dict(zip(header, zip(*body)))
    return {
        "year": np.array(columns["year"], dtype=np.int64),
        "month": np.array(columns["month"], dtype=np.int64),
        "co2_ppm": np.array(columns["co2_ppm"], dtype=np.float64),
        "n_weeks": np.array(columns["n_weeks"], dtype=np.int64),
    }


def make_windows(co2_ppm, month, window=WINDOW, scale=None):
    """Inputs and targets for one-month-ahead forecasting of a monthly series.

    Args:
        co2_ppm: (M,) the series.
        month: (M,) calendar month 1..12 of each value.
        window: T, months of history per input.
        scale: divisor of the deviations; default the standard deviation of
            the month-to-month changes of the whole series.

    Returns:
        (x, y, target_index, scale): x (N, T, 3) float32 [deviation from the
        window's last value / scale, sin and cos of the month], y (N, 1)
        float32 (next value - window's last value) / scale, target_index (N,)
        the index in the series of the month each window predicts (window..M-1).

    Example:

    >>> from lstm_fast.demo import load_co2, make_windows
    >>> co2 = load_co2()
    >>> x, y, idx, scale = make_windows(co2["co2_ppm"], co2["month"], window=24)
    >>> x.shape
    (502, 24, 3)
    """
    co2_ppm = np.asarray(co2_ppm, dtype=np.float64)
    M = co2_ppm.shape[0]
    if scale is None:
        scale = float(np.diff(co2_ppm).std())
    target_index = np.arange(window, M)
    # rows of the (N, T) matrix of the series indices of each window
    steps = target_index[:, None] - window + np.arange(window)[None, :]
    values = co2_ppm[steps]
    last = values[:, -1:]
    angle = 2.0 * np.pi * np.asarray(month)[steps] / 12.0
    x = np.stack([(values - last) / scale, np.sin(angle), np.cos(angle)], axis=-1)
    y = (co2_ppm[target_index] - last[:, 0]) / scale
    return x.astype(np.float32), y[:, None].astype(np.float32), target_index, scale


def naive_forecasts(co2_ppm, target_index):
    """Forecasts that need no training, for the months `target_index` (each >= 13).

    Args:
        co2_ppm: (M,) the monthly series v.
        target_index: (N,) indices t of the months to forecast.

    Returns:
        dict name -> (N,) forecasts: 'last value' (persistence, v[t-1]), 'same
        month last year' (seasonal naive, v[t-12]), 'last value + last year's
        change' (the seasonal naive forecast with the trend:
        v[t-1] + v[t-12] - v[t-13]).

    Example:

    >>> from lstm_fast.demo import load_co2, naive_forecasts
    >>> co2 = load_co2()
    >>> naive_forecasts(co2["co2_ppm"], [24, 25])["last value"]
    array([316.98, 317.57])
    """
    v = np.asarray(co2_ppm, dtype=np.float64)
    t = np.asarray(target_index)
    return {
        "last value": v[t - 1],
        "same month last year": v[t - 12],
        "last value + last year's change": v[t - 1] + v[t - 12] - v[t - 13],
    }


def _rmse(prediction, actual):
    return float(np.sqrt(np.mean((np.asarray(prediction) - np.asarray(actual)) ** 2)))


def _plot(out_dir, dates, actual, lstm_pred, test_dates, history, baseline_name, baseline):
    """Write forecast.png and training.png; returns their paths (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    paths = []
    fig, (ax_all, ax_test) = plt.subplots(2, 1, figsize=(10, 7))
    ax_all.plot(dates, actual, color="0.3", lw=1, label="measured")
    ax_all.plot(test_dates, lstm_pred, color="tab:red", lw=1, label="LSTM forecast (test)")
    ax_all.axvline(test_dates[0], color="0.6", ls="--", lw=1)
    ax_all.set_title("Mauna Loa CO2, one-month-ahead forecast (left of the line: training)")
    ax_all.set_ylabel("CO2 (ppm)")
    ax_all.legend(loc="upper left")
    n_test = len(test_dates)
    ax_test.plot(test_dates, actual[-n_test:], color="0.3", lw=1.5, marker=".", label="measured")
    ax_test.plot(test_dates, lstm_pred, color="tab:red", lw=1, label="LSTM")
    ax_test.plot(test_dates, baseline, color="tab:blue", lw=1, ls=":", label=baseline_name)
    ax_test.set_title("test years")
    ax_test.set_xlabel("year")
    ax_test.set_ylabel("CO2 (ppm)")
    ax_test.legend(loc="upper left")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "forecast.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation loss")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error (scaled)")
    ax.set_title("training curves")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "training.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def run_demo(epochs=30, units=32, out_dir="lstm_fast_demo", seed=0, quiet=False, print_fn=print):
    """Train an LSTM on the Mauna Loa CO2 record and compare it with naive forecasts.

    Args:
        epochs: training epochs.
        units: units of the LSTM layer.
        out_dir: where the plots and the trained model are written (created).
        seed: random seed (weights, shuffling).
        quiet: no progress bar and no model summary, only the results.
        print_fn: where the lines go.

    Returns:
        dict with 'rmse' {name: test RMSE in ppm} (the LSTM under 'LSTM'),
        'best_baseline' (name), 'beats_baseline' (bool), 'history', 'plots'
        (paths, or None without matplotlib), 'model_path', 'seconds'.

    Example:

    Training takes a while, so doctest skips this example (tests/test_demo.py
    runs the demo):

    >>> from lstm_fast.demo import run_demo
    >>> result = run_demo(epochs=5, out_dir="demo_output", quiet=True)  # doctest: +SKIP
    >>> sorted(result["rmse"])[:2]  # doctest: +SKIP
    ['LSTM', 'last value']
    """
    import lstm_fast as lf

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"Expected epochs to be a positive int. Received: epochs={epochs!r}")
    co2 = load_co2()
    values, month, year = co2["co2_ppm"], co2["month"], co2["year"]
    M = values.shape[0]
    test_start = M - TEST_MONTHS
    # the scale comes from the training years only: the test set stays unseen
    _, _, _, scale = make_windows(values[:test_start], month[:test_start])
    x, y, target_index, _ = make_windows(values, month, scale=scale)
    train = target_index < test_start
    x_train, y_train, x_test = x[train], y[train], x[~train]
    test_index = target_index[~train]

    def label(i):
        return f"{year[i]}-{month[i]:02d}"

    print_fn("lstm_fast demo: forecasting atmospheric CO2 at Mauna Loa one month ahead")
    print_fn(
        f"data: {M} monthly means {label(0)}..{label(M - 1)} (Scripps/CDIAC, public domain; see "
        "lstm_fast/data/README.md)"
    )
    print_fn(
        f"train: {int(train.sum())} windows of {WINDOW} months predicting "
        f"{label(target_index[0])}..{label(test_start - 1)} (last 10% for validation); "
        f"test: {len(test_index)} months {label(test_start)}..{label(M - 1)}"
    )

    lf.utils.set_random_seed(seed)
    model = lf.Sequential(
        [lf.LSTM(units, input_shape=(WINDOW, x.shape[2])), lf.Dense(1)], name="co2_forecaster"
    )
    model.compile(optimizer=lf.optimizers.Adam(learning_rate=3e-3), loss="mse")
    if not quiet:
        model.summary(print_fn=print_fn)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        validation_split=0.1,
        verbose=0 if quiet else 1,
    )
    seconds = time.perf_counter() - start

    # back to ppm: last observed value + predicted change
    lstm_forecast = values[test_index - 1] + scale * model.predict(x_test, verbose=0)[:, 0]
    actual = values[test_index]
    forecasts = {"LSTM": lstm_forecast, **naive_forecasts(values, test_index)}
    rmse = {name: _rmse(f, actual) for name, f in forecasts.items()}
    baselines = [name for name in rmse if name != "LSTM"]
    best = min(baselines, key=rmse.get)

    print_fn(f"trained {epochs} epochs in {seconds:.1f} s")
    print_fn(f"test RMSE over {len(test_index)} months (ppm):")
    width = max(len(name) for name in rmse) + 2
    for name in rmse:
        kind = "lstm_fast" if name == "LSTM" else "naive"
        print_fn(f"  {kind:9s} {name + ':':{width}s} {rmse[name]:.3f}")
    beats = rmse["LSTM"] < rmse[best]
    if beats:
        gain = 100.0 * (1.0 - rmse["LSTM"] / rmse[best])
        print_fn(f"the LSTM beats the best naive forecast ({best}) by {gain:.0f}%")
    else:
        print_fn(
            f"the LSTM does NOT beat the best naive forecast ({best}): train longer (--epochs)"
        )

    os.makedirs(out_dir, exist_ok=True)
    model_path = os.path.join(out_dir, "co2_lstm.lstmf")
    model.save(model_path)
    print_fn(f"model saved: {model_path} (lstm_fast.load_model reads it)")
    dates = year + (month - 0.5) / 12.0
    plots = _plot(
        out_dir,
        dates,
        values,
        lstm_forecast,
        dates[test_index],
        history.history,
        best,
        forecasts[best],
    )
    if plots is None:
        print_fn("plots skipped: matplotlib is not installed (pip install matplotlib)")
    else:
        print_fn("plots written: " + ", ".join(plots))
    return {
        "rmse": rmse,
        "best_baseline": best,
        "beats_baseline": beats,
        "history": history.history,
        "plots": plots,
        "model_path": model_path,
        "seconds": seconds,
    }
