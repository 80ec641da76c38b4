"""What the forget gate does: a heatmap of its activations over a sequence.

The task makes forgetting visible. Each step brings a value and, now and
then, a reset flag; the target is the sum of the values since the last reset.
To solve it the LSTM must keep a running total in its cell (forget gate near
1) and drop it at a reset (forget gate near 0). After training,
`model.gate_activations(x)` returns the gates of every step (each (B, T, H));
the heatmap shows the forget gate of every unit over time, with the resets
marked, and the script prints the mean forget gate at reset steps and at the
other steps.

Needs matplotlib for the picture (pip install matplotlib); without it, the
numbers are printed and the plot is skipped.

    python gate_heatmap.py                      # 15 epochs, writes forget_gate.png
    python gate_heatmap.py --epochs 1 --out DIR # a quick check
"""

import argparse
import os

import numpy as np

import lstm_fast as lf
from lstm_fast.layers import LSTM, Dense
from lstm_fast.models import Sequential

T = 60


def make_data(n, rng, reset_probability=0.08):
    """x (n, T, 2) [value, reset flag], y (n, T, 1) the sum of the values since the last reset."""
    values = rng.uniform(-1, 1, (n, T))
    resets = rng.random((n, T)) < reset_probability
    totals = np.zeros((n, T))
    running = np.zeros(n)
    for t in range(T):
        running = np.where(resets[:, t], 0.0, running) + values[:, t]
        totals[:, t] = running
    x = np.stack([values, resets.astype(np.float64)], axis=-1)
    return x.astype(np.float32), totals[..., None].astype(np.float32)


def plot(forget, resets, path):
    """forget (T, H), resets (T,) bool; returns False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    order = np.argsort(forget[resets].mean(axis=0) - forget[~resets].mean(axis=0))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    image = ax.imshow(
        forget[:, order].T, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest"
    )
    reset_steps = np.flatnonzero(resets)
    ax.scatter(reset_steps, np.full(len(reset_steps), -0.9), marker="v", color="red", clip_on=False)
    ax.set_ylim(forget.shape[1] - 0.5, -0.5)  # the marks sit above the image
    ax.set_xlabel("time step (red marks: reset flag)")
    ax.set_ylabel("unit (sorted by drop at resets)")
    ax.set_title("LSTM forget gate f_t over one sequence", pad=16)
    fig.colorbar(image, ax=ax, label="forget gate (1 = keep the cell)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default: 15)")
    parser.add_argument("--units", type=int, default=16, help="LSTM units (default: 16)")
    parser.add_argument(
        "--samples", type=int, default=1024, help="training sequences (default: 1024)"
    )
    parser.add_argument("--out", default=".", help="directory for forget_gate.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lf.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    x_train, y_train = make_data(args.samples, rng)
    model = Sequential([LSTM(args.units, return_sequences=True, input_shape=(T, 2)), Dense(1)])
    model.compile(optimizer=lf.optimizers.Adam(learning_rate=1e-2), loss="mse")
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2)

    x_test, y_test = make_data(256, rng)
    mse = float(np.mean((model.predict(x_test, verbose=0) - y_test) ** 2))
    print(f"test MSE {mse:.4f} (predicting 0 everywhere: {float(np.mean(y_test**2)):.4f})")

    gates = model.gate_activations(x_test)  # 'i', 'f', 'g', 'o', 'c', 'h': each (B, T, H)
    forget = gates["f"]
    resets = x_test[..., 1] > 0.5  # (B, T)
    at_reset = float(forget[resets].mean())
    elsewhere = float(forget[~resets].mean())
    print(f"mean forget gate: at reset steps {at_reset:.3f}, at other steps {elsewhere:.3f}")
    # the unit that forgets most at resets
    drop = forget[resets].mean(axis=0) - forget[~resets].mean(axis=0)
    unit = int(np.argmin(drop))
    print(
        f"unit {unit}: forget gate {forget[resets][:, unit].mean():.3f} at resets, "
        f"{forget[~resets][:, unit].mean():.3f} elsewhere"
    )

    sample = int(np.argmax(resets.sum(axis=1) >= 3))  # a sequence with a few resets
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "forget_gate.png")
    if plot(forget[sample], resets[sample], path):
        print(f"heatmap written: {path}")
    else:
        print("heatmap skipped: matplotlib is not installed (pip install matplotlib)")


if __name__ == "__main__":
    main()
