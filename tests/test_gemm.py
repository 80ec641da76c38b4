"""The engine's own GEMM (ops.matmul), which runs the layers' time-batched
products, against float64 NumPy on every ISA path the CPU supports.

The sizes cross every blocking boundary of the C code: register tiles (4 rows,
3 vectors of columns; 6 rows, 4 vectors under AVX-512; fewer vectors in a
narrow last panel, each count of them), the packed depth (256), A's row block
and B's column block, with remainders on each, the unpacked path for
products of at most 6 rows, A read in place when B is one panel wide, and
column splits in whole vectors rather than whole panels.
"""

import numpy as np
import pytest

from lstm_fast import ops

TOL = {np.float32: 2e-6, np.float64: 1e-14}  # relative to sum |a||b| per element

SIZES = [  # (M, N, K)
    (1, 1, 1),
    (5, 3, 2),
    (6, 16, 7),
    (7, 17, 255),
    (13, 33, 257),
    (145, 40, 300),
    (11, 52, 40),  # a last panel of 3 vectors of 8 (and 4 of 16), 5 rows over
    (19, 120, 9),  # 2 panels at 16 lanes and 4 vectors, the last 3.5
    (16, 28, 40),  # 4 rows over 6; a last panel of 3.5 vectors of 8
    (2100, 2100, 5),  # split by rows: past B's column block (2048) within a part
    (640, 10, 200),  # the seed model's dz @ kernel.T: one panel, A read in place
    (230, 64, 300),  # one AVX-512 panel (three AVX2 ones) over two row blocks and depths
    (61, 200, 640),  # the seed model's weight gradients: columns split in vectors
    (150, 1024, 256),
    (2, 2100, 9),
    (300, 5, 600),
    # at most 6 rows (a batch of one): B is read unpacked, its last strip in
    # depth blocks
    (1, 1024, 256),
    (3, 21, 600),
    (6, 40, 1000),
]


def _operands(rng, M, N, K, trans_a, trans_b, dtype):
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    a64 = (a.T if trans_a else a).astype(np.float64)
    b64 = (b.T if trans_b else b).astype(np.float64)
    return a, b, a64, b64


def _check(got, a64, b64, dtype, extra=0.0):
    want = a64 @ b64 + extra
    scale = np.abs(a64) @ np.abs(b64) + np.abs(extra) + 1e-30
    err = np.abs(got.astype(np.float64) - want) / scale
    assert err.max() <= TOL[dtype], f"max relative error {err.max():.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("size", SIZES)
def test_matches_numpy(isa, dtype, trans, size):
    rng = np.random.default_rng(hash((size, trans)) % 2**32)
    M, N, K = size
    a, b, a64, b64 = _operands(rng, M, N, K, *trans, dtype)
    got = ops.matmul(a, b, trans_a=trans[0], trans_b=trans[1])
    assert got.dtype == dtype and got.shape == (M, N) and got.flags.c_contiguous
    _check(got, a64, b64, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulates_into_out(isa, dtype):
    rng = np.random.default_rng(1)
    a, b, a64, b64 = _operands(rng, 40, 70, 300, True, False, dtype)
    out = rng.standard_normal((40, 70)).astype(dtype)
    before = out.astype(np.float64)
    got = ops.matmul(a, b, trans_a=True, out=out, accumulate=True)
    assert got is out
    _check(out, a64, b64, dtype, extra=before)
    # without accumulate, out is overwritten
    ops.matmul(a, b, trans_a=True, out=out)
    _check(out, a64, b64, dtype)


def test_empty_depth_gives_zeros_or_keeps_out():
    a = np.empty((3, 0), np.float32)
    b = np.empty((0, 4), np.float32)
    np.testing.assert_array_equal(ops.matmul(a, b), np.zeros((3, 4), np.float32))
    out = np.full((3, 4), 2.5, np.float32)
    ops.matmul(a, b, out=out, accumulate=True)
    np.testing.assert_array_equal(out, np.full((3, 4), 2.5, np.float32))
    assert ops.matmul(np.empty((0, 5)), np.ones((5, 3))).shape == (0, 3)
    assert ops.matmul(np.ones((2, 5)), np.ones((5, 0))).shape == (2, 0)


# The split (rows, or columns in whole vectors), A read in place for parts one
# panel wide ((50, 100, 3000): columns split in two parts of 48 and 52 at 16
# lanes), and the shared packing change with the thread count; results do not.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("shape", [(3200, 64, 40), (64, 3000, 300), (200, 200, 600),
                                   (1, 3000, 300), (5, 1000, 700), (640, 10, 200),
                                   (61, 200, 640), (50, 100, 3000)])
def test_thread_count_does_not_change_results(isa, dtype, trans, shape):
    rng = np.random.default_rng(2)
    M, N, K = shape
    a, b, _, _ = _operands(rng, M, N, K, *trans, dtype)
    one = ops.matmul(a, b, trans_a=trans[0], trans_b=trans[1], n_threads=1)
    for n in (2, 3, 7):
        np.testing.assert_array_equal(
            ops.matmul(a, b, trans_a=trans[0], trans_b=trans[1], n_threads=n), one)


