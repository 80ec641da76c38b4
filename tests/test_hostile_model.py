"""Hostile input at the layers and at Sequential's fit / predict / evaluate / set_weights.

Documented behaviour asserted here:
- `fit` (and `train_on_batch`, `compute_gradients`) rejects NaN or Inf in x, y,
  sample_weight and validation data with a ValueError naming the argument,
  before any step: the weights are unchanged.
- `predict` (and `evaluate`, a layer call) does not check for NaN: NaN and Inf
  propagate through the engine exactly as in the NumPy reference, and only the
  samples that hold them are affected (every other row of the output is
  bit-identical to a prediction without them).
- Anything that is not an array of real numbers is a TypeError naming the
  argument; a bool, integer or float16 array or a nested list is converted to
  the model's dtype; a wrong rank, feature count or sample count is a
  ValueError naming the argument; every memory layout gives the same bits.
- A size that cannot be allocated is a MemoryError (views with zero strides
  claiming more than 2**48 bytes: nothing is ever touched).
"""

import re

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from lstm_fast import reference as ref
from lstm_fast import utils
from lstm_fast.layers import LSTM, Dense
from lstm_fast.models import Sequential

N, T, I, H = 10, 6, 3, 5  # noqa: E741 - the shape letters of DESIGN.md


def data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, I)).astype("float32")
    return x, (x.sum(axis=(1, 2))[:, None] / 4).astype("float32")


def model(seed=0):
    utils.set_random_seed(seed)
    m = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def reference_predict(m, x):
    k, r, b, wd, bd = (w.astype(np.float64) for w in m.get_weights())
    h = ref.lstm_forward(np.asarray(x, np.float64), k, r, b, return_sequences=False)[0]
    return h @ wd + bd


def huge(shape, dtype=np.float32):
    return as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


# ------------------------------------------------------------ fit rejects NaN / Inf


@pytest.mark.parametrize(
    "where, value",
    [("x", np.nan), ("x", np.inf), ("x", -np.inf), ("y", np.nan), ("y", np.inf),
     ("sample_weight", np.nan), ("validation_data[0]", np.nan), ("validation_data[1]", np.inf)],
)
def test_fit_rejects_non_finite_data_before_any_step(where, value):
    m = model()
    x, y = data()
    sw = np.ones(N, np.float32)
    xv, yv = x.copy(), y.copy()
    target = {"x": x, "y": y, "sample_weight": sw, "validation_data[0]": xv,
              "validation_data[1]": yv}[where]
    target.flat[7] = value
    before = m.get_weights()
    with pytest.raises(ValueError, match=re.escape(f"Expected {where} to hold only finite")):
        m.fit(x, y, sample_weight=sw, validation_data=(xv, yv), epochs=1, verbose=0)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert m.optimizer.iterations == 0


@pytest.mark.parametrize("method", ["train_on_batch", "compute_gradients"])
def test_single_batch_training_rejects_nan(method):
    m = model()
    x, y = data()
    x[3, 2, 1] = np.nan
    before = m.get_weights()
    with pytest.raises(ValueError, match="Expected x to hold only finite values"):
        getattr(m, method)(x, y)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ predict / evaluate propagate


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_predict_propagates_non_finite_only_in_its_sample(value):
    m = model()
    x, _ = data()
    clean = m.predict(x, batch_size=4, verbose=0)
    x[5, 3, 0] = value
    out = m.predict(x, batch_size=4, verbose=0)
    np.testing.assert_allclose(out, reference_predict(m, x), rtol=1e-5, atol=1e-6)
    rows = np.arange(N) != 5
    np.testing.assert_array_equal(out[rows], clean[rows])
    if np.isnan(value):
        assert np.isnan(out[5]).all()


def test_predict_with_nan_weights_is_nan_and_set_weights_restores():
    m = model()
    x, _ = data()
    good = m.get_weights()
    clean = m.predict(x, verbose=0)
    bad = [w.copy() for w in good]
    bad[1][0, 0] = np.nan  # recurrent_kernel
    m.set_weights(bad)
    assert np.isnan(m.predict(x, verbose=0)).all()
    m.set_weights(good)
    np.testing.assert_array_equal(m.predict(x, verbose=0), clean)


