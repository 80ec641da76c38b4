"""The backward's weight gradients, computed as one product [x | hprev | 1].T @ dz
(lf_gemm_weight_grads), against the separate products of ops.matmul (the same
sums in the same order: equal bit for bit) and, for dbias, float64 column sums.

Sizes put I and I + H across the GEMM's 4-row panels (a panel then straddles
x and hprev, or holds the row of ones), and B*T across its 256-deep blocks.
"""

import numpy as np
import pytest

from lstm_fast import ops


def _backward(rng, B, T, I, H, dtype, bias=True, n_threads=None, **grads):  # noqa: E741
    x = rng.standard_normal((B, T, I)).astype(dtype)
    K = (rng.standard_normal((I, 4 * H)) * 0.3).astype(dtype)
    R = (rng.standard_normal((H, 4 * H)) * 0.3).astype(dtype)
    b = (rng.standard_normal(4 * H) * 0.3).astype(dtype) if bias else None
    dy = rng.standard_normal((B, T, H)).astype(dtype)
    _, _, _, cache = ops.lstm_forward(x, K, R, b, training=True, n_threads=n_threads)
    hprev = cache.hprev.copy()
    g = ops.lstm_backward(cache, dy, n_threads=n_threads, **grads)
    dz = cache.gates.reshape(B * T, 4 * H)  # the gate gradients overwrote the gates
    return g, x.reshape(B * T, I), hprev.reshape(B * T, H), dz


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5, 1, 4), (4, 7, 3, 5), (32, 20, 10, 50), (5, 60, 6, 9),
                                   (2, 3, 8, 8),
                                   (10, 100, 90, 211)])  # [x | hprev | 1] > 1 MB: packed once
