"""Saving and loading models: a versioned zip container that executes no code.

Layout of a model file (a plain zip archive):

    header.json                 format name and version, the model config, the
                                list of weight arrays (name, shape, dtype), the
                                compile arguments and the optimizer state names
    weights/00000.npy ...       the weights in `model.get_weights()` order
    optimizer/<name>.npy        the optimizer state (moments, iterations, ...)

Arrays are `.npy` (little-endian, read with ``allow_pickle=False``) so loading
never runs code; the JSON header describes every array and is checked against
it. A file is written to a temporary file in the same directory, fsynced, then
renamed over the target (`os.replace`), so a crash never leaves a half-written
file under the target name. Truncated, corrupted, empty or foreign files, and
files of another format version, raise ValueError naming the path and what
was expected.

Example:

>>> from lstm_fast import saving
>>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
>>> model.compile(optimizer="adam", loss="mse")
>>> saving.save_model(model, "model.keras")             # or model.save("model.keras")
>>> restored = saving.load_model("model.keras")         # or lstm_fast.load_model(...)
>>> saving.save_weights(model, "model.weights.h5")      # or model.save_weights(...)
>>> saving.load_weights(restored, "model.weights.h5")

The ``.keras`` and ``.weights.h5`` names are customary only: the files are this
module's zip containers, not Keras's formats.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile

import numpy as np

__all__ = ["FORMAT_VERSION", "load_model", "load_weights", "save_model", "save_weights"]

MODEL_FORMAT = "lstm_fast.model"
WEIGHTS_FORMAT = "lstm_fast.weights"
FORMAT_VERSION = 1
HEADER = "header.json"
_MAX_HEADER_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------- container


def _npy_bytes(array):
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Only numeric arrays can be saved. Received: dtype={array.dtype}")
    little = np.array(array, dtype=array.dtype.newbyteorder("<"), order="C")
    buf = io.BytesIO()
    np.save(buf, little, allow_pickle=False)
    return buf.getvalue()


def _describe(array):
    array = np.asarray(array)
    return {"shape": list(array.shape), "dtype": array.dtype.newbyteorder("<").str}


def _write_atomic(path, header, arrays):
    """Write the zip container to `path` atomically.

    Args:
        header: JSON-serializable dict.
        arrays: list of (member name, ndarray).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    header_bytes = json.dumps(
        header, indent=1, sort_keys=True, allow_nan=False, default=_json_default
    ).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".lstm_fast", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(HEADER, header_bytes)
                for name, array in arrays:
                    zf.writestr(name, _npy_bytes(array))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _json_default(value):
    """NumPy scalars and small arrays in configs become plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(
        f"Cannot save a config value of type {type(value).__name__} ({value!r}): configs must "
        "hold JSON values (numbers, strings, lists, dicts)."
    )


def _sniff(head):
    """What a foreign file looks like, from its first bytes."""
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (e.g. a Keras .h5 file)"
    if head[:1] == b"\x80" or head.startswith((b"(dp", b"(lp", b"ccopy_reg")):
        return "a pickle file"
    if head.startswith(b"PK"):
        return "a zip archive"
    return "an unknown file type"


class _Reader:
    """Validated read access to a container; every error is a ValueError naming the path."""

    def __init__(self, path, expected_format):
        self.path = os.fspath(path)
        allowed = expected_format if isinstance(expected_format, tuple) else (expected_format,)
        expected_format = " or ".join(repr(f) for f in allowed)
        what = f"an lstm_fast file (format {expected_format}, version {FORMAT_VERSION})"
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"No such file: {self.path!r}. Expected {what}.")
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path!r} is a directory. Expected {what}.")
        size = os.path.getsize(self.path)
        if size == 0:
            raise ValueError(f"The file {self.path!r} is empty. Expected {what}.")
        with open(self.path, "rb") as f:
            head = f.read(16)
        if not head.startswith(b"PK"):
            raise ValueError(
                f"The file {self.path!r} is {_sniff(head)}, not {what} (a zip container)."
            )
        try:
            self.zf = zipfile.ZipFile(self.path, "r")
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
            raise ValueError(
                f"The file {self.path!r} is truncated or corrupted (not a readable zip "
                f"container: {e}). Expected {what}."
            ) from None
        try:
            self.names = set(self.zf.namelist())
            if HEADER not in self.names:
                hint = ""
                if "config.json" in self.names or "model.weights.h5" in self.names:
                    hint = " It looks like a Keras .keras file: load it with Keras and move the "
                    hint += "weights with `model.set_weights(keras_model.get_weights())`."
                raise ValueError(
                    f"The file {self.path!r} is a zip archive without '{HEADER}': not {what}."
                    + hint
                )
            info = self.zf.getinfo(HEADER)
            if info.file_size > _MAX_HEADER_BYTES:
                raise ValueError(f"The header of {self.path!r} is implausibly large.")
            raw = self._read(HEADER)
            try:
                header = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise ValueError(
                    f"The header of {self.path!r} is not valid JSON ({e}). Expected {what}."
                ) from None
            if not isinstance(header, dict):
                raise ValueError(f"The header of {self.path!r} is not a JSON object.")
            fmt, version = header.get("format"), header.get("version")
            if fmt not in allowed:
                raise ValueError(
                    f"The file {self.path!r} has format {fmt!r}. Expected format "
                    f"{expected_format}"
                    + (" (use load_model for a saved model)" if fmt == MODEL_FORMAT else "")
                    + (" (use load_weights for a weights file)" if fmt == WEIGHTS_FORMAT else "")
                    + "."
                )
            if version != FORMAT_VERSION:
                raise ValueError(
                    f"The file {self.path!r} has format version {version!r}; this version of "
                    f"lstm_fast reads version {FORMAT_VERSION}. Expected version "
                    f"{FORMAT_VERSION}."
                )
            self.header = header
        except BaseException:
            self.zf.close()
            raise

    def _read(self, name, max_bytes=None):
        """The bytes of member `name`; more than max_bytes is refused before it is
        inflated (a small deflated member can expand to gigabytes)."""
        try:
            with self.zf.open(name) as member:
                raw = member.read() if max_bytes is None else member.read(max_bytes + 1)
        except KeyError:
            raise ValueError(
                f"The file {self.path!r} is missing the member {name!r} listed in its header "
                "(truncated or corrupted)."
            ) from None
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
            raise ValueError(
                f"The file {self.path!r} is truncated or corrupted (member {name!r}: {e})."
            ) from None
        if max_bytes is not None and len(raw) > max_bytes:
            raise ValueError(
                f"The member {name!r} of {self.path!r} is larger than its header says "
                f"(more than {max_bytes} bytes): corrupted or hostile."
            )
        return raw

    def array(self, name, spec):
        """Read member `name` and check it against its header entry `spec`."""
        raw = self._read(name, max_bytes=self._expected_npy_bytes(name, spec))
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(
                f"The file {self.path!r} has a corrupted array {name!r} ({e})."
            ) from None
        if not isinstance(spec, dict):
            raise ValueError(f"The header of {self.path!r} has a bad entry for {name!r}.")
        if list(array.shape) != list(spec.get("shape", [])) or array.dtype.str != spec.get("dtype"):
            raise ValueError(
                f"The array {name!r} of {self.path!r} does not match its header: expected "
                f"shape={tuple(spec.get('shape', []))} dtype={spec.get('dtype')}. Received: "
                f"shape={array.shape} dtype={array.dtype.str}"
            )
        return array

    def _expected_npy_bytes(self, name, spec):
        """Upper bound of the .npy size that `spec` (shape, dtype) describes."""
        try:
            count = 1
            for n in spec["shape"]:
                if not isinstance(n, int) or n < 0:
                    raise TypeError(n)
                count *= n
            itemsize = np.dtype(spec["dtype"]).itemsize
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"The header of {self.path!r} has a bad entry for {name!r}.") from None
        return count * itemsize + 65536  # the .npy header and its padding are far smaller

    def close(self):
        self.zf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _weight_members(weights):
    return [(f"weights/{k:05d}.npy", w) for k, w in enumerate(weights)]


def _read_weights(reader):
    specs = reader.header.get("weights")
    if not isinstance(specs, list):
        raise ValueError(f"The header of {reader.path!r} has no list of weights.")
    return [reader.array(f"weights/{k:05d}.npy", spec) for k, spec in enumerate(specs)]


# ------------------------------------------------------------------ models


def _library_version():
    try:
        from . import __version__
    except ImportError:  # pragma: no cover
        return None
    return __version__


def _compile_config(model):
    """What `compile` was called with, when it can be serialized."""
    from . import losses, metrics, optimizers

    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        config = {"optimizer": optimizers.serialize(optimizer)}
    except TypeError as e:
        warnings.warn(
            f"The optimizer cannot be stored ({e}): the file keeps the architecture and "
            "weights, and load_model returns an uncompiled model.",
            stacklevel=3,
        )
        return None
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        config["loss"] = loss
    elif isinstance(loss, losses.Loss) and type(loss).__name__ in losses._CLASSES:
        config["loss"] = losses.serialize(loss)
    elif loss is not None:
        loss_obj = losses.get(loss)
        if type(loss_obj).__name__ not in losses._CLASSES:
            warnings.warn(
                f"The compiled loss {getattr(loss_obj, 'name', loss)!r} is not a built-in loss "
                "and cannot be stored: the file keeps the architecture and weights, and "
                "load_model returns an uncompiled model.",
                stacklevel=3,
            )
            return None
        config["loss"] = losses.serialize(loss_obj)
    config["metrics"] = _metric_configs(getattr(model, "compiled_metrics", None), metrics)
    config["weighted_metrics"] = _metric_configs(
        getattr(model, "_compiled_weighted_metrics", None), metrics
    )
    return config


def _metric_configs(metric_objects, metrics_module):
    """Serializable identifiers of compiled metrics (user functions cannot be stored)."""
    out = []
    for m in metric_objects or []:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, metrics_module.AutoAccuracy):
            out.append(m.name)  # 'accuracy' or 'acc': resolved again by shapes
        elif isinstance(m, metrics_module.Metric) and type(m).__name__ in metrics_module._CLASSES:
            out.append({"class_name": type(m).__name__, "config": m.get_config()})
        else:
            warnings.warn(
                f"The metric {getattr(m, 'name', m)!r} is not serializable and is not saved.",
                stacklevel=3,
            )
    return out


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Save a model (architecture, weights, compile arguments, optimizer state) to a file.

    Args:
        model: a `Sequential` model.
        filepath: destination path (any extension; '.keras' is customary).
        overwrite: if False and the file exists, raise FileExistsError.
        include_optimizer: also save the compile arguments and the optimizer state.

    The file is a versioned zip container read back by `load_model`; loading it
    executes no code. The write is atomic. A loss or learning rate that is a
    plain Python function cannot be stored: the file then keeps the
    architecture and weights (with a warning) and loads uncompiled. A metric
    that is a plain function is left out, with a warning.

    Example:

    >>> from lstm_fast import saving
    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> saving.save_model(model, "model.keras")
    >>> saving.save_model(model, "model.keras", overwrite=False)
    Traceback (most recent call last):
    ...
    FileExistsError: The file 'model.keras' exists and overwrite=False.
    """
    from . import optimizers

    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"The file {filepath!r} exists and overwrite=False.")
    weights = model.get_weights()
    header = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "lstm_fast_version": _library_version(),
        "class_name": type(model).__name__,
        "config": model.get_config(),
        "built": bool(getattr(model, "built", False)),
        "build_input_shape": _build_input_shape(model),
        "weights": [_describe(w) for w in weights],
    }
    members = _weight_members(weights)
    compile_config = _compile_config(model) if include_optimizer else None
    header["compile_config"] = compile_config
    header["optimizer_state"] = None
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and isinstance(optimizer, optimizers.Optimizer) and optimizer.built:
        state = optimizer.variables()
        header["optimizer_state"] = {name: _describe(v) for name, v in state.items()}
        members += [(f"optimizer/{name}.npy", v) for name, v in sorted(state.items())]
    _write_atomic(filepath, header, members)