def test_evaluate_propagates_nan_targets():
    m = model()
    x, y = data()
    assert np.isfinite(m.evaluate(x, y, verbose=0))
    y[0, 0] = np.nan
    assert np.isnan(m.evaluate(x, y, verbose=0))


# ------------------------------------------------------------ dtypes and containers


@pytest.mark.parametrize("dtype", [object, str, complex, "datetime64[ns]"],
                         ids=["object", "str", "complex", "datetime"])
@pytest.mark.parametrize("method", ["predict", "fit", "evaluate"])
def test_non_numeric_x_is_a_type_error(method, dtype):
    m = model()
    x, y = data()
    bad = x.astype(dtype)
    with pytest.raises(TypeError, match=r"\bx\b"):
        if method == "predict":
            m.predict(bad, verbose=0)
        else:
            getattr(m, method)(bad, y, verbose=0)


@pytest.mark.parametrize("dtype", [object, str, complex])
def test_non_numeric_y_is_a_type_error(dtype):
    m = model()
    x, y = data()
    with pytest.raises(TypeError, match=r"\by\b"):
        m.fit(x, y.astype(dtype), verbose=0)


@pytest.mark.parametrize("container", [None, {"x": 1}, "abc", [[[1.0, 2.0, 3.0]], [[1.0]]]],
                         ids=["None", "dict", "str", "ragged"])
def test_predict_rejects_what_is_not_an_array(container):
    with pytest.raises((TypeError, ValueError), match=r"\bx\b"):
        model().predict(container, verbose=0)


@pytest.mark.parametrize(
    "convert",
    [lambda x: x > 0, lambda x: (x * 4).astype(np.int16), lambda x: x.astype(np.float16),
     lambda x: x.astype(np.float64), lambda x: x.tolist()],
    ids=["bool", "int16", "float16", "float64", "list"],
)
def test_convertible_inputs_predict_like_the_reference(convert):
    m = model()
    x = convert(data()[0])
    out = m.predict(x, verbose=0)
    assert out.dtype == np.float32 and out.shape == (N, 1)
    xr = np.asarray(x).astype(np.float32)
    np.testing.assert_allclose(out, reference_predict(m, xr), rtol=1e-5, atol=1e-6)


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": lambda a: np.repeat(a, 2, axis=0)[::2],
    "negative": lambda a: a[::-1].copy()[::-1],
    "readonly": lambda a: np.frombuffer(a.tobytes(), a.dtype).reshape(a.shape),
    "broadcast": None,
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_memory_layouts_predict_and_fit_the_same(layout):
    x, y = data()
    if layout == "broadcast":  # every sample is the same, all strides on axis 0 are 0
        x = np.broadcast_to(x[:1], x.shape)
        xl = x
        x = np.ascontiguousarray(x)
    else:
        xl = LAYOUTS[layout](x)
    np.testing.assert_array_equal(xl, x)
    assert not (xl.flags.c_contiguous and xl.flags.writeable)
    m1, m2 = model(), model()
    np.testing.assert_array_equal(m1.predict(xl, verbose=0), m2.predict(x, verbose=0))
    utils.set_random_seed(3)
    m1.fit(xl, y, epochs=1, batch_size=4, verbose=0)
    utils.set_random_seed(3)
    m2.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------ ranks, axes, counts


@pytest.mark.parametrize("shape", [(N, T), (N, T, I, 1), (N,), (N, T, I + 2)],
                         ids=["rank2", "rank4", "rank1", "features"])
@pytest.mark.parametrize("method", ["predict", "fit", "evaluate"])
def test_wrong_x_shape_names_x(method, shape):
    m = model()
    _, y = data()
    with pytest.raises(ValueError, match=r"\bx\b.*shape|x\.shape"):
        if method == "predict":
            m.predict(np.zeros(shape, np.float32), verbose=0)
        else:
            getattr(m, method)(np.zeros(shape, np.float32), y, verbose=0)


def test_scalar_x_is_rejected():
    with pytest.raises(ValueError, match="x"):
        model().predict(np.float32(1.0), verbose=0)


