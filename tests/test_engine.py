"""The compiled engine (lstm_fast.ops) against the NumPy reference.

Every ISA path the CPU supports, float32 and float64, shapes that cover
B = 1, I = 1, T = 1, long T and H on both sides of every SIMD width, and every
option. The reference runs in float64 on the same (rounded) inputs.
"""

import numpy as np
import pytest
from conftest import uses_team

from lstm_fast import ops
from lstm_fast import reference as ref

# float32 error grows with the depth of the recurrence; 1e-4 covers T = 200.
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-11, atol=1e-12)}

SHAPES = [  # (B, T, I, H)
    (1, 1, 1, 1),
    (1, 9, 1, 3),
    (3, 5, 4, 17),
    (2, 12, 3, 50),
    (5, 3, 2, 129),
    (7, 4, 6, 33),
    (1, 200, 2, 8),
    # B >= 6 rows a thread and a small H: the forward and backward split rows, not blocks
    (32, 6, 10, 50),
    # I above ops' FUSE_MAX_INPUT: x @ kernel is the engine's GEMM before the loop
    (2, 6, 40, 19),
    (7, 3, 33, 64),
    # B*T and I past the GEMM's packed depth (256) and row block (144; 216 at 6
    # rows a tile)
    (13, 23, 300, 70),
    # (B, T, H) outputs past 512 KB in float32: the forward prefetches their rows
    (128, 40, 3, 26),
    # the backward's dh tiles of 4, 2 and 1 blocks (at 1-2 rows on every ISA),
    # taken forwards at even steps and backwards at odd ones: 7 blocks of 16,
    # 8 or 4 units at H = 110, 52 and 27; and at 4 rows (4 blocks a tile on
    # AVX-512 and its layout's test build; 2 elsewhere)
    (2, 7, 3, 110),
    (1, 8, 2, 52),
    (2, 5, 3, 27),
    (4, 5, 3, 70),
]

OPTIONS = {
    "plain": dict(),
    "backwards": dict(go_backwards=True),
    "last": dict(return_sequences=False),
    "lengths": dict(lengths=True),
    "lengths-back-zero": dict(lengths=True, go_backwards=True, zero_output_for_mask=True),
    "lengths-last-back": dict(lengths=True, return_sequences=False, go_backwards=True),
    "nobias-nostate": dict(bias=False, state=False),
}


