/* The engine's entry points: ISA dispatch, thread choice, scratch memory. */
#include "lstm.h"

#include <math.h>
#include <stdlib.h>

#include "lstm_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <xmmintrin.h>
#define LF_X86 1
#else
#define LF_X86 0
#endif

void *lf_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    return p;
}
void lf_free(void *p) { free(p); }

int lf_choose_threads(int n_threads, int64_t n_blocks, int64_t B, int64_t H) {
    /* Below ~20k flops a step a second thread saves less than starting it
     * on the step's work costs, even without a meeting per step (the rows
     * split); the kernels' blocks_pay asks more of loops that meet every
     * step. */
    const double flops_per_step = 8.0 * (double)B * (double)H * (double)H;
    int64_t n = n_threads < 1 ? 1 : n_threads;
    if (n > n_blocks) n = n_blocks;
    if (flops_per_step < 20000.0) n = 1;
    return n < 1 ? 1 : (int)n;
}

unsigned lf_fp_enter(void) {
#if LF_X86
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040); /* FTZ | DAZ */
    return saved;
#else
    return 0;
#endif
}
void lf_fp_exit(unsigned saved) {
#if LF_X86
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

/* ---- ISA dispatch -------------------------------------------------------- */

static int current_isa = -1;

int lf_isa_supported(int isa) {
    switch (isa) {
    case LF_ISA_GENERIC: return 1;
#if LF_X86
    case LF_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LF_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               lf_isa_supported(LF_ISA_AVX2);
#endif
    default: return 0;
    }
}

/* F16C (vcvtph2ps, what the AVX2 kernels widen half-precision weights with):
 * CPUID leaf 1, ECX bit 29. Asked of CPUID itself: not every compiler's
 * __builtin_cpu_supports knows the name. */
static int has_f16c(void) {
#if LF_X86 && (defined(__GNUC__) || defined(__clang__))
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
#else
    return 0;
#endif
}

int lf_half_supported(void) {
    return lf_get_isa() != LF_ISA_AVX2 || has_f16c();
}

int lf_get_isa(void) {
    if (current_isa < 0) {
        int best = LF_ISA_GENERIC;
        for (int isa = 0; isa < LF_ISA_COUNT; isa++)
            if (lf_isa_supported(isa)) best = isa;
        current_isa = best;
    }
    return current_isa;
}

int lf_set_isa(int isa) {
    if (isa < 0 || isa >= LF_ISA_COUNT || !lf_isa_supported(isa)) return LF_EINVAL;
    current_isa = isa;
    return LF_OK;
}

const char *lf_isa_name(int isa) {
    static const char *names[LF_ISA_COUNT] = {"generic", "avx2", "avx512"};
    return isa >= 0 && isa < LF_ISA_COUNT ? names[isa] : "unknown";
}

int lf_block_units(int elem_size) {
    static const int bytes[LF_ISA_COUNT] = {LF_GENERIC_VBYTES, 32, 64};
    return bytes[lf_get_isa()] / (elem_size > 0 ? elem_size : 1);
}

/* ---- entry points ------------------------------------------------------- */

/* sizes lf_lstm_loop_threads_* takes (its sums stay far from overflow) */
#define LF_MAX_LOOP_SIZE ((int64_t)1 << 40)

static int dims_ok(const lf_lstm_dims *d) {
    return d && d->B >= 0 && d->T >= 0 && d->I >= 0 && d->H >= 1;
}

#if LF_X86
#define LF_DISPATCH(kind, type, ...)                                              \
    switch (lf_get_isa()) {                                                      \
    case LF_ISA_AVX512: return lf_##kind##_avx512_##type(__VA_ARGS__);           \
    case LF_ISA_AVX2: return lf_##kind##_avx2_##type(__VA_ARGS__);               \
    default: return lf_##kind##_generic_##type(__VA_ARGS__);                     \
    }
#else
#define LF_DISPATCH(kind, type, ...) return lf_##kind##_generic_##type(__VA_ARGS__);
#endif

#define LF_DEFINE_ENTRY(type, REAL)                                                            \
    int lf_lstm_forward_##type(REAL *y, REAL *h_T, REAL *c_T, REAL *gates, REAL *cell,         \
                               REAL *hprev, const REAL *xproj, const REAL *x,                  \
                               const REAL *kernel, const REAL *rk, const REAL *bias,           \
                               const REAL *h0, const REAL *c0, const REAL *k_packed,           \
                               const REAL *rk_packed, const uint16_t *k_half,                  \
                               const uint16_t *rk_half, const lf_lstm_dims *d, int n_threads) { \
        if (!dims_ok(d) || !y || !rk || (!xproj && !(x && kernel))) return LF_EINVAL;          \
        if (!((gates && cell && hprev) || (!gates && !cell && !hprev))) return LF_EINVAL;      \
        /* half-precision weights: float32 inference, both loop weights given */              \
        if ((k_half && !rk_half) ||                                                            \
            (rk_half && (sizeof(REAL) != sizeof(float) || gates || (!xproj && !k_half) ||      \
                         !lf_half_supported())))                                               \
            return LF_EINVAL;                                                                  \
        LF_DISPATCH(forward, type, y, h_T, c_T, gates, cell, hprev, xproj, x, kernel, rk, bias, \
                    h0, c0, k_packed, rk_packed, k_half, rk_half, d, n_threads)                \
    }                                                                                          \
    int lf_lstm_backward_##type(REAL *dz, REAL *dh0, REAL *dc0, const REAL *dy,                \
                                const REAL *dh_T, const REAL *dc_T, const REAL *gates,         \
                                const REAL *cell, const REAL *c0, const REAL *rk,              \
                                const lf_lstm_dims *d, int n_threads) {                        \
        if (!dims_ok(d) || !dz || !dh0 || !dc0 || !gates || !cell || !rk) return LF_EINVAL;    \
        LF_DISPATCH(backward, type, dz, dh0, dc0, dy, dh_T, dc_T, gates, cell, c0, rk, d,      \
                    n_threads)                                                                 \
    }                                                                                          \
    int lf_lstm_loop_threads_##type(const lf_lstm_dims *d, int fused, int training,           \
                                    int backward, int n_threads) {                             \
        if (!dims_ok(d) || d->H > LF_MAX_LOOP_SIZE || d->I > LF_MAX_LOOP_SIZE) return LF_EINVAL; \
        LF_DISPATCH(loop_threads, type, d, fused, training, backward, n_threads)               \
    }                                                                                          \
    int64_t lf_lstm_packed_len_##type(int64_t rows, int64_t H) {                               \
        if (rows < 0 || H < 1) return LF_EINVAL;                                               \
        LF_DISPATCH(packed_len, type, rows, H)                                                 \
    }                                                                                          \
    int lf_lstm_pack_##type(REAL *packed, const REAL *w, int64_t rows, int64_t H,              \
                            int n_threads) {                                                   \
        if (!packed || !w || rows < 0 || H < 1) return LF_EINVAL;                              \
        LF_DISPATCH(pack, type, packed, w, rows, H, n_threads)                                 \
    }                                                                                          \
    int lf_gemm_##type(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const REAL *A, \
                       int64_t lda, const REAL *B, int64_t ldb, int accumulate, REAL *C,       \
                       int64_t ldc, int n_threads) {                                           \
        if (M < 0 || N < 0 || K < 0 || ldc < N || (M && N && !C) ||                            \
            lda < (trans_a ? M : K) || ldb < (trans_b ? K : N) || (M && N && K && (!A || !B))) \
            return LF_EINVAL;                                                                  \
        LF_DISPATCH(gemm, type, trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc, \
                    n_threads)                                                                 \
    }                                                                                          \
    int64_t lf_gemm_packed_len_##type(int64_t K, int64_t N) {                                  \
        if (K < 0 || N < 0) return LF_EINVAL;                                                  \
        LF_DISPATCH(gemm_packed_len, type, K, N)                                               \
    }                                                                                          \
    int lf_gemm_pack_##type(REAL *dst, const REAL *B, int64_t K, int64_t N, int64_t ldb) {     \
        if (K < 0 || N < 0 || ldb < N || (K && N && (!dst || !B))) return LF_EINVAL;           \
        LF_DISPATCH(gemm_pack, type, dst, B, K, N, ldb)                                        \
    }                                                                                          \
    int lf_gemm_prepacked_##type(int trans_a, int64_t M, int64_t N, int64_t K, const REAL *A,  \
                                 int64_t lda, const REAL *bp, int accumulate, REAL *C,         \
                                 int64_t ldc, int n_threads) {                                 \
        if (M < 0 || N < 0 || K < 0 || ldc < N || (M && N && !C) ||                           \
            lda < (trans_a ? M : K) || (M && N && K && (!A || !bp)))                           \
            return LF_EINVAL;                                                                  \
        LF_DISPATCH(gemm_prepacked, type, trans_a, M, N, K, A, lda, bp, accumulate, C, ldc,    \
                    n_threads)                                                                 \
    }                                                                                          \
    int lf_gemm_weight_grads_##type(int64_t K, int64_t N, const REAL *x, int64_t I,            \
                                    const REAL *hprev, int64_t H, const REAL *dz,              \
                                    int accumulate, REAL *dk, REAL *dr, REAL *db,              \
                                    int n_threads) {                                           \
        if (K < 0 || N < 0 || I < 0 || H < 0 || (N && ((I && !dk) || (H && !dr))) ||           \
            (N && K && ((I && !x) || (H && !hprev) || !dz)))                                   \
            return LF_EINVAL;                                                                  \
        LF_DISPATCH(gemm_weight_grads, type, K, N, x, I, hprev, H, dz, accumulate, dk, dr, db, \
                    n_threads)                                                                 \
    }

