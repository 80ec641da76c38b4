"""Half-precision inference weights (pack_weights(..., weights_dtype="float16")).

The oracle: the float64 NumPy reference on the weights rounded to half
precision by NumPy (float32 -> float16 -> float32), so the engine must give
float32 accuracy for those weights, on every ISA path, and its rounding must
be NumPy's bit for bit.
"""

import numpy as np
import pytest
from conftest import uses_team

from lstm_fast import ops
from lstm_fast import reference as ref

TOL = dict(rtol=1e-4, atol=1e-4)  # float32 accuracy, as in test_engine

SHAPES = [  # (B, T, I, H)
    (1, 7, 3, 50),  # batch 1: pairs of blocks and a partial last block
    (1, 5, 40, 37),  # I above FUSE_MAX_INPUT: x @ kernel in the GEMM
    (1, 4, 2, 16),
    (3, 4, 70, 33),
    (8, 6, 5, 64),  # tiles of several rows
    (13, 3, 9, 20),  # a remainder tile
    (32, 6, 10, 50),  # small layer: threads split rows
    (2, 1, 300, 24),
]


def rounded(w):
    return w.astype(np.float16).astype(np.float32)


def problem(B, T, I, H, seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    r = lambda *s: (rng.standard_normal(s) * scale).astype(np.float32)  # noqa: E731
    return dict(x=r(B, T, I) / scale, kernel=r(I, 4 * H), recurrent_kernel=r(H, 4 * H),
                bias=r(4 * H), h0=r(B, H), c0=r(B, H))


def reference_on_rounded(p, **kw):
    q = {k: v.astype(np.float64) for k, v in p.items()}
    q["kernel"] = rounded(p["kernel"]).astype(np.float64)
    q["recurrent_kernel"] = rounded(p["recurrent_kernel"]).astype(np.float64)
    return ref.lstm_forward(**q, **kw)


EDGES = np.array([
    0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 65504.0, -65504.0, 65519.0, 65519.99,
    1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-11 + 2**-20,  # ties to even, and just above a tie
    2**-14, 2**-14 * (1 - 2**-11), 2**-15 * 1.5, 2**-24, 2**-25, 2**-25 * 1.0001, 3 * 2**-25,
    2**-26, 1e-30, -1e-30, 6e-8, -6e-8, 5.9604645e-08, 2048.5, 4097.0, 1e-5, -3e-5,
    np.inf, -np.inf,
], np.float32)


def test_half_rounding_is_numpys(isa):
    # the packed half copy holds the same bits as NumPy's float16 of each
    # weight: compare with the float32 pack of NumPy's rounded weights
    rng = np.random.default_rng(1)
    H = 37  # a partial last block on every path
    w = (rng.standard_normal(4 * H * H) * 10.0 ** rng.integers(-9, 5, 4 * H * H)).astype(
        np.float32)
    w[:EDGES.size] = EDGES
    w[EDGES.size:2 * EDGES.size] = -EDGES
    w[np.abs(w) >= 65520] = 1.0  # out of range is refused (test below)
    w[2 * EDGES.size:2 * EDGES.size + 2] = [np.inf, -np.inf]
    W = w.reshape(H, 4 * H)
    K = np.ones((1, 4 * H), np.float32)
    half = ops.pack_weights(K, W, weights_dtype="float16").recurrent_kernel
    full = ops.pack_weights(K, rounded(W)).recurrent_kernel  # exactly representable values
    assert half.dtype == np.float16 and half.shape == full.shape
    np.testing.assert_array_equal(half.view(np.uint16), full.astype(np.float16).view(np.uint16))


def test_nan_weights_stay_nan(isa):
    p = problem(1, 3, 2, 9)
    p["recurrent_kernel"][0, 0] = np.nan
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"], weights_dtype="float16")
    assert np.isnan(packed.recurrent_kernel).sum() == 1
    y = ops.lstm_forward(**p, packed=packed)[0]
    assert np.isnan(y).any()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("opts", [dict(), dict(go_backwards=True, return_sequences=False)],
                         ids=["plain", "back-last"])
def test_forward_matches_reference_on_rounded_weights(isa, shape, opts):
    p = problem(*shape)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"], weights_dtype="float16")
    y, h, c, _ = ops.lstm_forward(**p, **opts, packed=packed)
    yr, hr, cr, _ = reference_on_rounded(p, **opts)
    for a, b in ((y, yr), (h, hr), (c, cr)):
        np.testing.assert_allclose(a, b, **TOL)
    # and the rounding shows: the float32 weights give other numbers
    y32 = ops.lstm_forward(**p, **opts)[0]
    assert np.abs(y32 - y).max() > 1e-6


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
def test_bit_for_bit_the_float32_engine_on_rounded_weights(isa, shape):
    # the same kernels in the same order on the same values: only the loads differ
    p = problem(*shape, seed=4)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"], weights_dtype="float16")
    q = dict(p, kernel=rounded(p["kernel"]), recurrent_kernel=rounded(p["recurrent_kernel"]))
    full = ops.pack_weights(q["kernel"], q["recurrent_kernel"])
    for opts in (dict(), dict(go_backwards=True, return_sequences=False)):
        a = ops.lstm_forward(**p, **opts, packed=packed)
        b = ops.lstm_forward(**q, **opts, packed=full)
        for u, v in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(u, v)
    args = (p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"], p["c0"])
    for u, v in zip(ops.lstm_step(*args, packed=packed),
                    ops.lstm_step(q["x"][:, 0], q["kernel"], q["recurrent_kernel"], q["bias"],
                                  q["h0"], q["c0"], packed=full)):
        np.testing.assert_array_equal(u, v)


def test_pickled_half_weights_keep_working():
    import pickle
    p = problem(2, 3, 40, 9)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"], weights_dtype="float16")
    again = pickle.loads(pickle.dumps(packed))
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=again)[0],
                                  ops.lstm_forward(**p, packed=packed)[0])
    del again.weights_dtype  # taken as the weights' dtype: float arrays expected
    with pytest.raises(ValueError, match="packed.kernel.*float32"):
        ops.lstm_forward(**p, packed=again)
    # a float32 pack pickled before weights_dtype existed reads as float32
    old = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    del old.weights_dtype
    again = pickle.loads(pickle.dumps(old))
    assert again.weights_dtype == np.float32 and "float16" not in repr(again)
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=again)[0],
                                  ops.lstm_forward(**p)[0])
    np.testing.assert_array_equal(
        ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], packed=again)[0],
        ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"])[0])


