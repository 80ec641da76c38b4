# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The boundary between Python and the C engine (csrc/lstm.h).

Everything is validated and converted here while holding the GIL; the C code
then runs without it, all of it on the engine's thread team, the time-batched
GEMMs (csrc/gemm.inc.c) included:

    forward:  xproj = x @ kernel                       (B*T, I) @ (I, 4H)
              C: the time loop on xproj, recurrent_kernel, bias
              (with I <= FUSE_MAX_INPUT, x @ kernel is fused into the loop)
    backward: C: the time loop giving dz                (B, T, 4H)
              dx = dz @ kernel.T,  dkernel += x.T @ dz,
              drecurrent_kernel += hprev.T @ dz,  dbias += sum(dz)

Shapes: B batch, T time, I input features, H units.
"""

import os

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint16_t
from libc.stdlib cimport getenv

from .reference import LSTMGradients

cnp.import_array()


cdef extern from "lstm_cython.h" nogil:
    enum:
        LF_OK
        LF_ENOMEM
        LF_EINVAL
        LF_ISA_GENERIC
        LF_ISA_AVX2
        LF_ISA_AVX512
        LF_ISA_COUNT

    ctypedef struct lf_lstm_dims:
        int64_t B, T, I, H
        int go_backwards
        int return_sequences
        int zero_output_for_mask
        const int64_t *lengths

    int lf_lstm_forward_f32(float *y, float *h_T, float *c_T, float *gates, float *cell,
                            float *hprev, const float *xproj, const float *x,
                            const float *kernel, const float *recurrent_kernel,
                            const float *bias, const float *h0, const float *c0,
                            const float *k_packed, const float *rk_packed,
                            const uint16_t *k_half, const uint16_t *rk_half,
                            const lf_lstm_dims *d, int n_threads)
    int lf_lstm_forward_f64(double *y, double *h_T, double *c_T, double *gates, double *cell,
                            double *hprev, const double *xproj, const double *x,
                            const double *kernel, const double *recurrent_kernel,
                            const double *bias, const double *h0, const double *c0,
                            const double *k_packed, const double *rk_packed,
                            const uint16_t *k_half, const uint16_t *rk_half,
                            const lf_lstm_dims *d, int n_threads)
    int64_t lf_lstm_packed_len_f32(int64_t rows, int64_t H)
    int64_t lf_lstm_packed_len_f64(int64_t rows, int64_t H)
    int lf_lstm_pack_f32(float *packed, const float *w, int64_t rows, int64_t H, int n_threads)
    int lf_lstm_pack_f64(double *packed, const double *w, int64_t rows, int64_t H,
                         int n_threads)
    int lf_lstm_pack_half(uint16_t *packed, const float *w, int64_t rows, int64_t H,
                          int n_threads)
    int lf_half_supported()
    int lf_lstm_backward_f32(float *dz, float *dh0, float *dc0, const float *dy,
                             const float *dh_T, const float *dc_T, const float *gates,
                             const float *cell, const float *c0, const float *recurrent_kernel,
                             const lf_lstm_dims *d, int n_threads)
    int lf_lstm_backward_f64(double *dz, double *dh0, double *dc0, const double *dy,
                             const double *dh_T, const double *dc_T, const double *gates,
                             const double *cell, const double *c0,
                             const double *recurrent_kernel, const lf_lstm_dims *d,
                             int n_threads)
    int lf_lstm_loop_threads_f32(const lf_lstm_dims *d, int fused, int training, int backward,
                                 int n_threads)
    int lf_lstm_loop_threads_f64(const lf_lstm_dims *d, int fused, int training, int backward,
                                 int n_threads)
    int lf_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A,
                    int64_t lda, const float *B, int64_t ldb, int accumulate, float *C,
                    int64_t ldc, int n_threads)
    int lf_gemm_f64(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                    const double *A, int64_t lda, const double *B, int64_t ldb,
                    int accumulate, double *C, int64_t ldc, int n_threads)
    int64_t lf_gemm_packed_len_f32(int64_t K, int64_t N)
    int64_t lf_gemm_packed_len_f64(int64_t K, int64_t N)
    int lf_gemm_pack_f32(float *dst, const float *B, int64_t K, int64_t N, int64_t ldb)
    int lf_gemm_pack_f64(double *dst, const double *B, int64_t K, int64_t N, int64_t ldb)
    int lf_gemm_prepacked_f32(int trans_a, int64_t M, int64_t N, int64_t K, const float *A,
                              int64_t lda, const float *bp, int accumulate, float *C,
                              int64_t ldc, int n_threads)
    int lf_gemm_prepacked_f64(int trans_a, int64_t M, int64_t N, int64_t K, const double *A,
                              int64_t lda, const double *bp, int accumulate, double *C,
                              int64_t ldc, int n_threads)
    int lf_gemm_weight_grads_f32(int64_t K, int64_t N, const float *x, int64_t I,
                                 const float *hprev, int64_t H, const float *dz, int accumulate,
                                 float *dk, float *dr, float *db, int n_threads)
    int lf_gemm_weight_grads_f64(int64_t K, int64_t N, const double *x, int64_t I,
                                 const double *hprev, int64_t H, const double *dz,
                                 int accumulate, double *dk, double *dr, double *db,
                                 int n_threads)
    int lf_isa_supported(int isa)
    int lf_get_isa()
    int lf_set_isa(int isa)
    const char *lf_isa_name(int isa)
    void lf_set_late_workers(int microseconds)
    int lf_team_hold(int delta)
    int lf_block_units(int elem_size)
    int lf_adam_f32(float *p, const float *g, float *m, float *v, float *v_hat, int64_t n,
                    float one_minus_beta_1, float one_minus_beta_2, float epsilon, float alpha)
    int lf_adam_f64(double *p, const double *g, double *m, double *v, double *v_hat, int64_t n,
                    double one_minus_beta_1, double one_minus_beta_2, double epsilon,
                    double alpha)


# ---- instruction set and threads ----------------------------------------------

_ISA_BY_NAME = {"generic": LF_ISA_GENERIC, "avx2": LF_ISA_AVX2, "avx512": LF_ISA_AVX512}
_isa_names = {isa: lf_isa_name(isa).decode() for isa in range(LF_ISA_COUNT)}


def supported_isas():
    """Names of the instruction-set paths this CPU and build can run, best last."""
    return [name for name, isa in _ISA_BY_NAME.items() if lf_isa_supported(isa)]


def get_isa():
    """Name of the instruction-set path the kernels use now."""
    return _isa_names[lf_get_isa()]


def set_isa(name):
    """Force an instruction-set path: 'generic', 'avx2' or 'avx512'.

    The environment variable LSTM_FAST_ISA does the same at import.
    """
    if name not in _ISA_BY_NAME:
        raise ValueError(
            f"Expected isa to be one of {sorted(_ISA_BY_NAME)}. Received: isa={name!r}")
    if lf_set_isa(_ISA_BY_NAME[name]) != LF_OK:
        raise ValueError(
            f"Expected an isa this CPU supports, one of {supported_isas()}. "
            f"Received: isa={name!r}")


def _hold_team(int delta):
    """+1: the engine's idle threads stay up between calls (a fit or predict
    loop, whose Python work between calls would put them to sleep); -1 ends
    it; 0 changes nothing. Returns the holds in place."""
    return lf_team_hold(delta)


def _set_late_workers(microseconds):
    """Testing aid: pool workers wait this long before joining a job (0: off)."""
    lf_set_late_workers(int(microseconds))


def _loop_threads(B, I, H, dtype=np.float32, *, T=1, training=False, backward=False,
                  n_threads=None, fused=None):
    """Testing aid: the threads the time loop of lstm_forward (lstm_step: T 1,
    fused True; training: training=True) or, backward, of lstm_backward asks
    the team for at these sizes. fused None: as lstm_forward decides (I <=
    FUSE_MAX_INPUT)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"Expected dtype float32 or float64. Received: dtype={dtype}")
    cdef lf_lstm_dims d
    d.B, d.T, d.I, d.H = B, T, I, H
    cdef int f = (I <= FUSE_MAX_INPUT) if fused is None else bool(fused)
    cdef int nth = _resolve_threads(n_threads)
    cdef int t = bool(training), b = bool(backward)
    cdef int n = (lf_lstm_loop_threads_f32(&d, f, t, b, nth) if dtype == np.float32
                  else lf_lstm_loop_threads_f64(&d, f, t, b, nth))
    if n < 1:
        raise ValueError(
            f"Expected sizes 0 <= B, 0 <= T, 0 <= I <= 2**40, 1 <= H <= 2**40. "
            f"Received: B={B}, T={T}, I={I}, H={H}")
    return n