def make_problem(B, T, I, H, dtype, seed=0, bias=True, state=True, lengths=False):
    rng = np.random.default_rng(seed)

    def r(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    p = dict(x=r(B, T, I, scale=1.0), kernel=r(I, 4 * H), recurrent_kernel=r(H, 4 * H),
             bias=r(4 * H) if bias else None, h0=r(B, H) if state else None,
             c0=r(B, H) if state else None)
    kw = {}
    if lengths:
        kw["lengths"] = rng.integers(0, T + 1, size=B)
        kw["lengths"][0] = T  # keep one full row
    return p, kw


def as64(p):
    return {k: (None if v is None else v.astype(np.float64)) for k, v in p.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("option", list(OPTIONS))
def test_forward_and_backward_match_reference(isa, dtype, shape, option):
    opts = dict(OPTIONS[option])
    p, kw = make_problem(*shape, dtype, bias=opts.pop("bias", True),
                         state=opts.pop("state", True), lengths=opts.pop("lengths", False))
    kw.update(opts)
    y, h, c, cache = ops.lstm_forward(**p, **kw, training=True)
    yr, hr, cr, cache_r = ref.lstm_forward(**as64(p), **kw, training=True)
    tol = TOL[dtype]
    assert y.dtype == dtype and y.shape == yr.shape
    np.testing.assert_allclose(y, yr, **tol)
    np.testing.assert_allclose(h, hr, **tol)
    np.testing.assert_allclose(c, cr, **tol)
    # the training cache is the reference's, where they share a meaning
    np.testing.assert_allclose(cache.gates, cache_r.gates, **tol)
    np.testing.assert_allclose(cache.cell, cache_r.cell, **tol)
    np.testing.assert_allclose(cache.hidden, cache_r.hidden, **tol)

    rng = np.random.default_rng(1)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh_T = rng.standard_normal(h.shape).astype(dtype)
    dc_T = rng.standard_normal(c.shape).astype(dtype)
    g = ops.lstm_backward(cache, dy, dh_T, dc_T)
    gr = ref.lstm_backward(cache_r, dy.astype(np.float64), dh_T.astype(np.float64),
                           dc_T.astype(np.float64))
    for name in ("dx", "dh0", "dc0", "dkernel", "drecurrent_kernel", "dbias"):
        a, b = getattr(g, name), getattr(gr, name)
        if b is None:
            assert a is None, name
            continue
        assert a.dtype == dtype, name
        scale = max(1.0, float(np.abs(b).max()))  # weight gradients sum over B*T terms
        np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale,
                                   err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("I", [7, 45])  # fused input projection, and the GEMM
# B = 1 and 9: the threads share each step's blocks of units (H = 110 and 170:
# a partial last block on every ISA; a training step at batch 1 takes two
# threads from H = 111, float64 102); B = 40: forward and backward split rows
# among the threads; T = 60: the forward's (B, T, H) outputs past 512 KB, whose rows it
# prefetches
@pytest.mark.parametrize("B, T, H", [(1, 13, 170), (9, 13, 110), (40, 13, 70), (40, 60, 70)])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "rev"])
def test_thread_count_does_not_change_results(isa, dtype, I, B, T, H, go_backwards):
    assert uses_team(B, I, H, dtype, training=True) and uses_team(B, I, H, dtype, backward=True)
    p, kw = make_problem(B, T, I, H, dtype, lengths=True)
    kw["go_backwards"] = go_backwards
    outs = []
    for n_threads in (1, 2, 3):
        y, h, c, cache = ops.lstm_forward(**p, **kw, training=True, n_threads=n_threads)
        g = ops.lstm_backward(cache, dy=np.ones_like(y), n_threads=n_threads)
        outs.append((y, h, c, *g))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("I", [7, 45])  # fused input projection, and the GEMM
