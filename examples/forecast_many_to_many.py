"""Many-to-many forecasting: 36 months of CO2 in, the next 12 months out, with a stacked model.

A Bidirectional LSTM reads the input window in both directions (it sees only
the past: the whole window is history), a second LSTM summarises it, and a
Dense layer outputs all 12 future months at once. The data is the Mauna Loa
CO2 record shipped with lstm_fast (see `python -m lstm_fast demo`); as in the
demo, each window is expressed relative to its last month, so the rising trend
needs no extrapolation.

The baseline repeats last year's seasonal cycle on top of the last value:
forecast(t + k) = v[t] + v[t + k - 12] - v[t - 12], for k = 1..12.

    python forecast_many_to_many.py              # 25 epochs
    python forecast_many_to_many.py --epochs 2   # a quick check
"""

import argparse

import numpy as np

import lstm_fast as lf
from lstm_fast.demo import load_co2
from lstm_fast.layers import LSTM, Bidirectional, Dense
from lstm_fast.models import Sequential

WINDOW, HORIZON = 36, 12


def make_windows(values, month, scale):
    """x (N, WINDOW, 3), y (N, HORIZON) and the index of each window's last month."""
    last_index = np.arange(WINDOW - 1, len(values) - HORIZON)
    past = last_index[:, None] + np.arange(-WINDOW + 1, 1)[None, :]  # (N, WINDOW)
    future = last_index[:, None] + np.arange(1, HORIZON + 1)[None, :]  # (N, HORIZON)
    last = values[last_index][:, None]
    angle = 2 * np.pi * month[past] / 12
    x = np.stack([(values[past] - last) / scale, np.sin(angle), np.cos(angle)], axis=-1)
    y = (values[future] - last) / scale
    return x.astype(np.float32), y.astype(np.float32), last_index


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25, help="training epochs (default: 25)")
    parser.add_argument("--units", type=int, default=24, help="units per LSTM (default: 24)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lf.utils.set_random_seed(args.seed)

    co2 = load_co2()
    values, month = co2["co2_ppm"], co2["month"]
    test_start = len(values) - 120  # forecasts made from 1992 on are the test
    scale = float(np.diff(values[:test_start]).std())
    x, y, last_index = make_windows(values, month, scale)
    # a training window's targets must all lie before the test years
    train = last_index + HORIZON < test_start
    test = last_index >= test_start - 1
    print(f"windows: {train.sum()} train, {test.sum()} test; {WINDOW} months in, {HORIZON} out")

    model = Sequential(
        [
            Bidirectional(LSTM(args.units, return_sequences=True), input_shape=(WINDOW, 3)),
            LSTM(args.units),
            Dense(HORIZON),
        ]
    )
    model.compile(optimizer=lf.optimizers.Adam(learning_rate=3e-3), loss="mse")
    model.summary()
    model.fit(x[train], y[train], epochs=args.epochs, batch_size=32, verbose=2)

    prediction = model.predict(x[test], verbose=0) * scale  # (N, HORIZON) change in ppm
    actual = y[test] * scale
    t = last_index[test][:, None]
    k = np.arange(1, HORIZON + 1)[None, :]
    baseline = values[t + k - 12] - values[t - 12]  # last year's change over the same months
    rmse_lstm = np.sqrt(np.mean((prediction - actual) ** 2, axis=0))
    rmse_base = np.sqrt(np.mean((baseline - actual) ** 2, axis=0))
    print("test RMSE (ppm) by months ahead:")
    print("  months ahead: " + " ".join(f"{h:5d}" for h in range(1, HORIZON + 1)))
    print("  LSTM:         " + " ".join(f"{e:5.2f}" for e in rmse_lstm))
    print("  last year:    " + " ".join(f"{e:5.2f}" for e in rmse_base))
    print(
        f"mean test RMSE: LSTM {rmse_lstm.mean():.3f} ppm, last year's cycle "
        f"{rmse_base.mean():.3f} ppm"
    )


if __name__ == "__main__":
    main()