def block_units(dtype=np.float32):
    """Hidden units per SIMD block of the current path (for tests of the tails)."""
    return lf_block_units(np.dtype(dtype).itemsize)


def _adam_update(p, g, m, v, v_hat, one_minus_beta_1, one_minus_beta_2, epsilon, alpha):
    """One Adam step in place (for lstm_fast.optimizers.Adam): p, m, v (and
    v_hat, or None) updated from g, all 1-D, C-contiguous, of one float dtype
    and length; the scalars are rounded to that dtype first."""
    cdef cnp.ndarray a
    if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
        raise TypeError(f"Expected p to be a float32 or float64 ndarray. Received: {p!r:.80}")
    dtype = p.dtype
    for name, obj in (("p", p), ("g", g), ("m", m), ("v", v), ("v_hat", v_hat)):
        if obj is None and name == "v_hat":
            continue
        if not isinstance(obj, np.ndarray) or obj.dtype != dtype:
            raise TypeError(
                f"Expected {name} to be an ndarray of p's dtype {dtype}. Received: {name} of "
                f"type {type(obj).__name__}, dtype {getattr(obj, 'dtype', None)}")
        a = <cnp.ndarray>obj
        if (a.ndim != 1 or a.shape[0] != p.shape[0] or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or not cnp.PyArray_ISALIGNED(a)
                or (name != "g" and not cnp.PyArray_ISWRITEABLE(a))):
            raise ValueError(
                f"Expected {name} to be 1-D, C-contiguous, aligned"
                f"{'' if name == 'g' else ', writeable'} and of p's shape {p.shape}. Received: "
                f"{name}.shape={obj.shape}, contiguous={obj.flags.c_contiguous}, "
                f"aligned={obj.flags.aligned}, writeable={obj.flags.writeable}")
    cdef int64_t n = p.shape[0]
    cdef int rc
    cdef void *pp = _ptr(p)
    cdef void *pg = _ptr(g)
    cdef void *pm = _ptr(m)
    cdef void *pv = _ptr(v)
    cdef void *ph = _ptr(v_hat) if v_hat is not None else NULL
    cdef float b1f, b2f, ef, af
    cdef double b1d, b2d, ed, ad
    if dtype == np.float32:
        b1f, b2f = np.float32(one_minus_beta_1), np.float32(one_minus_beta_2)
        ef, af = np.float32(epsilon), np.float32(alpha)
        with nogil:
            rc = lf_adam_f32(<float *>pp, <const float *>pg, <float *>pm, <float *>pv,
                             <float *>ph, n, b1f, b2f, ef, af)
    else:
        b1d, b2d, ed, ad = one_minus_beta_1, one_minus_beta_2, epsilon, alpha
        with nogil:
            rc = lf_adam_f64(<double *>pp, <const double *>pg, <double *>pm, <double *>pv,
                             <double *>ph, n, b1d, b2d, ed, ad)
    _raise_for(rc, "the Adam step")


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# The default thread count is asked for on every call (a streaming step is a
# few microseconds), so the affinity syscall is made once (and again in a
# fork child), and the environment's answer is remembered per value.
_cpus = _usable_cpus()
_env_threads = {}


def _refresh_cpus():
    global _cpus
    _cpus = _usable_cpus()
    _env_threads.clear()


os.register_at_fork(after_in_child=_refresh_cpus)


cdef object _cenv(const char *name):
    # C's getenv, not os.environ (1 us a lookup): os.environ's writes go
    # through putenv, so both see the same values.
    cdef const char *value = getenv(name)
    return None if value == NULL else value.decode("utf-8", "replace")


def _threads_from_env():
    key = (_cenv(b"LSTM_FAST_NUM_THREADS"), _cenv(b"OMP_NUM_THREADS"))
    n = _env_threads.get(key)
    if n is not None:
        return n
    n = _cpus
    for var, value in zip(("LSTM_FAST_NUM_THREADS", "OMP_NUM_THREADS"), key):
        value = (value or "").strip()
        if value:
            try:
                n = int(value.split(",")[0])
            except ValueError:
                raise ValueError(
                    f"Expected {var} to be a positive integer. Received: {var}={value!r}")
            if n < 1:
                raise ValueError(
                    f"Expected {var} to be a positive integer. Received: {var}={value!r}")
            break
    if len(_env_threads) < 64:
        _env_threads[key] = n
    return n


cdef int _default_threads() except -1:
    # Neither variable set, the usual case: no strings made (a step of a
    # stream asks on every call).
    if getenv(b"LSTM_FAST_NUM_THREADS") == NULL and getenv(b"OMP_NUM_THREADS") == NULL:
        return _cpus
    return _threads_from_env()


def get_num_threads():
    """Threads the kernels use when n_threads=None: LSTM_FAST_NUM_THREADS,
    else OMP_NUM_THREADS, else the cores this process may run on."""
    return _threads_from_env()


cdef int _resolve_threads(n_threads) except -1:
    if n_threads is None:
        return _default_threads()
    if type(n_threads) is int and 1 <= n_threads <= 1024:
        return n_threads
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) \
            or n_threads < 1:
        raise ValueError(
            f"Expected n_threads to be None or a positive integer. "
            f"Received: n_threads={n_threads!r}")
    return min(int(n_threads), 1024)


_env_isa = os.environ.get("LSTM_FAST_ISA", "").strip().lower()
if _env_isa:
    set_isa(_env_isa)
lf_get_isa()  # choose the path now, under the import lock


# Input widths up to this are projected inside the time loop (see lstm_forward).
FUSE_MAX_INPUT = 32

# The version of the packed layouts (csrc: pack_rows, lf_gemm_pack): a
# PackedWeights made by a build with other layouts (pickled, say) has the same
# array sizes and would give wrong results, so it is refused. 2: the forward's
# weights pass by pass. 3: the AVX-512 GEMM's panels 64 columns wide (48 before).
_PACKED_LAYOUT = 3


# ---- validation ------------------------------------------------------------------

# The computation's dtype is always one of these objects (_check_weights,
# PackedWeights), so the hot paths compare it by identity. Arrays are taken by
# their type number: an unpickled array's dtype is an equal copy, not NumPy's
# own object, and one with metadata holds the same numbers.
cdef object _F16 = np.dtype(np.float16)
cdef object _F32 = np.dtype(np.float32)
cdef object _F64 = np.dtype(np.float64)


cdef inline int _typenum(object dtype):
    """The type number of one of the three dtype objects above, else -1 (no
    array's: then _ready refuses)."""
    return (cnp.NPY_FLOAT16 if dtype is _F16 else cnp.NPY_FLOAT if dtype is _F32
            else cnp.NPY_DOUBLE if dtype is _F64 else -1)


cdef inline bint _ready(object a, int typenum, Py_ssize_t d0, Py_ssize_t d1):
    """a is an ndarray (not a subclass) of this type number in the machine's
    byte order, C-contiguous and aligned, shaped (d0,) when d1 < 0 else
    (d0, d1): what the C code reads as it is. Decided without making a
    Python object: a stream's step is a few microseconds, and the general
    checks (_real) cost several."""
    if not cnp.PyArray_CheckExact(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr)
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr)):
        return False
    if d1 < 0:
        return cnp.PyArray_NDIM(arr) == 1 and cnp.PyArray_DIM(arr, 0) == d0
    return (cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_DIM(arr, 0) == d0
            and cnp.PyArray_DIM(arr, 1) == d1)


cdef int _ready_weights(object kernel, object recurrent_kernel, object bias, Py_ssize_t *I,
                        Py_ssize_t *H):
    """The type number (I and H set) if the weights pass _ready: kernel (I, 4H)
    and recurrent_kernel (H, 4H) float32 or float64, bias (4H,) of their type
    or None. Else -1."""
    if not (cnp.PyArray_CheckExact(kernel) and cnp.PyArray_CheckExact(recurrent_kernel)):
        return -1
    cdef cnp.ndarray k = <cnp.ndarray>kernel
    cdef cnp.ndarray r = <cnp.ndarray>recurrent_kernel
    cdef int typenum = cnp.PyArray_TYPE(r)
    if (typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE) or cnp.PyArray_NDIM(r) != 2 \
            or cnp.PyArray_NDIM(k) != 2:
        return -1
    cdef Py_ssize_t hh = cnp.PyArray_DIM(r, 0), ii = cnp.PyArray_DIM(k, 0)
    if hh < 1 or not _ready(r, typenum, hh, 4 * hh) or not _ready(k, typenum, ii, 4 * hh) \
            or bias is not None and not _ready(bias, typenum, 4 * hh, -1):
        return -1
    I[0] = ii
    H[0] = hh
    return typenum


