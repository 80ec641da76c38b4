"""Losses: values against hand formulas and Keras's documented numbers; gradients
against central finite differences in float64."""

import warnings

import numpy as np
import pytest

from lstm_fast import losses

FD_STEP = 1e-6
FD_RTOL, FD_ATOL = 1e-6, 1e-9  # central differences in float64


def numeric_grad(fn, y_pred):
    grad = np.zeros_like(y_pred)
    flat, gflat = y_pred.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + FD_STEP
        up = fn(y_pred)
        flat[k] = orig - FD_STEP
        down = fn(y_pred)
        flat[k] = orig
        gflat[k] = (up - down) / (2 * FD_STEP)
    return grad


# ------------------------------------------------------------------ known numbers
# (the examples of Keras's documentation, with its printed rounding)


def test_keras_documented_values():
    y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    y_pred = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert losses.get("mse")(y_true, y_pred) == pytest.approx(0.5, abs=1e-12)
    assert losses.get("mae")(y_true, y_pred) == pytest.approx(0.5, abs=1e-12)
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    assert losses.BinaryCrossentropy()(y_true, y_pred) == pytest.approx(0.815, abs=5e-4)
    assert losses.Huber()(y_true, y_pred) == pytest.approx(0.155, abs=5e-4)
    logits = np.array([-18.6, 0.51, 2.94, -12.8])
    assert losses.BinaryCrossentropy(from_logits=True)(
        np.array([0.0, 1.0, 0.0, 0.0]), logits
    ) == pytest.approx(0.865, abs=5e-4)
    probs = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    onehot = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert losses.get("categorical_crossentropy")(onehot, probs) == pytest.approx(1.177, abs=5e-4)
    assert losses.get("SparseCategoricalCrossentropy")(np.array([1, 2]), probs) == pytest.approx(
        1.177, abs=5e-4
    )


# ------------------------------------------------------------------ hand formulas


def _rng_data(seed=0, shape=(3, 4, 5)):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=shape), rng.normal(size=shape)


def test_mse_mae_huber_hand_formulas():
    _, t, p = _rng_data()
    e = p - t
    np.testing.assert_allclose(losses.get("mse")(t, p), np.mean(e**2), rtol=1e-14)
    np.testing.assert_allclose(losses.get("mae")(t, p), np.mean(np.abs(e)), rtol=1e-14)
    d = 0.7
    hub = np.where(np.abs(e) <= d, 0.5 * e**2, d * np.abs(e) - 0.5 * d**2)
    np.testing.assert_allclose(losses.Huber(delta=d)(t, p), np.mean(hub), rtol=1e-14)


def test_crossentropy_hand_formulas():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, size=(4, 3))
    t = rng.integers(0, 2, size=(4, 3)).astype(float)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(losses.BinaryCrossentropy()(t, p), bce.mean(), rtol=1e-14)
    ls = 0.2
    ts = t * (1 - ls) + 0.5 * ls
    bce_s = -(ts * np.log(p) + (1 - ts) * np.log(1 - p))
    np.testing.assert_allclose(
        losses.BinaryCrossentropy(label_smoothing=ls)(t, p), bce_s.mean(), rtol=1e-14
    )
    x = rng.normal(size=(4, 3)) * 3
    s = 1 / (1 + np.exp(-x))
    bce_l = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    np.testing.assert_allclose(
        losses.BinaryCrossentropy(from_logits=True)(t, x), bce_l.mean(), rtol=1e-12
    )
    labels = rng.integers(0, 3, size=4)
    onehot = np.eye(3)[labels]
    soft = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    cce = -np.log(soft[np.arange(4), labels])
    np.testing.assert_allclose(
        losses.CategoricalCrossentropy(from_logits=True)(onehot, x), cce.mean(), rtol=1e-12
    )
    np.testing.assert_allclose(
        losses.SparseCategoricalCrossentropy(from_logits=True)(labels, x), cce.mean(), rtol=1e-12
    )
    np.testing.assert_allclose(
        losses.SparseCategoricalCrossentropy()(labels[:, None], soft), cce.mean(), rtol=1e-12
    )
    ts = onehot * (1 - ls) + ls / 3
    cce_s = -(ts * np.log(soft)).sum(-1)
    np.testing.assert_allclose(
        losses.CategoricalCrossentropy(label_smoothing=ls)(onehot, soft), cce_s.mean(), rtol=1e-12
    )


