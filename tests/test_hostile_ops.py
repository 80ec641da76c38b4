"""Hostile input at the low-level API (lstm_fast.ops): lstm_forward, lstm_backward, lstm_step.

Each case asserts the documented behaviour (ops.py's docstring): a clear
exception naming the argument (TypeError for a dtype that is not a real
number, ValueError for a shape, MemoryError for a size that cannot be
allocated), or a correct result compared with the NumPy reference. NaN and
Inf are not checked by the engine: they propagate exactly as in the reference
(and never leak from one sample of a batch into another).

Absurd sizes are NumPy views with zero strides (`as_strided`): they claim more
than 2**48 bytes (beyond the 48-bit address space, so no allocation can
succeed whatever the overcommit policy) but never touch that memory.
"""

import pickle

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from lstm_fast import _engine, ops
from lstm_fast import reference as ref

B, T, I, H = 3, 5, 4, 6  # noqa: E741 - the shape letters of DESIGN.md
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


def problem(dtype=np.float64, seed=0, B=B, T=T, I=I, H=H):  # noqa: E741
    rng = np.random.default_rng(seed)

    def r(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    return dict(x=r(B, T, I, scale=1.0), kernel=r(I, 4 * H), recurrent_kernel=r(H, 4 * H),
                bias=r(4 * H), h0=r(B, H), c0=r(B, H))


def as64(p):
    return {k: (None if v is None else np.asarray(v, np.float64)) for k, v in p.items()}


def check_forward(p, dtype=np.float64, **kw):
    """Engine forward + backward == reference (NaN and Inf in the same places)."""
    y, h, c, cache = ops.lstm_forward(**p, **kw, training=True)
    yr, hr, cr, cache_r = ref.lstm_forward(**as64(p), **kw, training=True)
    tol = TOL[dtype]
    assert y.dtype == dtype
    np.testing.assert_allclose(y, yr, **tol)
    np.testing.assert_allclose(h, hr, **tol)
    np.testing.assert_allclose(c, cr, **tol)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    g = ops.lstm_backward(cache, dy=dy)
    gr = ref.lstm_backward(cache_r, dy=dy.astype(np.float64))
    for name in ("dx", "dh0", "dc0", "dkernel", "drecurrent_kernel", "dbias"):
        a, b = getattr(g, name), getattr(gr, name)
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, **tol, err_msg=name)
    return y, h, c


def huge(shape, dtype=np.float32):
    """A view claiming prod(shape) elements that owns one."""
    return as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


# ---------------------------------------------------------------- NaN and Inf


def test_nan_in_x_stays_in_its_sample():
    p = problem()
    p["x"][1, 2, 0] = np.nan
    y, h, c = check_forward(p)
    assert np.isnan(y[1, 2:]).all() and not np.isnan(y[1, :2]).any()
    assert np.isfinite(y[[0, 2]]).all() and np.isfinite(h[[0, 2]]).all()


def test_inf_in_x_matches_reference():
    p = problem()
    p["x"][0, 1, :] = np.inf
    p["x"][2, 3, 1] = -np.inf
    check_forward(p)


@pytest.mark.parametrize("name", ["kernel", "recurrent_kernel", "bias"])
def test_nan_in_weights_propagates(name):
    p = problem()
    p[name].flat[3] = np.nan
    y, h, c = check_forward(p)
    assert np.isnan(y).any()


def test_inf_in_recurrent_kernel_matches_reference():
    p = problem()
    p["recurrent_kernel"][0, :] = np.inf
    check_forward(p)


@pytest.mark.parametrize("name", ["h0", "c0"])
def test_nan_in_initial_state_stays_in_its_sample(name):
    p = problem()
    p[name][2, 1] = np.nan
    y, h, c = check_forward(p)
    assert np.isnan(y[2]).any()
    assert np.isfinite(y[:2]).all()


def test_inf_in_c0_matches_reference():
    p = problem()
    p["c0"][0, :] = np.inf
    p["c0"][1, :] = -np.inf
    check_forward(p)


def test_nan_in_dy_and_dh_T_matches_reference():
    p = problem()
    y, h, c, cache = ops.lstm_forward(**p, training=True)
    _, _, _, cache_r = ref.lstm_forward(**p, training=True)
    dy = np.zeros_like(y)
    dy[0, 4, 0] = np.nan
    dh_T = np.zeros_like(h)
    dh_T[1, 0] = np.inf
    g = ops.lstm_backward(cache, dy=dy, dh_T=dh_T)
    gr = ref.lstm_backward(cache_r, dy=dy, dh_T=dh_T)
    for a, b in zip(g, gr):
        np.testing.assert_allclose(a, b, **TOL[np.float64])
    assert np.isfinite(g.dx[2]).all()