# inference at batch 1 and 2: a thread's share of a step is one chunk of
# blocks (csrc: fwd_chunk_blocks), rounded down, so with an odd number of
# blocks one thread owns a second, small chunk (float32 H = 100 and 170: 7
# and 11 blocks of 16 units, chunks 3 3 1 and 5 5 1; 13 and 22 of 8 units,
# in pairs at batch 1: 6 6 1 and 10 10 2); three threads ask for thirds.
# Each call runs twice: a call this small that finds the workers asleep runs
# on the caller alone (and wakes them for the next)
@pytest.mark.parametrize("B, H", [(1, 100), (2, 100), (1, 170), (2, 170)])
def test_thread_count_does_not_change_inference_at_batch_1_and_2(isa, dtype, I, B, H):
    assert uses_team(B, I, H, dtype, T=9)
    p, kw = make_problem(B, 9, I, H, dtype, lengths=True)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    outs = []
    for n_threads in (1, 2, 3):
        for pk in (None, packed, None, packed):
            outs.append(ops.lstm_forward(**p, **kw, return_sequences=True, packed=pk,
                                         n_threads=n_threads))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)
    want = ref.lstm_forward(**as64(p), **kw, return_sequences=True)
    for a, b in zip(outs[0][:3], want[:3]):
        np.testing.assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_a_second_thread_splits_blocks_only_where_it_pays(dtype):
    """One meeting per step costs about a microsecond: small layers at small
    batches run on one thread (csrc: blocks_pay), large ones and >= 12 rows on
    two."""
    from lstm_fast import _engine

    def threads(B, I, H, T=100, **kw):  # noqa: N803
        return _engine._loop_threads(B, I, H, dtype, T=T, n_threads=2, **kw)

    loops = [{}, dict(training=True), dict(backward=True)]  # inference, a training step's two
    for kw in loops:
        assert threads(1, 4, 32, **kw) == 1
        assert threads(4, 4, 48, **kw) == 1
        assert threads(1, 4, 256, **kw) == 2
        assert threads(4, 4, 256, **kw) == 2
        assert threads(32, 10, 50, **kw) == 2  # rows split: no meeting a step
    # both sides of each bound (T = 100 unless said): batch 1 and 2, 128 KiB
    # of recurrent_kernel in inference (float32 H = 90: 127 KiB, H = 91: 129
    # KiB; float64 H = 63 and 64); in a training step's forward and backward
    # alike, 192 KiB in float32 (H = 110: 189 KiB, H = 111: 193 KiB) and 320
    # KiB in float64 (H = 101: 319 KiB, H = 102: 325 KiB); 3-11 rows, 540k
    # flops a step in float32 (B4 H128: 524k, H132: 558k), 225k in float64
    # (B4 H83: 220k, H84: 226k); from 12 rows the rows split. Whatever the
    # input (a training step's two loops agree).
    f32 = dtype == np.float32
    for I in (4, 32, 300):  # noqa: E741
        for B in (1, 2):
            assert threads(B, I, 90 if f32 else 63) == 1
            assert threads(B, I, 91 if f32 else 64) == 2
        assert threads(3, I, 96 if f32 else 64) == 1
        for kw in loops[1:]:
            for B in (1, 2):
                assert threads(B, I, 96 if f32 else 64, **kw) == 1
                assert threads(B, I, 110 if f32 else 101, **kw) == 1
                assert threads(B, I, 111 if f32 else 102, **kw) == 2
    for kw in loops:
        for I in (4, 32, 300):  # noqa: E741
            assert threads(4, I, 128 if f32 else 83, **kw) == 1
            assert threads(4, I, 132 if f32 else 84, **kw) == 2
        assert threads(11, 4, 64 if f32 else 32, **kw) == 1
        assert threads(12, 4, 64 if f32 else 32, **kw) == 2
    # an inference call at batch 1-2 whose T steps sweep, in all, less than
    # 576 KiB of weights with x @ kernel in the loop (rows I + H) or 1 MiB
    # without (rows H) stays on one thread. lstm_step (T = 1, I = H): float32
    # H = 135 sweeps 570 KiB, H = 136 578 KiB; float64 H = 95 564 KiB, H = 96
    # 576 KiB. The GEMM's input (I = 300; the sweep is 16 T H^2 bytes in
    # float32, 32 T H^2 in float64): float32 T = 1 H = 255 and 256, T = 4 H =
    # 127 and 128; float64 T = 1 H = 181 and 182, T = 4 H = 90 and 91.
    for B in (1, 2):
        step = 135 if f32 else 95
        assert threads(B, step, step, T=1, fused=True) == 1
        assert threads(B, step + 1, step + 1, T=1, fused=True) == 2
        # fused (I <= 32): float32 I16 H128 288 KiB a step, float64 I16 H64 160
        short = 1 if f32 else 3
        assert threads(B, 16, 128 if f32 else 64, T=short) == 1
        assert threads(B, 16, 128 if f32 else 64, T=short + 1) == 2
        for T, H in ((1, 255), (4, 127)) if f32 else ((1, 181), (4, 90)):
            assert threads(B, 300, H, T=T) == 1
            assert threads(B, 300, H + 1, T=T) == 2
        # training loops keep their per-step rule whatever T
        assert threads(B, 4, 111 if f32 else 102, T=1, training=True) == 2
        assert threads(B, 4, 111 if f32 else 102, T=1, backward=True) == 2
    assert _engine._loop_threads(1, 4, 256, dtype, n_threads=1) == 1
    with pytest.raises(ValueError, match="1 <= H"):
        _engine._loop_threads(1, 4, 0, dtype)
    with pytest.raises(ValueError, match="0 <= T"):
        _engine._loop_threads(1, 4, 8, dtype, T=-1)
    with pytest.raises(ValueError, match="2\\*\\*40"):
        _engine._loop_threads(1, 2**41, 8, dtype)
    with pytest.raises(ValueError, match="float32 or float64"):
        _engine._loop_threads(1, 4, 8, np.float16)