def test_probabilities_are_clipped_with_epsilon():
    # log(0) would be -inf: Keras clips to [1e-7, 1 - 1e-7]
    value = losses.BinaryCrossentropy()(np.array([[1.0]]), np.array([[0.0]]))
    assert value == pytest.approx(-np.log(1e-7), rel=1e-9)
    value = losses.CategoricalCrossentropy()(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert value == pytest.approx(-np.log(1e-7), rel=1e-9)


def test_seed_example_shapes_squeeze_and_broadcast():
    # y (N, 1) against a prediction (N, T, 1): every step is compared with y
    rng = np.random.default_rng(2)
    y = rng.normal(size=(6, 1))
    pred = rng.normal(size=(6, 5, 1))
    expected = np.mean((pred[..., 0] - y) ** 2)
    loss, grad = losses.get("mse").value_and_gradient(y, pred)
    assert loss == pytest.approx(expected, rel=1e-14)
    assert grad.shape == pred.shape
    np.testing.assert_allclose(grad[..., 0], 2 * (pred[..., 0] - y) / pred[..., 0].size, rtol=1e-14)


def test_sample_weight_reduction_is_sum_over_batch_size():
    rng = np.random.default_rng(3)
    t, p = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    w = np.array([1.0, 0.0, 2.0, 0.5])
    per_sample = np.mean((p - t) ** 2, axis=-1)
    assert losses.get("mse")(t, p, sample_weight=w) == pytest.approx(
        np.sum(per_sample * w) / 4, rel=1e-14
    )
    # a (B,) weight applies to every step of a sequence loss
    t3, p3 = rng.normal(size=(4, 5, 2)), rng.normal(size=(4, 5, 2))
    per_step = np.mean((p3 - t3) ** 2, axis=-1)
    assert losses.get("mse")(t3, p3, sample_weight=w) == pytest.approx(
        np.sum(per_step * w[:, None]) / per_step.size, rel=1e-14
    )


def test_float32_stays_float32():
    t = np.zeros((2, 3), np.float32)
    p = np.ones((2, 3), np.float32)
    _, grad = losses.get("mse").value_and_gradient(t, p)
    assert grad.dtype == np.float32


# ------------------------------------------------------------- finite differences

GRAD_CASES = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {}),
    ("binary_crossentropy", {}),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1}),
    ("categorical_crossentropy", {}),
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ("sparse_categorical_crossentropy", {}),
    ("sparse_categorical_crossentropy", {"from_logits": True}),
]

_CLASS = {
    "mse": losses.MeanSquaredError,
    "mae": losses.MeanAbsoluteError,
    "huber": losses.Huber,
    "binary_crossentropy": losses.BinaryCrossentropy,
    "categorical_crossentropy": losses.CategoricalCrossentropy,
    "sparse_categorical_crossentropy": losses.SparseCategoricalCrossentropy,
}


def _grad_data(name, kwargs, seed):
    rng = np.random.default_rng(seed)
    shape = (3, 4, 5)
    logits = kwargs.get("from_logits", False)
    if name in ("mse", "mae", "huber"):
        p = rng.normal(size=shape) * 1.5
        t = rng.normal(size=shape)
    elif name == "binary_crossentropy":
        t = rng.integers(0, 2, size=shape).astype(float)
        p = rng.normal(size=shape) * 2 if logits else rng.uniform(0.05, 0.95, size=shape)
    else:
        labels = rng.integers(0, shape[-1], size=shape[:-1])
        t = labels if name.startswith("sparse") else np.eye(shape[-1])[labels]
        # unnormalized positive scores: the probability losses normalize them
        p = rng.normal(size=shape) * 2 if logits else rng.uniform(0.05, 1.0, size=shape)
    w = rng.uniform(0.0, 2.0, size=shape[0])
    return t, p, w