cdef inline object _dtype_of(int typenum):
    return _F32 if typenum == cnp.NPY_FLOAT else _F64


cdef object _ready_step(object x_t, object kernel, object recurrent_kernel, object bias,
                        object h, object c, Py_ssize_t *B, Py_ssize_t *I, Py_ssize_t *H):
    """The computation's dtype (B, I and H set) if lstm_step's arrays all pass
    _ready: the weights as _ready_weights, the others of their type, x_t
    (B, I), h and c (B, H) or None. Else None: then the general checks decide
    (and convert, or raise)."""
    cdef int typenum = _ready_weights(kernel, recurrent_kernel, bias, I, H)
    if typenum < 0 or not cnp.PyArray_CheckExact(x_t) \
            or cnp.PyArray_NDIM(<cnp.ndarray>x_t) != 2:
        return None
    cdef Py_ssize_t bb = cnp.PyArray_DIM(<cnp.ndarray>x_t, 0)
    if (not _ready(x_t, typenum, bb, I[0])
            or h is not None and not _ready(h, typenum, bb, H[0])
            or c is not None and not _ready(c, typenum, bb, H[0])):
        return None
    B[0] = bb
    return _dtype_of(typenum)


cdef object _ready_forward(object x, object kernel, object recurrent_kernel, object bias,
                           object h0, object c0, Py_ssize_t *B, Py_ssize_t *T, Py_ssize_t *I,
                           Py_ssize_t *H):
    """_ready_step for lstm_forward: x (B, T, I) an ndarray of the weights' type
    in the machine's byte order, C-contiguous, aligned; h0 and c0 (B, H) or
    None."""
    cdef int typenum = _ready_weights(kernel, recurrent_kernel, bias, I, H)
    if typenum < 0 or not cnp.PyArray_CheckExact(x):
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if (cnp.PyArray_NDIM(xa) != 3 or cnp.PyArray_TYPE(xa) != typenum
            or not cnp.PyArray_ISNOTSWAPPED(xa) or not cnp.PyArray_IS_C_CONTIGUOUS(xa)
            or not cnp.PyArray_ISALIGNED(xa) or cnp.PyArray_DIM(xa, 2) != I[0]):
        return None
    cdef Py_ssize_t bb = cnp.PyArray_DIM(xa, 0)
    if (h0 is not None and not _ready(h0, typenum, bb, H[0])
            or c0 is not None and not _ready(c0, typenum, bb, H[0])):
        return None
    B[0] = bb
    T[0] = cnp.PyArray_DIM(xa, 1)
    return _dtype_of(typenum)


cdef object _empty_rows(Py_ssize_t B, Py_ssize_t H, object dtype):
    """_empty((B, H), dtype) for a float32 / float64 dtype, without its Python
    call for arrays below a page (NumPy's own alignment, as _empty gives)."""
    cdef cnp.npy_intp dims[2]
    cdef int itemsize = 4 if dtype is _F32 else 8
    if (dtype is _F32 or dtype is _F64) and B < _ALIGN_FROM and H < _ALIGN_FROM \
            and B * H * itemsize < _ALIGN_FROM:  # (B and H first: no overflow)
        dims[0] = B
        dims[1] = H
        return cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32 if dtype is _F32 else cnp.NPY_FLOAT64,
                                 0)
    return _empty((B, H), dtype)


cdef object _empty_3(Py_ssize_t B, Py_ssize_t T, Py_ssize_t H, object dtype):
    """_empty((B, T, H), dtype) as _empty_rows."""
    cdef cnp.npy_intp dims[3]
    cdef int itemsize = 4 if dtype is _F32 else 8
    if (dtype is _F32 or dtype is _F64) and B < _ALIGN_FROM and T < _ALIGN_FROM \
            and H < _ALIGN_FROM and B * T < _ALIGN_FROM \
            and B * T * H * itemsize < _ALIGN_FROM:  # (each factor first: no overflow)
        dims[0] = B
        dims[1] = T
        dims[2] = H
        return cnp.PyArray_EMPTY(3, dims, cnp.NPY_FLOAT32 if dtype is _F32 else cnp.NPY_FLOAT64,
                                 0)
    return _empty((B, T, H), dtype)


cdef object _real(object a, str name, object dtype, tuple shape, str shape_doc):
    """a as a C-contiguous array of dtype with the given shape, or a clear error."""
    if type(a) is np.ndarray and a.dtype is dtype and a.shape == shape \
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a) \
            and cnp.PyArray_ISALIGNED(<cnp.ndarray>a):
        return a  # already what the C code reads: the common case, kept cheap
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as e:
            raise TypeError(f"Expected {name} to be an array of numbers. Received: {e}")
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"Expected {name} to have a real numeric dtype (it is converted to {dtype.name}). "
            f"Received: {name}.dtype={a.dtype}")
    if a.shape != shape:
        raise ValueError(
            f"Expected {name}.shape={shape_doc}={shape}. Received: {name}.shape={a.shape}")
    a = np.ascontiguousarray(a, dtype=dtype)
    # a view of a buffer at an odd offset stays misaligned: the C code reads
    # its elements as floats
    return a if a.flags.aligned else a.copy()


cdef object _optional(object a, str name, object dtype, tuple shape, str shape_doc):
    return None if a is None else _real(a, name, dtype, shape, shape_doc)


cdef inline void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef object _weights_dtype(object kernel, object recurrent_kernel):
    if not isinstance(kernel, np.ndarray) or not isinstance(recurrent_kernel, np.ndarray):
        raise TypeError(
            "Expected kernel and recurrent_kernel to be NumPy arrays of float32 or float64. "
            f"Received: kernel type={type(kernel).__name__}, "
            f"recurrent_kernel type={type(recurrent_kernel).__name__}")
    dtype = kernel.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(
            f"Expected kernel.dtype to be float32 or float64 (it sets the dtype of the "
            f"computation). Received: kernel.dtype={dtype}")
    return _F32 if dtype == _F32 else _F64  # NumPy's own objects (metadata dropped)


cdef tuple _check_weights(object kernel, object recurrent_kernel, object bias):
    """Validated (kernel, recurrent_kernel, bias, dtype, I, H)."""
    dtype = _weights_dtype(kernel, recurrent_kernel)
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[0] < 1 \
            or recurrent_kernel.shape[1] != 4 * recurrent_kernel.shape[0]:
        raise ValueError(
            "Expected recurrent_kernel.shape=(H, 4*H) with H >= 1. "
            f"Received: recurrent_kernel.shape={recurrent_kernel.shape}")
    H = recurrent_kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 4 * H:
        raise ValueError(
            f"Expected kernel.shape=(I, 4*H)=(I, {4 * H}) (H={H} from recurrent_kernel). "
            f"Received: kernel.shape={kernel.shape}")
    I = kernel.shape[0]
    kernel = _real(kernel, "kernel", dtype, (I, 4 * H), "(I, 4*H)")
    recurrent_kernel = _real(recurrent_kernel, "recurrent_kernel", dtype, (H, 4 * H),
                             "(H, 4*H)")
    bias = _optional(bias, "bias", dtype, (4 * H,), "(4*H,)")
    return kernel, recurrent_kernel, bias, dtype, I, H


cdef tuple _check_args(object x, str x_name, object kernel, object recurrent_kernel,
                       object bias, object h, str h_name, object c, str c_name):
    """The general checks of lstm_forward (x (B, T, I), h0, c0) and lstm_step
    (x_t (B, I), h, c): (x, kernel, recurrent_kernel, bias, h, c, dtype),
    converted, or a clear error."""
    kernel, recurrent_kernel, bias, dtype, I, H = _check_weights(kernel, recurrent_kernel, bias)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    seq = x_name == "x"  # (B, T, I), else (B, I)
    doc, want = ("(B, T, I)", f"(B, T, {I})") if seq else ("(B, I)", f"(B, {I})")
    if x.ndim != (3 if seq else 2) or x.shape[2 if seq else 1] != I:
        raise ValueError(
            f"Expected {x_name}.shape={doc}={want} (I={I} from kernel). "
            f"Received: {x_name}.shape={x.shape}")
    B = x.shape[0]
    x = _real(x, x_name, dtype, x.shape, doc)
    h = _optional(h, h_name, dtype, (B, H), "(B, H)")
    c = _optional(c, c_name, dtype, (B, H), "(B, H)")
    return x, kernel, recurrent_kernel, bias, h, c, dtype