def test_runs_are_repeatable():
    p, kw = make_problem(16, 20, 10, 50, np.float32)
    first = ops.lstm_forward(**p, **kw)[0]
    for _ in range(5):
        np.testing.assert_array_equal(ops.lstm_forward(**p, **kw)[0], first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("H", [19, 32])  # with and without a partial block of units
def test_streaming_steps_equal_one_call(isa, dtype, H):
    B, T, I = 3, 10, 4
    p, _ = make_problem(B, T, I, H, dtype)
    y, h_T, c_T, _ = ops.lstm_forward(**p)
    h, c = p["h0"], p["c0"]
    for t in range(T):
        h, c = ops.lstm_step(p["x"][:, t], p["kernel"], p["recurrent_kernel"], p["bias"], h, c)
        np.testing.assert_allclose(h, y[:, t], **TOL[dtype])
    np.testing.assert_allclose(h, h_T, **TOL[dtype])
    np.testing.assert_allclose(c, c_T, **TOL[dtype])
    # and carrying the state across calls of lstm_forward itself
    y1, h1, c1, _ = ops.lstm_forward(p["x"][:, :4], p["kernel"], p["recurrent_kernel"],
                                     p["bias"], p["h0"], p["c0"])
    y2, h2, c2, _ = ops.lstm_forward(p["x"][:, 4:], p["kernel"], p["recurrent_kernel"],
                                     p["bias"], h1, c1)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, **TOL[dtype])


def test_gradients_accumulate_into_given_arrays():
    p, kw = make_problem(4, 6, 3, 10, np.float64)
    y, _, _, cache = ops.lstm_forward(**p, training=True)
    expected = ops.lstm_backward(cache, dy=np.ones_like(y), retain_cache=True)
    dk = np.full_like(p["kernel"], 2.0)
    dr = np.full_like(p["recurrent_kernel"], -1.0)
    db = np.full_like(p["bias"], 0.5)
    g = ops.lstm_backward(cache, dy=np.ones_like(y), dkernel=dk, drecurrent_kernel=dr, dbias=db)
    assert g.dkernel is dk and g.drecurrent_kernel is dr and g.dbias is db
    # the GEMM adds into the given arrays block by block: rounding differs
    np.testing.assert_allclose(dk, expected.dkernel + 2.0, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dr, expected.drecurrent_kernel - 1.0, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(db, expected.dbias + 0.5, rtol=1e-14)


def test_cache_is_consumed_unless_retained():
    p, _ = make_problem(2, 3, 2, 5, np.float64)
    y, _, _, cache = ops.lstm_forward(**p, training=True)
    a = ops.lstm_backward(cache, dy=y, retain_cache=True)
    b = ops.lstm_backward(cache, dy=y)
    np.testing.assert_array_equal(a.dx, b.dx)
    with pytest.raises(ValueError, match="consumed"):
        ops.lstm_backward(cache, dy=y)


def test_inference_mode_keeps_no_cache():
    p, _ = make_problem(2, 3, 2, 5, np.float32)
    assert ops.lstm_forward(**p)[3] is None


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "list", "int-x"])
def test_unusual_layouts_are_converted(layout):
    p, _ = make_problem(3, 5, 4, 6, np.float64)
    q = dict(p)
    if layout == "fortran":
        q = {k: (None if v is None else np.asfortranarray(v)) for k, v in p.items()}
    elif layout == "strided":
        big = np.zeros((3, 10, 8))
        big[:, ::2, ::2] = p["x"]
        q["x"] = big[:, ::2, ::2]
    elif layout == "reversed":
        q["x"] = p["x"][::-1].copy()[::-1]
        q["h0"] = p["h0"][:, ::-1].copy()[:, ::-1]
    elif layout == "list":
        q["x"] = p["x"].tolist()
        q["bias"] = p["bias"].tolist()
    elif layout == "int-x":
        p["x"] = np.round(p["x"] * 3)
        q["x"] = p["x"].astype(np.int32)
    y = ops.lstm_forward(**q)[0]
    np.testing.assert_allclose(y, ref.lstm_forward(**p)[0], **TOL[np.float64])


