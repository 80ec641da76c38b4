"""The workloads of shared/BENCH.md, their FLOP counts, and the data each row runs on.

Shapes: B = batch, T = time, I = input features, H = units. Inputs are batch-major
(B, T, I); weights are in Keras layout: kernel (I, 4H), recurrent_kernel (H, 4H),
bias (4H,), gate blocks i, f, c, o.

A *row* is one line of the results table: a kind of call, a shape and a thread
count. Kinds:
- ``train``: forward (training mode) + backward of one LSTM layer, return_sequences,
  loss = sum(y * P) for a fixed random projection P, gradients wrt x and the weights.
- ``infer``: forward in inference mode over the whole sequence, return_sequences.
- ``step``: one streaming step (T = 1) with (h, c) carried from the previous call.
- ``job``: the whole seed example (``Sequential.fit`` / Keras ``fit`` / a PyTorch loop).
"""

from __future__ import annotations

import zlib

import numpy as np

TRAIN = {  # name: (B, T, I, H)
    "seed": (32, 20, 10, 50),
    "medium": (64, 50, 128, 256),
    "large": (64, 50, 512, 512),
    "deepbench": (16, 25, 1024, 1024),
}
INFER = {
    "latency-256": (1, 150, 256, 256),
    "latency-512": (1, 25, 512, 512),
    "latency-1024": (1, 25, 1024, 1024),
    "throughput": (64, 50, 512, 512),
}
STEP = {"step-256": (1, 1, 256, 256)}
# Whole job: the seed example of shared/seed (N sequences of T steps, I features).
JOB = {"N": 1000, "T": 20, "I": 10, "H": 50, "batch_size": 32, "epochs": 100}
# Time per step vs batch size: inference forward at I = H = 512, T = 50.
SWEEP = {"T": 50, "I": 512, "H": 512, "batches": (1, 2, 4, 8, 16, 32, 64, 128)}
QUICK_SWEEP = {"T": 10, "I": 128, "H": 128, "batches": (1, 16)}
# Thread scaling: the large training step at 1 thread and at all threads.
SCALING = "large"

# Names accepted by --workloads, in run order.
ALL = [*TRAIN, *INFER, *STEP, "scaling", "batch-sweep", "seed-job"]
FULL_DEFAULT = ALL
QUICK_DEFAULT = ["seed", "latency-256", "step-256", "scaling", "batch-sweep", "seed-job"]
# The NumPy reference is timed on these rows only (it is the oracle, not a contender
# on big shapes); it still checks lstm_fast on every row.
REFERENCE_TIMED = {"train/seed", "infer/latency-256", "infer/latency-512", "infer/step-256"}


def flops(kind, B, T, I, H):
    """GEMM FLOPs of one call, by BENCH.md's formulas (0 for the whole job)."""
    per_step = B * H * (I + H)
    if kind == "train":
        return 24 * T * per_step
    if kind in ("infer", "step"):
        return 8 * T * per_step
    return 0


def make_rows(names, quick, threads_all):
    """Row specs (plain dicts, sent to the workers) for the chosen workload names."""
    rows = []
    for name in names:
        if name in TRAIN:
            rows.append(_row(f"train/{name}", "train", TRAIN[name], name))
        elif name in INFER:
            rows.append(_row(f"infer/{name}", "infer", INFER[name], name))
        elif name in STEP:
            rows.append(_row(f"infer/{name}", "step", STEP[name], name))
        elif name == "scaling":
            shape_name = "seed" if quick else SCALING
            row = _row(f"scaling/{shape_name}", "train", TRAIN[shape_name], shape_name)
            row["group"] = "scaling"
            row["threads"] = sorted({1, threads_all})
            if quick:  # the smoke run spares the other libraries a second import
                row["only"] = ["lstm_fast"]
            rows.append(row)
        elif name == "batch-sweep":
            sweep = QUICK_SWEEP if quick else SWEEP
            for B in sweep["batches"]:
                shape = (B, sweep["T"], sweep["I"], sweep["H"])
                row = _row(f"sweep/B{B}", "infer", shape, f"sweep-B{B}")
                row["group"] = "batch-sweep"
                rows.append(row)
        elif name == "seed-job":
            job = dict(JOB)
            if quick:
                job["epochs"] = 1
            rows.append(
                {
                    "id": "job/seed",
                    "kind": "job",
                    "workload": "seed-job",
                    "group": "job",
                    "shape": {"B": job["batch_size"], "T": job["T"], "I": job["I"], "H": job["H"]},
                    "job": job,
                    "flops": 0,
                }
            )
        else:
            raise ValueError(f"Unknown workload {name!r}. Expected one of {ALL}.")
    return rows


def _row(row_id, kind, shape, workload):
    B, T, I, H = shape
    return {
        "id": row_id,
        "kind": kind,
        "workload": workload,
        "group": kind,
        "shape": {"B": B, "T": T, "I": I, "H": H},
        "flops": flops(kind, B, T, I, H),
    }


def make_data(row, dtype, seed=0):
    """Weights and inputs of a row, the same for every contender.

    Weights are uniform in +-1/sqrt(H) (PyTorch's default scale, so gates are not
    saturated) and the bias is non-zero, so a bias or gate-order mistake shows.
    """
    rng = np.random.default_rng([seed, zlib.crc32(row["id"].encode())])
    if row["kind"] == "job":
        return _job_data(row["job"], dtype, rng)
    s = row["shape"]
    B, T, I, H = s["B"], s["T"], s["I"], s["H"]
    scale = 1.0 / np.sqrt(H)
    data = {
        "kernel": rng.uniform(-scale, scale, (I, 4 * H)).astype(dtype),
        "recurrent_kernel": rng.uniform(-scale, scale, (H, 4 * H)).astype(dtype),
        "bias": rng.uniform(-scale, scale, (4 * H,)).astype(dtype),
    }
    if row["kind"] == "step":
        n_inputs = 16  # the streaming calls cycle through these x_t, state carried
        data["x_steps"] = rng.standard_normal((n_inputs, B, I)).astype(dtype)
    else:
        data["x"] = rng.standard_normal((B, T, I)).astype(dtype)
    if row["kind"] == "train":
        data["projection"] = rng.standard_normal((B, T, H)).astype(dtype)  # dL/dy
    return data


def _job_data(job, dtype, rng):
    """The seed example's data (uniform [0, 1), as np.random.rand) and initial weights
    as Keras would draw them: glorot_uniform kernels, orthogonal recurrent kernel,
    zero biases with the forget block at 1 (unit_forget_bias)."""
    N, T, I, H = job["N"], job["T"], job["I"], job["H"]

    def glorot(fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out))

    q, r = np.linalg.qr(rng.standard_normal((4 * H, H)))
    q *= np.sign(np.diag(r))
    bias = np.zeros(4 * H)
    bias[H : 2 * H] = 1.0
    weights = [glorot(I, 4 * H), q.T, bias, glorot(H, 1), np.zeros(1)]  # Keras order
    return {
        "x": rng.random((N, T, I)).astype(dtype),
        "y": rng.random((N, 1)).astype(dtype),
        "weights": [w.astype(dtype) for w in weights],
    }
