"""Saving: bit-exact round trips, and clear errors for damaged or foreign files."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from lstm_fast import losses, optimizers, saving
from lstm_fast.layers import LSTM, Bidirectional, Dense, Dropout, Embedding, Input
from lstm_fast.models import Sequential, load_model


def _data(seed=0, n=24, T=6, features=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, features)).astype(np.float32)
    y = rng.normal(size=(n, 1)).astype(np.float32)
    return x, y


def _trained_model(optimizer="adam", epochs=2):
    x, y = _data()
    model = Sequential(
        [LSTM(8, input_shape=(6, 3), return_sequences=True), LSTM(5), Dense(1, activation="tanh")]
    )
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0)
    return model


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u, v)  # bit-exact


@pytest.mark.parametrize(
    "optimizer",
    ["adam", optimizers.SGD(0.05, momentum=0.9, nesterov=True), optimizers.RMSprop(centered=True)],
)
def test_round_trip_is_bit_exact_and_training_continues_identically(tmp_path, optimizer):
    model = _trained_model(optimizer)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    _assert_same_weights(model, loaded)
    assert [type(layer).__name__ for layer in loaded.layers] == ["LSTM", "LSTM", "Dense"]
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    state_a, state_b = model.optimizer.variables(), loaded.optimizer.variables()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        np.testing.assert_array_equal(state_a[name], state_b[name])
    assert loaded.metrics_names == model.metrics_names
    x, y = _data(1)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    # one more epoch, same batches: the restored optimizer state gives the same steps
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    _assert_same_weights(model, loaded)


def test_embedding_bidirectional_model_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential(
        [
            Input(shape=(7,)),
            Embedding(20, 4, mask_zero=True),
            Bidirectional(LSTM(5, return_sequences=True, kernel_regularizer="l2"), "ave"),
            Dropout(0.1),
            LSTM(3),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizers.AdamW(global_clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        weighted_metrics=["acc"],
    )
    x = rng.integers(1, 20, size=(16, 7))
    x[:, 5:] = 0  # right padding, masked
    y = rng.integers(0, 2, size=16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "emb.keras")
    loaded = load_model(tmp_path / "emb.keras")
    _assert_same_weights(model, loaded)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    assert loaded.metrics_names == ["loss", "accuracy", "acc"]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_learning_rate_changed_during_training_is_saved(tmp_path):
    model = _trained_model()
    model.optimizer.learning_rate = 0.000123
    model.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras").optimizer.learning_rate == 0.000123


def test_float64_model_round_trip(tmp_path):
    model = Sequential([LSTM(4, input_shape=(3, 2), dtype="float64"), Dense(2, dtype="float64")])
    model.save(tmp_path / "m64.keras")
    loaded = load_model(tmp_path / "m64.keras")
    assert loaded.get_weights()[0].dtype == np.float64
    _assert_same_weights(model, loaded)
    assert loaded.optimizer is None


def test_uncompiled_or_compile_false(tmp_path):
    model = _trained_model()
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    _assert_same_weights(model, loaded)
    assert loaded.optimizer is None


def test_custom_loss_saves_uncompiled_with_a_warning(tmp_path):
    class Quartic(losses.Loss):
        def call(self, y_true, y_pred):
            return np.mean((y_pred - y_true) ** 4, axis=-1)

        def call_gradient(self, y_true, y_pred):
            e = y_pred - y_true
            return np.mean(e**4, axis=-1), 4 * e**3 / e.shape[-1]

    x, y = _data()
    model = Sequential([LSTM(4, input_shape=(6, 3)), Dense(1)])
    model.compile(optimizer="sgd", loss=Quartic())
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="not a built-in loss"):
        model.save(tmp_path / "custom.keras")
    loaded = load_model(tmp_path / "custom.keras")
    _assert_same_weights(model, loaded)
    assert loaded.optimizer is None


def test_file_is_a_zip_with_versioned_json_header(tmp_path):
    model = _trained_model()
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("header.json"))
        names = zf.namelist()
    assert header["format"] == "lstm_fast.model" and header["version"] == saving.FORMAT_VERSION
    assert header["config"]["layers"]
    assert sum(n.startswith("weights/") for n in names) == len(model.get_weights())
    assert "optimizer/iterations.npy" in names
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    model = _trained_model()
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(saving, "_npy_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["m.keras"]


def test_overwrite_false(tmp_path):
    model = _trained_model()
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        saving.save_model(model, tmp_path / "m.keras", overwrite=False)


def test_save_and_load_weights(tmp_path):
    model = _trained_model()
    saving.save_weights(model, tmp_path / "w.weights")
    other = Sequential(
        [LSTM(8, input_shape=(6, 3), return_sequences=True), LSTM(5), Dense(1, activation="tanh")]
    )
    saving.load_weights(other, tmp_path / "w.weights")
    _assert_same_weights(model, other)
    wrong = Sequential([LSTM(7, input_shape=(6, 3)), Dense(1)])
    with pytest.raises(ValueError, match="do not fit the model"):
        saving.load_weights(wrong, tmp_path / "w.weights")
    with pytest.raises(ValueError, match="use load_weights"):
        load_model(tmp_path / "w.weights")


# ------------------------------------------------------------- bad files


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.keras"
    _trained_model().save(path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        load_model(tmp_path / "nope.keras")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.keras"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.keras.*is empty"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_truncated_file(saved, tmp_path, keep):
    data = saved.read_bytes()
    path = tmp_path / "truncated.keras"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="truncated.keras.*(truncated|corrupted)"):
        load_model(path)


def test_corrupted_bytes_are_detected(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("weights/00001.npy")
    # flip a byte inside the stored array data: the zip CRC catches it
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[pos] ^= 0xFF
    path = tmp_path / "corrupt.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt.keras.*(corrupted|truncated)"):
        load_model(path)


def test_foreign_files(tmp_path):
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match=r"array.npy.*NumPy \.npy"):
        load_model(npy)
    pkl = tmp_path / "obj.pkl"
    pkl.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="obj.pkl.*pickle"):
        load_model(pkl)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="other.zip.*without 'header.json'"):
        load_model(other_zip)
    keras_like = tmp_path / "k.keras"
    with zipfile.ZipFile(keras_like, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\x89HDF")
    with pytest.raises(ValueError, match="Keras .keras file"):
        load_model(keras_like)
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="notes.txt.*unknown file type"):
        load_model(text)


def _rewrite_header(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "header.json":
                header = json.loads(data)
                change(header)
                data = json.dumps(header).encode()
            zout.writestr(name, data)


def test_version_mismatch(saved, tmp_path):
    path = tmp_path / "future.keras"
    _rewrite_header(saved, path, lambda h: h.update(version=saving.FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="future.keras.*format version 2.*Expected version 1"):
        load_model(path)


def test_wrong_format_name(saved, tmp_path):
    path = tmp_path / "fmt.keras"
    _rewrite_header(saved, path, lambda h: h.update(format="something.else"))
    with pytest.raises(ValueError, match="fmt.keras.*format 'something.else'"):
        load_model(path)


def test_header_array_mismatch(saved, tmp_path):
    path = tmp_path / "lie.keras"
    _rewrite_header(saved, path, lambda h: h["weights"][0].update(shape=[1, 2]))
    with pytest.raises(ValueError, match="does not match its header"):
        load_model(path)


def test_pickled_object_array_is_refused(saved, tmp_path):
    # an .npy member holding a pickled object array must not be unpickled
    path = tmp_path / "evil.keras"
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():
            data = buf.getvalue() if name == "weights/00000.npy" else zin.read(name)
            zout.writestr(name, data)
    with pytest.raises(ValueError, match="evil.keras.*corrupted array"):
        load_model(path)