def test_nan_in_step_state():
    p = problem()
    h = p["h0"].copy()
    h[0, 0] = np.nan
    h1, c1 = ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"], h,
                           p["c0"])
    y, hr, cr, _ = ref.lstm_forward(p["x"][:, :1], p["kernel"], p["recurrent_kernel"],
                                    p["bias"], h, p["c0"])
    np.testing.assert_allclose(h1, hr, **TOL[np.float64])
    np.testing.assert_allclose(c1, cr, **TOL[np.float64])
    assert np.isnan(h1[0]).all() and np.isfinite(h1[1:]).all()


# ---------------------------------------------------------------- ranks and shapes


@pytest.mark.parametrize(
    "name, bad",
    [
        ("x", np.zeros((B, T))),
        ("x", np.zeros((B, T, I, 1))),
        ("x", np.zeros((B, T, I + 1))),
        ("kernel", np.zeros(4 * H)),
        ("kernel", np.zeros((I, 4 * H + 1))),
        ("recurrent_kernel", np.zeros((H, 4 * H + 4))),
        ("recurrent_kernel", np.zeros((4 * H, H))),
        ("bias", np.zeros((4 * H, 1))),
        ("bias", np.zeros(H)),
        ("h0", np.zeros((B + 1, H))),
        ("h0", np.zeros(H)),
        ("c0", np.zeros((B, H, 1))),
    ],
    ids=lambda v: getattr(v, "shape", v),
)
def test_forward_wrong_shape_names_the_argument(name, bad):
    p = problem()
    p[name] = bad
    with pytest.raises(ValueError, match=rf"\b{name}\.shape"):
        ops.lstm_forward(**p)


def test_zero_units_is_rejected():
    p = problem()
    p.update(kernel=np.zeros((I, 0)), recurrent_kernel=np.zeros((0, 0)), bias=None, h0=None,
             c0=None)
    with pytest.raises(ValueError, match="recurrent_kernel.shape"):
        ops.lstm_forward(**p)


@pytest.mark.parametrize(
    "name, bad",
    [("x_t", np.zeros((B, 1, I))), ("x_t", np.zeros(I)), ("h", np.zeros((B, H + 1))),
     ("c", np.zeros((B + 1, H)))],
    ids=lambda v: getattr(v, "shape", v),
)
def test_step_wrong_shape_names_the_argument(name, bad):
    p = problem()
    args = dict(x_t=p["x"][:, 0], kernel=p["kernel"], recurrent_kernel=p["recurrent_kernel"],
                bias=p["bias"], h=p["h0"], c=p["c0"])
    args[name] = bad
    with pytest.raises(ValueError, match=rf"\b{name}\.shape"):
        ops.lstm_step(**args)


@pytest.mark.parametrize("name, shape", [("dy", (B, H)), ("dh_T", (B, H + 1)),
                                         ("dc_T", (H,))])
def test_backward_wrong_gradient_shape(name, shape):
    p = problem()
    cache = ops.lstm_forward(**p, training=True)[3]
    with pytest.raises(ValueError, match=rf"\b{name}\.shape"):
        ops.lstm_backward(cache, **{name: np.zeros(shape)})
    assert not cache.consumed  # validation failed before the kernel touched the cache


# ---------------------------------------------------------------- zero-sized axes


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("axis", ["B", "T", "I"])
def test_zero_sized_axis_matches_reference(axis, return_sequences):
    sizes = dict(B=B, T=T, I=I, H=H)
    sizes[axis] = 0
    p = problem(**sizes)
    y, h, c = check_forward(p, return_sequences=return_sequences)
    assert y.shape == ((sizes["B"], sizes["T"], H) if return_sequences else (sizes["B"], H))


def test_step_with_empty_batch():
    p = problem()
    h, c = ops.lstm_step(np.zeros((0, I)), p["kernel"], p["recurrent_kernel"], p["bias"])
    assert h.shape == c.shape == (0, H)


# ---------------------------------------------------------------- a step's two checks

# lstm_step checks its arrays without making Python objects when they are
# what the C code reads as they are (ndarrays of the computation's type in
# the machine's byte order, C-contiguous, aligned: a stream's case), and
# converts everything else through the general checks. Every form below
# must give what the ready arrays give, bit for bit; the first ones take the
# general path, the last two (the same numbers under an equal dtype object)
# the ready one.