def test_equal_to_separate_products(isa, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    g, x2, h2, dz = _backward(rng, *shape, dtype)
    np.testing.assert_array_equal(g.dkernel, ops.matmul(x2, dz, trans_a=True))
    np.testing.assert_array_equal(g.drecurrent_kernel, ops.matmul(h2, dz, trans_a=True))
    want = dz.astype(np.float64).sum(axis=0)
    scale = np.abs(dz.astype(np.float64)).sum(axis=0) + 1e-30
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert g.dbias.dtype == dtype
    assert (np.abs(g.dbias - want) / scale).max() <= tol


def test_no_bias_gives_none():
    rng = np.random.default_rng(6)
    g, x2, h2, dz = _backward(rng, 4, 6, 3, 5, np.float32, bias=False)
    assert g.dbias is None
    np.testing.assert_array_equal(g.dkernel, ops.matmul(x2, dz, trans_a=True))
    np.testing.assert_array_equal(g.drecurrent_kernel, ops.matmul(h2, dz, trans_a=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adds_into_given_arrays(dtype):
    B, T, I, H = 5, 9, 6, 10  # noqa: E741
    rng = np.random.default_rng(7)
    fresh, x2, h2, dz = _backward(rng, B, T, I, H, dtype)
    start = [rng.standard_normal(s).astype(dtype) for s in ((I, 4 * H), (H, 4 * H), (4 * H,))]
    given = [a.copy() for a in start]
    # the same draws again, now adding into given arrays
    g, _, _, _ = _backward(np.random.default_rng(7), B, T, I, H, dtype, dkernel=given[0],
                           drecurrent_kernel=given[1], dbias=given[2])
    assert g.dkernel is given[0] and g.drecurrent_kernel is given[1] and g.dbias is given[2]
    for got, s, f in zip(given, start, (fresh.dkernel, fresh.drecurrent_kernel, fresh.dbias)):
        np.testing.assert_allclose(got, s + f, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)
    # dkernel and drecurrent_kernel: the product adds each block into C, so the
    # element is (start + P) with P the separate product's value: equal bits
    np.testing.assert_array_equal(given[0], ops.matmul(x2, dz, trans_a=True, out=start[0].copy(),
                                                       accumulate=True))


def test_non_contiguous_and_shared_targets():
    B, T, I, H = 3, 4, 5, 5  # noqa: E741
    rng = np.random.default_rng(8)
    fresh, _, _, _ = _backward(rng, B, T, I, H, np.float64)
    # a Fortran-ordered dkernel, and one array given as both dkernel and
    # drecurrent_kernel (I == H): each gets its own product added
    dk = np.asfortranarray(np.ones((I, 4 * H)))
    g, _, _, _ = _backward(np.random.default_rng(8), B, T, I, H, np.float64, dkernel=dk)
    assert g.dkernel is dk
    np.testing.assert_allclose(dk, 1 + fresh.dkernel, rtol=1e-12, atol=1e-12)
    both = np.zeros((I, 4 * H))
    g, _, _, _ = _backward(np.random.default_rng(8), B, T, I, H, np.float64, dkernel=both,
                           drecurrent_kernel=both)
    np.testing.assert_allclose(both, fresh.dkernel + fresh.drecurrent_kernel, rtol=1e-12,
                               atol=1e-12)


def test_overlapping_targets_each_get_their_sum():
    # I >= 3H: the product is split by rows, and with drecurrent_kernel a view
    # of dkernel's first rows, two threads would add into the same memory at
    # once (lost updates); each target must still receive its whole product
    B, T, I, H = 8, 40, 64, 8  # noqa: E741
    fresh, _, _, _ = _backward(np.random.default_rng(10), B, T, I, H, np.float64, n_threads=2)
    want = np.zeros((I, 4 * H))
    want += fresh.dkernel
    want[:H] += fresh.drecurrent_kernel
    for _ in range(10):
        dk = np.zeros((I, 4 * H))
        _backward(np.random.default_rng(10), B, T, I, H, np.float64, n_threads=2, dkernel=dk,
                  drecurrent_kernel=dk[:H])
        np.testing.assert_allclose(dk, want, rtol=1e-12, atol=1e-12)


def test_target_overlapping_an_operand():
    # dkernel in the memory of dz (the cache's gates, which the product reads),
    # shifted so that the first part's columns of dkernel are dz values the
    # second part reads: on one thread the parts run in turn, so without a
    # temporary the second would read values the first had overwritten
    B, T, I, H = 4, 6, 3, 128  # noqa: E741
    ref, _, _, ref_dz = _backward(np.random.default_rng(11), B, T, I, H, np.float64, n_threads=1)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((B, T, I))
    K = (rng.standard_normal((I, 4 * H)) * 0.3)
    R = (rng.standard_normal((H, 4 * H)) * 0.3)
    b = (rng.standard_normal(4 * H) * 0.3)
    dy = rng.standard_normal((B, T, H))
    _, _, _, cache = ops.lstm_forward(x, K, R, b, training=True, n_threads=1)
    dk = cache.gates.reshape(-1)[256:256 + I * 4 * H].reshape(I, 4 * H)
    got = ops.lstm_backward(cache, dy, dkernel=dk, n_threads=1)
    assert got.dkernel is dk
    # the loop first wrote dz there (the gate gradients overwrite the gates)
    start = ref_dz.reshape(-1)[256:256 + I * 4 * H].reshape(I, 4 * H)
    np.testing.assert_allclose(dk, start + ref.dkernel, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 20, 10, 50), (10, 100, 90, 211), (10, 100, 601, 63)])
def test_thread_count_does_not_change_results(dtype, shape):
    out = []
    for n in (1, 2, 3):
        g, _, _, _ = _backward(np.random.default_rng(9), *shape, dtype, n_threads=n)
        out.append(g)
    for g in out[1:]:
        np.testing.assert_array_equal(g.dkernel, out[0].dkernel)
        np.testing.assert_array_equal(g.drecurrent_kernel, out[0].drecurrent_kernel)
        np.testing.assert_array_equal(g.dbias, out[0].dbias)