def test_half_support_follows_the_cpu(isa):
    # the AVX2 path needs F16C; /proc/cpuinfo is the independent word on it
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        pytest.skip("no /proc/cpuinfo to compare with")
    assert ops.half_weights_supported() is (isa != "avx2" or "f16c" in flags)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
def test_steps_match_reference_and_the_sequence(isa, shape):
    B, T, I, H = shape
    p = problem(*shape, seed=2)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"], weights_dtype="float16")
    y = ops.lstm_forward(**p, packed=packed)[0]
    yr = reference_on_rounded(p)[0]
    h, c = p["h0"], p["c0"]
    for t in range(T):
        h, c = ops.lstm_step(p["x"][:, t], p["kernel"], p["recurrent_kernel"], p["bias"], h, c,
                             packed=packed)
        np.testing.assert_allclose(h, yr[:, t], **TOL)
        np.testing.assert_allclose(h, y[:, t], **TOL)


def test_lengths_and_threads(isa):
    p = problem(5, 8, 6, 136)
    assert uses_team(5, 6, 136)
    lengths = np.array([8, 0, 3, 5, 8])
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"], weights_dtype="float16")
    yr = reference_on_rounded(p, lengths=lengths, zero_output_for_mask=True)[0]
    ys = [ops.lstm_forward(**p, lengths=lengths, zero_output_for_mask=True, packed=packed,
                           n_threads=n)[0] for n in (1, 2)]
    np.testing.assert_allclose(ys[0], yr, **TOL)
    np.testing.assert_array_equal(ys[0], ys[1])  # the thread count changes nothing


