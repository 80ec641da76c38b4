"""Sequential.compile / fit / evaluate / predict: Keras behaviours and bad input."""

import contextlib
import io

import numpy as np
import pytest

import lstm_fast as lf
from lstm_fast import optimizers, utils
from lstm_fast.layers import LSTM, Bidirectional, Dense, Dropout, Embedding, Input
from lstm_fast.models import Sequential


def data(n=64, T=5, I=3, seed=0):  # noqa: E741 - shape letters
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, I)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] / 4  # learnable target
    return x, y.astype("float32")


def model_(units=8, **compile_kwargs):
    m = Sequential([LSTM(units, input_shape=(5, 3)), Dense(1)])
    m.compile(**{"optimizer": "adam", "loss": "mse", **compile_kwargs})
    return m


def test_public_imports():
    assert lf.Sequential is Sequential
    assert lf.models.Sequential is Sequential
    assert lf.layers.LSTM is LSTM and lf.LSTM is LSTM
    for name in ("callbacks", "optimizers", "losses", "metrics", "utils", "Dense", "Dropout",
                 "Embedding", "Masking", "Bidirectional", "Input"):
        assert hasattr(lf, name)


def test_fit_reduces_loss_and_fills_history():
    utils.set_random_seed(0)
    x, y = data(128)
    m = model_(optimizer=optimizers.Adam(0.02), metrics=["mae"])
    h = m.fit(x, y, epochs=6, batch_size=16, validation_split=0.25, verbose=0)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert all(len(v) == 6 for v in h.history.values())
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert m.history is h and h.epoch == list(range(6))


def test_validation_split_uses_the_last_samples():
    utils.set_random_seed(1)
    x, y = data(40)
    m = model_()
    h = m.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, verbose=0)
    # val_loss is computed at the end of the epoch on x[30:]
    np.testing.assert_allclose(h.history["val_loss"][0], m.evaluate(x[30:], y[30:], verbose=0),
                               rtol=1e-5)
    h2 = m.fit(x, y, epochs=1, validation_data=(x[:5], y[:5]), verbose=0)
    np.testing.assert_allclose(h2.history["val_loss"][0], m.evaluate(x[:5], y[:5], verbose=0),
                               rtol=1e-5)


def test_seeded_fit_is_reproducible():
    results = []
    for _ in range(2):
        utils.set_random_seed(3)
        x, y = data(32)
        m = model_()
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        results.append(m.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_loss_is_sample_weighted_sum_over_batch_size():
    m = model_()
    x, y = data(8)
    y_pred = m.predict(x, verbose=0)
    w = np.arange(8, dtype="float32")
    per_sample = ((y - y_pred) ** 2)[:, 0]
    expected = (w * per_sample).sum() / 8
    np.testing.assert_allclose(m.test_on_batch(x, y, sample_weight=w), expected, rtol=1e-5)
    np.testing.assert_allclose(m.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0),
                               expected, rtol=1e-5)


def test_class_weight_equals_the_matching_sample_weight():
    utils.set_random_seed(4)
    x, _ = data(16)
    labels = (x[:, 0, 0] > 0).astype("int64")
    weights = {0: 0.5, 1: 3.0}
    a = Sequential([LSTM(4, input_shape=(5, 3)), Dense(2, activation="softmax")])
    b = Sequential([LSTM(4, input_shape=(5, 3)), Dense(2, activation="softmax")])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    la = a.train_on_batch(x, labels, class_weight=weights)
    lb = b.train_on_batch(x, labels, sample_weight=np.where(labels == 1, 3.0, 0.5))
    np.testing.assert_allclose(la, lb, rtol=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_evaluate_and_train_on_batch_return_types():
    x, y = data(10)
    m = model_(metrics=["mae", "mse"])
    values = m.evaluate(x, y, verbose=0)
    assert isinstance(values, list) and len(values) == 3
    logs = m.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "mae", "mse"]
    np.testing.assert_allclose(logs["loss"], logs["mse"], rtol=1e-5)
    y_pred = m.predict(x, verbose=0)
    np.testing.assert_allclose(logs["mae"], np.abs(y - y_pred).mean(), rtol=1e-5)
    assert isinstance(model_().evaluate(x, y, verbose=0), float)
    assert isinstance(m.train_on_batch(x, y), list)
    assert set(m.train_on_batch(x, y, return_dict=True)) == {"loss", "mae", "mse"}


def test_predict_batches_agree_and_initial_epoch():
    x, y = data(23)
    m = model_()
    np.testing.assert_allclose(m.predict(x, batch_size=5, verbose=0), m.predict_on_batch(x),
                               rtol=1e-6)
    h = m.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert h.epoch == [3, 4]


def test_model_builds_lazily_from_data():
    m = Sequential()
    m.add(LSTM(4))
    m.add(Dense(2))
    assert not m.built
    with pytest.raises(ValueError, match="not yet been built"):
        m.summary()
    out = m.predict(np.ones((3, 6, 5), "float32"), verbose=0)
    assert out.shape == (3, 2) and m.built and m.input_shape == (None, 6, 5)