def test_empty_axes():
    p, _ = make_problem(0, 4, 3, 5, np.float32)
    y, h, c, cache = ops.lstm_forward(**p, training=True)
    assert y.shape == (0, 4, 5) and h.shape == (0, 5)
    g = ops.lstm_backward(cache, dy=y)
    assert g.dkernel.shape == (3, 20) and not g.dkernel.any()
    p, _ = make_problem(2, 0, 3, 5, np.float64)
    y, h, c, _ = ops.lstm_forward(**p)
    assert y.shape == (2, 0, 5)
    np.testing.assert_array_equal(h, p["h0"])
    y, h, c, _ = ops.lstm_forward(**p, return_sequences=False)
    np.testing.assert_array_equal(y, p["h0"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_nan_propagates(isa, dtype):  # through exp's clamp, native max/min or not
    p, _ = make_problem(2, 4, 3, 5, dtype)
    p["x"][1, 2, 0] = np.nan
    y = ops.lstm_forward(**p)[0]
    assert np.isnan(y[1, 2:]).all()
    assert np.isfinite(y[0]).all() and np.isfinite(y[1, :2]).all()


BAD_CALLS = [
    (dict(x=np.zeros((2, 3))), ValueError, r"x\.shape=\(B, T, I\)"),
    (dict(x=np.zeros((2, 3, 5))), ValueError, r"Received: x\.shape=\(2, 3, 5\)"),
    (dict(kernel=np.zeros((4, 20), np.float16)), TypeError, "kernel.dtype"),
    (dict(kernel=np.zeros((4, 12))), ValueError, r"kernel\.shape=\(I, 4\*H\)"),
    (dict(recurrent_kernel=np.zeros((5, 19))), ValueError, "recurrent_kernel.shape"),
    (dict(bias=np.zeros(7)), ValueError, r"bias\.shape"),
    (dict(h0=np.zeros((3, 5))), ValueError, r"h0\.shape=\(B, H\)"),
    (dict(x=np.zeros((2, 3, 4), complex)), TypeError, "x.dtype"),
    (dict(x=np.array([[["a"] * 4] * 3] * 2)), TypeError, "x.dtype"),
    (dict(lengths=np.array([1, 4])), ValueError, "lengths"),
    (dict(lengths=np.array([1.0, 2.0])), TypeError, "lengths"),
    (dict(lengths=np.array([1, 2, 3])), ValueError, r"lengths\.shape"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(kernel=[[0.0] * 20] * 4), TypeError, "kernel"),
]


@pytest.mark.parametrize("change,error,match", BAD_CALLS)
def test_bad_input_is_a_clear_error(change, error, match):
    args = dict(x=np.zeros((2, 3, 4)), kernel=np.zeros((4, 20)),
                recurrent_kernel=np.zeros((5, 20)), bias=np.zeros(20))
    args.update(change)
    with pytest.raises(error, match=match):
        ops.lstm_forward(**args)


def test_bad_backward_inputs():
    p, _ = make_problem(2, 3, 2, 5, np.float64)
    y, _, _, cache = ops.lstm_forward(**p, training=True)
    with pytest.raises(ValueError, match=r"dy\.shape"):
        ops.lstm_backward(cache, dy=np.ones((2, 5)), retain_cache=True)
    with pytest.raises(ValueError, match="dkernel"):
        ops.lstm_backward(cache, dy=y, dkernel=np.zeros((3, 3)), retain_cache=True)
    with pytest.raises(TypeError, match="LSTMCache"):
        ops.lstm_backward({"gates": 1})


def test_isa_choice():
    names = ops.supported_isas()
    assert names[0] == "generic" and ops.get_isa() in names
    with pytest.raises(ValueError, match="isa"):
        ops.set_isa("sse9")


def test_memory_error_for_absurd_sizes():
    with pytest.raises(MemoryError):
        # a (2**22, 2**24) float32 recurrent_kernel is 256 TiB: more than the address space
        ops.lstm_forward(np.zeros((1, 1, 1), np.float32), np.zeros((1, 2**24), np.float32),
                         np.lib.stride_tricks.as_strided(np.zeros(1, np.float32),
                                                         (2**22, 2**24), (0, 0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("H", [5, 16, 37])
@pytest.mark.parametrize("I", [7, 300])  # fused input projection / the GEMM on a prepacked kernel
def test_prepacked_weights_give_the_same_results(isa, dtype, H, I):
    B, T = 3, 6
    p, kw = make_problem(B, T, I, H, dtype, lengths=True)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    for opts in (dict(), dict(go_backwards=True, return_sequences=False)):
        a = ops.lstm_forward(**p, **kw, **opts)
        b = ops.lstm_forward(**p, **kw, **opts, packed=packed)
        for u, v in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(u, v)
    h1, c1 = ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"],
                           p["h0"], p["c0"])
    h2, c2 = ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"],
                           p["h0"], p["c0"], packed=packed)
    np.testing.assert_array_equal(h1, h2)
    np.testing.assert_array_equal(c1, c2)
    yr = ref.lstm_forward(**as64(p), **kw)[0]
    np.testing.assert_allclose(ops.lstm_forward(**p, **kw, packed=packed)[0], yr, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_prepacked_weights_on_the_team(isa, dtype):
    # Large enough for the thread team: with packed weights and a small state
    # the caller sets the state and the loop starts at step 0 (no first
    # meeting); unpacked, the team packs and sets it in a phase of its own.
    B, T, I, H = 2, 30, 20, 256
    p, kw = make_problem(B, T, I, H, dtype, lengths=True)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    want = ops.lstm_forward(**p, **kw, n_threads=1)
    for n_threads in (2, 3):
        for opts in (dict(), dict(go_backwards=True)):
            got = ops.lstm_forward(**p, **kw, **opts, packed=packed, n_threads=n_threads)
            ref_ = ops.lstm_forward(**p, **kw, **opts, n_threads=1)
            for u, v in zip(got[:3], ref_[:3]):
                np.testing.assert_array_equal(u, v)
        for u, v in zip(ops.lstm_forward(**p, **kw, packed=packed, n_threads=n_threads)[:3],
                        want[:3]):
            np.testing.assert_array_equal(u, v)
        h1, c1 = ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"],
                               p["h0"], p["c0"], n_threads=1)
        h2, c2 = ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"],
                               p["h0"], p["c0"], packed=packed, n_threads=n_threads)
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_array_equal(c1, c2)


def test_prepacked_gemm_kernel_is_checked():
    p, _ = make_problem(2, 3, 40, 5, np.float32)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    assert packed.kernel_gemm is not None
    packed.kernel_gemm = packed.kernel_gemm[:-1].copy()
    with pytest.raises(ValueError, match="packed.kernel_gemm"):
        ops.lstm_forward(**p, packed=packed)
    assert ops.pack_weights(p["kernel"][:30], p["recurrent_kernel"]).kernel_gemm is None


def test_packed_weights_of_another_layout_are_refused():
    # A pickled PackedWeights keeps working in the same build; one made by a
    # build with other packed layouts (same array sizes) is refused.
    import pickle
    p, _ = make_problem(2, 3, 40, 5, np.float32)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    again = pickle.loads(pickle.dumps(packed))
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=again)[0],
                                  ops.lstm_forward(**p, packed=packed)[0])
    again.layout = 1
    with pytest.raises(ValueError, match="layout"):
        ops.lstm_forward(**p, packed=again)
    with pytest.raises(ValueError, match="layout"):
        ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], packed=again)