LF_DEFINE_ENTRY(f32, float)
LF_DEFINE_ENTRY(f64, double)

int lf_lstm_pack_half(uint16_t *packed, const float *w, int64_t rows, int64_t H, int n_threads) {
    if (!packed || !w || rows < 0 || H < 1 || !lf_half_supported()) return LF_EINVAL;
    LF_DISPATCH(pack_half, f32, packed, w, rows, H, n_threads)
}

/* ---- Adam ----------------------------------------------------------------
 * One pass over the flat parameter vector instead of twelve NumPy passes (at
 * the seed model's 12k weights the NumPy form took ~50 us a step, most of it
 * per-call overhead). Each element sees exactly the operations of the NumPy
 * form in lstm_fast/optimizers.py, in its order, each rounded to REAL: the
 * pragmas forbid contracting them into FMAs (the build passes
 * -ffp-contract=fast, and FMA is baseline on some targets), so the results
 * are bit-identical to NumPy's (NaN payloads aside: NumPy's own depend on the
 * array's length). */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
#define LF_ADAM_LOOP(REAL, SQRT, AMSGRAD)                                                    \
    for (int64_t i = 0; i < n; i++) {                                                          \
        REAL gi = g[i];                                                                        \
        REAL t = gi - m[i];                                                                    \
        t = t * one_minus_beta_1;                                                              \
        REAL mi = m[i] + t;                                                                    \
        m[i] = mi;                                                                             \
        t = gi * gi;                                                                           \
        t = t - v[i];                                                                          \
        t = t * one_minus_beta_2;                                                              \
        REAL vi = v[i] + t;                                                                    \
        v[i] = vi;                                                                             \
        if (AMSGRAD) { /* np.maximum: NaN if either is NaN */                                  \
            REAL h = v_hat[i];                                                                 \
            vi = h != h ? h : vi != vi ? vi : h > vi ? h : vi;                                 \
            v_hat[i] = vi;                                                                     \
        }                                                                                      \
        REAL den = SQRT(vi);                                                                   \
        den = den + epsilon;                                                                   \
        REAL step = mi * alpha;                                                                \
        step = step / den;                                                                     \
        p[i] = p[i] - step;                                                                    \
    }
