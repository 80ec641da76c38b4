/* The kernels for any CPU: 16-byte vectors (SSE2 on x86-64, NEON on arm64),
 * no FMA; 16 registers, so forward tiles of 6 rows x 2 gates as with AVX2.
 * LF_GENERIC_VBYTES / LF_GENERIC_GP (lstm_internal.h) and LF_GENERIC_GEMM_MR /
 * _NV change the width, gates per pass and GEMM tile for a test build of the
 * AVX-512 kernels' layout. */
#include "lstm_internal.h"

#if LF_GENERIC_VBYTES != 16
#define LF_OPAQUE_IN_MEMORY 1 /* no register of the baseline ISA holds such a vector */
#endif
#define MR_FWD 6
#define GP LF_GENERIC_GP
#define MR_BWD 6
#ifdef LF_GENERIC_NB_BWD /* the test build's backward tile: the AVX-512 kernels' */
#define NB_BWD LF_GENERIC_NB_BWD
#else
#define NB_BWD 2 /* blocks of a backward tile: MR_BWD * NB_BWD sums */
#endif
#ifdef LF_GENERIC_GEMM_MR /* the test build's GEMM tile: the AVX-512 kernels' */
#define GEMM_MR LF_GENERIC_GEMM_MR
#define GEMM_NV LF_GENERIC_GEMM_NV
#endif

#define LF_REAL_IS_DOUBLE 0
#define REAL float
#define VBYTES LF_GENERIC_VBYTES
#define SFX generic_f32
#include "lstm_kernels.inc.c"
#undef REAL
#undef SFX
#undef LF_REAL_IS_DOUBLE

#define LF_REAL_IS_DOUBLE 1
#define REAL double
#define SFX generic_f64
#include "lstm_kernels.inc.c"
