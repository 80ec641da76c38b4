/* Shared by the engine's C files; not part of the API (that is lstm.h). */
#ifndef LSTM_FAST_INTERNAL_H
#define LSTM_FAST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lstm.h"

/* The generic kernels' vector width in bytes and gates per forward pass.
 * A test build sets them to the AVX-512 kernels' (64 and 4; setup.py,
 * LSTM_FAST_GENERIC_AS=avx512) so that the packed layout, block sizes and
 * tiles of those kernels run, in portable vector code, on a machine without
 * AVX-512, where the AVX-512 kernels themselves cannot. */
#ifndef LF_GENERIC_VBYTES
#define LF_GENERIC_VBYTES 16
#endif
#ifndef LF_GENERIC_GP
#define LF_GENERIC_GP 2
#endif

/* 64-byte aligned scratch memory; NULL on failure. */
void *lf_alloc(size_t bytes);
void lf_free(void *p);

/* *out = a * b; returns 1 if that overflows (or exceeds PTRDIFF_MAX / 64). */
static inline int lf_mul_overflows(size_t *out, size_t a, size_t b) {
    if (__builtin_mul_overflow(a, b, out)) return 1;
    return *out > (size_t)PTRDIFF_MAX / 64;
}

/* Threads worth using for a time loop: at most n_threads and one per block
 * of units, and one when a step is too small to pay for a barrier. */
int lf_choose_threads(int n_threads, int64_t n_blocks, int64_t B, int64_t H);

/* Flush denormals to zero in this thread for the duration of a kernel
 * (a recurrence that decays into denormals would otherwise slow 10x+). */
unsigned lf_fp_enter(void);
void lf_fp_exit(unsigned saved);

/* IEEE binary16 <-> binary32, exact and without F16C (the packing of
 * half-precision weights and the generic kernels' loads). to_half rounds to
 * nearest, ties to even; overflow gives infinity, NaN stays NaN (quiet). */
static inline uint16_t lf_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) /* infinity, or NaN (kept quiet, top payload bits kept) */
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | (a >> 13 & 0x3ffu) : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to infinity */
    if (a < 0x38800000u) { /* below 2^-14: a subnormal half (or zero). Adding 0.5,
                            * whose ulp is 2^-24 (the subnormals' step), makes the
                            * FPU round to that step, to nearest even. */
        float m;
        memcpy(&m, &a, 4);
        m += 0.5f;
        uint32_t mb;
        memcpy(&mb, &m, 4);
        return (uint16_t)(sign | (mb - 0x3f000000u));
    }
    /* normal: rebias the exponent (127 -> 15) and round the 13 dropped bits,
     * ties to the even mantissa; a carry into the exponent is the right result */
    a += 0xc8000fffu + ((a >> 13) & 1u); /* -(112 << 23) + 0xfff, mod 2^32 */
    return (uint16_t)(sign | (a >> 13));
}

static inline float lf_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in binary32 */
        float f = (float)m * 0x1p-24f;
        memcpy(&x, &f, 4);
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

#define LF_DECLARE_KERNELS(SFX, REAL)                                                         \
    int lf_forward_##SFX(REAL *y, REAL *h_T, REAL *c_T, REAL *gates, REAL *cell, REAL *hprev, \
                         const REAL *xproj, const REAL *x, const REAL *kernel, const REAL *rk, \
                         const REAL *bias, const REAL *h0, const REAL *c0,                    \
                         const REAL *k_packed, const REAL *rk_packed, const uint16_t *k_half, \
                         const uint16_t *rk_half, const lf_lstm_dims *d, int n_threads);      \
    int lf_pack_half_##SFX(uint16_t *packed, const float *w, int64_t rows, int64_t H,         \
                           int n_threads);                                                    \
    int lf_backward_##SFX(REAL *dz, REAL *dh0, REAL *dc0, const REAL *dy, const REAL *dh_T,   \
                          const REAL *dc_T, const REAL *gates, const REAL *cell,              \
                          const REAL *c0, const REAL *rk, const lf_lstm_dims *d, int n_threads); \
    int64_t lf_packed_len_##SFX(int64_t rows, int64_t H);                                     \
    int lf_loop_threads_##SFX(const lf_lstm_dims *d, int fused, int training, int backward,    \
                              int n_threads);                                                 \
    int lf_pack_##SFX(REAL *packed, const REAL *w, int64_t rows, int64_t H, int n_threads);     \
    int lf_gemm_##SFX(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const REAL *A,   \
                      int64_t lda, const REAL *B, int64_t ldb, int accumulate, REAL *C,           \
                      int64_t ldc, int n_threads);                                         \
    int64_t lf_gemm_packed_len_##SFX(int64_t K, int64_t N);                                       \
    int lf_gemm_pack_##SFX(REAL *dst, const REAL *B, int64_t K, int64_t N, int64_t ldb);          \
    int lf_gemm_prepacked_##SFX(int trans_a, int64_t M, int64_t N, int64_t K, const REAL *A,      \
                                int64_t lda, const REAL *bp, int accumulate, REAL *C,             \
                                int64_t ldc, int n_threads);                                      \
    int lf_gemm_weight_grads_##SFX(int64_t K, int64_t N, const REAL *x, int64_t I,                 \
                                   const REAL *hprev, int64_t H, const REAL *dz, int accumulate,  \
                                   REAL *dk, REAL *dr, REAL *db, int n_threads);

LF_DECLARE_KERNELS(generic_f32, float)
LF_DECLARE_KERNELS(generic_f64, double)
LF_DECLARE_KERNELS(avx2_f32, float)
LF_DECLARE_KERNELS(avx2_f64, double)
LF_DECLARE_KERNELS(avx512_f32, float)
LF_DECLARE_KERNELS(avx512_f64, double)

#endif