/* The loop once for the baseline ISA and, on x86, once for AVX2 (vectors of
 * 8 floats instead of SSE2's 4: the square roots and divisions were ~20 us of
 * the ~25 a step of the seed model's Adam took). Without FMA in the target,
 * and with the same IEEE operations, both give the same bits. */
#if LF_X86
#define LF_ADAM_AVX2_VARIANT(type, REAL, SQRT)                                                  \
    __attribute__((target("avx2"))) static void adam_avx2_##type(                              \
        REAL *p, const REAL *g, REAL *m, REAL *v, REAL *v_hat, int64_t n,                      \
        REAL one_minus_beta_1, REAL one_minus_beta_2, REAL epsilon, REAL alpha) {              \
        if (v_hat) {                                                                           \
            LF_ADAM_LOOP(REAL, SQRT, 1)                                                        \
        } else {                                                                               \
            LF_ADAM_LOOP(REAL, SQRT, 0)                                                        \
        }                                                                                      \
    }
#define LF_ADAM_USE_AVX2(type)                                                                 \
    if (lf_get_isa() >= LF_ISA_AVX2) {                                                         \
        adam_avx2_##type(p, g, m, v, v_hat, n, one_minus_beta_1, one_minus_beta_2, epsilon,    \
                         alpha);                                                               \
        return LF_OK;                                                                          \
    }
#else
#define LF_ADAM_AVX2_VARIANT(type, REAL, SQRT)
#define LF_ADAM_USE_AVX2(type)
#endif
#define LF_DEFINE_ADAM(type, REAL, SQRT)                                                        \
    LF_ADAM_AVX2_VARIANT(type, REAL, SQRT)                                                      \
    int lf_adam_##type(REAL *p, const REAL *g, REAL *m, REAL *v, REAL *v_hat, int64_t n,       \
                       REAL one_minus_beta_1, REAL one_minus_beta_2, REAL epsilon, REAL alpha) { \
        if (n < 0 || (n && (!p || !g || !m || !v))) return LF_EINVAL;                          \
        LF_ADAM_USE_AVX2(type)                                                                 \
        if (v_hat) {                                                                           \
            LF_ADAM_LOOP(REAL, SQRT, 1)                                                        \
        } else {                                                                               \
            LF_ADAM_LOOP(REAL, SQRT, 0)                                                        \
        }                                                                                      \
        return LF_OK;                                                                          \
    }
LF_DEFINE_ADAM(f32, float, sqrtf)
LF_DEFINE_ADAM(f64, double, sqrt)
#pragma GCC pop_options