cdef object _check_lengths(object lengths, Py_ssize_t B, Py_ssize_t T):
    if lengths is None:
        return None
    a = np.asarray(lengths)
    if a.dtype.kind not in "iu":
        raise TypeError(f"Expected lengths to hold integers. Received: lengths.dtype={a.dtype}")
    if a.shape != (B,):
        raise ValueError(f"Expected lengths.shape=(B,)=({B},). Received: lengths.shape={a.shape}")
    if B and (a.min() < 0 or a.max() > T):
        raise ValueError(
            f"Expected every length in [0, T]=[0, {T}]. "
            f"Received: lengths min={a.min()}, max={a.max()}")
    a = np.ascontiguousarray(a, dtype=np.int64)
    return a if a.flags.aligned else a.copy()  # the C code reads int64s


cdef void _raise_for(int rc, str what) except *:
    if rc == LF_ENOMEM:
        raise MemoryError(f"lstm_fast: cannot allocate the scratch memory of {what}")
    if rc != LF_OK:
        raise RuntimeError(f"lstm_fast: the C {what} rejected its arguments (code {rc})")


# Arrays the kernels stream through start on a cache line. NumPy aligns its
# data to 16 bytes only (a large array comes from mmap, 16 bytes past a page),
# so every 64-byte vector of such an array spanned two cache lines: with the
# packed weights, x @ kernel and the outputs read and written so, a batch-1
# forward at T150 H256 took 1.31x as long (AVX-512, two threads), the B64
# T50 H512 one 1.16x. Arrays below a page are a few lines: NumPy's own.
cdef enum:
    _ALIGN = 64
    _ALIGN_FROM = 4096


def _empty(shape, dtype):
    """An uninitialised C-contiguous array of `shape`, its data 64-byte aligned
    from a page up (then a view into a slightly larger byte buffer)."""
    dtype = np.dtype(dtype)
    n = dtype.itemsize
    cdef cnp.ndarray buf
    try:
        for s in ((shape,) if isinstance(shape, (int, np.integer)) else shape):
            if s < 0:
                raise ValueError("negative dimensions are not allowed")
            n *= int(s)
        if n < _ALIGN_FROM:
            return np.empty(shape, dtype=dtype)
        buf = np.empty(n + _ALIGN, dtype=np.uint8)
    except (MemoryError, ValueError, OverflowError) as e:
        raise MemoryError(f"lstm_fast: cannot allocate an array of shape {shape}: {e}")
    cdef size_t off = (_ALIGN - <size_t>cnp.PyArray_DATA(buf) % _ALIGN) % _ALIGN
    return buf[off:off + n].view(dtype).reshape(shape)


# ---- the engine's matrix product ------------------------------------------------

cdef int _gemm(object a, bint trans_a, object b, bint trans_b, object c, bint accumulate,
               int nth, object bp=None) except -1:
    """c (+)= op(a) @ op(b) on the engine's threads, for C-contiguous 2-D arrays of
    one dtype whose shapes the caller has checked: op(a) is a, or a.T with
    trans_a (likewise b), c is (op(a).rows, op(b).cols). With bp (b packed by
    lf_gemm_pack; b itself then unused and not transposed) B is not repacked."""
    cdef bint prepacked = bp is not None
    cdef int64_t M = c.shape[0]
    cdef int64_t N = c.shape[1]
    cdef int64_t K = a.shape[0] if trans_a else a.shape[1]
    cdef int64_t lda = a.shape[1]
    cdef int64_t ldb = N if prepacked else b.shape[1]
    cdef void *pa = _ptr(a)
    cdef void *pb = _ptr(bp if prepacked else b)
    cdef void *pc = _ptr(c)
    cdef int rc
    cdef bint f32 = c.dtype == np.float32
    with nogil:
        if f32 and prepacked:
            rc = lf_gemm_prepacked_f32(trans_a, M, N, K, <const float *>pa, lda,
                                       <const float *>pb, accumulate, <float *>pc, N, nth)
        elif f32:
            rc = lf_gemm_f32(trans_a, trans_b, M, N, K, <const float *>pa, lda,
                             <const float *>pb, ldb, accumulate, <float *>pc, N, nth)
        elif prepacked:
            rc = lf_gemm_prepacked_f64(trans_a, M, N, K, <const double *>pa, lda,
                                       <const double *>pb, accumulate, <double *>pc, N, nth)
        else:
            rc = lf_gemm_f64(trans_a, trans_b, M, N, K, <const double *>pa, lda,
                             <const double *>pb, ldb, accumulate, <double *>pc, N, nth)
    _raise_for(rc, "matrix product")
    return 0


def matmul(a, b, *, trans_a=False, trans_b=False, out=None, accumulate=False,
           n_threads=None):
    """The engine's matrix product: `op(a) @ op(b)` on its own threads.

    The GEMM the layers use for their time-batched products (x @ kernel
    before the time loop; dz @ kernel.T, x.T @ dz, hprev.T @ dz after it),
    offered for other products in a model so that they run on the same
    threads (NumPy's BLAS keeps a second pool of threads that spin after each
    call and slow the engine's). The result is the same for any n_threads.

    Args:
        a: 2-D float32 or float64 array; its dtype is the computation's.
        b: 2-D array, converted to a's dtype.
        trans_a: use a.T in place of a (without copying it).
        trans_b: use b.T in place of b.
        out: optional C-contiguous array of a's dtype and the result's shape,
            to write (or, with accumulate, add) the result into.
        accumulate: add the product to `out` instead of overwriting it.
        n_threads: threads to use; None = `get_num_threads()`.

    Returns:
        `out` if given, else a new array: op(a) @ op(b).

    Example:

    >>> import numpy as np
    >>> from lstm_fast import ops
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> ops.matmul(a, a, trans_b=True)
    array([[ 5., 14.],
           [14., 50.]], dtype=float32)
    """
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(
            "Expected a to be a NumPy array of float32 or float64 (it sets the dtype). "
            f"Received: {type(a).__name__}"
            + (f" of dtype {a.dtype}" if isinstance(a, np.ndarray) else ""))
    dtype = a.dtype
    if a.ndim != 2:
        raise ValueError(f"Expected a to be 2-D. Received: a.shape={a.shape}")
    b_arr = np.asarray(b)
    if b_arr.ndim != 2:
        raise ValueError(f"Expected b to be 2-D. Received: b.shape={b_arr.shape}")
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    Kb, N = (b_arr.shape[1], b_arr.shape[0]) if trans_b else b_arr.shape
    if Kb != K:
        raise ValueError(
            f"Expected op(b) to have {K} rows (the columns of op(a), shape ({M}, {K})). "
            f"Received: op(b).shape=({Kb}, {N})")
    a = _real(a, "a", dtype, a.shape, "(rows, cols)")
    b_arr = _real(b_arr, "b", dtype, b_arr.shape, "(rows, cols)")
    if out is None:
        if accumulate:
            raise ValueError("Expected out to be given with accumulate=True. Received: out=None")
        out = _empty((M, N), dtype)
    elif not (isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (M, N)
              and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable):
        raise ValueError(
            f"Expected out to be a writeable, aligned, C-contiguous {dtype.name} array of "
            f"shape {(M, N)}. Received: "
            + (f"{out.dtype} array of shape {out.shape} (contiguous={out.flags.c_contiguous}, "
               f"aligned={out.flags.aligned}, writeable={out.flags.writeable})"
               if isinstance(out, np.ndarray) else type(out).__name__))
    _gemm(a, trans_a, b_arr, trans_b, out, accumulate, _resolve_threads(n_threads))
    return out


# ---- packed weights ------------------------------------------------------------

