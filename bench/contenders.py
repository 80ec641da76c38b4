"""The contenders, each behind the same small interface.

A contender is built once per worker process (that imports its library and sets
its thread count) and then, per row, ``setup(row, data)`` returns a `Case`:
- ``call()``: the timed operation (one training step, one forward, one streaming
  step, or one whole ``fit``);
- ``check()``: the same computation on the same data, returning NumPy arrays in
  Keras layout (``y``, and ``dx``, ``dkernel``, ``drecurrent_kernel``, ``dbias`` for
  training), compared by run.py against lstm_fast's before anything is timed;
- ``prepare()``: optional, untimed, run before each ``call()`` (the whole job
  builds a fresh model from the same initial weights there).

Layouts (DESIGN.md): Keras kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,),
gate blocks i, f, c, o. PyTorch: weight_ih = kernel.T, weight_hh =
recurrent_kernel.T, bias_ih = bias, bias_hh = 0. ONNX: W (1, 4H, I), R (1, 4H, H)
in gate order i, o, f, c, B (1, 8H) = [Wb, Rb], X time-major (T, B, I).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

NAMES = ["lstm_fast", "torch", "tensorflow", "onnxruntime", "lstm_fast_f16", "reference"]


class Missing(Exception):
    """The contender, or the part of it a row needs, is not installed."""


class NotApplicable(Exception):
    """The contender has no such operation (ONNX Runtime does not train)."""


@dataclass
class Case:
    call: Callable[[], object]
    check: Callable[[], dict]
    prepare: Callable[[], None] | None = None


def create(name, n_threads):
    """Import the contender's library and set its threads; ImportError when missing."""
    classes = {
        "lstm_fast": LstmFast,
        "lstm_fast_f16": LstmFastHalf,
        "reference": Reference,
        "torch": Torch,
        "tensorflow": TensorFlow,
        "onnxruntime": OnnxRuntime,
    }
    return classes[name](n_threads)


def _shape(row):
    s = row["shape"]
    return s["B"], s["T"], s["I"], s["H"]


# --------------------------------------------------------------------------- lstm_fast


class LstmFast:
    """lstm_fast at the ops level for the layer rows, its Keras-like model for the job."""

    name = "lstm_fast"

    def __init__(self, n_threads):
        from lstm_fast import ops

        self.ops = ops
        self.n_threads = n_threads

    def versions(self):
        import lstm_fast

        try:
            import lstm_fast._engine  # noqa: F401

            engine = "compiled (lstm_fast._engine)"
        except ImportError as exc:
            engine = f"NOT compiled ({exc}); ops runs the temporary NumPy shim"
        return {
            "lstm_fast": getattr(lstm_fast, "__version__", "?"),
            "lstm_fast_path": os.path.dirname(lstm_fast.__file__),
            "engine": engine,
            "isa": self.ops.get_isa(),
            "supported_isas": list(self.ops.supported_isas()),
            "get_num_threads": self.ops.get_num_threads(),
            "inference_weights": "packed once (ops.pack_weights)"
            if hasattr(self.ops, "pack_weights")
            else "unpacked",
        }

    def setup(self, row, data):
        if row["kind"] == "job":
            return _lstm_fast_job(row, data)
        ops, n = self.ops, self.n_threads
        extra = {}
        if row["kind"] in ("infer", "step") and hasattr(ops, "pack_weights"):
            # repeated inference packs the weights once, as ONNX Runtime's session
            # does; training does not (its weights change at every step)
            extra["packed"] = ops.pack_weights(
                data["kernel"], data["recurrent_kernel"], n_threads=n
            )
        return _functional_case(
            row,
            data,
            forward=lambda *a, **kw: ops.lstm_forward(*a, n_threads=n, **extra, **kw),
            backward=lambda *a, **kw: ops.lstm_backward(*a, n_threads=n, **kw),
            step=lambda *a: ops.lstm_step(*a, n_threads=n, **extra),
            accumulate=True,
        )