def test_embedding_bidirectional_dropout_model_trains():
    utils.set_random_seed(5)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 20, (64, 7))
    ids[:32, 5:] = 0  # padding at the end
    labels = (ids[:, 0] > 10).astype("float32")
    m = Sequential([
        Embedding(20, 8, mask_zero=True),
        Bidirectional(LSTM(6, return_sequences=True)),
        Dropout(0.1),
        LSTM(4),
        Dense(1, activation="sigmoid"),
    ])
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = m.fit(ids, labels, epochs=8, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert 0.0 <= h.history["accuracy"][-1] <= 1.0


def test_stateful_model_and_reset_states():
    m = Sequential([LSTM(3, stateful=True, batch_input_shape=(4, 5, 3)), Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    x, y = data(8)
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    first = m.predict(x[:4], batch_size=4, verbose=0)
    second = m.predict(x[:4], batch_size=4, verbose=0)
    assert not np.allclose(first, second)  # the state carried over
    m.reset_states()
    m.layers[0].reset_states()
    third = m.predict(x[:4], batch_size=4, verbose=0)
    m.reset_states()
    np.testing.assert_allclose(third, m.predict(x[:4], batch_size=4, verbose=0), rtol=1e-6)


def test_frozen_layer_keeps_its_weights():
    x, y = data(16)
    m = model_()
    m.layers[0].trainable = False
    before = m.layers[0].get_weights()
    dense_before = m.layers[1].get_weights()
    m.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(before, m.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(dense_before[0], m.layers[1].kernel)


def test_summary_table():
    m = Sequential([LSTM(50, input_shape=(20, 10), return_sequences=True), Dense(1)])
    out = io.StringIO()
    m.summary(print_fn=lambda line: out.write(line + "\n"))
    text = out.getvalue()
    assert "(None, 20, 50)" in text and "12200" in text and "51" in text
    assert "Total params: 12,251" in text and "Non-trainable params: 0" in text


def test_config_and_weights_round_trip():
    m = Sequential([Input(shape=(5, 3)), LSTM(4, return_sequences=True), Dense(2)])
    clone = Sequential.from_config(m.get_config())
    assert [type(layer) for layer in clone.layers] == [LSTM, Dense]
    clone.set_weights(m.get_weights())
    x = data(4)[0]
    np.testing.assert_array_equal(clone.predict(x, verbose=0), m.predict(x, verbose=0))
    with pytest.raises(ValueError, match="list of 5"):
        m.set_weights(m.get_weights()[:2])
    with pytest.raises(ValueError, match="shape"):
        m.set_weights([np.zeros((1, 1))] * 5)


def test_save_weights_and_load_weights(tmp_path):
    m = model_()
    path = tmp_path / "w.npz"
    m.save_weights(path)
    other = model_()
    other.load_weights(path)
    for a, b in zip(m.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_verbose_outputs():
    x, y = data(20)
    m = model_()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        m.fit(x, y, epochs=2, batch_size=8, verbose=2)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("3/3 - ") and "step - loss: " in lines[1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        m.fit(x, y, epochs=1, batch_size=8, verbose=1, validation_split=0.2)
    text = out.getvalue()
    assert "2/2 [==============================]" in text and "val_loss: " in text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        m.fit(x, y, epochs=1, verbose=0)
        m.predict(x, verbose=0)
    assert out.getvalue() == ""


# ------------------------------------------------------------------ bad input


def test_fit_before_compile():
    m = Sequential([LSTM(2, input_shape=(5, 3)), Dense(1)])
    with pytest.raises(RuntimeError, match="compile"):
        m.fit(*data(4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "adamx"}, "adamx"),
        ({"loss": "mean_sqared_error"}, "mean_sqared_error"),
        ({"metrics": ["acurracy"]}, "acurracy"),
        ({"loss": None}, "loss=None"),
    ],
)
def test_unknown_names_list_the_choices(kwargs, match):
    m = Sequential([LSTM(2, input_shape=(5, 3)), Dense(1)])
    with pytest.raises(ValueError, match=match) as info:
        m.compile(**{"optimizer": "adam", "loss": "mse", **kwargs})
    if kwargs.get("loss", "mse") is not None:
        assert "Expected" in str(info.value)


def test_bad_data_is_rejected_before_any_step():
    m = model_()
    x, y = data(10)
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"same number of samples.*x.shape=\(10, 5, 3\)"):
        m.fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match=r"rank 3.*Received: x.shape=\(10, 15\)"):
        m.fit(x.reshape(10, 15), y, verbose=0)
    with pytest.raises(ValueError, match="3 features"):
        m.fit(x[..., :2], y, verbose=0)
    bad = x.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"finite.*x with 1 NaN.*\(3, 2, 1\)"):
        m.fit(bad, y, verbose=0)
    bad_y = y.copy()
    bad_y[0] = np.inf
    with pytest.raises(ValueError, match="y with 0 NaN and 1 infinite"):
        m.fit(x, bad_y, verbose=0)
    with pytest.raises(ValueError, match="y of rank"):
        m.fit(x, np.ones((10, 2, 3, 4)), verbose=0)
    two = Sequential([LSTM(2, input_shape=(5, 3)), Dense(2)])
    two.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="compatible with the model output"):
        two.fit(x, np.ones((10, 3)), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(x, y, validation_data=(x,), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        m.fit(x, y, sample_weight=np.ones(3), verbose=0)
    with pytest.raises(TypeError, match="numeric"):
        m.fit(np.array(["a"] * 10), y, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        m.fit(x, y, verbose=3)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)  # no training step ran


def test_bad_model_structure():
    with pytest.raises(TypeError, match="lstm_fast layer"):
        Sequential(["LSTM"])
    with pytest.raises(ValueError, match="return_state"):
        Sequential([LSTM(2, return_state=True)])
    with pytest.raises(ValueError, match="unique names"):
        Sequential([Dense(2, name="d"), Dense(2, name="d")])
    with pytest.raises(ValueError, match="no layers"):
        Sequential().predict(np.ones((1, 2)))
    with pytest.raises(ValueError, match="3-D"):
        Sequential([LSTM(2)]).predict(np.ones((4, 3)))