class PackedWeights:
    """kernel and recurrent_kernel in the forward kernels' packed layout.

    Every forward call packs the weights it reads in its time loop (a copy of
    recurrent_kernel, and of kernel for `lstm_step`). For repeated inference
    on the same weights (predict, streaming one step per call), pack them once
    with `pack_weights` and pass ``packed=`` to `lstm_forward` / `lstm_step`.

    With more than FUSE_MAX_INPUT input features, kernel is also packed in
    the layout of the engine's GEMM (``kernel_gemm``), which computes
    x @ kernel for all steps before the time loop: a batch of one then skips
    repacking the whole kernel on every call. The results are the same as
    without ``packed=``, bit for bit.

    The packed copy does not follow later changes of the arrays: pack again
    after changing the weights. It is also tied to the ISA path in use when it
    was made (the block width differs); a call on another path raises.

    ``weights_dtype="float16"`` (float32 weights, inference only) stores the
    copies the time loop reads, recurrent_kernel and the per-step kernel, in
    IEEE half precision: each is widened to float32 as it is loaded and all
    arithmetic stays float32, so the results are those of float32 arithmetic
    on both weights rounded to half precision, bit for bit (rounding at most
    2**-11 relative for |w| >= 2**-14, 2**-25 absolute below). At batch size 1
    a step's time is the time to read those weights: half the bytes (see the
    README's Performance section for what it gives) on the AVX2 and AVX-512
    paths, which widen them in one instruction; the generic path converts in
    software, slower than float32. x @ kernel over whole sequences
    (``kernel_gemm``) reads float32 panels of the rounded kernel: that product
    is bound by arithmetic, not by reading.
    """

    def __init__(self, kernel, recurrent_kernel, n_threads=None, weights_dtype=None):
        kernel, recurrent_kernel, _, dtype, I, H = _check_weights(kernel, recurrent_kernel, None)
        cdef int nth = _resolve_threads(n_threads)
        wdtype = _check_weights_dtype(weights_dtype, dtype)
        if wdtype == np.float16:
            _require_half_support()
            _check_half_range(kernel, "kernel")
            _check_half_range(recurrent_kernel, "recurrent_kernel")
        self.dtype = dtype
        self.weights_dtype = wdtype
        self.input_dim = I
        self.units = H
        self.isa = get_isa()
        self.layout = _PACKED_LAYOUT
        cdef bint f32 = dtype == np.float32
        n_k = lf_lstm_packed_len_f32(I, H) if f32 else lf_lstm_packed_len_f64(I, H)
        n_r = lf_lstm_packed_len_f32(H, H) if f32 else lf_lstm_packed_len_f64(H, H)
        self.kernel = _empty((n_k,), wdtype)
        self.recurrent_kernel = _empty((n_r,), wdtype)
        cdef int rc = LF_OK
        for packed, w, rows in ((self.kernel, kernel, I), (self.recurrent_kernel,
                                                           recurrent_kernel, H)):
            if wdtype == np.float16:
                rc = lf_lstm_pack_half(<uint16_t *>_ptr(packed), <const float *>_ptr(w), rows, H,
                                       nth)
            elif f32:
                rc = lf_lstm_pack_f32(<float *>_ptr(packed), <const float *>_ptr(w), rows, H, nth)
            else:
                rc = lf_lstm_pack_f64(<double *>_ptr(packed), <const double *>_ptr(w), rows, H,
                                      nth)
            _raise_for(rc, "weight packing")
        self.kernel_gemm = None
        if I > FUSE_MAX_INPUT:
            n_g = lf_gemm_packed_len_f32(I, 4 * H) if f32 else lf_gemm_packed_len_f64(I, 4 * H)
            self.kernel_gemm = _empty((n_g,), dtype)
            if wdtype == np.float16:
                # float32 panels (the GEMM is bound by arithmetic) of the kernel
                # rounded to half precision, as the step reads it: a sequence
                # and its steps one by one compute with the same weights
                kernel = kernel.astype(np.float16).astype(np.float32)
            if f32:
                rc = lf_gemm_pack_f32(<float *>_ptr(self.kernel_gemm),
                                      <const float *>_ptr(kernel), I, 4 * H, 4 * H)
            else:
                rc = lf_gemm_pack_f64(<double *>_ptr(self.kernel_gemm),
                                      <const double *>_ptr(kernel), I, 4 * H, 4 * H)
            _raise_for(rc, "weight packing")

    def __setstate__(self, state):
        # the state may be another object's __dict__ (copy.copy): not changed
        state = dict(state)
        # a pickle made before weights_dtype existed holds the weights' own dtype
        state.setdefault("weights_dtype", state.get("dtype"))
        # pickled dtypes come back as equal copies: NumPy's own objects again,
        # which the checks of a step compare by identity (_packed_ready)
        for name in ("dtype", "weights_dtype"):
            v = state.get(name)
            if isinstance(v, np.dtype):
                for canonical in (_F16, _F32, _F64):
                    if v == canonical:
                        state[name] = canonical
        # unpickled arrays are NumPy's own: back onto cache lines (_empty), and
        # any misaligned one (an out-of-band buffer) onto its elements' alignment
        for name in ("kernel", "recurrent_kernel", "kernel_gemm"):
            a = state.get(name)
            if (isinstance(a, np.ndarray) and a.ndim == 1 and a.flags.c_contiguous
                    and a.dtype in (np.float16, np.float32, np.float64)
                    and (not a.flags.aligned or a.nbytes >= _ALIGN_FROM
                         and <size_t>cnp.PyArray_DATA(<cnp.ndarray>a) % _ALIGN != 0)):
                state[name] = _empty(a.shape, a.dtype)
                state[name][...] = a
        self.__dict__.update(state)

    def __repr__(self):
        half = ", weights_dtype=float16" if _is_half(self, self.dtype) else ""
        return (f"PackedWeights(input_dim={self.input_dim}, units={self.units}, "
                f"dtype={self.dtype.name}{half}, isa={self.isa!r})")


cdef object _packed_weights_dtype(object packed, object dtype):
    """packed.weights_dtype as a NumPy dtype (the weights' own when missing:
    pickled before it existed), or None if it is no dtype at all."""
    try:
        return np.dtype(getattr(packed, "weights_dtype", dtype))
    except (TypeError, ValueError):
        return None


cdef bint _is_half(object packed, object dtype):
    if packed is None:
        return False
    wdtype = getattr(packed, "weights_dtype", None)
    if wdtype is _F16 or wdtype is dtype:  # as pack_weights sets it
        return wdtype is _F16
    return _packed_weights_dtype(packed, dtype) == np.float16


cdef object _require_half_support():
    if not lf_half_supported():
        raise RuntimeError(
            f"Expected a CPU with F16C for weights_dtype='float16' on the {get_isa()!r} path. "
            f"Received: a CPU that does not report it (ops.set_isa('generic') converts "
            f"half-precision weights in software, slower)")


def half_weights_supported():
    """True if the current ISA path runs ``weights_dtype="float16"`` (the AVX2
    path needs F16C, which every known AVX2 CPU has; a virtual machine may
    hide it)."""
    return bool(lf_half_supported())


cdef object _check_weights_dtype(object weights_dtype, object dtype):
    if weights_dtype is None:
        return dtype
    try:
        w = np.dtype(weights_dtype)
    except (TypeError, ValueError):
        w = None
    if w is None or w not in (dtype, np.float16):
        raise ValueError(
            f"Expected weights_dtype to be None, {np.dtype(dtype).name!r} or 'float16'. "
            f"Received: weights_dtype={weights_dtype!r}")
    if w == np.float16 and dtype != np.float32:
        raise ValueError(
            f"Expected float32 weights for weights_dtype='float16'. Received: weights of "
            f"dtype {np.dtype(dtype).name}")
    return _F16 if w == _F16 else dtype


cdef object _check_half_range(object w, str name):
    """Refuse finite weights that half precision would turn into infinities
    (|w| >= 65520; up to that they round to at most 65504, half's largest)."""
    finite = np.abs(w[np.isfinite(w)])
    if finite.size and float(finite.max()) >= 65520.0:
        raise ValueError(
            f"Expected every finite {name} value to round to a finite half-precision number "
            f"(|w| < 65520) for weights_dtype='float16'. Received: max |{name}| = "
            f"{float(finite.max()):g}")


def pack_weights(kernel, recurrent_kernel, n_threads=None, *, weights_dtype=None):
    """Pack kernel (I, 4H) and recurrent_kernel (H, 4H) once for many forward calls.

    Args:
        weights_dtype: None (the weights' own dtype) or ``"float16"``: the
            time loop then reads half-precision copies of the weights (float32
            weights, inference only; see `PackedWeights`).

    Returns:
        A `PackedWeights` to pass as ``packed=`` to `lstm_forward` or `lstm_step`.
    """
    return PackedWeights(kernel, recurrent_kernel, n_threads, weights_dtype)


cdef bint _packed_ready(object packed, object dtype, Py_ssize_t I, Py_ssize_t H):
    """True when packed is a PackedWeights as pack_weights made it, for these
    weights and the current ISA path: the checks of _check_packed, on values
    compared by identity where it converts (a step of a stream makes this
    call). False sends the call through those checks, which decide."""
    if type(packed) is not PackedWeights:
        return False
    state = packed.__dict__
    if type(state) is not dict:
        return False
    wdtype = state.get("weights_dtype")
    cdef bint f32 = dtype is _F32
    if not (f32 or dtype is _F64) or state.get("dtype") is not dtype \
            or not (wdtype is dtype or (wdtype is _F16 and f32)):
        return False
    if state.get("input_dim") != I or state.get("units") != H \
            or state.get("layout") != _PACKED_LAYOUT \
            or state.get("isa") != _isa_names[lf_get_isa()]:
        return False
    if wdtype is _F16 and not lf_half_supported():
        return False
    cdef int wtype = _typenum(wdtype)
    if not _ready(state.get("kernel"), wtype,
                  lf_lstm_packed_len_f32(I, H) if f32 else lf_lstm_packed_len_f64(I, H), -1):
        return False
    if not _ready(state.get("recurrent_kernel"), wtype,
                  lf_lstm_packed_len_f32(H, H) if f32 else lf_lstm_packed_len_f64(H, H), -1):
        return False
    return I <= FUSE_MAX_INPUT or _ready(
        state.get("kernel_gemm"), _typenum(dtype),
        lf_gemm_packed_len_f32(I, 4 * H) if f32 else lf_gemm_packed_len_f64(I, 4 * H), -1)