@pytest.mark.parametrize("H", [8, 16, 40])  # 4H = 32, 64: one AVX-512 panel; 160: three
def test_prepacked_kernel_with_a_read_in_place(isa, H):
    # With more than FUSE_MAX_INPUT inputs and packed weights, x @ kernel reads
    # the kernel's GEMM panels (lf_gemm_prepacked); at 4H <= one panel, the
    # tiles read x's rows in place.
    from lstm_fast import reference

    rng = np.random.default_rng(H)
    B, T, I = 20, 7, 40
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    kernel = (rng.standard_normal((I, 4 * H)) * 0.2).astype(np.float32)
    recurrent = (rng.standard_normal((H, 4 * H)) * 0.2).astype(np.float32)
    bias = (rng.standard_normal(4 * H) * 0.1).astype(np.float32)
    packed = ops.pack_weights(kernel, recurrent)
    got = ops.lstm_forward(x, kernel, recurrent, bias, packed=packed)[0]
    want = reference.lstm_forward(*(v.astype(np.float64) for v in (x, kernel, recurrent, bias)))[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ops.lstm_forward(x, kernel, recurrent, bias)[0], got)


# Products whose parts would repack 256 KB or more of the unsplit operand: it
# is packed once, shared by all the parts (split by rows: op(B); by columns:
# op(A)), in a first phase.
SHARED = [(1100, 500, 600), (500, 1100, 600)]  # (M, N, K): split M, split N


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("size", SHARED)
def test_shared_packing_matches_numpy_and_any_thread_count(isa, dtype, trans, size):
    rng = np.random.default_rng(hash((size, trans)) % 2**32)
    M, N, K = size
    a, b, a64, b64 = _operands(rng, M, N, K, *trans, dtype)
    one = ops.matmul(a, b, trans_a=trans[0], trans_b=trans[1], n_threads=1)
    _check(one, a64, b64, dtype)
    for n in (2, 3):
        np.testing.assert_array_equal(
            ops.matmul(a, b, trans_a=trans[0], trans_b=trans[1], n_threads=n), one)


def test_non_contiguous_inputs_and_other_dtypes_of_b():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 30))[:, ::2]          # strided view
    b = rng.standard_normal((15, 9)).astype(np.float32)  # converted to a's dtype
    got = ops.matmul(a, b)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, a @ b.astype(np.float64), rtol=1e-12, atol=1e-12)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(ops.matmul(np.eye(2), ints), ints.astype(np.float64))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(a=np.ones((2, 3), np.int64)), TypeError, "Expected a to be a NumPy array of float32"),
    (dict(a=[[1.0]]), TypeError, "Received: list"),
    (dict(a=np.ones(3)), ValueError, r"Expected a to be 2-D. Received: a.shape=\(3,\)"),
    (dict(b=np.ones((2, 2, 2))), ValueError, "Expected b to be 2-D"),
    (dict(b=np.ones((4, 5))), ValueError, r"Expected op\(b\) to have 3 rows"),
    (dict(b=np.array([["x"] * 5] * 3)), TypeError, "Expected b to have a real numeric dtype"),
    (dict(out=np.ones((2, 5), np.float32)), ValueError, "float64 array of shape \\(2, 5\\)"),
    (dict(out=np.ones((5, 2))), ValueError, "Received: float64 array of shape \\(5, 2\\)"),
    (dict(out=np.ones((2, 10))[:, ::2]), ValueError, r"aligned, C-contiguous .*contiguous=False"),
    (dict(accumulate=True), ValueError, "Expected out to be given with accumulate=True"),
])
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(a=np.ones((2, 3)), b=np.ones((3, 5)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ops.matmul(args.pop("a"), args.pop("b"), **args)


def test_read_only_out_is_refused():
    out = np.zeros((2, 5))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ops.matmul(np.ones((2, 3)), np.ones((3, 5)), out=out)


def test_nan_propagates_to_its_row_and_column_only():
    a = np.ones((8, 4), np.float32)
    b = np.ones((4, 20), np.float32)
    a[3, 1] = np.nan
    got = ops.matmul(a, b)
    assert np.isnan(got[3]).all()
    assert np.isfinite(np.delete(got, 3, axis=0)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
def test_a_row_does_not_depend_on_the_other_rows(isa, dtype, trans_a):
    """Rows computed alone (the unpacked path of at most 6 rows) or among many
    (packed, in tiles of any height) are bit-identical."""
    rng = np.random.default_rng(6)
    M, N, K = 23, 50, 600
    a, b, _, _ = _operands(rng, M, N, K, trans_a, False, dtype)
    full = ops.matmul(a, b, trans_a=trans_a)
    for rows in ([0], [22], [5, 6], [0, 1, 2, 3, 4, 5], list(range(3, 10)), list(range(M))):
        sub = np.ascontiguousarray(a[:, rows] if trans_a else a[rows])
        np.testing.assert_array_equal(ops.matmul(sub, b, trans_a=trans_a), full[rows])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_b", [False, True])
def test_a_column_does_not_depend_on_the_other_columns(isa, dtype, trans_b):
    """Columns computed in a narrow last panel (1 or 2 vectors of the register
    tile) or in full-width ones are bit-identical."""
    rng = np.random.default_rng(7)
    M, N, K = 40, 75, 300
    a, b, _, _ = _operands(rng, M, N, K, False, trans_b, dtype)
    full = ops.matmul(a, b, trans_b=trans_b)
    for cols in ([0], [74], [3, 4, 5], list(range(9)), list(range(17)), list(range(30, 75))):
        sub = np.ascontiguousarray(b[cols] if trans_b else b[:, cols])
        np.testing.assert_array_equal(ops.matmul(a, sub, trans_b=trans_b), full[:, cols])