def _misaligned(a):
    """a copy of a whose data starts one byte past an aligned address"""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


_GENERAL_FORMS = {
    "list": lambda a: a.tolist(),
    "float64": lambda a: a.astype(np.float64),
    "fortran": lambda a: np.asfortranarray(a) if a.ndim == 2 else a[::-1].copy()[::-1],
    "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "misaligned": _misaligned,
    "subclass": lambda a: a.view(type("Sub", (np.ndarray,), {})),
}
_READY_FORMS = {
    "metadata": lambda a: a.astype(np.dtype(a.dtype, metadata={"unit": "V"})),
    "unpickled": lambda a: pickle.loads(pickle.dumps(a)),
}
_FORMS = {**_GENERAL_FORMS, **_READY_FORMS}
_STEP_ARGS = ("x_t", "kernel", "recurrent_kernel", "bias", "h", "c")


def _step_problem(dtype=np.float32):
    p = problem(dtype, B=4, I=5, H=9)
    return dict(x_t=p["x"][:, 0].copy(), kernel=p["kernel"],
                recurrent_kernel=p["recurrent_kernel"], bias=p["bias"], h=p["h0"], c=p["c0"])


def _arg_forms(names):
    """(argument, form) pairs to try: kernel's dtype is the computation's (these
    forms change it or are refused), recurrent_kernel must be an array."""
    return [(name, form) for name in names for form in _FORMS
            if (name != "kernel" or form not in ("float64", "big-endian", "list"))
            and (name != "recurrent_kernel" or form != "list")]


@pytest.mark.parametrize("name, form", _arg_forms(_STEP_ARGS))
@pytest.mark.parametrize("with_packed", [False, True], ids=["unpacked", "packed"])
def test_step_of_any_array_form_equals_the_ready_arrays(name, form, with_packed):
    ready = _step_problem()
    other = dict(ready, **{name: _FORMS[form](ready[name])})
    kw = {}
    if with_packed:
        kw["packed"] = ops.pack_weights(ready["kernel"], ready["recurrent_kernel"])
    # the path it takes
    assert _engine._step_is_ready(**ready, **kw) == (True, with_packed)
    assert _engine._step_is_ready(**other, **kw)[0] == (form in _READY_FORMS)
    want = ops.lstm_step(**ready, **kw)
    got = ops.lstm_step(**other, **kw)
    for u, v in zip(got, want):
        assert type(u) is np.ndarray and u.dtype == np.float32 and u.flags.c_contiguous
        np.testing.assert_array_equal(u, v)
    # and the ready arrays' step is the reference's
    y, hr, cr, _ = ref.lstm_forward(
        ready["x_t"][:, None], ready["kernel"], ready["recurrent_kernel"], ready["bias"],
        ready["h"], ready["c"])
    np.testing.assert_allclose(want[0], hr, **TOL[np.float32])
    np.testing.assert_allclose(want[1], cr, **TOL[np.float32])


@pytest.mark.parametrize("weights_dtype", [None, "float16"])
def test_a_step_on_unpickled_arrays_and_packed_weights_takes_the_ready_path(weights_dtype):
    # what a worker process receives: every dtype an equal copy of NumPy's own
    if weights_dtype and not ops.half_weights_supported():
        pytest.skip("no F16C on this CPU and ISA path")
    ready = _step_problem()
    packed = ops.pack_weights(ready["kernel"], ready["recurrent_kernel"],
                              weights_dtype=weights_dtype)
    sent = pickle.loads(pickle.dumps((ready, packed)))
    assert sent[0]["kernel"].dtype is not np.dtype(np.float32)  # what made this test
    assert _engine._step_is_ready(**sent[0], packed=sent[1]) == (True, True)
    for u, v in zip(ops.lstm_step(**sent[0], packed=sent[1]),
                    ops.lstm_step(**ready, packed=packed)):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "name, shape",
    [("x_t", (4, 6)), ("x_t", (4, 5, 1)), ("h", (5, 9)), ("h", (4, 10)), ("c", (3, 9)),
     ("c", (4, 8)), ("bias", (40,)), ("bias", (36, 1))],
    ids=lambda v: str(v))
def test_step_wrong_shape_of_a_ready_array_names_it(name, shape, dtype):
    # C-contiguous arrays of the computation's dtype, as the ready path takes
    # them: a wrong size must send the call to the checks that name it
    args = _step_problem(dtype)
    args[name] = np.zeros(shape, dtype)
    assert not _engine._step_is_ready(**args)[0]
    with pytest.raises(ValueError, match=rf"\b{name}\.shape"):
        ops.lstm_step(**args)


