/* The kernels for AVX2 + FMA: 32-byte vectors, 16 registers (a forward tile
 * pass of 6 rows x 2 gates keeps 12 accumulators, 2 weight vectors and a
 * broadcast: 12 FMAs per 2 weight loads, so the weights can stream from L2). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#define LF_RCP_PS(x) ((__typeof__(x))_mm256_rcp_ps((__m256)(x)))
#define LF_VMAX_PS(a, b) ((__typeof__(b))_mm256_max_ps((__m256)(a), (__m256)(b)))
#define LF_VMIN_PS(a, b) ((__typeof__(b))_mm256_min_ps((__m256)(a), (__m256)(b)))
#define LF_VMAX_PD(a, b) ((__typeof__(b))_mm256_max_pd((__m256d)(a), (__m256d)(b)))
#define LF_VMIN_PD(a, b) ((__typeof__(b))_mm256_min_pd((__m256d)(a), (__m256d)(b)))
/* the last, partial block of units: loads of the lanes where mask is all ones
 * (lstm_kernels.inc.c). Not the masked stores: on this machine's AMD cores
 * they measured slower than the plain copies of the fallback. */
#define LF_MASKLOAD_PS(p, mask) ((V)_mm256_maskload_ps((p), (__m256i)(mask)))
#define LF_MASKLOAD_PD(p, mask) ((V)_mm256_maskload_pd((p), (__m256i)(mask)))
/* U = 8 half-precision weights widened to float32 (F16C) */
#define LF_CVTPH(p) ((V)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p))))
#define MR_FWD 6
#define GP 2
#define MR_BWD 6
#define NB_BWD 2 /* blocks of a backward tile: MR_BWD * NB_BWD sums */

#define LF_REAL_IS_DOUBLE 0
#define REAL float
#define VBYTES 32
#define SFX avx2_f32
#include "lstm_kernels.inc.c"
#undef REAL
#undef SFX
#undef LF_REAL_IS_DOUBLE

#define LF_REAL_IS_DOUBLE 1
#define REAL double
#define SFX avx2_f64
#include "lstm_kernels.inc.c"
#endif