cdef object _check_packed(object packed, object dtype, Py_ssize_t I, Py_ssize_t H):
    if packed is None or _packed_ready(packed, dtype, I, H):
        return packed
    if not isinstance(packed, PackedWeights):
        raise TypeError(
            f"Expected packed to be a PackedWeights from pack_weights(). "
            f"Received: packed={type(packed).__name__}")
    if packed.dtype != dtype or packed.input_dim != I or packed.units != H:
        raise ValueError(
            f"Expected packed weights for input_dim={I}, units={H}, dtype={dtype}. "
            f"Received: {packed!r}")
    if packed.isa != get_isa():
        raise ValueError(
            f"Expected packed weights made on the current ISA path {get_isa()!r} "
            f"(pack them again). Received: {packed!r}")
    if getattr(packed, "layout", None) != _PACKED_LAYOUT:
        raise ValueError(
            f"Expected packed weights in this build's layout (version {_PACKED_LAYOUT}; pack "
            f"them again). Received: layout={getattr(packed, 'layout', None)!r}")
    # The C loop trusts the packed arrays' sizes: refuse arrays replaced after packing.
    cdef bint f32 = dtype == np.float32
    wdtype = _packed_weights_dtype(packed, dtype)  # what _is_half decides by
    if wdtype is None or wdtype not in (dtype, np.float16) or (wdtype == np.float16 and not f32):
        raise ValueError(
            f"Expected packed.weights_dtype to be {np.dtype(dtype).name} or float16 (with "
            f"float32). Received: weights_dtype={getattr(packed, 'weights_dtype', None)!r}")
    if wdtype == np.float16:  # a pack unpickled on another machine
        _require_half_support()
    expected = [
        ("kernel", wdtype,
         lf_lstm_packed_len_f32(I, H) if f32 else lf_lstm_packed_len_f64(I, H)),
        ("recurrent_kernel", wdtype,
         lf_lstm_packed_len_f32(H, H) if f32 else lf_lstm_packed_len_f64(H, H)),
    ]
    if I > FUSE_MAX_INPUT:  # the kernel in the GEMM's panels too
        expected.append(("kernel_gemm", dtype, lf_gemm_packed_len_f32(I, 4 * H) if f32
                         else lf_gemm_packed_len_f64(I, 4 * H)))
    for name, adtype, n in expected:
        a = getattr(packed, name, None)
        if (not isinstance(a, np.ndarray) or a.dtype != adtype or a.shape != (n,)
                or not a.flags.c_contiguous or not a.flags.aligned):
            raise ValueError(
                f"Expected packed.{name} to be the C-contiguous aligned "
                f"{np.dtype(adtype).name} array of shape ({n},) made by pack_weights. "
                f"Received: {type(a).__name__} "
                f"shape={getattr(a, 'shape', None)} dtype={getattr(a, 'dtype', None)}")
    return packed


# ---- the training cache ------------------------------------------------------------

class LSTMCache:
    """What `lstm_backward` needs from a training-mode `lstm_forward`.

    Indexed by original time t, whatever the direction:
        gates  (B, T, 4H)  activations i, f, g, o of step t (zeros where masked)
        cell   (B, T, H)   c after step t
        hprev  (B, T, H)   h before step t
    `hidden` (B, T, H), h after step t, is derived from hprev and h_T.

    By default `lstm_backward` writes the gate gradients over `gates` (saving
    B*T*4H numbers): the cache is then consumed.
    """

    def __init__(self, x, kernel, recurrent_kernel, bias, h0, c0, lengths, gates, cell,
                 hprev, h_T, go_backwards, return_sequences, zero_output_for_mask):
        self.x = x
        self.kernel = kernel
        self.recurrent_kernel = recurrent_kernel
        self.has_bias = bias is not None
        self.h0 = h0
        self.c0 = c0
        self.lengths = lengths
        self.gates = gates
        self.cell = cell
        self.hprev = hprev
        self.h_T = h_T
        self.go_backwards = go_backwards
        self.return_sequences = return_sequences
        self.zero_output_for_mask = zero_output_for_mask
        self.consumed = False

    @property
    def hidden(self):
        """h after step t, (B, T, H)."""
        T = self.hprev.shape[1]
        out = np.empty_like(self.hprev)
        if T == 0:
            return out
        if self.go_backwards:  # step t is followed by step t-1, whose hprev is h after t
            out[:, 1:] = self.hprev[:, :-1]
            out[:, 0] = self.h_T
        else:
            out[:, :-1] = self.hprev[:, 1:]
            out[:, -1] = self.h_T
        return out


# ---- forward -------------------------------------------------------------------

def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, *,
                 lengths=None, go_backwards=False, return_sequences=True,
                 zero_output_for_mask=False, training=False, n_threads=None, packed=None):
    """Run one LSTM layer over a whole sequence with the compiled kernels.

    Args:
        x: (B, T, I) input.
        kernel: (I, 4H) float32 or float64; its dtype is the computation's.
        recurrent_kernel: (H, 4H). bias: (4H,) or None.
        h0, c0: (B, H) initial state, or None for zeros.
        lengths: (B,) ints in [0, T] or None; step t of sample b is computed
            iff t < lengths[b], else h and c are carried.
        go_backwards: process t = T-1 .. 0; y is in processing order (Keras).
        return_sequences: y is (B, T, H) if True, else (B, H).
        zero_output_for_mask: masked steps output zeros instead of the carried h.
        training: keep what `lstm_backward` needs and return it as the cache.
        n_threads: threads for the time loop; None = `get_num_threads()`.
        packed: the same weights from `pack_weights`, to skip packing them
            (for repeated inference on unchanged weights).

    Returns:
        (y, h_T, c_T, cache); cache is None unless training. Arrays of 4 KiB and
        more are views that start on a cache line (NumPy aligns to 16 bytes):
        in-place ``ndarray.resize`` refuses them; ``np.resize`` and copies work.
    """
    cdef Py_ssize_t B = 0, T = 0, I = 0, H = 0
    # arrays the C code reads as they are, checked without Python objects
    # (lstm_step); anything else through the general checks
    dtype = _ready_forward(x, kernel, recurrent_kernel, bias, h0, c0, &B, &T, &I, &H)
    if dtype is None:
        x, kernel, recurrent_kernel, bias, h0, c0, dtype = _check_args(
            x, "x", kernel, recurrent_kernel, bias, h0, "h0", c0, "c0")
        B, T, I, H = x.shape[0], x.shape[1], x.shape[2], recurrent_kernel.shape[0]
    cdef object lens = _check_lengths(lengths, B, T)
    cdef int nth = _resolve_threads(n_threads)
    packed = _check_packed(packed, dtype, I, H)
    cdef bint half = _is_half(packed, dtype)
    if half and training:
        raise ValueError(
            "Expected packed weights of the weights' own dtype for training=True (half-precision "
            f"copies are for inference). Received: {packed!r}")

    # xproj = x @ kernel for all B*T rows at once: the non-sequential GEMM, on
    # the engine's threads. With few input features it is fused into the time
    # loop instead: a separate pass costs more than that work there.
    fused = I <= FUSE_MAX_INPUT
    xproj = None
    if not fused:
        xproj = _empty((B, T, 4 * H), dtype)
        _gemm(x.reshape(B * T, I), False, kernel, False, xproj.reshape(B * T, 4 * H), False,
              nth, None if packed is None else packed.kernel_gemm)

    y = _empty_3(B, T, H, dtype) if return_sequences else _empty_rows(B, H, dtype)
    h_T = _empty_rows(B, H, dtype)
    c_T = _empty_rows(B, H, dtype)
    gates = cell = hprev = None
    if training:
        # the kernel turns each xproj element into its activation in place
        gates = _empty((B, T, 4 * H), dtype) if fused else xproj
        cell = _empty((B, T, H), dtype)
        hprev = _empty((B, T, H), dtype)

    cdef lf_lstm_dims d
    d.B, d.T, d.I, d.H = B, T, I, H
    d.go_backwards = bool(go_backwards)
    d.return_sequences = bool(return_sequences)
    d.zero_output_for_mask = bool(zero_output_for_mask)
    d.lengths = <const int64_t *>_ptr(lens)
    cdef void *py = _ptr(y)
    cdef void *ph = _ptr(h_T)
    cdef void *pc = _ptr(c_T)
    cdef void *pg = _ptr(gates)
    cdef void *pcell = _ptr(cell)
    cdef void *phprev = _ptr(hprev)
    cdef void *pxp = _ptr(xproj)
    cdef void *px = _ptr(x) if fused else NULL
    cdef void *pk = _ptr(kernel) if fused else NULL
    cdef void *prk = _ptr(recurrent_kernel)
    cdef void *pb = _ptr(bias)
    cdef void *ph0 = _ptr(h0)
    cdef void *pc0 = _ptr(c0)
    cdef void *pkp = NULL if packed is None or not fused else _ptr(packed.kernel)
    cdef void *prkp = NULL if packed is None else _ptr(packed.recurrent_kernel)
    cdef void *pkh = NULL
    cdef void *prkh = NULL
    if half:  # the same arrays, in half precision
        pkh, prkh, pkp, prkp = pkp, prkp, NULL, NULL
    cdef int rc
    cdef bint f32 = dtype is _F32
    with nogil:
        if f32:
            rc = lf_lstm_forward_f32(<float *>py, <float *>ph, <float *>pc, <float *>pg,
                                     <float *>pcell, <float *>phprev, <const float *>pxp,
                                     <const float *>px, <const float *>pk, <const float *>prk,
                                     <const float *>pb, <const float *>ph0, <const float *>pc0,
                                     <const float *>pkp, <const float *>prkp,
                                     <const uint16_t *>pkh, <const uint16_t *>prkh, &d, nth)
        else:
            rc = lf_lstm_forward_f64(<double *>py, <double *>ph, <double *>pc, <double *>pg,
                                     <double *>pcell, <double *>phprev, <const double *>pxp,
                                     <const double *>px, <const double *>pk,
                                     <const double *>prk, <const double *>pb,
                                     <const double *>ph0, <const double *>pc0,
                                     <const double *>pkp, <const double *>prkp, NULL, NULL, &d,
                                     nth)
    _raise_for(rc, "LSTM forward")

    cache = None
    if training:
        cache = LSTMCache(x, kernel, recurrent_kernel, bias, h0, c0, lens, gates, cell, hprev,
                          h_T, bool(go_backwards), bool(return_sequences),
                          bool(zero_output_for_mask))
    return y, h_T, c_T, cache