# lstm_forward takes the same ready path (a stream's chunk of steps, a small
# predict), with x (B, T, I), h0 and c0.
_FORWARD_ARGS = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")


@pytest.mark.parametrize("name, form", _arg_forms(_FORWARD_ARGS))
@pytest.mark.parametrize("return_sequences", [True, False], ids=["seq", "last"])
def test_forward_of_any_array_form_equals_the_ready_arrays(name, form, return_sequences):
    ready = problem(np.float32, B=4, T=3, I=5, H=9)
    other = dict(ready, **{name: _FORMS[form](ready[name])})
    assert _engine._forward_is_ready(**ready)
    assert _engine._forward_is_ready(**other) == (form in _READY_FORMS)
    want = ops.lstm_forward(**ready, return_sequences=return_sequences)
    got = ops.lstm_forward(**other, return_sequences=return_sequences)
    for u, v in zip(got[:3], want[:3]):
        assert type(u) is np.ndarray and u.dtype == np.float32 and u.flags.c_contiguous
        np.testing.assert_array_equal(u, v)
    assert want[0].shape == ((4, 3, 9) if return_sequences else (4, 9))
    yr, hr, cr, _ = ref.lstm_forward(**as64(ready), return_sequences=return_sequences)
    for u, v in zip(want[:3], (yr, hr, cr)):
        np.testing.assert_allclose(u, v, **TOL[np.float32])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "name, shape",
    [("x", (4, 3, 6)), ("x", (4, 3)), ("x", (4, 3, 5, 1)), ("h0", (5, 9)), ("h0", (4, 10)),
     ("c0", (3, 9)), ("bias", (40,)), ("bias", (36, 1))],
    ids=lambda v: str(v))
def test_forward_wrong_shape_of_a_ready_array_names_it(name, shape, dtype):
    args = problem(dtype, B=4, T=3, I=5, H=9)
    args[name] = np.zeros(shape, dtype)
    assert not _engine._forward_is_ready(**args)
    with pytest.raises(ValueError, match=rf"\b{name}\.shape"):
        ops.lstm_forward(**args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_on_unpickled_arrays_takes_the_ready_path(dtype):
    ready = problem(dtype, B=2, T=4, I=3, H=7)
    sent = pickle.loads(pickle.dumps(ready))
    assert _engine._forward_is_ready(**sent)
    packed = pickle.loads(pickle.dumps(ops.pack_weights(ready["kernel"],
                                                       ready["recurrent_kernel"])))
    for u, v in zip(ops.lstm_forward(**sent, packed=packed)[:3], ops.lstm_forward(**ready)[:3]):
        assert u.dtype == dtype
        np.testing.assert_array_equal(u, v)
    # training on them: the cache holds the arrays as given (an equal dtype
    # with metadata here), the gradients come in NumPy's own dtype
    meta = {k: v.astype(np.dtype(dtype, metadata={"unit": "V"})) for k, v in sent.items()}
    assert _engine._forward_is_ready(**meta)
    dy = np.ones((2, 4, 7), dtype)
    got = ops.lstm_backward(ops.lstm_forward(**meta, training=True)[3], dy=dy)
    want = ops.lstm_backward(ops.lstm_forward(**ready, training=True)[3], dy=dy)
    for u, v in zip(got, want):
        assert u.dtype == dtype and u.dtype.metadata is None
        np.testing.assert_array_equal(u, v)


def test_forward_and_backward_on_misaligned_arrays():
    # the general checks copy a misaligned array (the C code reads its
    # elements as floats): the same numbers as aligned arrays
    p = problem(np.float32)
    q = {k: _misaligned(v) for k, v in p.items()}
    want = ops.lstm_forward(**p, training=True)
    got = ops.lstm_forward(**q, training=True)
    for u, v in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(u, v)
    dy = np.ones_like(want[0])
    for u, v in zip(ops.lstm_backward(got[3], dy=_misaligned(dy)),
                    ops.lstm_backward(want[3], dy=dy)):
        np.testing.assert_array_equal(u, v)


def test_misaligned_lengths_and_gradient_buffers():
    # the C code reads lengths as int64s and accumulates into the gradient
    # buffers: misaligned ones are copied (lengths) or summed through a
    # temporary (dkernel and co.), with the aligned arrays' numbers
    p = problem(np.float32)
    lengths = np.array([T, 2, 0], np.int64)
    want = ops.lstm_forward(**p, lengths=lengths, training=True)
    got = ops.lstm_forward(**p, lengths=_misaligned(lengths), training=True)
    for u, v in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(u, v)
    dy = np.ones_like(want[0])
    start = [np.full_like(p[k], 0.5) for k in ("kernel", "recurrent_kernel", "bias")]
    aligned = [a.copy() for a in start]
    shifted = [_misaligned(a) for a in start]
    ops.lstm_backward(want[3], dy=dy, dkernel=aligned[0], drecurrent_kernel=aligned[1],
                      dbias=aligned[2])
    ops.lstm_backward(got[3], dy=dy, dkernel=shifted[0], drecurrent_kernel=shifted[1],
                      dbias=shifted[2])
    for u, v, s0 in zip(shifted, aligned, start):
        np.testing.assert_array_equal(u, v)
        assert not np.array_equal(u, s0)  # accumulated into


def test_matmul_refuses_a_misaligned_out():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="aligned=False"):
        ops.matmul(a, a.T.copy(), out=_misaligned(np.zeros((3, 3), np.float32)))


