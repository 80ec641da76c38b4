/* The kernels for any CPU: 16-byte vectors (SSE2 on x86-64, NEON on arm64),
 * no FMA. Also the path every other one is checked against in the tests. */
#define MR_FWD 2
#define MR_BWD 4

#define LF_REAL_IS_DOUBLE 0
#define REAL float
#define VBYTES 16
#define SFX generic_f32
#include "lstm_kernels.inc.c"
#undef REAL
#undef SFX
#undef LF_REAL_IS_DOUBLE

#define LF_REAL_IS_DOUBLE 1
#define REAL double
#define SFX generic_f64
#include "lstm_kernels.inc.c"