def lstm_step(x_t, kernel, recurrent_kernel, bias=None, h=None, c=None, *, n_threads=None,
              packed=None):
    """One time step for streaming inference: (h, c) -> (h_new, c_new).

    x_t is (B, I); h and c are (B, H) or None (zeros). Equal to `lstm_forward`
    on the one-step sequence x_t[:, None, :]. For a stream of calls on the same
    weights pass ``packed=pack_weights(kernel, recurrent_kernel)``: a step then
    reads the packed weights and nothing is copied per call.
    """
    cdef Py_ssize_t B = 0, I = 0, H = 0
    # A stream passes the same ready arrays on every call: checked here
    # without making Python objects (the general checks below cost several
    # microseconds, a third of a step at H = 256); anything else goes there.
    dtype = _ready_step(x_t, kernel, recurrent_kernel, bias, h, c, &B, &I, &H)
    if dtype is None:
        x_t, kernel, recurrent_kernel, bias, h, c, dtype = _check_args(
            x_t, "x_t", kernel, recurrent_kernel, bias, h, "h", c, "c")
        B, I, H = x_t.shape[0], x_t.shape[1], recurrent_kernel.shape[0]
    cdef int nth = _resolve_threads(n_threads)
    packed = _check_packed(packed, dtype, I, H)

    h_new = _empty_rows(B, H, dtype)
    c_new = _empty_rows(B, H, dtype)
    cdef lf_lstm_dims d
    d.B, d.T, d.I, d.H = B, 1, I, H
    d.go_backwards = 0
    d.return_sequences = 0
    d.zero_output_for_mask = 0
    d.lengths = NULL
    cdef void *ph = _ptr(h_new)
    cdef void *pc = _ptr(c_new)
    cdef void *px = _ptr(x_t)
    cdef void *pk = _ptr(kernel)
    cdef void *prk = _ptr(recurrent_kernel)
    cdef void *pb = _ptr(bias)
    cdef void *ph0 = _ptr(h)
    cdef void *pc0 = _ptr(c)
    cdef void *pkp = NULL if packed is None else _ptr(packed.kernel)
    cdef void *prkp = NULL if packed is None else _ptr(packed.recurrent_kernel)
    cdef void *pkh = NULL
    cdef void *prkh = NULL
    if _is_half(packed, dtype):  # half-precision copies
        pkh, prkh, pkp, prkp = pkp, prkp, NULL, NULL
    cdef int rc
    cdef bint f32 = dtype is _F32 or dtype == np.float32
    # x_t @ kernel is fused into the step (no separate GEMM call); y and h_T
    # are the same array: at T = 1 they are the same numbers.
    with nogil:
        if f32:
            rc = lf_lstm_forward_f32(<float *>ph, <float *>ph, <float *>pc, NULL, NULL, NULL,
                                     NULL, <const float *>px, <const float *>pk,
                                     <const float *>prk, <const float *>pb,
                                     <const float *>ph0, <const float *>pc0,
                                     <const float *>pkp, <const float *>prkp,
                                     <const uint16_t *>pkh, <const uint16_t *>prkh, &d, nth)
        else:
            rc = lf_lstm_forward_f64(<double *>ph, <double *>ph, <double *>pc, NULL, NULL,
                                     NULL, NULL, <const double *>px, <const double *>pk,
                                     <const double *>prk, <const double *>pb,
                                     <const double *>ph0, <const double *>pc0,
                                     <const double *>pkp, <const double *>prkp, NULL, NULL,
                                     &d, nth)
    _raise_for(rc, "LSTM step")
    return h_new, c_new


def _forward_is_ready(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None):
    """Testing aid: whether lstm_forward's arrays pass the checks of its ready path."""
    cdef Py_ssize_t B = 0, T = 0, I = 0, H = 0
    return _ready_forward(x, kernel, recurrent_kernel, bias, h0, c0, &B, &T, &I, &H) is not None


def _step_is_ready(x_t, kernel, recurrent_kernel, bias=None, h=None, c=None, packed=None):
    """Testing aid: (whether lstm_step's arrays, whether its packed weights,
    pass the checks of its ready path)."""
    cdef Py_ssize_t B = 0, I = 0, H = 0
    dtype = _ready_step(x_t, kernel, recurrent_kernel, bias, h, c, &B, &I, &H)
    return dtype is not None, dtype is not None and _packed_ready(packed, dtype, I, H)


# ---- backward ------------------------------------------------------------------

cdef object _grad_out(object out, str name, object like):
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or out.shape != like.shape or out.dtype != like.dtype:
        raise ValueError(
            f"Expected {name} to be a writeable array of shape {like.shape} and dtype "
            f"{like.dtype} to accumulate into. Received: "
            f"{name}={type(out).__name__} shape={getattr(out, 'shape', None)} "
            f"dtype={getattr(out, 'dtype', None)}")
    if not out.flags.writeable:
        raise ValueError(f"Expected {name} to be writeable. Received: a read-only array")
    return out


cdef object _cache_array(object cache, str name, object dtype, tuple shape, bint writeable=False):
    """cache.<name> if it is still the array lstm_forward made (the C loop trusts its size)."""
    a = getattr(cache, name)
    if (not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape
            or not a.flags.c_contiguous or not a.flags.aligned
            or (writeable and not a.flags.writeable)):
        raise ValueError(
            f"Expected cache.{name} to be the aligned C-contiguous"
            f"{' writeable' if writeable else ''} "
            f"{np.dtype(dtype).name} array of shape {shape} made by lstm_forward. Received: "
            f"{type(a).__name__} shape={getattr(a, 'shape', None)} "
            f"dtype={getattr(a, 'dtype', None)} (a modified cache)")
    return a


