"""Streaming prediction: one step at a time, the LSTM state carried between steps.

A model trained on whole sequences often has to run on a live signal, where
each new sample must be answered at once. Three ways with lstm_fast, all equal
to running the model on the whole sequence:

1. a stateful twin of the model (`LSTM(..., stateful=True)`, batch size fixed),
   given the trained weights and called on one step at a time: the layer keeps
   (h, c) between calls;
2. the low-level `lstm_fast.ops.lstm_step(x_t, kernel, recurrent_kernel, bias,
   h, c)`, which returns the new (h, c): the state is yours to keep.
3. `model.stream()`, the trained model itself fed one step per call
   (`stream.step(x_t)`), every LSTM layer's state carried inside; or fed
   chunks of steps as they arrive (`stream.steps(x_chunk)`, one engine call
   per layer for the whole chunk).

And `model.stream(weights_dtype="float16")`: the same stream reading
half-precision copies of the LSTM weights (faster at batch size 1 on large
layers, where reading the weights is a step's time). Its outputs are not the
model's but those of the model with its LSTM weights rounded to half
precision: the example shows both differences.

The task: denoise a noisy sum of two sines (the target at step t is the clean
signal at t), which needs memory of the past steps.

    python streaming.py              # 5 epochs
    python streaming.py --epochs 1   # a quick check
"""

import argparse
import time

import numpy as np

import lstm_fast as lf
from lstm_fast import ops
from lstm_fast.layers import LSTM, Dense
from lstm_fast.models import Sequential

UNITS = 16


def make_signal(n, T, rng):
    """Noisy inputs (n, T, 1) and clean targets (n, T, 1)."""
    t = np.arange(T)[None, :]
    f1, f2 = rng.uniform(0.02, 0.08, (n, 1)), rng.uniform(0.1, 0.2, (n, 1))
    p1, p2 = rng.uniform(0, 2 * np.pi, (n, 1)), rng.uniform(0, 2 * np.pi, (n, 1))
    clean = np.sin(2 * np.pi * f1 * t + p1) + 0.5 * np.sin(2 * np.pi * f2 * t + p2)
    noisy = clean + 0.4 * rng.standard_normal(clean.shape)
    return noisy[..., None].astype(np.float32), clean[..., None].astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--steps", type=int, default=200, help="length of the streamed signal")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lf.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    # ---- train on whole sequences
    x_train, y_train = make_signal(1024, 50, rng)
    model = Sequential([LSTM(UNITS, return_sequences=True, input_shape=(None, 1)), Dense(1)])
    model.compile(optimizer=lf.optimizers.Adam(learning_rate=1e-2), loss="mse")
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2)

    # ---- one long signal, predicted whole
    x, y = make_signal(1, args.steps, rng)  # (1, T, 1)
    full = model.predict(x, verbose=0)  # (1, T, 1)
    print(
        f"denoising RMSE: input {np.sqrt(np.mean((x - y) ** 2)):.3f}, "
        f"model {np.sqrt(np.mean((full - y) ** 2)):.3f}"
    )

    # ---- 1. a stateful twin of the model, fed one step per call
    twin = Sequential(
        [LSTM(UNITS, return_sequences=True, stateful=True, batch_input_shape=(1, 1, 1)), Dense(1)]
    )
    twin.set_weights(model.get_weights())
    twin.reset_states()
    stateful_out = np.concatenate([twin(x[:, t : t + 1]) for t in range(args.steps)], axis=1)
    diff_stateful = float(np.max(np.abs(stateful_out - full)))
    print(
        f"stateful model, step by step: max abs difference to the full sequence = "
        f"{diff_stateful:.2e}"
    )

    # ---- 2. ops.lstm_step with the trained weights; the Dense layer by hand
    kernel, recurrent_kernel, bias, dense_kernel, dense_bias = model.get_weights()
    h = c = None  # zeros
    outputs = []
    start = time.perf_counter()
    for t in range(args.steps):
        h, c = ops.lstm_step(x[:, t], kernel, recurrent_kernel, bias, h, c)
        outputs.append(h @ dense_kernel + dense_bias)  # (1, 1)
    per_step = (time.perf_counter() - start) / args.steps
    step_out = np.stack(outputs, axis=1)  # (1, T, 1)
    diff_step = float(np.max(np.abs(step_out - full)))
    print(f"ops.lstm_step, step by step: max abs difference to the full sequence = {diff_step:.2e}")
    print(f"ops.lstm_step: {per_step * 1e6:.1f} us per step (LSTM({UNITS}) + Dense, batch 1)")

    # ---- 3. model.stream(): the trained model itself, one step per call
    stream = model.stream()  # carries every LSTM layer's state; weights packed once
    stream_out = np.stack([stream.step(x[0, t]) for t in range(args.steps)], axis=1)
    diff_stream = float(np.max(np.abs(stream_out - full)))
    print(
        f"model.stream(), step by step: max abs difference to the full sequence = {diff_stream:.2e}"
    )
    stream.reset()  # the same signal again, in chunks of 16 steps
    chunk_out = np.concatenate(
        [stream.steps(x[:, t : t + 16]) for t in range(0, args.steps, 16)], axis=1
    )
    diff_chunks = float(np.max(np.abs(chunk_out - full)))
    print(
        f"model.stream(), chunks of 16 steps: max abs difference to the full sequence = "
        f"{diff_chunks:.2e}"
    )
    diffs = (diff_stateful, diff_step, diff_stream, diff_chunks)
    print(f"max abs difference: {max(diffs):.2e}")

    # ---- 4. half-precision weights: the model with its LSTM weights rounded
    half_out = model.stream(weights_dtype="float16").steps(x)
    weights = model.get_weights()
    model.set_weights([w.astype(np.float16).astype(np.float32) for w in weights[:2]] + weights[2:])
    rounded_full = model.predict(x, verbose=0)
    model.set_weights(weights)
    print(
        f"model.stream(weights_dtype='float16'): max abs difference to the full sequence = "
        f"{float(np.max(np.abs(half_out - full))):.2e} (the weights' rounding), to the model "
        f"with rounded weights = {float(np.max(np.abs(half_out - rounded_full))):.2e}"
    )


if __name__ == "__main__":
    main()
