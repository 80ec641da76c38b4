/* The kernels for AVX-512F: 64-byte vectors, 32 registers (a forward tile of
 * 6 rows x 4 gates keeps 24 accumulators, 4 weight vectors and a broadcast). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx512f,avx512dq,avx2,fma")
#include <immintrin.h>
#define LF_RCP_PS(x) ((__typeof__(x))_mm512_rcp14_ps((__m512)(x)))
/* The first n < U lanes (masked: the others are neither read nor written,
 * so a block's tail at the end of an array stays inside it) */
#define LF_LOADN_PS(p, n) ((V)_mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p)))
#define LF_LOADN_PD(p, n) ((V)_mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1u), (p)))
#define LF_STOREN_PS(p, v, n) \
    _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (__m512)(v))
#define LF_STOREN_PD(p, v, n) \
    _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1u), (__m512d)(v))
#define LF_VMAX_PS(a, b) ((__typeof__(b))_mm512_max_ps((__m512)(a), (__m512)(b)))
#define LF_VMIN_PS(a, b) ((__typeof__(b))_mm512_min_ps((__m512)(a), (__m512)(b)))
#define LF_VMAX_PD(a, b) ((__typeof__(b))_mm512_max_pd((__m512d)(a), (__m512d)(b)))
#define LF_VMIN_PD(a, b) ((__typeof__(b))_mm512_min_pd((__m512d)(a), (__m512d)(b)))
/* U = 16 half-precision weights widened to float32 */
#define LF_CVTPH(p) ((V)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p))))
#define MR_FWD 6
#define GP 4
#define MR_BWD 6
#define NB_BWD 4 /* blocks of a backward tile: MR_BWD * NB_BWD sums */
/* The GEMM's register tile (gemm.inc.c): 6 rows x 4 vectors, 24 accumulators,
 * 4 weight vectors and a broadcast of the 32 registers; 6 broadcasts per 24
 * FMAs. Against the 4 x 3 tile of 16 registers, measured on a 2-core Intel
 * Xeon (AVX-512) in a C loop of the large layer's three products, median of
 * the best of 3 over 10 interleaved rounds: 1.33 / 1.18 / 1.06x on two
 * threads (x @ kernel, dz @ kernel.T, the weight gradients), 1.12 / 1.03 /
 * 1.08x on one. */
#define GEMM_MR 6
#define GEMM_NV 4

#define LF_REAL_IS_DOUBLE 0
#define REAL float
#define VBYTES 64
#define SFX avx512_f32
#include "lstm_kernels.inc.c"
#undef REAL
#undef SFX
#undef LF_REAL_IS_DOUBLE

#define LF_REAL_IS_DOUBLE 1
#define REAL double
#define SFX avx512_f64
#include "lstm_kernels.inc.c"
#endif