@pytest.mark.parametrize("y_shape", [(N + 1, 1), (N - 1,), (N, 1, 1, 1), (N, T, 1, 1)],
                         ids=["count+1", "count-1", "rank4", "rank4-time"])
def test_wrong_y_shape_names_y(y_shape):
    x, _ = data()
    with pytest.raises(ValueError, match=r"\by\b"):
        model().fit(x, np.zeros(y_shape, np.float32), verbose=0)


def test_empty_batch_predicts_an_empty_output_and_fit_refuses_it():
    m = model()
    out = m.predict(np.zeros((0, T, I), np.float32), verbose=0)
    assert out.shape == (0, 1)
    with pytest.raises(ValueError, match="at least one training sample"):
        m.fit(np.zeros((0, T, I), np.float32), np.zeros((0, 1), np.float32), verbose=0)


def test_zero_time_steps_give_the_initial_state_output():
    m = model()
    x = np.zeros((4, 0, I), np.float32)
    out = m.predict(x, verbose=0)
    np.testing.assert_allclose(out, reference_predict(m, x), rtol=1e-6, atol=1e-7)


def test_zero_features_is_rejected():
    with pytest.raises(ValueError, match="x"):
        model().predict(np.zeros((2, T, 0), np.float32), verbose=0)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "32", True])
def test_bad_batch_size(batch_size):
    x, y = data()
    with pytest.raises(ValueError, match="batch_size"):
        model().predict(x, batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model().fit(x, y, batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("epochs", [-1, 1.5, "2", None])
def test_bad_epochs(epochs):
    x, y = data()
    with pytest.raises(ValueError, match="epochs"):
        model().fit(x, y, epochs=epochs, verbose=0)


def test_sample_weight_of_wrong_length():
    x, y = data()
    with pytest.raises(ValueError, match="sample_weight"):
        model().fit(x, y, sample_weight=np.ones(N + 2), verbose=0)


# ------------------------------------------------------------ set_weights


def test_set_weights_wrong_count():
    m = model()
    w = m.get_weights()
    with pytest.raises(ValueError, match="list of 5 weight arrays"):
        m.set_weights(w[:-1])
    with pytest.raises(ValueError, match="list of 5 weight arrays"):
        m.set_weights(w + [w[-1]])


@pytest.mark.parametrize(
    "index, bad",
    [(0, lambda w: w.T), (1, lambda w: w[:, :-1]), (2, lambda w: w[:, None]),
     (3, lambda w: w.ravel()), (4, lambda w: np.float32(0)), (0, lambda w: None)],
    ids=["kernel-transposed", "recurrent-narrow", "bias-2d", "dense-flat", "scalar", "None"],
)
def test_set_weights_wrong_shape_names_the_weight_and_changes_nothing(index, bad):
    m = model()
    w = m.get_weights()
    names = ["kernel", "recurrent_kernel", "bias", "kernel", "bias"]
    broken = list(w)
    broken[index] = bad(w[index])
    # a later weight is valid but must not be written either: all-or-nothing
    broken[0] = broken[0] + 1 if index != 0 else broken[0]
    with pytest.raises(ValueError, match=rf"weight '{names[index]}'"):
        m.set_weights(broken)
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [complex, str, object])
def test_set_weights_non_real_dtype_is_rejected_all_or_nothing(dtype):
    m = model()
    w = m.get_weights()
    with pytest.raises(TypeError, match="recurrent_kernel"):
        m.set_weights([w[0] + 1, w[1].astype(dtype)] + w[2:])
    for a, b in zip(m.get_weights(), w):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [complex, str])
def test_layer_set_weights_non_real_dtype_is_rejected(dtype):
    layer = LSTM(H)
    layer(np.zeros((1, T, I), np.float32))
    w = layer.get_weights()
    with pytest.raises(TypeError, match="bias"):
        layer.set_weights(w[:2] + [w[2].astype(dtype)])


def test_set_weights_converts_float64_and_lists():
    m = model()
    w = m.get_weights()
    x, _ = data()
    out = m.predict(x, verbose=0)
    m.set_weights([w[0].astype(np.float64), w[1].tolist()] + w[2:])
    np.testing.assert_array_equal(m.predict(x, verbose=0), out)