def test_a_copy_of_packed_weights_with_a_misaligned_array_is_realigned():
    import copy
    p = problem(np.float32)
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    want = ops.lstm_forward(**p, packed=packed)[0]
    packed.recurrent_kernel = _misaligned(packed.recurrent_kernel)  # (an out-of-band buffer)
    del packed.weights_dtype  # and a pickle from before weights_dtype existed
    with pytest.raises(ValueError, match="packed.recurrent_kernel"):
        ops.lstm_forward(**p, packed=packed)
    again = copy.copy(packed)
    assert "weights_dtype" not in packed.__dict__  # the original is left as it was
    assert again.recurrent_kernel.flags.aligned and again.weights_dtype is packed.dtype
    np.testing.assert_array_equal(ops.lstm_forward(**p, packed=again)[0], want)


def test_step_outputs_of_a_page_start_on_a_cache_line():
    p = problem(np.float32, B=1, I=3, H=1024)
    h, c = ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], p["bias"],
                         p["h0"], p["c0"])
    for a in (h, c):
        assert a.nbytes == 4096 and a.__array_interface__["data"][0] % 64 == 0
    hr, cr = ref.lstm_forward(p["x"][:, :1], p["kernel"], p["recurrent_kernel"], p["bias"],
                              p["h0"], p["c0"])[1:3]
    np.testing.assert_allclose(h, hr, **TOL[np.float32])
    np.testing.assert_allclose(c, cr, **TOL[np.float32])


# ---------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    "lengths, exc, match",
    [
        ([T, T + 1, 0], ValueError, r"\[0, T\]"),
        ([T, -1, 0], ValueError, r"\[0, T\]"),
        (np.array([2**63 + 1, 1, 1], np.uint64), ValueError, r"\[0, T\]"),
        ([T, T], ValueError, r"lengths\.shape"),
        ([[T, T, T]], ValueError, r"lengths\.shape"),
        (T, ValueError, r"lengths\.shape"),
        ([1.0, 2.0, 3.0], TypeError, "lengths"),
        ([True, False, True], TypeError, "lengths"),
        (["1", "2", "3"], TypeError, "lengths"),
        (np.array([1, 2, 3], object), TypeError, "lengths"),
    ],
    ids=["too-long", "negative", "uint64-overflow", "short", "2d", "scalar", "float", "bool",
         "str", "object"],
)
def test_bad_lengths(lengths, exc, match):
    with pytest.raises(exc, match=match):
        ops.lstm_forward(**problem(), lengths=lengths)


@pytest.mark.parametrize("lengths", [[0, 0, 0], [T, 0, 2], np.array([5, 1, 3], np.uint8)],
                         ids=["all-zero", "mixed", "uint8"])
def test_edge_lengths_match_reference(lengths):
    y, h, c = check_forward(problem(), lengths=lengths, go_backwards=True)
    if not np.asarray(lengths).any():  # nothing computed: the state is carried
        np.testing.assert_array_equal(h, problem()["h0"])


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "dtype", [object, str, complex, "datetime64[s]", "V8"],
    ids=["object", "str", "complex", "datetime", "void"],
)
@pytest.mark.parametrize("name", ["x", "bias", "h0", "c0"])
def test_non_real_dtype_names_the_argument(name, dtype):
    p = problem()
    p[name] = np.zeros(p[name].shape, dtype=dtype)
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        ops.lstm_forward(**p)


@pytest.mark.parametrize("dtype", [np.float16, np.int32, complex, object, bool])
def test_kernel_dtype_must_be_float32_or_float64(dtype):
    p = problem()
    p["kernel"] = p["kernel"].astype(dtype)
    with pytest.raises(TypeError, match="kernel.dtype"):
        ops.lstm_forward(**p)