def _build_input_shape(model):
    shape = getattr(model, "_build_input_shape", None)
    if shape is None:
        shape = getattr(model, "build_input_shape", None)
    if shape is None:
        return None
    return [None if d is None else int(d) for d in shape]


def _model_class(class_name):
    from . import models

    cls = getattr(models, class_name, None)
    if not isinstance(cls, type) or not hasattr(cls, "from_config"):
        raise ValueError(
            f"Unknown model class in the file: class_name={class_name!r}. Expected 'Sequential'."
        )
    return cls


def load_model(filepath, custom_objects=None, compile=True):
    """Load a model saved by `save_model` / `model.save`.

    Args:
        filepath: path of the file.
        custom_objects: optional {class_name: class} for user layers.
        compile: re-compile the model with the saved optimizer (state included),
            loss and metrics (default True).

    Returns:
        The model, with bit-exact weights and optimizer state.

    Raises:
        ValueError: the file is truncated, corrupted, empty, of another format
            or of another format version.

    Example:

    >>> from lstm_fast import saving
    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> model.save("model.keras")
    >>> restored = saving.load_model("model.keras")
    >>> x = np.ones((2, 5, 3), dtype="float32")
    >>> np.array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    True
    >>> restored.optimizer
    <Adam name='adam' learning_rate=0.001>
    """
    with _Reader(filepath, MODEL_FORMAT) as reader:
        header = reader.header
        weights = _read_weights(reader)
        state = None
        state_specs = header.get("optimizer_state")
        if compile and state_specs:
            state = {
                name: reader.array(f"optimizer/{name}.npy", spec)
                for name, spec in state_specs.items()
            }
    path = reader.path
    cls = _model_class(header.get("class_name"))
    try:
        if custom_objects is not None:
            model = cls.from_config(header["config"], custom_objects=custom_objects)
        else:
            model = cls.from_config(header["config"])
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        raise ValueError(f"The model config in {path!r} could not be rebuilt: {e}") from e
    if weights and not getattr(model, "built", False):
        shape = header.get("build_input_shape")
        if shape is None:
            raise ValueError(
                f"The file {path!r} holds weights but no input shape to build the model with."
            )
        model.build(tuple(shape))
    if weights:
        model.set_weights(weights)
    compile_config = header.get("compile_config")
    if compile and compile_config:
        _compile_from_config(model, compile_config, state, path)
    return model