def lstm_backward(cache, dy=None, dh_T=None, dc_T=None, *, n_threads=None, dkernel=None,
                  drecurrent_kernel=None, dbias=None, retain_cache=False, need_dx=True):
    """Gradients of a loss through one LSTM layer, from its training cache.

    Args:
        cache: the LSTMCache of `lstm_forward(..., training=True)`.
        dy: dL/dy, shaped like y ((B, T, H) or (B, H)), or None.
        dh_T, dc_T: dL/dh_T and dL/dc_T, (B, H) each, or None.
        n_threads: threads for the time loop; None = `get_num_threads()`.
        dkernel, drecurrent_kernel, dbias: optional arrays to ADD the weight
            gradients into (a model's gradient buffer); returned as given.
        retain_cache: keep the cache usable for another backward call (costs a
            (B, T, 4H) array); by default the gate gradients overwrite its gates.
        need_dx: False skips dx (None then), a GEMM as large as dkernel's, when
            nothing upstream needs it (a model's first layer).

    Returns:
        LSTMGradients(dx, dh0, dc0, dkernel, drecurrent_kernel, dbias);
        dbias is None when the layer has no bias.
    """
    if not isinstance(cache, LSTMCache):
        raise TypeError(
            "Expected cache to be the LSTMCache returned by lstm_forward(..., training=True). "
            f"Received: cache={type(cache).__name__}")
    if cache.consumed:
        raise ValueError(
            "Expected a fresh cache. Received: a cache already consumed by lstm_backward "
            "(pass retain_cache=True to backpropagate through one forward more than once)")
    x, kernel, recurrent_kernel = cache.x, cache.kernel, cache.recurrent_kernel
    if not (isinstance(kernel, np.ndarray) and kernel.dtype in (np.float32, np.float64)
            and isinstance(x, np.ndarray) and x.ndim == 3
            and isinstance(recurrent_kernel, np.ndarray) and recurrent_kernel.ndim == 2):
        raise ValueError("Expected the cache made by lstm_forward. Received: a modified cache")
    dtype = _F32 if kernel.dtype == _F32 else _F64  # NumPy's own (metadata dropped)
    B, T, I = x.shape
    H = recurrent_kernel.shape[0]
    G = 4 * H
    # The C loop indexes these by (B, T, I, H): a cache whose arrays were replaced
    # must fail here, not read or write out of bounds.
    _cache_array(cache, "x", dtype, (B, T, I))
    _cache_array(cache, "kernel", dtype, (I, G))
    _cache_array(cache, "recurrent_kernel", dtype, (H, G))
    _cache_array(cache, "gates", dtype, (B, T, G), writeable=not retain_cache)
    _cache_array(cache, "cell", dtype, (B, T, H))
    _cache_array(cache, "hprev", dtype, (B, T, H))
    if cache.c0 is not None:
        _cache_array(cache, "c0", dtype, (B, H))
    if cache.lengths is not None:
        _cache_array(cache, "lengths", np.int64, (B,))
    y_shape = (B, T, H) if cache.return_sequences else (B, H)
    dy = _optional(dy, "dy", dtype, y_shape, "(B, T, H)" if cache.return_sequences else "(B, H)")
    dh_T = _optional(dh_T, "dh_T", dtype, (B, H), "(B, H)")
    dc_T = _optional(dc_T, "dc_T", dtype, (B, H), "(B, H)")
    dkernel = _grad_out(dkernel, "dkernel", kernel)
    drecurrent_kernel = _grad_out(drecurrent_kernel, "drecurrent_kernel", recurrent_kernel)
    if dbias is not None and not cache.has_bias:
        raise ValueError("Expected dbias=None for a layer without bias. Received: an array")
    dbias = _grad_out(dbias, "dbias", np.empty(G, dtype)) if dbias is not None else None
    cdef int nth = _resolve_threads(n_threads)

    dz = _empty((B, T, G), dtype) if retain_cache else cache.gates
    dh0 = _empty((B, H), dtype)
    dc0 = _empty((B, H), dtype)
    cdef lf_lstm_dims d
    d.B, d.T, d.I, d.H = B, T, I, H
    d.go_backwards = cache.go_backwards
    d.return_sequences = cache.return_sequences
    d.zero_output_for_mask = cache.zero_output_for_mask
    d.lengths = <const int64_t *>_ptr(cache.lengths)
    cdef void *pdz = _ptr(dz)
    cdef void *pdh0 = _ptr(dh0)
    cdef void *pdc0 = _ptr(dc0)
    cdef void *pdy = _ptr(dy)
    cdef void *pdhT = _ptr(dh_T)
    cdef void *pdcT = _ptr(dc_T)
    cdef void *pg = _ptr(cache.gates)
    cdef void *pcell = _ptr(cache.cell)
    cdef void *pc0 = _ptr(cache.c0)
    cdef void *prk = _ptr(recurrent_kernel)
    cdef int rc
    cdef bint f32 = dtype == np.float32
    with nogil:
        if f32:
            rc = lf_lstm_backward_f32(<float *>pdz, <float *>pdh0, <float *>pdc0,
                                      <const float *>pdy, <const float *>pdhT,
                                      <const float *>pdcT, <const float *>pg,
                                      <const float *>pcell, <const float *>pc0,
                                      <const float *>prk, &d, nth)
        else:
            rc = lf_lstm_backward_f64(<double *>pdz, <double *>pdh0, <double *>pdc0,
                                      <const double *>pdy, <const double *>pdhT,
                                      <const double *>pdcT, <const double *>pg,
                                      <const double *>pcell, <const double *>pc0,
                                      <const double *>prk, &d, nth)
    _raise_for(rc, "LSTM backward")
    if not retain_cache:
        cache.consumed = True

    # The non-sequential GEMMs over all B*T rows, on the engine's threads; the
    # weight gradients go straight into given C-contiguous arrays.
    dz2 = dz.reshape(B * T, G)
    dx = None
    if need_dx:                                                  # dx = dz @ kernel.T
        dx = _empty((B, T, I), dtype)
        _gemm(dz2, False, kernel, True, dx.reshape(B * T, I), False, nth)
    # dkernel += x.T @ dz, drecurrent_kernel += hprev.T @ dz, dbias += sum(dz): one product
    dk, dr, db = _weight_grads(x.reshape(B * T, I), cache.hprev.reshape(B * T, H), dz2,
                               dkernel, drecurrent_kernel, dbias, cache.has_bias, nth)
    return LSTMGradients(dx=dx, dh0=dh0, dc0=dc0, dkernel=dk, drecurrent_kernel=dr, dbias=db)


cdef tuple _weight_grads(object x2, object h2, object dz2, object dk, object dr, object db,
                         bint has_bias, int nth):
    """(dk, dr, db) (+)= (x2.T @ dz2, h2.T @ dz2, dz2.sum(0)) as one product
    [x2 | h2 | 1].T @ dz2 (lf_gemm_weight_grads); db is None without bias.
    Given arrays are added into, through a temporary where one is not
    C-contiguous or overlaps another operand; missing ones are new arrays."""
    dtype = dz2.dtype
    cdef int64_t K = dz2.shape[0]
    cdef int64_t G = dz2.shape[1]
    cdef int64_t I = x2.shape[1]
    cdef int64_t H = h2.shape[1]
    grads = [dk, dr, db if has_bias else None]
    shapes = [(I, G), (H, G), (G,)]
    cdef bint accumulate = any(g is not None for g in grads)
    targets = []
    for n in range(3):
        g = grads[n]
        if n == 2 and not has_bias:
            targets.append(None)
        elif g is not None and g.flags.c_contiguous and g.flags.aligned and not any(
                np.may_share_memory(g, o) for o in [x2, h2, dz2] + grads[:n]):
            targets.append(g)
        else:
            targets.append(np.zeros(shapes[n], dtype) if accumulate else _empty(shapes[n], dtype))
    cdef void *px = _ptr(x2)
    cdef void *ph = _ptr(h2)
    cdef void *pdz = _ptr(dz2)
    cdef void *pk = _ptr(targets[0])
    cdef void *pr = _ptr(targets[1])
    cdef void *pb = _ptr(targets[2])
    cdef int rc
    cdef bint f32 = dtype == np.float32
    with nogil:
        if f32:
            rc = lf_gemm_weight_grads_f32(K, G, <const float *>px, I, <const float *>ph, H,
                                          <const float *>pdz, accumulate, <float *>pk,
                                          <float *>pr, <float *>pb, nth)
        else:
            rc = lf_gemm_weight_grads_f64(K, G, <const double *>px, I, <const double *>ph, H,
                                          <const double *>pdz, accumulate, <double *>pk,
                                          <double *>pr, <double *>pb, nth)
    _raise_for(rc, "weight gradients")
    out = []
    for n in range(3):
        g, t = grads[n], targets[n]
        if t is not None and g is not None and t is not g:
            g += t
            t = g
        out.append(t)
    return tuple(out)