def _line_offset(a):
    return a.__array_interface__["data"][0] % 64


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_arrays_the_kernels_stream_start_on_a_cache_line(dtype):
    # NumPy aligns to 16 bytes; a 64-byte vector of such an array spans two
    # cache lines. Every array of a page or more that the engine makes for the
    # kernels (packed weights, x @ kernel and the caches, outputs, gradients)
    # starts on a line, and still holds the right numbers.
    p, _ = make_problem(3, 40, 48, 40, dtype)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    for name in ("kernel", "recurrent_kernel", "kernel_gemm"):
        a = getattr(packed, name)
        assert a.nbytes >= 4096 and _line_offset(a) == 0, name
    y, h_T, c_T, cache = ops.lstm_forward(**p, training=True)
    for name, a in (("y", y), ("gates", cache.gates), ("cell", cache.cell),
                    ("hprev", cache.hprev)):
        assert a.nbytes >= 4096 and _line_offset(a) == 0, name
        assert a.flags.c_contiguous and a.flags.writeable and a.dtype == dtype, name
    grads = ops.lstm_backward(cache, dy=np.ones_like(y), retain_cache=True)
    assert _line_offset(grads.dx) == 0
    want = ref.lstm_forward(**as64(p))[0]
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=packed)[0], y)


def test_unpickled_packed_weights_are_realigned():
    import pickle
    p, _ = make_problem(2, 3, 40, 40, np.float32)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    again = pickle.loads(pickle.dumps(packed))
    for name in ("kernel", "recurrent_kernel", "kernel_gemm"):
        assert _line_offset(getattr(again, name)) == 0, name
        np.testing.assert_array_equal(getattr(again, name), getattr(packed, name))
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=again)[0],
                                  ops.lstm_forward(**p, packed=packed)[0])