def _compile_from_config(model, config, state, path):
    from . import losses, metrics, optimizers

    optimizer = optimizers.deserialize(config["optimizer"])
    if state is not None:
        # restored at build (now if compile builds it, else at the first step)
        optimizer.set_variables(state)
    loss = config.get("loss")
    if isinstance(loss, dict):
        loss = losses.deserialize(loss)

    def metric_list(key):
        values = [metrics.get(m) if isinstance(m, dict) else m for m in config.get(key) or []]
        return values or None

    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=metric_list("metrics"),
        weighted_metrics=metric_list("weighted_metrics"),
    )
    if state is not None and getattr(optimizer, "_pending_state", None) is not None:
        _build_optimizer_for(model, optimizer)
    if state is not None and optimizer.built and optimizer.iterations != int(state["iterations"]):
        raise ValueError(f"The optimizer state of {path!r} could not be restored.")


def _build_optimizer_for(model, optimizer):
    """Build the optimizer on the model's flat parameters, if the model knows how."""
    build = getattr(model, "_build_optimizer", None)
    if callable(build):
        build()


# ----------------------------------------------------------------- weights


def save_weights(model, filepath, overwrite=True):
    """Save only the weights (in `get_weights()` order) to a versioned container.

    Args:
        model: a built model (or layer).
        filepath: destination path.
        overwrite: if False and the file exists, raise FileExistsError.

    Example:

    >>> from lstm_fast import saving
    >>> model = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)), lstm_fast.Dense(1)])
    >>> saving.save_weights(model, "model.weights.h5")
    """
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"The file {filepath!r} exists and overwrite=False.")
    weights = model.get_weights()
    header = {
        "format": WEIGHTS_FORMAT,
        "version": FORMAT_VERSION,
        "lstm_fast_version": _library_version(),
        "class_name": type(model).__name__,
        "weights": [_describe(w) for w in weights],
    }
    _write_atomic(filepath, header, _weight_members(weights))


def load_weights(model, filepath):
    """Load weights saved by `save_weights` (or `save_model`) into a built model.

    Args:
        model: a model with the same architecture.
        filepath: path of the file.

    Example:

    >>> from lstm_fast import saving
    >>> def make_model():
    ...     return lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(5, 3)),
    ...                                  lstm_fast.Dense(1)])
    >>> model, copy = make_model(), make_model()
    >>> saving.save_weights(model, "model.weights.h5")
    >>> saving.load_weights(copy, "model.weights.h5")
    >>> all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), model.get_weights()))
    True
    """
    with _Reader(filepath, (WEIGHTS_FORMAT, MODEL_FORMAT)) as reader:
        weights = _read_weights(reader)
        path = reader.path
    current = model.get_weights()
    if len(current) != len(weights) or any(a.shape != b.shape for a, b in zip(current, weights)):
        raise ValueError(
            f"The weights in {path!r} do not fit the model: expected shapes "
            f"{[a.shape for a in current]}. Received: {[b.shape for b in weights]}"
        )
    model.set_weights(weights)