def test_kernel_as_list_is_rejected_by_name():
    p = problem()
    p["kernel"] = p["kernel"].tolist()
    with pytest.raises(TypeError, match="kernel"):
        ops.lstm_forward(**p)


@pytest.mark.parametrize("dtype", [bool, np.int8, np.uint16, np.int64, np.float16])
def test_integer_bool_half_inputs_are_converted(dtype):
    p = problem(np.float32)
    # |x| for unsigned types: casting a negative float to one is platform-defined
    x = p["x"] > 0 if dtype is bool else (
        (np.abs(p["x"]) if np.dtype(dtype).kind == "u" else p["x"]) * 3).astype(dtype)
    p["x"] = x
    p["h0"] = p["h0"].astype(np.float16)
    y, h, c = check_forward(p, np.float32)
    assert y.dtype == np.float32


def test_mixed_float_widths_follow_the_kernel():
    p = problem(np.float64)
    p["recurrent_kernel"] = p["recurrent_kernel"].astype(np.float32)
    p["bias"] = p["bias"].astype(np.float32)
    y, h, c, _ = ops.lstm_forward(**p)
    assert y.dtype == np.float64
    yr = ref.lstm_forward(**as64(p))[0]
    np.testing.assert_allclose(y, yr, **TOL[np.float64])


# ---------------------------------------------------------------- memory layouts


def _layouts():
    def fortran(a):
        return np.asfortranarray(a)

    def strided(a):  # every other element along the last axis
        b = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        b[..., ::2] = a
        return b[..., ::2]

    def reversed_(a):  # negative strides on every axis, same values
        return np.flip(np.flip(a).copy())

    def readonly(a):
        b = a.copy()
        b.flags.writeable = False
        return b

    def pylist(a):
        return a.tolist()

    return dict(fortran=fortran, strided=strided, negative=reversed_, readonly=readonly,
                pylist=pylist)


LAYOUTS = _layouts()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts_of_inputs_give_the_same_result(layout):
    p = problem(np.float32)
    y0, h0_, c0_ = check_forward(p, np.float32)
    f = LAYOUTS[layout]
    q = {k: (v if k in ("kernel", "recurrent_kernel") and layout == "pylist" else f(v))
         for k, v in p.items()}
    if layout != "pylist":
        assert not q["x"].flags.c_contiguous or not q["x"].flags.writeable
    snapshot = {k: np.array(v, copy=True) for k, v in q.items()}
    y, h, c, _ = ops.lstm_forward(**q)
    np.testing.assert_array_equal(y, y0)  # the same numbers, bit for bit
    np.testing.assert_array_equal(h, h0_)
    for k, v in q.items():  # inputs are never written
        np.testing.assert_array_equal(np.asarray(v), snapshot[k])


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative", "readonly"])
def test_weight_layouts_give_the_same_result(layout):
    p = problem(np.float32)
    y0 = ops.lstm_forward(**p)[0]
    f = LAYOUTS[layout]
    p["kernel"], p["recurrent_kernel"] = f(p["kernel"]), f(p["recurrent_kernel"])
    np.testing.assert_array_equal(ops.lstm_forward(**p)[0], y0)


def test_backward_accumulates_into_non_contiguous_gradients():
    p = problem()
    cache = ops.lstm_forward(**p, training=True)[3]
    _, _, _, cache_r = ref.lstm_forward(**p, training=True)
    dy = np.ones((B, T, H))
    dk = np.ones((I, 8 * H))[:, ::2]  # strided view, starts at 1
    dr = np.asfortranarray(np.ones((H, 4 * H)))
    ops.lstm_backward(cache, dy=dy, dkernel=dk, drecurrent_kernel=dr)
    gr = ref.lstm_backward(cache_r, dy=dy)
    np.testing.assert_allclose(dk, gr.dkernel + 1, **TOL[np.float64])
    np.testing.assert_allclose(dr, gr.drecurrent_kernel + 1, **TOL[np.float64])


@pytest.mark.parametrize(
    "name, make",
    [
        ("dkernel", lambda k: np.zeros_like(k, dtype=np.float32)),
        ("dkernel", lambda k: np.zeros((k.shape[1], k.shape[0]))),
        ("dkernel", lambda k: k.tolist()),
        ("drecurrent_kernel", lambda k: np.zeros((H, 4 * H), complex)),
        ("dbias", lambda k: np.zeros(4 * H + 1)),
    ],
    ids=["dtype", "transposed", "list", "complex", "shape"],
)
def test_backward_bad_gradient_buffers(name, make):
    p = problem()
    cache = ops.lstm_forward(**p, training=True)[3]
    with pytest.raises(ValueError, match=name):
        ops.lstm_backward(cache, dy=np.ones((B, T, H)), **{name: make(p["kernel"])})


