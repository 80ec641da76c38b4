"""Property tests at the Cython boundary (hypothesis): random shapes, strides, dtypes and
options of lstm_forward / lstm_backward / lstm_step against the NumPy reference.

Every generated input is given in a random memory layout (C, Fortran, strided,
negative strides, read-only, Python list) and dtype; the engine must give the
reference's numbers (computed in float64 on the same rounded values) and never
write to its inputs.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lstm_fast import ops  # noqa: E402
from lstm_fast import reference as ref  # noqa: E402

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LAYOUTS = ["c", "fortran", "strided", "negative", "readonly", "list"]


def lay_out(a, layout):
    """The same values as `a` in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        b = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), a.dtype)
        b[..., 1::2] = a
        return b[..., 1::2]
    if layout == "negative":
        idx = tuple(slice(None, None, -1) for _ in a.shape)
        return a[idx].copy()[idx]
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "list" and a.size:  # an empty nested list loses the shape
        return a.tolist()
    return a


@st.composite
def problems(draw, with_backward=True):
    B = draw(st.integers(0, 5))
    T = draw(st.integers(0, 7))
    I = draw(st.integers(0, 6))  # noqa: E741 - the shape letters of DESIGN.md
    # 100: batch 1-2 inference splits its blocks between threads from T = 4
    # (float64 T = 2; ops._engine._loop_threads)
    H = draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 100]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x_dtype = draw(st.sampled_from([None, np.float16, np.float32, np.float64, np.int16]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def r(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    x = r(B, T, I, scale=1.5)
    if x_dtype is not None:
        x = (x * (3 if x_dtype is np.int16 else 1)).astype(x_dtype)
    p = dict(x=x, kernel=r(I, 4 * H), recurrent_kernel=r(H, 4 * H),
             bias=r(4 * H) if draw(st.booleans()) else None,
             h0=r(B, H) if draw(st.booleans()) else None,
             c0=r(B, H) if draw(st.booleans()) else None)
    kw = dict(go_backwards=draw(st.booleans()), return_sequences=draw(st.booleans()),
              zero_output_for_mask=draw(st.booleans()))
    if draw(st.booleans()):
        kw["lengths"] = rng.integers(0, T + 1, size=B).astype(
            draw(st.sampled_from([np.int64, np.int32, np.uint8])))
    layouts = {k: draw(st.sampled_from(LAYOUTS if k not in ("kernel", "recurrent_kernel")
                                       else LAYOUTS[:-1])) for k in p}
    n_threads = draw(st.sampled_from([None, 1, 2, 3]))
    return p, kw, layouts, dtype, n_threads


def _ref_inputs(p, dtype):
    """What the engine computes on: every array rounded to the kernel's dtype, in float64."""
    return {k: None if v is None else np.asarray(v).astype(dtype).astype(np.float64)
            for k, v in p.items()}


@SETTINGS
@given(problems(), st.data())
def test_forward_and_backward_match_the_reference(problem, data):
    p, kw, layouts, dtype, n_threads = problem
    q = {k: None if v is None else lay_out(v, layouts[k]) for k, v in p.items()}
    snapshot = {k: None if v is None else np.array(v, copy=True) for k, v in q.items()}
    y, h, c, cache = ops.lstm_forward(**q, **kw, training=True, n_threads=n_threads)
    pr = _ref_inputs(p, dtype)
    yr, hr, cr, cache_r = ref.lstm_forward(**pr, **kw, training=True)
    tol = TOL[dtype]
    assert y.dtype == h.dtype == c.dtype == dtype
    assert y.shape == yr.shape and h.shape == hr.shape
    np.testing.assert_allclose(y, yr, **tol)
    np.testing.assert_allclose(h, hr, **tol)
    np.testing.assert_allclose(c, cr, **tol)
    for k, v in q.items():  # inputs untouched
        if v is not None:
            np.testing.assert_array_equal(np.asarray(v), snapshot[k])

    # backward with random upstream gradients in random layouts
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    grads_in = {}
    if data.draw(st.booleans()):
        grads_in["dy"] = rng.standard_normal(y.shape).astype(dtype)
    for name in ("dh_T", "dc_T"):
        if data.draw(st.booleans()):
            grads_in[name] = rng.standard_normal(h.shape).astype(dtype)
    laid = {k: lay_out(v, data.draw(st.sampled_from(LAYOUTS))) for k, v in grads_in.items()}
    g = ops.lstm_backward(cache, **laid, n_threads=n_threads,
                          retain_cache=data.draw(st.booleans()))
    gr = ref.lstm_backward(cache_r, **{k: v.astype(np.float64) for k, v in grads_in.items()})
    for name in ("dx", "dh0", "dc0", "dkernel", "drecurrent_kernel", "dbias"):
        a, b = getattr(g, name), getattr(gr, name)
        if b is None:
            assert a is None, name
        else:
            assert a.shape == b.shape, name
            np.testing.assert_allclose(a, b, **tol, err_msg=name)


@SETTINGS
@given(problems())
def test_step_matches_a_one_step_forward(problem):
    p, kw, layouts, dtype, n_threads = problem
    B, I = p["x"].shape[0], p["x"].shape[2]  # noqa: E741
    x_t = p["x"][:, 0] if p["x"].shape[1] else np.zeros((B, I), p["x"].dtype)
    args = dict(kernel=p["kernel"], recurrent_kernel=p["recurrent_kernel"], bias=p["bias"])
    q = {k: None if v is None else lay_out(v, layouts[k]) for k, v in args.items()}
    h, c = ops.lstm_step(lay_out(x_t, layouts["x"]), **q,
                         h=None if p["h0"] is None else lay_out(p["h0"], layouts["h0"]),
                         c=None if p["c0"] is None else lay_out(p["c0"], layouts["c0"]),
                         n_threads=n_threads)
    pr = _ref_inputs(dict(x=x_t[:, None], **args, h0=p["h0"], c0=p["c0"]), dtype)
    _, hr, cr, _ = ref.lstm_forward(**pr)
    np.testing.assert_allclose(h, hr, **TOL[dtype])
    np.testing.assert_allclose(c, cr, **TOL[dtype])


@SETTINGS
@given(problems(), st.sampled_from([1, 2, 4]))
def test_thread_count_never_changes_the_bits(problem, n_threads):
    p, kw, _, _, _ = problem
    y1, h1, c1, _ = ops.lstm_forward(**p, **kw, n_threads=1)
    yn, hn, cn, _ = ops.lstm_forward(**p, **kw, n_threads=n_threads)
    np.testing.assert_array_equal(yn, y1)
    np.testing.assert_array_equal(hn, h1)
    np.testing.assert_array_equal(cn, c1)