def test_bad_requests_are_clear_errors():
    p = problem(2, 3, 4, 5)
    K, R = p["kernel"], p["recurrent_kernel"]
    with pytest.raises(ValueError, match="weights_dtype.*'int8'"):
        ops.pack_weights(K, R, weights_dtype="int8")
    with pytest.raises(ValueError, match="weights_dtype.*'bogus'"):
        ops.pack_weights(K, R, weights_dtype="bogus")
    with pytest.raises(ValueError, match="weights_dtype"):
        ops.pack_weights(K, R, weights_dtype=[("a", "f4"), ("a", "f4")])  # np.dtype's ValueError
    with pytest.raises(ValueError, match="float32 weights.*float64"):
        ops.pack_weights(K.astype(np.float64), R.astype(np.float64), weights_dtype="float16")
    big = R.copy()
    big[1, 2] = -70000.0
    with pytest.raises(ValueError,
                       match=r"recurrent_kernel.*65520.*max \|recurrent_kernel\| = 70000"):
        ops.pack_weights(K, big, weights_dtype="float16")
    big = K.copy()
    big[0, 0] = 65520.0  # rounds to infinity
    with pytest.raises(ValueError, match="kernel"):
        ops.pack_weights(big, R, weights_dtype="float16")
    big[0, 0] = 65519.0  # rounds to 65504
    assert ops.pack_weights(big, R, weights_dtype="float16").kernel.max() == 65504
    packed = ops.pack_weights(K, R, weights_dtype="float16")
    assert "float16" in repr(packed)
    with pytest.raises(ValueError, match="training=True"):
        ops.lstm_forward(**p, packed=packed, training=True)
    packed.recurrent_kernel = packed.recurrent_kernel.astype(np.float32)  # tampered with
    with pytest.raises(ValueError, match="packed.recurrent_kernel.*float16"):
        ops.lstm_forward(**p, packed=packed)
    packed = ops.pack_weights(K, R, weights_dtype="float16")
    packed.weights_dtype = np.dtype(np.int16)
    with pytest.raises(ValueError, match="weights_dtype"):
        ops.lstm_step(p["x"][:, 0], K, R, packed=packed)
    packed.weights_dtype = np.dtype(np.float32)  # half arrays said to be float32
    with pytest.raises(ValueError, match="packed.kernel.*float32"):
        ops.lstm_step(p["x"][:, 0], K, R, packed=packed)
    packed.weights_dtype = "no such dtype"
    with pytest.raises(ValueError, match="weights_dtype='no such dtype'"):
        ops.lstm_forward(**p, packed=packed)
    packed.weights_dtype = "float16"  # a name, as np.dtype reads it: still the half path
    np.testing.assert_array_equal(
        ops.lstm_forward(**p, packed=packed)[0],
        ops.lstm_forward(**p, packed=ops.pack_weights(K, R, weights_dtype="float16"))[0])
    # the weights' own dtype is the default
    assert ops.pack_weights(K, R, weights_dtype="float32").recurrent_kernel.dtype == np.float32


def test_model_stream_in_half_precision():
    import lstm_fast

    rng = np.random.default_rng(3)
    model = lstm_fast.Sequential([
        lstm_fast.LSTM(24, input_shape=(None, 3), return_sequences=True),
        lstm_fast.LSTM(40, return_sequences=True),
        lstm_fast.Dense(2)])
    x = rng.standard_normal((1, 9, 3)).astype(np.float32)
    model.predict(x, verbose=0)
    stream = model.stream(weights_dtype="float16")
    got = np.stack([stream.step(x[:, t]) for t in range(9)], axis=1)
    stream.reset()
    np.testing.assert_allclose(stream.steps(x), got, **TOL)
    # the oracle: the same model with its LSTM weights rounded, in float32
    weights = model.get_weights()
    for layer in model.layers:
        if isinstance(layer, lstm_fast.LSTM):
            layer.kernel[...] = rounded(layer.kernel)
            layer.recurrent_kernel[...] = rounded(layer.recurrent_kernel)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), **TOL)
    model.set_weights(weights)
    assert np.abs(got - model.predict(x, verbose=0)).max() > 1e-7
    model64 = lstm_fast.Sequential([lstm_fast.LSTM(4, input_shape=(None, 3), dtype="float64")])
    model64.predict(x.astype(np.float64), verbose=0)
    with pytest.raises(ValueError, match="float32 weights"):
        model64.stream(weights_dtype="float16")