def test_backward_read_only_gradient_buffer():
    p = problem()
    cache = ops.lstm_forward(**p, training=True)[3]
    dk = np.zeros_like(p["kernel"])
    dk.flags.writeable = False
    with pytest.raises(ValueError, match="dkernel to be writeable"):
        ops.lstm_backward(cache, dy=np.ones((B, T, H)), dkernel=dk)


def test_backward_dbias_without_bias():
    p = problem()
    p["bias"] = None
    cache = ops.lstm_forward(**p, training=True)[3]
    with pytest.raises(ValueError, match="dbias"):
        ops.lstm_backward(cache, dbias=np.zeros(4 * H))


@pytest.mark.parametrize("cache", [None, "cache", {"gates": np.zeros(3)}], ids=str)
def test_backward_rejects_what_is_not_a_cache(cache):
    with pytest.raises(TypeError, match="cache"):
        ops.lstm_backward(cache)


def test_backward_rejects_a_consumed_cache_and_inference_output():
    p = problem()
    out = ops.lstm_forward(**p, training=False)
    assert out[3] is None
    cache = ops.lstm_forward(**p, training=True)[3]
    ops.lstm_backward(cache, dy=np.ones((B, T, H)))
    with pytest.raises(ValueError, match="consumed"):
        ops.lstm_backward(cache, dy=np.ones((B, T, H)))


# A cache is a plain Python object; the C loop trusts the sizes of its arrays.
# Replacing them must be refused before the loop (it used to read and write out
# of bounds, and segfaulted for float32 gates under a float64 kernel).
@pytest.mark.parametrize(
    "name, forge",
    [
        ("gates", lambda a: np.zeros(3)),
        ("gates", lambda a: a.astype(np.float32)),
        ("gates", lambda a: np.asfortranarray(a)),
        ("gates", lambda a: a.tolist()),
        ("cell", lambda a: a[:, :1]),
        ("c0", lambda a: np.zeros(1)),
        ("lengths", lambda a: np.array([1])),
        ("lengths", lambda a: np.array([1, 2, 3], np.int32)),
        ("recurrent_kernel", lambda a: np.zeros((2 * H, 8 * H))),
        ("x", lambda a: np.zeros((40, T, I))),
        ("kernel", lambda a: None),
        ("gates", lambda a: _misaligned(a)),
    ],
    ids=["gates-tiny", "gates-f32", "gates-fortran", "gates-list", "cell-short", "c0-tiny",
         "lengths-short", "lengths-int32", "rk-bigger", "x-bigger", "kernel-none",
         "gates-misaligned"],
)
def test_a_modified_cache_is_refused(name, forge):
    p = problem()
    cache = ops.lstm_forward(**p, lengths=[T, 2, 0], training=True)[3]
    setattr(cache, name, forge(getattr(cache, name)))
    with pytest.raises(ValueError, match="cache"):
        ops.lstm_backward(cache, dy=np.ones((B, T, H)))


def test_a_read_only_cache_is_refused_unless_retained():
    p = problem()
    cache = ops.lstm_forward(**p, training=True)[3]
    cache_r = ref.lstm_forward(**p, training=True)[3]
    cache.gates.flags.writeable = False
    with pytest.raises(ValueError, match="cache.gates"):
        ops.lstm_backward(cache, dy=np.ones((B, T, H)))
    g = ops.lstm_backward(cache, dy=np.ones((B, T, H)), retain_cache=True)
    np.testing.assert_allclose(g.dx, ref.lstm_backward(cache_r, dy=np.ones((B, T, H))).dx,
                               **TOL[np.float64])


@pytest.mark.parametrize("name", ["kernel", "recurrent_kernel"])
@pytest.mark.parametrize("forge", [lambda a: a[:3].copy(), lambda a: a.astype(np.float32),
                                   lambda a: np.repeat(a, 2)[::2], lambda a: None, _misaligned],
                         ids=["short", "f32", "strided", "none", "misaligned"])