def test_copying_packed_weights_leaves_the_original_alone():
    # copy.copy hands the original's own __dict__ to __setstate__
    import copy
    p, _ = make_problem(2, 3, 40, 40, np.float32)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    before = {n: getattr(packed, n) for n in ("kernel", "recurrent_kernel", "kernel_gemm")}
    again = copy.copy(packed)
    for name, a in before.items():
        assert getattr(packed, name) is a and getattr(again, name) is a, name
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=again)[0],
                                  ops.lstm_forward(**p, packed=packed)[0])


def test_prepacked_weights_are_checked():
    p, _ = make_problem(2, 3, 4, 5, np.float32)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    with pytest.raises(ValueError, match="units=6"):
        q, _ = make_problem(2, 3, 4, 6, np.float32)
        ops.lstm_forward(**q, packed=packed)
    with pytest.raises(ValueError, match="dtype"):
        q = {k: (None if v is None else v.astype(np.float64)) for k, v in p.items()}
        ops.lstm_forward(**q, packed=packed)
    with pytest.raises(TypeError, match="PackedWeights"):
        ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], packed=p["kernel"])
    others = [name for name in ops.supported_isas() if name != packed.isa]
    if others:  # a pack made for another block width is refused, not misread
        before = ops.get_isa()
        ops.set_isa(others[0])
        try:
            with pytest.raises(ValueError, match="ISA"):
                ops.lstm_forward(**p, packed=packed)
        finally:
            ops.set_isa(before)


def test_backward_can_skip_dx():
    p, _ = make_problem(3, 4, 5, 6, np.float64)
    y, _, _, cache = ops.lstm_forward(**p, training=True)
    full = ops.lstm_backward(cache, dy=y, retain_cache=True)
    part = ops.lstm_backward(cache, dy=y, need_dx=False)
    assert part.dx is None
    np.testing.assert_array_equal(part.dkernel, full.dkernel)
    np.testing.assert_array_equal(part.drecurrent_kernel, full.drecurrent_kernel)
    np.testing.assert_array_equal(part.dh0, full.dh0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("I", [5, 300])  # fused input projection / the GEMM (past its depth block)
def test_a_row_does_not_depend_on_its_batch(isa, dtype, I):
    """Each sample's outputs and input gradient are bit-identical whether it
    runs alone or with others, at any position: no tile (of any number of
    rows) sums in another order."""
    B, T, H = 13, 7, 21
    p, _ = make_problem(B, T, I, H, dtype, seed=4)
    y, h_T, c_T, cache = ops.lstm_forward(**p, training=True)
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    dx = ops.lstm_backward(cache, dy=dy).dx
    for rows in ([0], [12], [3, 4], [1, 2, 3, 4, 5, 6, 7], list(range(5, 13))):
        sub = {k: (v[rows] if k in ("x", "h0", "c0") else v) for k, v in p.items()}
        ys, hs, cs, cache_s = ops.lstm_forward(**sub, training=True)
        np.testing.assert_array_equal(ys, y[rows])
        np.testing.assert_array_equal(hs, h_T[rows])
        np.testing.assert_array_equal(cs, c_T[rows])
        np.testing.assert_array_equal(ops.lstm_backward(cache_s, dy=dy[rows]).dx, dx[rows])
