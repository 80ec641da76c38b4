"""Dense, activations and regularizers against NumPy formulas and finite differences (float64)."""

import numpy as np
import pytest

from lstm_fast import activations, regularizers
from lstm_fast.layers import Dense

FD_EPS = 1e-6
FD_RTOL = 1e-6  # central differences in float64


def numeric_grad(f, x, eps=FD_EPS):
    """Central finite differences of the scalar f at x (x modified in place and restored)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "softplus", "softsign", "elu",
               "selu", "exponential", "swish", "gelu", "leaky_relu", "log_softmax", "relu6",
               "hard_sigmoid"]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradient_matches_finite_differences(name):
    act = activations.get(name)
    rng = np.random.default_rng(0)
    # keep away from the kinks of relu-like functions
    x = rng.uniform(0.1, 2.0, (3, 5)) * rng.choice([-1.0, 1.0], (3, 5))
    w = rng.standard_normal((3, 5))

    def loss():
        return float((act(x) * w).sum())

    y = act(x)
    tol = 1e-6 if name == "gelu" else FD_RTOL  # gelu's erf is a 1e-7 approximation
    np.testing.assert_allclose(act.backward(w, x, y), numeric_grad(loss, x), rtol=tol, atol=tol)


def test_activation_values():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(activations.get("relu")(x), [0, 0, 3])
    np.testing.assert_allclose(activations.get("sigmoid")(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(activations.get("softmax")(x), np.exp(x) / np.exp(x).sum(),
                               rtol=1e-14)
    np.testing.assert_allclose(activations.get("gelu")(np.array([1.0])), [0.8413447460685429],
                               rtol=1e-6)
    assert activations.get(None).name == "linear"
    with pytest.raises(ValueError, match="Unknown activation"):
        activations.get("relux")
    with pytest.raises(TypeError, match="gradient"):
        activations.get(lambda v: v)


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "softmax", "sigmoid"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
def test_dense_forward_and_gradients(activation, shape):
    rng = np.random.default_rng(1)
    layer = Dense(4, activation=activation, dtype="float64")
    x = rng.standard_normal(shape)
    y = layer(x, training=True)
    kernel, bias = layer.get_weights()
    expected = activations.get(activation)(x @ kernel + bias)
    np.testing.assert_allclose(y, expected, rtol=1e-13)
    assert y.shape == shape[:-1] + (4,)

    w = rng.standard_normal(y.shape)  # loss = sum(w * y)
    layer.zero_grads()
    dx = layer.backward(w)

    def loss():
        return float((layer(x) * w).sum())

    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=FD_RTOL, atol=1e-8)
    np.testing.assert_allclose(layer.gradients[0], numeric_grad(loss, layer.kernel), rtol=FD_RTOL,
                               atol=1e-8)
    np.testing.assert_allclose(layer.gradients[1], numeric_grad(loss, layer.bias), rtol=FD_RTOL,
                               atol=1e-8)


def test_dense_errors_and_config():
    layer = Dense(3, input_shape=(5,))
    layer(np.ones((2, 5)))
    with pytest.raises(ValueError, match="axis -1"):
        layer(np.ones((2, 6)))
    with pytest.raises(ValueError, match="units"):
        Dense(-1)
    clone = Dense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "reg", [regularizers.L1(0.3), regularizers.L2(0.2), regularizers.L1L2(0.1, 0.4)]
)
def test_regularizer_value_and_gradient(reg):
    rng = np.random.default_rng(2)
    w = rng.uniform(0.1, 1.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    expected = reg.l1 * np.abs(w).sum() + reg.l2 * np.square(w).sum()
    np.testing.assert_allclose(reg(w), expected, rtol=1e-14)
    np.testing.assert_allclose(reg.gradient(w), numeric_grad(lambda: reg(w), w), rtol=FD_RTOL)


def test_regularizer_lookup():
    assert regularizers.get("l2").l2 == 0.01
    assert regularizers.get(None) is None
    r = regularizers.get(regularizers.serialize(regularizers.L1L2(0.1, 0.2)))
    assert (r.l1, r.l2) == (0.1, 0.2)
    with pytest.raises(ValueError, match="Unknown regularizer"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(-1.0)


def test_layer_regularization_loss_and_gradient():
    layer = Dense(2, kernel_regularizer=regularizers.L2(0.5), dtype="float64")
    layer(np.ones((1, 3)))
    layer.zero_grads()
    value = layer.regularization_loss(add_gradients=True)
    np.testing.assert_allclose(value, 0.5 * np.square(layer.kernel).sum(), rtol=1e-14)
    np.testing.assert_allclose(layer.gradients[0], layer.kernel, rtol=1e-14)  # 2 * 0.5 * w
    np.testing.assert_array_equal(layer.gradients[1], 0.0)