def test_modified_packed_weights_are_refused(name, forge):
    p = problem()
    packed = ops.pack_weights(p["kernel"], p["recurrent_kernel"])
    setattr(packed, name, forge(getattr(packed, name)))
    with pytest.raises(ValueError, match=f"packed.{name}"):
        ops.lstm_forward(**p, packed=packed)
    with pytest.raises(ValueError, match=f"packed.{name}"):
        ops.lstm_step(p["x"][:, 0], p["kernel"], p["recurrent_kernel"], packed=packed)


@pytest.mark.parametrize("bad", [lambda p: p["kernel"], lambda p: ops.pack_weights(
    p["kernel"][:, :4 * (H - 1)], p["recurrent_kernel"][: H - 1, : 4 * (H - 1)])],
    ids=["array", "other-units"])
def test_packed_of_the_wrong_kind(bad):
    p = problem()
    with pytest.raises((TypeError, ValueError), match="packed"):
        ops.lstm_forward(**p, packed=bad(p))


# ---------------------------------------------------------------- threads argument


@pytest.mark.parametrize("n_threads", [0, -1, 2.5, "2", True, [2]], ids=repr)
def test_bad_n_threads(n_threads):
    with pytest.raises(ValueError, match="n_threads"):
        ops.lstm_forward(**problem(), n_threads=n_threads)


def test_absurd_n_threads_is_clamped():
    p = problem()
    y1 = ops.lstm_forward(**p, n_threads=1)[0]
    np.testing.assert_array_equal(ops.lstm_forward(**p, n_threads=10**30)[0], y1)
    np.testing.assert_array_equal(ops.lstm_forward(**p, n_threads=np.int64(2**40))[0], y1)


@pytest.mark.parametrize("value", ["abc", "0", "-3"])
def test_bad_thread_environment_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("LSTM_FAST_NUM_THREADS", value)
    with pytest.raises(ValueError, match="LSTM_FAST_NUM_THREADS"):
        ops.lstm_forward(**problem())


# ---------------------------------------------------------------- absurd sizes


def test_huge_batch_is_a_memory_error():
    k = np.zeros((I, 4 * H), np.float32)
    r = np.zeros((H, 4 * H), np.float32)
    with pytest.raises(MemoryError):
        ops.lstm_forward(huge((2**46, 2, I)), k, r)


def test_huge_batch_with_no_steps_is_a_memory_error():
    # x holds no numbers (T = 0), but h_T is (B, H): the engine's own allocation fails.
    x = np.zeros((2**50, 0, I), np.float32)
    with pytest.raises(MemoryError, match="lstm_fast"):
        ops.lstm_forward(x, np.zeros((I, 4 * H), np.float32), np.zeros((H, 4 * H), np.float32))


def test_huge_time_axis_is_a_memory_error():
    k = np.zeros((I, 4 * H), np.float32)
    r = np.zeros((H, 4 * H), np.float32)
    with pytest.raises(MemoryError):
        ops.lstm_forward(huge((1, 2**47, I)), k, r, training=True)


def test_huge_units_is_a_memory_error():
    Hh = 2**23  # recurrent_kernel claims 2**48 elements
    with pytest.raises(MemoryError):
        ops.lstm_forward(np.zeros((1, 1, 1), np.float32), huge((1, 4 * Hh)), huge((Hh, 4 * Hh)))


def test_huge_input_features_is_a_memory_error():
    Ih = 2**44  # kernel claims 2**44 * 24 elements
    with pytest.raises(MemoryError):
        ops.lstm_forward(huge((1, 1, Ih)), huge((Ih, 4 * H)), np.zeros((H, 4 * H), np.float32))


def test_huge_step_batch_is_a_memory_error():
    p = problem(np.float32)
    with pytest.raises(MemoryError):
        ops.lstm_step(huge((2**47, I)), p["kernel"], p["recurrent_kernel"])


@pytest.mark.parametrize("B_log2", [50, 60], ids=["2**50", "2**60"])
def test_huge_step_batch_without_features_is_a_memory_error(B_log2):
    # x_t holds no numbers (I = 0) and is C-contiguous: the step's ready-array
    # checks take it, and its (B, H) outputs, claiming more bytes than fit in
    # 64 bits at 2**60, cannot be allocated.
    x = np.zeros((2**B_log2, 0), np.float32)
    with pytest.raises(MemoryError, match="lstm_fast"):
        ops.lstm_step(x, np.zeros((0, 4 * H), np.float32), np.zeros((H, 4 * H), np.float32))


def test_still_works_after_memory_errors():
    p = problem()
    for _ in range(3):
        with pytest.raises(MemoryError):
            ops.lstm_forward(np.zeros((2**50, 0, I)), p["kernel"], p["recurrent_kernel"])
    check_forward(p)