class LstmFastHalf(LstmFast):
    """lstm_fast on half-precision copies of the weights (pack_weights(...,
    weights_dtype="float16")): another precision, its own column, checked
    against the reference on the weights rounded to half precision."""

    name = "lstm_fast_f16"

    def versions(self):
        info = super().versions()
        info["inference_weights"] = "packed once in float16 (weights_dtype='float16')"
        return info

    def setup(self, row, data):
        if row["kind"] not in ("infer", "step"):
            raise NotApplicable("half-precision weights are for inference")
        if data["kernel"].dtype != np.float32:
            raise NotApplicable("half-precision weights are for float32 models")
        ops, n = self.ops, self.n_threads
        packed = ops.pack_weights(
            data["kernel"], data["recurrent_kernel"], n_threads=n, weights_dtype="float16"
        )
        return _functional_case(
            row,
            data,
            forward=lambda *a, **kw: ops.lstm_forward(*a, n_threads=n, packed=packed, **kw),
            backward=None,
            step=lambda *a: ops.lstm_step(*a, n_threads=n, packed=packed),
            accumulate=True,
        )


class Reference:
    """lstm_fast's NumPy reference (the oracle), timed on the small rows only."""

    name = "reference"

    def __init__(self, n_threads):
        from lstm_fast import reference

        self.reference = reference
        self.n_threads = n_threads

    def versions(self):
        return {"numpy": np.__version__}

    def setup(self, row, data):
        if row["kind"] == "job":
            raise NotApplicable("the reference is one layer, not a model")
        ref = self.reference

        def step(x_t, kernel, recurrent_kernel, bias, h, c):
            _, h, c, _ = ref.lstm_forward(x_t[:, None, :], kernel, recurrent_kernel, bias, h, c)
            return h, c

        return _functional_case(
            row,
            data,
            forward=ref.lstm_forward,
            backward=ref.lstm_backward,
            step=step,
            accumulate=False,
        )


def _functional_case(row, data, forward, backward, step, accumulate):
    """A Case over the functional API shared by lstm_fast.ops and lstm_fast.reference."""
    kind = row["kind"]
    K, R, b = data["kernel"], data["recurrent_kernel"], data["bias"]
    if kind == "train":
        x, P = data["x"], data["projection"]
        grads = [np.zeros_like(K), np.zeros_like(R), np.zeros_like(b)]

        def call():
            y, _, _, cache = forward(x, K, R, b, None, None, return_sequences=True, training=True)
            if accumulate:  # the model's path: gradients accumulate into zeroed buffers
                for g in grads:
                    g.fill(0)
                kw = dict(dkernel=grads[0], drecurrent_kernel=grads[1], dbias=grads[2])
                return y, backward(cache, P, None, None, **kw)
            return y, backward(cache, P, None, None)

        def check():
            y, g = call()
            return {
                "y": np.array(y),
                "dx": np.array(g.dx),
                "dkernel": np.array(g.dkernel),
                "drecurrent_kernel": np.array(g.drecurrent_kernel),
                "dbias": np.array(g.dbias),
            }

        return Case(call, check)

    if kind == "infer":
        x = data["x"]

        def call():
            return forward(x, K, R, b, None, None, return_sequences=True, training=False)[0]

        return Case(call, lambda: {"y": np.array(call())})

    if kind == "step":
        xs = data["x_steps"]
        B, H = xs.shape[1], R.shape[0]
        state = {"h": np.zeros((B, H), K.dtype), "c": np.zeros((B, H), K.dtype), "k": 0}

        def call():
            k = state["k"]
            state["h"], state["c"] = step(xs[k % len(xs)], K, R, b, state["h"], state["c"])
            state["k"] = k + 1

        def check():
            h, c = np.zeros((B, H), K.dtype), np.zeros((B, H), K.dtype)
            hs = []
            for x_t in xs:
                h, c = step(x_t, K, R, b, h, c)
                hs.append(np.array(h))
            return {"h": np.stack(hs), "c": np.array(c)}

        return Case(call, check)
    raise NotApplicable(kind)


