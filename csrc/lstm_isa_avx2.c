/* The kernels for AVX2 + FMA: 32-byte vectors, 16 registers (a forward tile
 * of 2 rows x 4 gates keeps 8 accumulators, 4 panel vectors and a broadcast). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#define MR_FWD 2
#define MR_BWD 4

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