@pytest.mark.parametrize("name,kwargs", GRAD_CASES)
def test_gradient_matches_finite_differences(name, kwargs):
    loss = _CLASS[name](**kwargs)
    for seed, use_weight in ((0, False), (1, True)):
        t, p, w = _grad_data(name, kwargs, seed)
        sw = w if use_weight else None
        value, grad = loss.value_and_gradient(t, p, sample_weight=sw)
        assert value == pytest.approx(loss(t, p, sample_weight=sw), rel=1e-14)
        expected = numeric_grad(lambda q, t=t, sw=sw: loss(t, q, sample_weight=sw), p.copy())
        np.testing.assert_allclose(grad, expected, rtol=FD_RTOL, atol=FD_ATOL)


def test_gradient_with_squeezed_prediction_matches_finite_differences():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(4, 1))
    pred = rng.normal(size=(4, 3, 1))
    for loss in (losses.MeanSquaredError(), losses.Huber(delta=0.5), losses.MeanAbsoluteError()):
        _, grad = loss.value_and_gradient(y, pred)
        expected = numeric_grad(lambda q, loss=loss: loss(y, q), pred.copy())
        np.testing.assert_allclose(grad, expected, rtol=FD_RTOL, atol=FD_ATOL)


# --------------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    "identifier,cls",
    [
        ("mse", losses.MeanSquaredError),
        ("MSE", losses.MeanSquaredError),
        ("mean_squared_error", losses.MeanSquaredError),
        ("MeanSquaredError", losses.MeanSquaredError),
        ("mae", losses.MeanAbsoluteError),
        ("mean_absolute_error", losses.MeanAbsoluteError),
        ("huber", losses.Huber),
        ("Huber", losses.Huber),
        ("binary_crossentropy", losses.BinaryCrossentropy),
        ("categorical_crossentropy", losses.CategoricalCrossentropy),
        ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy),
        (losses.mean_squared_error, losses.MeanSquaredError),
    ],
)
def test_get_by_name(identifier, cls):
    assert isinstance(losses.get(identifier), cls)


def test_unknown_loss_lists_choices():
    with pytest.raises(ValueError, match="Unknown loss.*'mse'"):
        losses.get("msq")


def test_config_round_trip():
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)
    clone = losses.get(losses.serialize(loss))
    assert isinstance(clone, losses.BinaryCrossentropy)
    assert clone.get_config() == loss.get_config()


def test_plain_callable_value_only():
    loss = losses.get(lambda t, p: np.mean(np.abs(p - t) ** 3, axis=-1))
    t, p = np.zeros((2, 3)), np.ones((2, 3)) * 2
    assert loss(t, p) == pytest.approx(8.0)
    with pytest.raises(NotImplementedError, match="call_gradient"):
        loss.value_and_gradient(t, p)


def test_custom_loss_subclass_trains():
    class Quartic(losses.Loss):
        def call(self, y_true, y_pred):
            return np.mean((y_pred - y_true) ** 4, axis=-1)

        def call_gradient(self, y_true, y_pred):
            e = y_pred - y_true
            return np.mean(e**4, axis=-1), 4 * e**3 / e.shape[-1]

    t, p = np.zeros((2, 3)), np.full((2, 3), 0.5)
    value, grad = Quartic().value_and_gradient(t, p)
    assert value == pytest.approx(0.0625)
    np.testing.assert_allclose(grad, numeric_grad(lambda q: Quartic()(t, q), p.copy()), rtol=1e-6)


def test_sparse_labels_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        losses.get("sparse_categorical_crossentropy")(np.array([0, 3]), np.ones((2, 3)) / 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64])
@pytest.mark.parametrize("shape", [(32, 20, 1), (7, 5), (3, 4, 129), (1000,), (2, 0)])
def test_mean_of_the_last_axis_is_numpys_bit_for_bit(dtype, shape):
    from lstm_fast.losses import _mean_last

    rng = np.random.default_rng(5)
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-5, 5, shape)).astype(dtype)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the empty axis: NaN, as NumPy
        got, want = _mean_last(a), np.mean(a, axis=-1)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