def _lstm_fast_job(row, data):
    try:
        from lstm_fast.layers import LSTM, Dense
        from lstm_fast.models import Sequential
    except ImportError as exc:
        why = f"{type(exc).__name__}: {exc}"
        raise Missing(f"lstm_fast's Keras-like API is not importable: {why}") from exc
    job = row["job"]
    T, I, H = job["T"], job["I"], job["H"]
    x, y, weights = data["x"], data["y"], data["weights"]

    def build():
        model = Sequential([LSTM(H, return_sequences=True, input_shape=(T, I)), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        if hasattr(model, "build"):
            model.build((None, T, I))
        else:
            model.predict(x[:1], verbose=0)
        model.set_weights([w.copy() for w in weights])
        return model

    return _model_job(
        job,
        x,
        y,
        build,
        fit=_fit_keras_like(x, y),
        predict=lambda m, xb: np.asarray(m.predict(xb, verbose=0)),
    )


CHECK_N = 256  # the whole job's check: one epoch without shuffle on the first samples


def _fit_keras_like(x_all, y_all):
    def fit(model, x=None, y=None, **kw):
        model.fit(x_all if x is None else x, y_all if y is None else y, verbose=0, **kw)

    return fit


def _model_job(job, x, y, build, fit, predict):
    """Whole-job Case for a model with Keras's fit/predict (lstm_fast or Keras)."""
    model = {}

    def prepare():
        model["m"] = build()

    def call():
        fit(model["m"], epochs=job["epochs"], batch_size=job["batch_size"], shuffle=True)

    def check():
        m = build()
        pred0 = predict(m, x[:64])
        fit(m, epochs=1, batch_size=job["batch_size"], shuffle=False, x=x[:CHECK_N], y=y[:CHECK_N])
        return {"pred0": pred0, "pred1": predict(m, x[:64])}

    return Case(call, check, prepare)


# ----------------------------------------------------------------------------- PyTorch


class Torch:
    """PyTorch CPU ``torch.nn.LSTM(batch_first=True)`` (oneDNN for float32)."""

    name = "torch"

    def __init__(self, n_threads):
        import torch

        torch.set_num_threads(n_threads)
        self.torch = torch

    def versions(self):
        torch = self.torch
        return {
            "torch": torch.__version__,
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "torch_threads": torch.get_num_threads(),
        }

    def _lstm(self, K, R, b):
        torch = self.torch
        I, H = K.shape[0], R.shape[0]
        lstm = torch.nn.LSTM(I, H, batch_first=True)
        if K.dtype == np.float64:
            lstm = lstm.double()
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(K.T.copy()))
            lstm.weight_hh_l0.copy_(torch.from_numpy(R.T.copy()))
            lstm.bias_ih_l0.copy_(torch.from_numpy(b))
            lstm.bias_hh_l0.zero_()
        return lstm

    def setup(self, row, data):
        torch = self.torch
        if row["kind"] == "job":
            return self._job(row, data)
        lstm = self._lstm(data["kernel"], data["recurrent_kernel"], data["bias"])
        kind = row["kind"]
        if kind == "train":
            x = torch.from_numpy(data["x"]).requires_grad_(True)
            P = torch.from_numpy(data["projection"])
            params = list(lstm.parameters())

            def call():
                x.grad = None
                for p in params:  # optimizer.zero_grad(set_to_none=True)
                    p.grad = None
                y, _ = lstm(x)
                y.backward(P)
                return y

            def check():
                y = call()
                return {
                    "y": y.detach().numpy().copy(),
                    "dx": x.grad.numpy().copy(),
                    "dkernel": lstm.weight_ih_l0.grad.numpy().T.copy(),
                    "drecurrent_kernel": lstm.weight_hh_l0.grad.numpy().T.copy(),
                    "dbias": lstm.bias_ih_l0.grad.numpy().copy(),
                }

            return Case(call, check)
        if kind == "infer":
            x = torch.from_numpy(data["x"])

            def call():
                with torch.inference_mode():
                    return lstm(x)[0]

            return Case(call, lambda: {"y": call().numpy().copy()})
        if kind == "step":
            xs = torch.from_numpy(data["x_steps"]).unsqueeze(2)  # (S, B, 1, I)
            B, H = xs.shape[1], data["recurrent_kernel"].shape[0]
            zeros = torch.zeros((1, B, H), dtype=xs.dtype)
            state = {"hc": (zeros, zeros), "k": 0}

            def call():
                k = state["k"]
                with torch.inference_mode():
                    _, state["hc"] = lstm(xs[k % len(xs)], state["hc"])
                state["k"] = k + 1

            def check():
                hc, hs = (zeros, zeros), []
                with torch.inference_mode():
                    for x_t in xs:
                        _, hc = lstm(x_t, hc)
                        hs.append(hc[0][0].numpy().copy())
                return {"h": np.stack(hs), "c": hc[1][0].numpy().copy()}

            return Case(call, check)
        raise NotApplicable(kind)

    def _job(self, row, data):
        """The seed example as a plain PyTorch loop equivalent to Keras's fit."""
        torch = self.torch
        job = row["job"]
        X, Y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
        K, R, b, dense_w, dense_b = data["weights"]

        class SeedModel(torch.nn.Module):
            def __init__(model, lstm):
                super().__init__()
                model.lstm = lstm
                model.dense = torch.nn.Linear(lstm.hidden_size, 1)

            def forward(model, x):
                return model.dense(model.lstm(x)[0])

        def build():
            lstm = self._lstm(K, R, b)
            lstm.bias_hh_l0.requires_grad_(False)  # Keras has one bias: keep b_hh at 0
            model = SeedModel(lstm)
            if K.dtype == np.float64:
                model = model.double()
            with torch.no_grad():
                model.dense.weight.copy_(torch.from_numpy(dense_w.T.copy()))
                model.dense.bias.copy_(torch.from_numpy(dense_b))
            return model

        def fit(model, epochs, batch_size, shuffle, X=X, Y=Y):
            params = [p for p in model.parameters() if p.requires_grad]
            # Keras's Adam defaults (epsilon 1e-7, not PyTorch's 1e-8)
            optimizer = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
            N = len(X)
            for _ in range(epochs):
                order = torch.randperm(N) if shuffle else torch.arange(N)
                for start in range(0, N, batch_size):
                    idx = order[start : start + batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    # Keras squeezes the (b, T, 1) prediction to (b, T) against y (b, 1)
                    loss = ((model(X[idx]).squeeze(-1) - Y[idx]) ** 2).mean()
                    loss.backward()
                    optimizer.step()

        def predict(model, xb):
            with torch.no_grad():
                return model(torch.from_numpy(xb)).numpy().copy()

        state = {}

        def prepare():
            state["m"] = build()

        def call():
            fit(state["m"], job["epochs"], job["batch_size"], shuffle=True)

        def check():
            m = build()
            pred0 = predict(m, data["x"][:64])
            fit(m, 1, job["batch_size"], shuffle=False, X=X[:CHECK_N], Y=Y[:CHECK_N])
            return {"pred0": pred0, "pred1": predict(m, data["x"][:64])}

        return Case(call, check, prepare)


# ------------------------------------------------------------------------ TensorFlow


class TensorFlow:
    """TensorFlow/Keras ``keras.layers.LSTM``.

    Layer rows call the layer inside a ``tf.function`` (a GradientTape train step
    for training rows, the layer's call for inference, ``layer.cell`` for the
    streaming step); the whole job is ``model.fit`` with Keras's defaults. No XLA:
    on a CPU-only machine Keras 3 resolves fit's ``jit_compile="auto"`` to False.
    """

    name = "tensorflow"

    def __init__(self, n_threads):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n_threads)
        tf.config.threading.set_inter_op_parallelism_threads(n_threads)
        self.tf, self.keras = tf, keras

    def versions(self):
        return {"tensorflow": self.tf.__version__, "keras": self.keras.__version__}

    def _layer(self, row, data):
        B, T, I, H = _shape(row)
        dtype = data["kernel"].dtype.name
        layer = self.keras.layers.LSTM(H, return_sequences=True, dtype=dtype)
        layer.build((B, T, I))
        layer.set_weights([data["kernel"], data["recurrent_kernel"], data["bias"]])
        return layer

    def setup(self, row, data):
        tf = self.tf
        if row["kind"] == "job":
            return self._job(row, data)
        layer = self._layer(row, data)
        kind = row["kind"]
        if kind == "train":
            x, P = tf.constant(data["x"]), tf.constant(data["projection"])

            @tf.function
            def train_step(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = layer(x, training=True)
                    loss = tf.reduce_sum(y * P)
                return y, tape.gradient(loss, [x, *layer.trainable_variables])

            def check():
                y, (dx, dK, dR, db) = train_step(x)
                return {
                    "y": y.numpy(),
                    "dx": dx.numpy(),
                    "dkernel": dK.numpy(),
                    "drecurrent_kernel": dR.numpy(),
                    "dbias": db.numpy(),
                }

            return Case(lambda: train_step(x), check)
        if kind == "infer":
            x = tf.constant(data["x"])

            @tf.function
            def forward(x):
                return layer(x, training=False)

            return Case(lambda: forward(x), lambda: {"y": forward(x).numpy()})
        if kind == "step":
            xs = [tf.constant(x_t) for x_t in data["x_steps"]]
            B, H = data["x_steps"].shape[1], data["recurrent_kernel"].shape[0]
            zeros = tf.zeros((B, H), dtype=data["kernel"].dtype.name)
            cell = layer.cell

            @tf.function
            def step(x_t, h, c):
                _, (h, c) = cell(x_t, [h, c], training=False)
                return h, c

            state = {"hc": (zeros, zeros), "k": 0}

            def call():
                k = state["k"]
                state["hc"] = step(xs[k % len(xs)], *state["hc"])
                state["k"] = k + 1

            def check():
                h, c = zeros, zeros
                hs = []
                for x_t in xs:
                    h, c = step(x_t, h, c)
                    hs.append(h.numpy())
                return {"h": np.stack(hs), "c": c.numpy()}

            return Case(call, check)
        raise NotApplicable(kind)

    def _job(self, row, data):
        keras = self.keras
        job = row["job"]
        T, I, H = job["T"], job["I"], job["H"]
        x, y, weights = data["x"], data["y"], data["weights"]
        dtype = x.dtype.name

        def build():
            model = keras.Sequential(
                [
                    keras.Input((T, I), dtype=dtype),
                    keras.layers.LSTM(H, return_sequences=True, dtype=dtype),
                    keras.layers.Dense(1, dtype=dtype),
                ]
            )
            model.compile(optimizer=keras.optimizers.Adam(), loss="mean_squared_error")
            model.set_weights([w.copy() for w in weights])
            return model

        return _model_job(
            job,
            x,
            y,
            build,
            fit=_fit_keras_like(x, y),
            predict=lambda m, xb: m.predict(xb, verbose=0),
        )


# ---------------------------------------------------------------------- ONNX Runtime


class OnnxRuntime:
    """ONNX Runtime's LSTM operator (inference only), on a graph built here."""

    name = "onnxruntime"

    def __init__(self, n_threads):
        import onnx  # noqa: F401
        import onnxruntime

        self.ort = onnxruntime
        self.n_threads = n_threads

    def versions(self):
        import onnx

        return {"onnxruntime": self.ort.__version__, "onnx": onnx.__version__}

    def _session(self, K, R, b, T, B):
        ort = self.ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.n_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = onnx_lstm_model(K, R, b, T, B)
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def setup(self, row, data):
        kind = row["kind"]
        if kind not in ("infer", "step"):
            raise NotApplicable("ONNX Runtime has no training for the LSTM operator")
        K, R, b = data["kernel"], data["recurrent_kernel"], data["bias"]
        if K.dtype != np.float32:
            # its CPU kernel says "LSTM operator does not support double yet"
            raise NotApplicable("ONNX Runtime's LSTM operator runs float32 only")
        H = R.shape[0]
        if kind == "infer":
            B, T, _ = data["x"].shape
            session = self._session(K, R, b, T, B)
            # time-major input, prepared once outside the timed call (layout=0)
            xT = np.ascontiguousarray(data["x"].transpose(1, 0, 2))
            zeros = np.zeros((1, B, H), K.dtype)
            feeds = {"X": xT, "initial_h": zeros, "initial_c": zeros}

            def call():
                return session.run(["Y"], feeds)[0]

            def check():  # Y is (T, 1, B, H)
                return {"y": call()[:, 0].transpose(1, 0, 2).copy()}

            return Case(call, check)
        xs = data["x_steps"][:, None]  # (S, 1, B, I): T = 1
        B = xs.shape[2]
        session = self._session(K, R, b, 1, B)
        zeros = np.zeros((1, B, H), K.dtype)
        state = {"hc": (zeros, zeros), "k": 0}

        def call():
            k = state["k"]
            h, c = state["hc"]
            state["hc"] = session.run(
                ["Y_h", "Y_c"], {"X": xs[k % len(xs)], "initial_h": h, "initial_c": c}
            )
            state["k"] = k + 1

        def check():
            h, c = zeros, zeros
            hs = []
            for x_t in xs:
                h, c = session.run(["Y_h", "Y_c"], {"X": x_t, "initial_h": h, "initial_c": c})
                hs.append(h[0].copy())
            return {"h": np.stack(hs), "c": c[0].copy()}

        return Case(call, check)


def onnx_lstm_model(kernel, recurrent_kernel, bias, T, B):
    """Serialized ONNX model of one forward LSTM with Keras weights, fixed shapes.

    Inputs X (T, B, I), initial_h and initial_c (1, B, H); outputs Y (T, 1, B, H),
    Y_h and Y_c (1, B, H).
    """
    from onnx import TensorProto, helper, numpy_helper

    I, H = kernel.shape[0], recurrent_kernel.shape[0]
    onnx_order = [0, 3, 1, 2]  # Keras blocks i, f, c, o -> ONNX i, o, f, c

    def gates_first(w):  # (rows, 4H) Keras -> (4H, rows) ONNX
        rows = w.shape[0]
        return w.reshape(rows, 4, H)[:, onnx_order, :].reshape(rows, 4 * H).T

    W = gates_first(kernel)[None]
    R = gates_first(recurrent_kernel)[None]
    Wb = bias.reshape(4, H)[onnx_order].reshape(4 * H)
    B_ = np.concatenate([Wb, np.zeros_like(Wb)])[None]
    elem = TensorProto.DOUBLE if kernel.dtype == np.float64 else TensorProto.FLOAT
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R", "B", "", "initial_h", "initial_c"],
        ["Y", "Y_h", "Y_c"],
        hidden_size=H,
        layout=0,
    )
    graph = helper.make_graph(
        [node],
        "lstm",
        inputs=[
            helper.make_tensor_value_info("X", elem, [T, B, I]),
            helper.make_tensor_value_info("initial_h", elem, [1, B, H]),
            helper.make_tensor_value_info("initial_c", elem, [1, B, H]),
        ],
        outputs=[
            helper.make_tensor_value_info("Y", elem, [T, 1, B, H]),
            helper.make_tensor_value_info("Y_h", elem, [1, B, H]),
            helper.make_tensor_value_info("Y_c", elem, [1, B, H]),
        ],
        initializer=[
            numpy_helper.from_array(np.ascontiguousarray(W), "W"),
            numpy_helper.from_array(np.ascontiguousarray(R), "R"),
            numpy_helper.from_array(np.ascontiguousarray(B_), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8  # what ONNX Runtime releases of the last years all read
    return model.SerializeToString()