def test_layer_set_weights_wrong_shape():
    layer = LSTM(H)
    layer(np.zeros((1, T, I), np.float32))
    w = layer.get_weights()
    with pytest.raises(ValueError, match="weight 'recurrent_kernel'"):
        layer.set_weights([w[0], w[1].T, w[2]])


# ------------------------------------------------------------ layers called directly


@pytest.mark.parametrize("dtype", [object, str, complex])
def test_layer_call_non_numeric(dtype):
    with pytest.raises(TypeError, match="dtype"):
        LSTM(H)(np.zeros((2, T, I)).astype(dtype))


@pytest.mark.parametrize("shape", [(2, T), (2, T, I, 1)])
def test_layer_call_wrong_rank(shape):
    with pytest.raises(ValueError, match="ndim=3"):
        LSTM(H)(np.zeros(shape, np.float32))


def test_layer_call_nan_matches_reference():
    utils.set_random_seed(0)
    layer = LSTM(H, return_sequences=True)
    x = data(4)[0]
    x[1, 0, 0] = np.nan
    y = layer(x)
    k, r, b = (w.astype(np.float64) for w in layer.get_weights())
    yr = ref.lstm_forward(x.astype(np.float64), k, r, b)[0]
    np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2, 3]]).all()


@pytest.mark.parametrize(
    "state, match",
    [([np.zeros((4, H + 1)), np.zeros((4, H))], "h0"),
     ([np.zeros((4, H)), np.zeros((3, H))], "c0"),
     (np.zeros((4, H)), "initial_state"),
     ([np.zeros((4, H))], "initial_state")],
    ids=["h-width", "c-batch", "array", "one"],
)
def test_layer_bad_initial_state(state, match):
    with pytest.raises(ValueError, match=match):
        LSTM(H)(np.zeros((4, T, I), np.float32), initial_state=state)


def test_layer_initial_state_with_inf_matches_reference():
    utils.set_random_seed(0)
    layer = LSTM(H)
    x = data(4)[0]
    h0 = np.zeros((4, H), np.float32)
    c0 = np.zeros((4, H), np.float32)
    c0[2] = np.inf
    y = layer(x, initial_state=[h0, c0])
    k, r, b = (w.astype(np.float64) for w in layer.get_weights())
    yr = ref.lstm_forward(x.astype(np.float64), k, r, b, h0, c0, return_sequences=False)[0]
    np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "mask, match",
    [(np.ones((4, T + 1), bool), "mask"),
     (np.array([[1, 0, 1, 1, 1, 1]] * 4, bool), "right-padded")],
    ids=["shape", "hole"],
)
def test_layer_bad_mask(mask, match):
    with pytest.raises(ValueError, match=match):
        LSTM(H)(np.zeros((4, T, I), np.float32), mask=mask)


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True, None])
def test_lstm_bad_units(units):
    with pytest.raises(ValueError, match="units"):
        LSTM(units)


@pytest.mark.parametrize("kwargs", [dict(dropout=1.0), dict(dropout=-0.1)])
def test_lstm_bad_dropout(kwargs):
    with pytest.raises(ValueError, match="dropout"):
        LSTM(H, **kwargs)


def test_dense_wrong_feature_count_after_build():
    d = Dense(2)
    d(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="axis -1"):
        d(np.zeros((3, 5), np.float32))


# ------------------------------------------------------------ absurd sizes


def test_predict_huge_input_is_a_memory_error():
    m = model()
    with pytest.raises(MemoryError):
        m.predict(huge((2**46, T, I)), batch_size=2**46, verbose=0)


def test_fit_huge_input_is_a_memory_error():
    m = model()
    x = huge((2**46, T, I))
    with pytest.raises(MemoryError):
        m.fit(x, huge((2**46, 1)), verbose=0)
    assert m.optimizer.iterations == 0


def test_model_still_works_after_a_memory_error():
    m = model()
    x, y = data()
    with pytest.raises(MemoryError):
        m.predict(huge((2**46, T, I)), verbose=0)
    np.testing.assert_allclose(m.predict(x, verbose=0), reference_predict(m, x), rtol=1e-5,
                               atol=1e-6)
