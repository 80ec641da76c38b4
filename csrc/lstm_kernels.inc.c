/* The LSTM time loops, forward and backward, written once for every element
 * type and SIMD width. Included by lstm_isa_*.c, each of which compiles it
 * for one instruction set (a `#pragma GCC target`) and includes it twice:
 *
 *   #define REAL float      the element type
 *   #define VBYTES 32       SIMD register width in bytes
 *   #define MR_FWD 6        batch rows per register tile, forward
 *   #define GP 2            gates per pass of a forward tile (MR_FWD * GP accumulators)
 *   #define MR_BWD 6        batch rows per register tile, backward
 *   #define NB_BWD 2        blocks of units per backward tile (4 where 4 x MR_BWD sums fit)
 *   #define SFX avx2_f32    suffix of every name defined here
 *
 * Legend: B batch, T time, I input features, H units, G = 4H gates.
 * U = lanes of a vector = hidden units per block. Work is split by blocks
 * of units: block j holds units [j*U, j*U + U), and whoever computes it
 * computes the four gates of those units, so a tile of z is finished in
 * registers (bias, nonlinearities, c and h update) and never goes back to
 * memory as z. The forward shares its blocks out per step (lf_phases: each
 * thread takes its own first, then the others' that have not started); the
 * backward gives each thread fixed blocks and meets at a barrier per step.
 * Small layers split the rows instead, forward and backward (rows_pay):
 * chunks of a register tile's rows, claimed the same way, each run through
 * every step; the threads meet only once, after packing the weights. Small
 * layers at small batches run on one thread (blocks_pay).
 *
 * Determinism: each output element is computed by the same operations in
 * the same order whichever thread computes its block and however many
 * threads run, so results do not depend on the thread count.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lstm.h"
#include "lstm_internal.h"
#include "threadpool.h"

#define LF_CAT_(a, b) a##_##b
#define LF_CAT(a, b) LF_CAT_(a, b)
#define FN(name) LF_CAT(name, SFX)

#define U ((int64_t)(VBYTES / sizeof(REAL)))

/* The last mr < MR rows of a batch, with mr a constant at each call so that
 * every tile call is specialised (its loops over rows unrolled). */
#ifndef LF_REMAINDER_ROWS
#define LF_REMAINDER_ROWS(rem, TILE)  \
    switch (rem) {                    \
    case 5: TILE(5); break;           \
    case 4: TILE(4); break;           \
    case 3: TILE(3); break;           \
    case 2: TILE(2); break;           \
    case 1: TILE(1); break;           \
    default: break;                   \
    }
#endif
_Static_assert(MR_FWD <= 6 && MR_BWD <= 6, "LF_REMAINDER_ROWS covers tiles of up to 6 rows");
#define INLINE static inline __attribute__((always_inline))

typedef REAL FN(vec) __attribute__((vector_size(VBYTES)));
#define V FN(vec)

#if LF_REAL_IS_DOUBLE
typedef int64_t FN(ivec) __attribute__((vector_size(VBYTES)));
#else
typedef int32_t FN(ivec) __attribute__((vector_size(VBYTES)));
#endif
#define VI FN(ivec)

/* ---- vector helpers ---------------------------------------------------- */

INLINE V FN(vload)(const REAL *p) {
    V v;
    memcpy(&v, p, sizeof v);
    return v;
}
INLINE void FN(vstore)(REAL *p, V v) { memcpy(p, &v, sizeof v); }
/* U half-precision weights (pack_rows_half), widened: one instruction where
 * the ISA file gives LF_CVTPH (F16C's vcvtph2ps), else exact in software. */
INLINE V FN(vload_h)(const uint16_t *p) {
#if defined(LF_CVTPH) && !LF_REAL_IS_DOUBLE
    return LF_CVTPH(p);
#else
    V v;
    for (int u = 0; u < (int)U; u++) v[u] = (REAL)lf_half_to_float(p[u]);
    return v;
#endif
}
/* a in every lane. Not `(V){0} + a`: that is an addition the compiler must
 * keep (it turns -0.0 into +0.0), so a broadcast from memory became an add and
 * a shuffle, taking an FMA port in the inner loops. */
INLINE V FN(vbcast)(REAL a) { return __builtin_shuffle((V){a}, (VI){0}); }

/* The last block of units of a layer whose H is not a multiple of U holds
 * n < U units. Its loads and stores were a libc memcpy of a variable size
 * through a buffer (and a vector load of bytes just stored in pieces, which
 * store forwarding cannot serve): at H = 50 that one block of 2 units cost
 * 1.57 full blocks, 1.27 now. The ISA files may give masked loads
 * (LF_MASKLOAD_PS/PD, with a vector of lanes; LF_LOADN_PS/PD with a count)
 * and stores (LF_STOREN_PS/PD); otherwise the copies are of fixed sizes,
 * which compile to a few moves (a load then still waits for the pieces'
 * stores to reach the cache). */
INLINE VI FN(lane_mask)(int64_t n) { /* lanes < n all ones, the rest zero */
    VI lane;
    for (int i = 0; i < (int)U; i++) lane[i] = i;
    return lane < (VI){0} + (__typeof__(lane[0]))n;
}

/* n < U elements between a and b, in fixed-size pieces (n's bits) */
INLINE void FN(copy_n)(void *a, const void *b, int64_t n) {
    char *d = a;
    const char *s = b;
    for (int64_t piece = U / 2; piece > 0; piece /= 2)
        if (n & piece) {
            memcpy(d, s, (size_t)piece * sizeof(REAL));
            d += piece * sizeof(REAL);
            s += piece * sizeof(REAL);
        }
}

/* first n lanes (n <= U) of p, the rest zero: for the last block of units */
INLINE V FN(vload_n)(const REAL *p, int64_t n) {
    if (n == U) return FN(vload)(p);
#if LF_REAL_IS_DOUBLE && defined(LF_LOADN_PD)
    return LF_LOADN_PD(p, n);
#elif !LF_REAL_IS_DOUBLE && defined(LF_LOADN_PS)
    return LF_LOADN_PS(p, n);
#elif LF_REAL_IS_DOUBLE && defined(LF_MASKLOAD_PD)
    return LF_MASKLOAD_PD(p, FN(lane_mask)(n));
#elif !LF_REAL_IS_DOUBLE && defined(LF_MASKLOAD_PS)
    return LF_MASKLOAD_PS(p, FN(lane_mask)(n));
#else
    REAL tmp[U];
    memset(tmp, 0, sizeof tmp);
    FN(copy_n)(tmp, p, n);
    return FN(vload)(tmp);
#endif
}
INLINE void FN(vstore_n)(REAL *p, V v, int64_t n) {
    if (n == U) {
        FN(vstore)(p, v);
        return;
    }
#if LF_REAL_IS_DOUBLE && defined(LF_STOREN_PD)
    LF_STOREN_PD(p, v, n);
#elif !LF_REAL_IS_DOUBLE && defined(LF_STOREN_PS)
    LF_STOREN_PS(p, v, n);
#else
    REAL tmp[U];
    FN(vstore)(tmp, v);
    FN(copy_n)(p, tmp, n);
#endif
}

/* x clamped to [lo, hi], NaN kept: a NaN input must give a NaN output. The
 * ISA files may give the max/min instructions (x86's return their second
 * operand when either is NaN, so x goes second): one instruction each
 * instead of a compare and three logic operations, in every exp. */
INLINE V FN(vclamp)(V x, REAL lo, REAL hi) {
#if LF_REAL_IS_DOUBLE && defined(LF_VMAX_PD)
    return LF_VMIN_PD(FN(vbcast)(hi), LF_VMAX_PD(FN(vbcast)(lo), x));
#elif !LF_REAL_IS_DOUBLE && defined(LF_VMAX_PS)
    return LF_VMIN_PS(FN(vbcast)(hi), LF_VMAX_PS(FN(vbcast)(lo), x));
#else
    VI below = x < FN(vbcast)(lo), above = x > FN(vbcast)(hi);
    x = (V)(((VI)FN(vbcast)(lo) & below) | ((VI)x & ~below));
    return (V)(((VI)FN(vbcast)(hi) & above) | ((VI)x & ~above));
#endif
}

/* v as it is, a value the compiler cannot see into. For a sum of two
 * products, -ffp-contract=fast lets GCC fuse either product into the add,
 * and which one depends on the code it is inlined into (the cell update
 * f c + i g rounded differently in a tile of one row and in one of six, so
 * results changed with the thread count): the product made opaque first
 * stays a plain multiply. */
#if defined(__GNUC__) && defined(LF_OPAQUE_IN_MEMORY) /* vectors wider than a register */
#define LF_OPAQUE(v) __asm__("" : "+m"(v))
#elif defined(__GNUC__) && defined(__SSE__)
#define LF_OPAQUE(v) __asm__("" : "+v"(v)) /* in a vector register */
#elif defined(__GNUC__) && defined(__aarch64__)
#define LF_OPAQUE(v) __asm__("" : "+w"(v))
#elif defined(__GNUC__)
#define LF_OPAQUE(v) __asm__("" : "+m"(v)) /* any target: through memory */
#else
#error "LF_OPAQUE needs GCC-style inline assembly (GCC or clang)"
#endif

/* exp of n vectors (n a constant at each call, up to LF_LANES_MAX): x = k ln2
 * + r, |r| <= ln2/2; e^r by its Taylor series (degree 7 for float, 13 for
 * double: below half an ulp on that range); 2^k built in the exponent bits. x
 * is clamped so that 2^k stays a normal number.
 * Statement by statement across the n vectors: an exp is a chain of ~17
 * dependent operations (a sigmoid or tanh ~21), and one chain after another
 * (as GCC emits them) the out-of-order window held only two or three, so the
 * gate activations waited on the operations' latency (at H = 50 the epilogue
 * was ~45% of the forward: 2.2 ms without it against 3.8 ms, B32 T200, one
 * thread). Interleaved in the instruction stream, n chains run side by side.
 * Each lane's operations are the same whatever n. */
#define LF_LANES_MAX 4
#define LF_EACH(i, n) _Pragma("GCC unroll 4") for (int i = 0; i < (n); i++)
INLINE void FN(vexp_n)(V *x, int n) {
#if LF_REAL_IS_DOUBLE
    const REAL lo = -708.0, hi = 709.0, shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    const REAL ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const int mant_bits = 52, exp_bias = 1023;
#else
    const REAL lo = -87.0f, hi = 88.0f, shifter = 12582912.0f; /* 1.5 * 2^23 */
    const REAL ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    const int mant_bits = 23, exp_bias = 127;
#endif
    const REAL log2e = (REAL)1.44269504088896340736;
    V t[LF_LANES_MAX], p[LF_LANES_MAX];
    LF_EACH(i, n) x[i] = FN(vclamp)(x[i], lo, hi);
    LF_EACH(i, n) t[i] = x[i] * log2e + shifter; /* round(x / ln2) in t's low mantissa bits */
    LF_EACH(i, n) p[i] = t[i] - shifter;           /* k */
    LF_EACH(i, n) x[i] = x[i] - p[i] * ln2_hi;     /* r */
    LF_EACH(i, n) x[i] = x[i] - p[i] * ln2_lo;
#if LF_REAL_IS_DOUBLE
    LF_EACH(i, n) p[i] = x[i] * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    LF_EACH(i, n) p[i] = p[i] * x[i] + 1.0 / 39916800.0;
    LF_EACH(i, n) p[i] = p[i] * x[i] + 1.0 / 3628800.0;
    LF_EACH(i, n) p[i] = p[i] * x[i] + 1.0 / 362880.0;
    LF_EACH(i, n) p[i] = p[i] * x[i] + 1.0 / 40320.0;
    LF_EACH(i, n) p[i] = p[i] * x[i] + 1.0 / 5040.0;
#else
    LF_EACH(i, n) p[i] = FN(vbcast)(1.0f / 5040.0f);
#endif
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)(1.0 / 720.0);
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)(1.0 / 120.0);
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)(1.0 / 24.0);
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)(1.0 / 6.0);
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)0.5;
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)1.0;
    LF_EACH(i, n) p[i] = p[i] * x[i] + (REAL)1.0;
    LF_EACH(i, n) {
        VI k = (VI)t[i] - (VI)FN(vbcast)(shifter);
        x[i] = p[i] * (V)((k + exp_bias) << mant_bits);
    }
}

/* 1 / (1 + x) of n vectors, in place. For float where the ISA file provides
 * LF_RCP_PS (an approximate reciprocal instruction, ~12 bits), one Newton
 * step brings it to ~23 bits at a fraction of a division's cost; five
 * divisions per unit and step weigh in the epilogue when H is small. */
INLINE void FN(vrecip1p_n)(V *x, int n) {
    LF_EACH(i, n) x[i] = (REAL)1 + x[i];
#if !LF_REAL_IS_DOUBLE && defined(LF_RCP_PS)
    V r[LF_LANES_MAX];
    LF_EACH(i, n) r[i] = LF_RCP_PS(x[i]);
    LF_EACH(i, n) x[i] = (REAL)2 - x[i] * r[i];
    LF_EACH(i, n) x[i] = r[i] * x[i];
#else
    LF_EACH(i, n) x[i] = (REAL)1 / x[i];
#endif
}

/* tanh(x) = 2 / (1 + e^-2x) - 1 of n vectors, in place */
INLINE void FN(vtanh_n)(V *x, int n) {
    LF_EACH(i, n) x[i] = x[i] * (REAL)-2;
    FN(vexp_n)(x, n);
    FN(vrecip1p_n)(x, n);
    LF_EACH(i, n) x[i] = (REAL)2 * x[i] - (REAL)1;
}
INLINE V FN(vtanh)(V x) {
    FN(vtanh_n)(&x, 1);
    return x;
}

/* The four gate activations of a block in place: sigmoid of z[0], z[1],
 * z[3] (1 / (1 + e^-z)) and tanh of z[2], the four exps interleaved. */
INLINE void FN(vgates)(V z[4]) {
    for (int g = 0; g < 4; g++) z[g] = g == 2 ? z[g] * (REAL)-2 : -z[g];
    FN(vexp_n)(z, 4);
    FN(vrecip1p_n)(z, 4);
    z[2] = (REAL)2 * z[2] - (REAL)1;
}

/* Small layers split the batch's rows among the threads instead of the
 * blocks of units: each row is a sequence of its own, so a time loop then
 * needs no meeting per step (split by blocks, every step needs all of the
 * previous one's h or dz), and the shares stay even (7 blocks at H = 50
 * split 4:3 on two; rows go in chunks of at most a tile, claimed). Each
 * thread then reads all the weights every step: worth it while they stay in
 * its L2 (weight_rows x 4H), and with at least one register tile of mr rows
 * for every thread. */
INLINE int FN(rows_pay)(int64_t B, int64_t weight_rows, int64_t Hp, int nth, int mr) {
    const double bytes = 4.0 * (double)weight_rows * (double)Hp * (double)sizeof(REAL);
    return nth > 1 && bytes <= 160.0 * 1024 && B >= (int64_t)nth * mr;
}

/* Whether a second thread pays for a time loop that splits the blocks of
 * units (not rows_pay): its members meet once per step (about a microsecond
 * here, with the two cores' L2s each streaming half of the weights), so one
 * thread's step must take a few microseconds. Measured on this 2-core
 * machine (n_threads 1 against 2, per step): inference at batch 1 and 2
 * breaks even at 100-130 KiB of recurrent_kernel (float32 B1 H80 1.04 as
 * long on two, H88 0.93, H96 0.90, H128 0.76; B2 H80 0.97-0.99, H96
 * 0.88-0.97, H144 0.76; float32 H = 64 at B1 and B2 1.1x as long on two;
 * float64 B1 H64 0.88, B2 H80 0.87) since a step at batch 1-2 is one chunk
 * per thread (fwd_chunk_blocks); half-precision weights count as float32
 * (two threads took 0.95 of the time at B1 H96). At batch 3-8 at about
 * 540k flops a step (B3 H128 0.92 and B4 H128 0.98, near even, stay on
 * one; B4 H160 0.84; float64 about 225k), where B4 H64 took 1.2x as long
 * on two. The backward broke even near the same flops at batch 3-8 (B4
 * H128-256), but a training step whose backward ran alone after a forward
 * on two took 1.09x as long at B8 H128 (the workers went to sleep and the
 * next forward woke them): a training step's loops take one rule, on
 * recurrent_kernel alone (not a fused input's rows, which the backward
 * does not read), in float32 or float64. From 12 rows the loops split rows
 * or do enough per step (B16 H128 backward on two 0.76). A training step at
 * batch 1 or 2 (its forward writes the cache, its backward meets at a
 * barrier) breaks even later than inference: float32 T30 B1 H88 1.03 as
 * long on two, H96 0.97-1.00, H104 0.94 (T200), H112 0.86-0.94, H128
 * 0.80-0.85; B2 H88 1.00, H96 0.90-0.98, H112 0.84-0.87, H160 0.82;
 * float64 B1 H72 1.03-1.20, H80 1.08, H88 0.85-1.03, H104 0.84, H120
 * 0.78; B2 H80 1.03, H88 1.05 (n_threads 1 against 2 with the rule
 * bypassed, 9-11 rounds, after the forward's one chunk per thread and both
 * loops' prefetches); so training loops at batch 1-2 take two threads from
 * 192 KiB of recurrent_kernel in float32 (H >= 111) and 320 KiB in float64
 * (H >= 102). Before those changes a batch-1 step broke even only at H =
 * 160-192 (float64 96) and batch 2 followed the 540k-flop rule.
 * An inference call at batch 1-2 also pays once for handing its work to
 * the team (publishing it, a worker's entry, the join: ~3 us here), which
 * a short sequence does not earn back: it takes two threads only when its
 * T steps sweep, in all, at least 576 KiB of weights with x @ kernel in the
 * loop (lstm_step; rows I + H) or 1 MiB without (rows H: the GEMM before
 * the loop hands out work of its own). n_threads 1 against 2 per call, in
 * one process, 9-15 rounds, the call's sweep in brackets: lstm_step float32
 * B1 H96 (288 KiB) 0.81-0.82 of the time on one, I16 H128 (288) 0.80-0.93,
 * H112 (392) 0.93, H120 (450) 0.99, B2 H96 0.83, B2 H112 0.89, B2 H128 (512)
 * 0.87-0.93; about even from 512 KiB at batch 1, by the host's moment (H128
 * 0.90-1.12 in five runs, I16 H176 (528) 0.94-1.03, H136 (578) 0.98); on
 * one 1.11-1.16 as long at H144 (648), 1.11-1.18 at I16 H208 (728), B2 H160
 * (800) 1.22; float64 B1 H64 (256) 0.88, H80 (400) 0.97, B2 H80 0.88-0.95,
 * H96 (576) 1.11 as long. lstm_forward float32 T2 H96 (288) 0.83, T2 H112
 * 0.83, T4 H96 (576) 0.86, T3 H112 0.89, T2 H128 (512) 0.91, T2 H144 (648)
 * 0.94, T4 H128 (1 MiB) 1.00; float64 T2 and T4 H64 0.90, T2 H96 (576)
 * 0.99. Half-precision weights count as float32 here too (their widening
 * costs about what the bytes save): a half lstm_step at I = H = 136 took
 * 0.86 of one thread's time on two at B1 and B2, H160 0.79. */
INLINE int FN(blocks_pay)(int64_t B, int64_t T, int64_t H, int64_t weight_rows, int fused,
                          int training) {
    const double bytes = 4.0 * (double)H * (double)H * (double)sizeof(REAL);
    const double flops = 8.0 * (double)B * (double)H * (double)H;
    if (B <= 2 && training) return bytes >= (sizeof(REAL) == 4 ? 192.0 : 320.0) * 1024;
    if (B <= 2) {
        const double call = (double)T * (double)weight_rows * 4.0 * (double)H * sizeof(REAL);
        return bytes >= 128.0 * 1024 && call >= (fused ? 576.0 : 1024.0) * 1024;
    }
    return B >= 12 || flops >= (sizeof(REAL) == 4 ? 540e3 : 225e3);
}

/* The threads a time loop asks the team for: lf_forward's (fused: x @ kernel
 * in the loop, whose rows count for rows_pay; training: it keeps the cache)
 * or lf_backward's. */
int FN(lf_loop_threads)(const lf_lstm_dims *d, int fused, int training, int backward,
                        int n_threads) {
    const int64_t nblk = (d->H + U - 1) / U;
    const int64_t weight_rows = d->H + (fused && !backward ? d->I : 0);
    const int nth = lf_choose_threads(n_threads, nblk, d->B, d->H);
    if (FN(rows_pay)(d->B, weight_rows, nblk * U, nth, backward ? MR_BWD : MR_FWD) ||
        FN(blocks_pay)(d->B, d->T, d->H, weight_rows, fused && !backward, training || backward))
        return nth;
    return 1;
}

/* ---- forward ------------------------------------------------------------ */

typedef struct {
    const lf_lstm_dims *d;
    int64_t Hp, nblk;        /* blocks of U units; the last may be partial */
    int64_t cb;              /* blocks per chunk (fwd_chunk_blocks)        */
    REAL *y, *h_T, *c_T, *gates, *cell, *hprev;
    const REAL *xproj;       /* (B,T,G) x @ kernel, or NULL: then x @ kernel is fused here */
    const REAL *x, *kernel;  /* (B,T,I), (I,G): the fused input projection (streaming)    */
    const REAL *rk, *bias, *h0, *c0;
    /* recurrent_kernel and (fused) kernel in the packed layout (see pack_rows):
     * given by the caller (packed once for many calls), or packed here by each
     * thread for its own blocks into rk_own / k_own. */
    const REAL *rk_packed, *k_packed;
    REAL *rk_own, *k_own;
    /* or, float32 inference only, the same two packed in half precision
     * (lf_lstm_pack_half): then rk_h is set and the tiles read these */
    const uint16_t *rk_h, *k_h;
    REAL *hbuf;    /* (2, B, Hp): h before / after the current step          */
    REAL *cbuf;    /* (B, Hp): c, updated in place by whoever runs its chunk  */
    lf_phases ph;  /* the chunks of each step (small layers: of rows), shared out */
    /* Outputs (B, T, H) beyond the caches (cell, h_prev in training; y
     * with return_sequences): their rows are T * H apart, more streams than
     * the hardware prefetcher follows, so the tiles prefetch the next step's
     * lines (B64 T50 H256 training forward: 0.95-0.96; at the seed model's
     * 128 KB the prefetches only cost, 1.01-1.025). */
    int prefetch_out;
    /* The caller set the initial state and nothing needs packing: the loop
     * starts at step 0, without the meeting of phase 0 (lf_forward). */
    int state_ready;
} FN(fwd_ctx);

INLINE int FN(fwd_active)(const FN(fwd_ctx) * cx, int64_t b, int64_t t) {
    return cx->d->lengths == NULL || t < cx->d->lengths[b];
}

/* The epilogue of a tile goes over its rows in stages: first every row's
 * gate activations (the four of a block interleaved, vgates), then every
 * row's c (fwd_cell) and tanh(c) (up to LF_LANES_MAX rows interleaved), then
 * each row's h and stores (fwd_finish_row). Row by row, a row's tanh(c)
 * waited for its gates and the next row's gates for the registers. Per row
 * the operations are the same whatever the tile.
 *
 * Activations, an active row: z = acc (+ xproj) + bias, turned into the
 * gates' activations in place. */
INLINE void FN(fwd_activate)(const FN(fwd_ctx) * cx, V z[4], int64_t b, int64_t t, int64_t u0,
                             int64_t nu) {
    const int64_t T = cx->d->T, H = cx->d->H, G = 4 * H;
    for (int g = 0; g < 4; g++) {
        if (cx->xproj) z[g] += FN(vload_n)(cx->xproj + (b * T + t) * G + g * H + u0, nu);
        if (cx->bias) z[g] += FN(vload_n)(cx->bias + g * H + u0, nu);
    }
    FN(vgates)(z);
}

/* Then the new c of a row and block from its activations act (unused
 * for a masked row). */
INLINE V FN(fwd_cell)(const FN(fwd_ctx) * cx, const V act[4], int64_t b, int64_t u0) {
    V ig = act[0] * act[2];
    LF_OPAQUE(ig);
    return act[1] * FN(vload)(cx->cbuf + b * cx->Hp + u0) + ig;
}

/* tanh of n <= 2 * LF_LANES_MAX vectors in place, LF_LANES_MAX at a time */
_Static_assert(MR_FWD <= 2 * LF_LANES_MAX, "vtanh_many takes a tile's rows in two groups");
INLINE void FN(vtanh_many)(V *x, int n) {
    if (n > LF_LANES_MAX) {
        FN(vtanh_n)(x, LF_LANES_MAX);
        FN(vtanh_n)(x + LF_LANES_MAX, n - LF_LANES_MAX);
    } else {
        FN(vtanh_n)(x, n);
    }
}

/* Then h = o tanh(c) of a row from its activations act, its c and tc =
 * tanh(c) (or, masked, the carried state), and the stores. */
INLINE void FN(fwd_finish_row)(FN(fwd_ctx) * cx, const V act[4], V c, V tc, int64_t b,
                               int64_t t, int64_t s, int64_t u0, int64_t nu, const REAL *cur,
                               REAL *nxt) {
    const lf_lstm_dims *d = cx->d;
    const int64_t T = d->T, H = d->H, G = 4 * H, Hp = cx->Hp;
    REAL *cp = cx->cbuf + b * Hp + u0;
    V out;
    if (cx->prefetch_out && s + 1 < T) { /* the next step's lines of this row's outputs */
        const int64_t tn = d->go_backwards ? t - 1 : t + 1;
        if (cx->cell) __builtin_prefetch(cx->cell + (b * T + tn) * H + u0, 1, 2);
        if (cx->hprev) __builtin_prefetch(cx->hprev + (b * T + tn) * H + u0, 1, 2);
        if (d->return_sequences) __builtin_prefetch(cx->y + (b * T + s + 1) * H + u0, 1, 2);
    }
    if (!FN(fwd_active)(cx, b, t)) { /* masked: carry h and c */
        V h = FN(vload)(cur + b * Hp + u0);
        FN(vstore)(nxt + b * Hp + u0, h);
        if (cx->gates)
            for (int g = 0; g < 4; g++)
                FN(vstore_n)(cx->gates + (b * T + t) * G + g * H + u0, (V){0}, nu);
        if (cx->cell) FN(vstore_n)(cx->cell + (b * T + t) * H + u0, FN(vload)(cp), nu);
        out = d->zero_output_for_mask ? (V){0} : h;
    } else {
        FN(vstore)(cp, c);
        V h = act[3] * tc;
        FN(vstore)(nxt + b * Hp + u0, h);
        if (cx->gates) /* may overwrite xproj: the activations read it for every row */
            for (int g = 0; g < 4; g++)
                FN(vstore_n)(cx->gates + (b * T + t) * G + g * H + u0, act[g], nu);
        if (cx->cell) FN(vstore_n)(cx->cell + (b * T + t) * H + u0, c, nu);
        out = h;
    }
    if (d->return_sequences)
        FN(vstore_n)(cx->y + (b * T + s) * H + u0, out, nu);
    else if (s == T - 1)
        FN(vstore_n)(cx->y + b * H + u0, out, nu);
}

/* acc[r][q] += sum_k a[r*a_stride + k] * w[k*w_row + (q/GP)*w_pass + (q%GP)*U + lane],
 * for r < mr rows and q < NQ gates, from a block of the packed layout
 * (pack_rows: w_row = GP U, w_pass = rows GP U); w points at gate g0's pass.
 * With NQ = GP (fwd_gemm) q / GP is 0: w_pass is unused. */
#define LF_FWD_GEMM(NQ, LOAD)                                                             \
    _Pragma("GCC unroll 4")                                                               \
    for (int64_t k = 0; k < kdim; k++, w += w_row) {                                      \
        V p[NQ];                                                                          \
        for (int q = 0; q < NQ; q++) p[q] = LOAD(w + q / GP * w_pass + q % GP * U);       \
        for (int r = 0; r < mr; r++) {                                                    \
            V x = FN(vbcast)(a[r * a_stride + k]);                                        \
            for (int q = 0; q < NQ; q++) acc[r][q] += x * p[q];                           \
        }                                                                                 \
    }
INLINE void FN(fwd_gemm)(V acc[][GP], int mr, const REAL *a, int64_t a_stride, int64_t kdim,
                         const REAL *w, int64_t w_row, int64_t w_pass) {
    LF_FWD_GEMM(GP, FN(vload))
}
/* ..._h: the same from half-precision weights (the same layout) */
INLINE void FN(fwd_gemm_h)(V acc[][GP], int mr, const REAL *a, int64_t a_stride, int64_t kdim,
                           const uint16_t *w, int64_t w_row, int64_t w_pass) {
    LF_FWD_GEMM(GP, FN(vload_h))
}
/* The same for all four gates at once: tiles of one or two rows (batch 1 or
 * 2: latency, streaming), whose mr * GP chains of FMAs would be too few to
 * hide the FMA latency. Each element is still one chain over k in order, as
 * in every other tile, so a row's result does not depend on its tile. */
INLINE void FN(fwd_gemm4)(V acc[][4], int mr, const REAL *a, int64_t a_stride, int64_t kdim,
                          const REAL *w, int64_t w_row, int64_t w_pass) {
    LF_FWD_GEMM(4, FN(vload))
}
INLINE void FN(fwd_gemm4_h)(V acc[][4], int mr, const REAL *a, int64_t a_stride, int64_t kdim,
                            const uint16_t *w, int64_t w_row, int64_t w_pass) {
    LF_FWD_GEMM(4, FN(vload_h))
}
#undef LF_FWD_GEMM

/* The tile's x @ kernel (read in its epilogue) is a strided gather from an
 * array of B*T*4H that the hardware prefetcher does not follow: every load
 * missed the caches (at B64 T50 H512 the epilogue's loads of it took ~12% of
 * the forward). Ask for it now; the sum over k hides the latency. */
INLINE void FN(fwd_prefetch_xproj)(const FN(fwd_ctx) * cx, int mr, int64_t b0, int64_t j,
                                   int64_t t) {
    if (!cx->xproj) return;
    const int64_t T = cx->d->T, H = cx->d->H, G = 4 * H;
    for (int r = 0; r < mr; r++)
        for (int g = 0; g < 4; g++)
            __builtin_prefetch(cx->xproj + ((b0 + r) * T + t) * G + g * H + j * U, 0);
}

/* The weights of block j of a packed matrix of `rows` rows, pass of gate g0
 * (pack_rows): in float, or (half, a constant at every call) in half precision. */
#define LF_WBLK(cx, half, name, rows, j, g0) \
    ((half) ? (const void *)((cx)->name##_h + ((j) * 4 * U + (g0) * U) * (rows)) \
            : (const void *)((cx)->name##_packed + ((j) * 4 * U + (g0) * U) * (rows)))

/* One tile: rows b0..b0+mr of z[:, gates of block j] = h_{t-1} @ recurrent_kernel
 * (+ x_t @ kernel when fused), GP gates per pass over k so that the
 * accumulators of MR_FWD rows fit in the registers, then its epilogue. mr is
 * a constant at every call site, so each call is specialised; so is half
 * (the weights in half precision, ctx's rk_h / k_h). */
INLINE void FN(fwd_tile)(FN(fwd_ctx) * cx, int mr, int64_t b0, int64_t j, int64_t t, int64_t s,
                         const REAL *cur, REAL *nxt, const int half) {
    const lf_lstm_dims *d = cx->d;
    const int64_t T = d->T, I = d->I, H = d->H, Hp = cx->Hp;
    const int64_t w_row = GP * U;
    FN(fwd_prefetch_xproj)(cx, mr, b0, j, t);
    V z[MR_FWD][4];
    if (mr <= 2 && GP < 4) {
        V acc[2][4]; /* its own array, not z: then it lives in registers */
        for (int r = 0; r < mr; r++)
            for (int g = 0; g < 4; g++) acc[r][g] = (V){0};
        const REAL *xa = cx->x ? cx->x + (b0 * T + t) * I : NULL, *ha = cur + b0 * Hp;
        if (half) {
            if (cx->x)
                FN(fwd_gemm4_h)(acc, mr, xa, T * I, I, LF_WBLK(cx, 1, k, I, j, 0), w_row,
                                I * GP * U);
            FN(fwd_gemm4_h)(acc, mr, ha, Hp, H, LF_WBLK(cx, 1, rk, H, j, 0), w_row, H * GP * U);
        } else {
            if (cx->x)
                FN(fwd_gemm4)(acc, mr, xa, T * I, I, LF_WBLK(cx, 0, k, I, j, 0), w_row,
                              I * GP * U);
            FN(fwd_gemm4)(acc, mr, ha, Hp, H, LF_WBLK(cx, 0, rk, H, j, 0), w_row, H * GP * U);
        }
        for (int r = 0; r < mr; r++)
            for (int g = 0; g < 4; g++) z[r][g] = acc[r][g];
    } else {
        for (int g0 = 0; g0 < 4; g0 += GP) {
            V acc[MR_FWD][GP];
            for (int r = 0; r < mr; r++)
                for (int q = 0; q < GP; q++) acc[r][q] = (V){0};
            const REAL *xa = cx->x ? cx->x + (b0 * T + t) * I : NULL, *ha = cur + b0 * Hp;
            if (half) {
                if (cx->x)
                    FN(fwd_gemm_h)(acc, mr, xa, T * I, I, LF_WBLK(cx, 1, k, I, j, g0), w_row, 0);
                FN(fwd_gemm_h)(acc, mr, ha, Hp, H, LF_WBLK(cx, 1, rk, H, j, g0), w_row, 0);
            } else {
                if (cx->x)
                    FN(fwd_gemm)(acc, mr, xa, T * I, I, LF_WBLK(cx, 0, k, I, j, g0), w_row, 0);
                FN(fwd_gemm)(acc, mr, ha, Hp, H, LF_WBLK(cx, 0, rk, H, j, g0), w_row, 0);
            }
            for (int r = 0; r < mr; r++)
                for (int q = 0; q < GP; q++) z[r][g0 + q] = acc[r][q];
        }
    }
    const int64_t u0 = j * U, nu = H - u0 < U ? H - u0 : U;
    for (int r = 0; r < mr; r++)
        if (FN(fwd_active)(cx, b0 + r, t)) FN(fwd_activate)(cx, z[r], b0 + r, t, u0, nu);
    V c[MR_FWD], tc[MR_FWD];
    for (int r = 0; r < mr; r++) tc[r] = c[r] = FN(fwd_cell)(cx, z[r], b0 + r, u0);
    FN(vtanh_many)(tc, mr);
    for (int r = 0; r < mr; r++)
        FN(fwd_finish_row)(cx, z[r], c[r], tc[r], b0 + r, t, s, u0, nu, cur, nxt);
}

/* One row (batch 1: latency, streaming) and two blocks j, j + 1: eight
 * chains of FMAs instead of the four of fwd_gemm4, which the FMA latency
 * would bind (4 cycles a step of k for 128 bytes of weights, where L2 gives
 * them in 2-4). Each element is summed in the same order as in any tile.
 * With GP < 4 a block's gates are in 4 / GP passes (pack_rows): at[g]. */
#define LF_FWD_GEMM4X2(LOAD)                                                         \
    int64_t at[4]; /* gate g's offset in a block's row (pack_rows) */                \
    for (int g = 0; g < 4; g++) at[g] = g / GP * kdim * GP * U + g % GP * U;         \
    for (int64_t k = 0; k < kdim; k++, w0 += GP * U, w1 += GP * U) {                 \
        V x = FN(vbcast)(a[k]);                                                      \
        for (int g = 0; g < 4; g++) acc[0][g] += x * LOAD(w0 + at[g]);               \
        for (int g = 0; g < 4; g++) acc[1][g] += x * LOAD(w1 + at[g]);               \
    }
INLINE void FN(fwd_gemm4x2)(V acc[2][4], const REAL *a, int64_t kdim, const REAL *w0,
                            const REAL *w1) {
    LF_FWD_GEMM4X2(FN(vload))
}
INLINE void FN(fwd_gemm4x2_h)(V acc[2][4], const REAL *a, int64_t kdim, const uint16_t *w0,
                              const uint16_t *w1) {
    LF_FWD_GEMM4X2(FN(vload_h))
}
#undef LF_FWD_GEMM4X2

INLINE void FN(fwd_tile_pair)(FN(fwd_ctx) * cx, int64_t b0, int64_t j, int64_t t, int64_t s,
                              const REAL *cur, REAL *nxt, const int half) {
    const lf_lstm_dims *d = cx->d;
    const int64_t T = d->T, I = d->I, H = d->H;
    V acc[2][4];
    FN(fwd_prefetch_xproj)(cx, 1, b0, j, t);
    FN(fwd_prefetch_xproj)(cx, 1, b0, j + 1, t);
    for (int n = 0; n < 2; n++)
        for (int g = 0; g < 4; g++) acc[n][g] = (V){0};
    const REAL *xa = cx->x ? cx->x + (b0 * T + t) * I : NULL, *ha = cur + b0 * cx->Hp;
    if (half) {
        if (cx->x)
            FN(fwd_gemm4x2_h)(acc, xa, I, LF_WBLK(cx, 1, k, I, j, 0),
                              LF_WBLK(cx, 1, k, I, j + 1, 0));
        FN(fwd_gemm4x2_h)(acc, ha, H, LF_WBLK(cx, 1, rk, H, j, 0),
                          LF_WBLK(cx, 1, rk, H, j + 1, 0));
    } else {
        if (cx->x)
            FN(fwd_gemm4x2)(acc, xa, I, LF_WBLK(cx, 0, k, I, j, 0),
                            LF_WBLK(cx, 0, k, I, j + 1, 0));
        FN(fwd_gemm4x2)(acc, ha, H, LF_WBLK(cx, 0, rk, H, j, 0), LF_WBLK(cx, 0, rk, H, j + 1, 0));
    }
    if (FN(fwd_active)(cx, b0, t))
        for (int n = 0; n < 2; n++) {
            const int64_t u0 = (j + n) * U, nu = H - u0 < U ? H - u0 : U;
            FN(fwd_activate)(cx, acc[n], b0, t, u0, nu);
        }
    V c[2], tc[2];
    for (int n = 0; n < 2; n++) tc[n] = c[n] = FN(fwd_cell)(cx, acc[n], b0, (j + n) * U);
    FN(vtanh_n)(tc, 2);
    for (int n = 0; n < 2; n++) {
        const int64_t u0 = (j + n) * U, nu = H - u0 < U ? H - u0 : U;
        FN(fwd_finish_row)(cx, acc[n], c[n], tc[n], b0, t, s, u0, nu, cur, nxt);
    }
}
#undef LF_WBLK

/* w (rows, 4H) in Keras layout -> packed (nblk, 4 / GP, rows, GP, U): block j,
 * pass p, row k, gate g = p GP + q, lane u = w[k, g*H + j*U + u], zero past
 * unit H. A pass of a tile (GP gates of a block) then reads its weights as one
 * sequential stream. With rows of all four gates (nblk, rows, 4, U), a pass
 * read every other cache line: the forward at B64 T20 H512 took 0.90 of the
 * time with this layout (one thread), the training forward at large and
 * deepbench sizes 0.92-0.93; batch one reads a stream per pass and block
 * (four per pair), 1.00-1.04 on one thread, 0.95-1.0 on two.
 * Blocks j0..j1 only; rows are taken in chunks so that the reads stay within
 * a few pages at a time (reading a strip of every row of a large matrix in
 * turn misses the TLB on each load). */
static void FN(pack_rows)(REAL *packed, const REAL *w, int64_t rows, int64_t H, int64_t j0,
                          int64_t j1) {
    enum { ROWS_PER_CHUNK = 16 };
    for (int64_t k0 = 0; k0 < rows; k0 += ROWS_PER_CHUNK) {
        const int64_t k1 = k0 + ROWS_PER_CHUNK < rows ? k0 + ROWS_PER_CHUNK : rows;
        for (int64_t j = j0; j < j1; j++) {
            const int64_t u0 = j * U, nu = H - u0 < U ? H - u0 : U;
            for (int64_t k = k0; k < k1; k++)
                for (int g = 0; g < 4; g++)
                    FN(vstore)(packed + ((j * 4 + g / GP * GP) * rows + k * GP + g % GP) * U,
                               FN(vload_n)(w + k * 4 * H + g * H + u0, nu));
        }
    }
}

int64_t FN(lf_packed_len)(int64_t rows, int64_t H) { return (H + U - 1) / U * U * 4 * rows; }

#if !LF_REAL_IS_DOUBLE
/* The layout of pack_rows in half precision (lf_lstm_pack_half), element by
 * element: packed once per model, not per call. */
static void FN(pack_rows_half)(uint16_t *packed, const float *w, int64_t rows, int64_t H,
                               int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j++) {
        const int64_t u0 = j * U, nu = H - u0 < U ? H - u0 : U;
        for (int64_t k = 0; k < rows; k++)
            for (int g = 0; g < 4; g++) {
                uint16_t *o = packed + ((j * 4 + g / GP * GP) * rows + k * GP + g % GP) * U;
                for (int64_t u = 0; u < U; u++)
                    o[u] = u < nu ? lf_float_to_half(w[k * 4 * H + g * H + u0 + u]) : 0;
            }
    }
}
#endif

typedef struct {
    REAL *packed;   /* the float layout, or ...               */
    uint16_t *half; /* ... the same in half precision (float only) */
    const REAL *w;
    int64_t rows, H, nblk;
} FN(pack_ctx);

static void FN(pack_task)(void *arg, int tid, int nth) {
    FN(pack_ctx) *p = arg;
    const int64_t j0 = p->nblk * tid / nth, j1 = p->nblk * (tid + 1) / nth;
#if !LF_REAL_IS_DOUBLE
    if (p->half) {
        FN(pack_rows_half)(p->half, p->w, p->rows, p->H, j0, j1);
        return;
    }
#endif
    FN(pack_rows)(p->packed, p->w, p->rows, p->H, j0, j1);
}

/* Blocks shared out to the team; flops: what lf_parallel_run weighs the call by */
static void FN(pack_run)(FN(pack_ctx) * p, int n_threads, double flops) {
    int nth = n_threads < 1 ? 1 : n_threads;
    if ((double)p->rows * (double)p->H < 65536.0) nth = 1; /* small: not worth waking the team */
    lf_parallel_run(FN(pack_task), p, NULL, nth, flops);
}

#if !LF_REAL_IS_DOUBLE
int FN(lf_pack_half)(uint16_t *packed, const float *w, int64_t rows, int64_t H, int n_threads) {
    FN(pack_ctx) p = {.half = packed, .w = w, .rows = rows, .H = H, .nblk = (H + U - 1) / U};
    FN(pack_run)(&p, n_threads, 64.0 * (double)rows * (double)H);
    return LF_OK;
}
#endif

int FN(lf_pack)(REAL *packed, const REAL *w, int64_t rows, int64_t H, int n_threads) {
    FN(pack_ctx) p = {.packed = packed, .w = w, .rows = rows, .H = H, .nblk = (H + U - 1) / U};
    FN(pack_run)(&p, n_threads, 16.0 * (double)rows * (double)H);
    return LF_OK;
}

/* The forward's unit of shared work (a chunk of lf_phases): cx->cb blocks
 * of units for all rows. Phase 0 packs the chunk's weights and sets its
 * initial state; phase s + 1 is time step s (phase s, when the caller set
 * the state and nothing needs packing: cx->state_ready). Whoever runs a chunk
 * computes it the same way, so results do not depend on which thread ran it.
 *
 * About four chunks per thread and step: a thread whose core is slower
 * than the other's (a busy neighbour on a shared host, or its share of the
 * weights less kept by its L2) leaves its last chunks to the faster one,
 * when it is more than a third slower (it has then not started its last).
 * At 1 or 2 rows, with a thread's share of recurrent_kernel within 1.25 MiB
 * (what the L2 keeps of a sweep here measured ~1.3 MiB; half-precision
 * weights count as float32), a step is a few microseconds, and each
 * chunk's claim (a locked instruction, and the owner's counter line taken
 * back from the thread that looked at it) and its break in the weight
 * stream weighed more than the sharing gave: one chunk per thread took
 * 0.85 of the time at B1 H128, 0.89-0.92 at H170-256, 0.97 at H384 (T >=
 * 4; a streaming step 0.97-1.00), 0.93 at B2 H256, 0.85 in a batch-1
 * training forward at H256 (two threads, in-process A/B, 7-11 rounds; AVX2
 * B1 H100-256 0.84-0.95, B2 H100 0.77). At H512 (2 MiB a thread) one chunk
 * each took 1.04-1.07 as long as four in A/B runs on separate copies of
 * the weights (how fast each half streams varies with where a copy lands,
 * and four chunks even the halves out), and batches of 4 to 64 moved by
 * under 3% either way: they keep four. A thread that has not started its
 * chunk still leaves it to the other. At batch 1 a chunk is whole pairs of
 * blocks (fwd_tile_pair; a pair never spans two chunks, so this is for
 * speed). Chunks are rounded down, so an odd share goes to a last small
 * chunk (13 blocks on two: 6, 6 and 1, which the second thread owns) and
 * not to one thread's (8 and 5). */
static int64_t FN(fwd_chunk_blocks)(int64_t B, int64_t H, int64_t nblk, int nth) {
    const double share = 4.0 * (double)H * (double)(nblk * U) * sizeof(REAL) / nth;
    const int64_t unit = B == 1 && GP < 4 ? 2 : 1;
    const int64_t per_thread = B <= 2 && share <= 1.25 * 1024 * 1024 ? 1 : 4;
    int64_t cb = nblk / (per_thread * nth) / unit * unit;
    return cb < unit ? unit : cb;
}

/* Packs blocks j0..j1 of the weights the caller did not give packed. */
static void FN(fwd_pack_blocks)(FN(fwd_ctx) * cx, int64_t j0, int64_t j1) {
    const lf_lstm_dims *d = cx->d;
    if (cx->rk_own) FN(pack_rows)(cx->rk_own, cx->rk, d->H, d->H, j0, j1);
    if (cx->k_own) FN(pack_rows)(cx->k_own, cx->kernel, d->I, d->H, j0, j1);
}

/* The initial state of rows r0..r1, padded units v0..v1 (and, for T = 0,
 * its outputs). */
static void FN(fwd_init_state)(FN(fwd_ctx) * cx, int64_t r0, int64_t r1, int64_t v0,
                               int64_t v1) {
    const lf_lstm_dims *d = cx->d;
    const int64_t T = d->T, H = d->H, Hp = cx->Hp;
    for (int64_t b = r0; b < r1; b++)
        for (int64_t v = v0; v < v1; v++) {
            cx->hbuf[b * Hp + v] = v < H && cx->h0 ? cx->h0[b * H + v] : (REAL)0;
            cx->cbuf[b * Hp + v] = v < H && cx->c0 ? cx->c0[b * H + v] : (REAL)0;
        }
    if (T == 0)
        for (int64_t b = r0; b < r1; b++)
            for (int64_t v = v0; v < v1 && v < H; v++) {
                if (cx->h_T) cx->h_T[b * H + v] = cx->hbuf[b * Hp + v];
                if (cx->c_T) cx->c_T[b * H + v] = cx->cbuf[b * Hp + v];
                if (!d->return_sequences) cx->y[b * H + v] = cx->hbuf[b * Hp + v];
            }
}

/* The tiles of time step s, rows r0..r1, blocks j0..j1 (half: a constant). */
INLINE void FN(fwd_step_tiles)(FN(fwd_ctx) * cx, int64_t j0, int64_t j1, int64_t r0, int64_t r1,
                               int64_t s, int64_t t, int reverse, const REAL *cur, REAL *nxt,
                               const int half) {
    if (cx->d->B == 1 && GP < 4) { /* pairs of blocks; the last of the layer may be
                                    * single (row 0 = r0..r1: rows are split only
                                    * from 2 * MR_FWD) */
        const int64_t n_pairs = (j1 - j0 + 1) / 2;
        for (int64_t p = 0; p < n_pairs; p++) {
            const int64_t j = j0 + 2 * (reverse ? n_pairs - 1 - p : p);
            if (j1 - j >= 2)
                FN(fwd_tile_pair)(cx, 0, j, t, s, cur, nxt, half);
            else
                FN(fwd_tile)(cx, 1, 0, j, t, s, cur, nxt, half);
        }
    } else {
        for (int64_t jj = j0; jj < j1; jj++) {
            const int64_t j = reverse ? j1 - 1 - (jj - j0) : jj;
            int64_t b0 = r0;
            for (; b0 + MR_FWD <= r1; b0 += MR_FWD)
                FN(fwd_tile)(cx, MR_FWD, b0, j, t, s, cur, nxt, half);
#define LF_FWD_TILE(mr) FN(fwd_tile)(cx, mr, b0, j, t, s, cur, nxt, half)
            LF_REMAINDER_ROWS(r1 - b0, LF_FWD_TILE)
#undef LF_FWD_TILE
        }
    }
}

/* Time step s of rows r0..r1 and blocks j0..j1. */
static void FN(fwd_step_chunk)(FN(fwd_ctx) * cx, int64_t j0, int64_t j1, int64_t r0, int64_t r1,
                               int64_t s, int reverse) {
    const lf_lstm_dims *d = cx->d;
    const int64_t B = d->B, T = d->T, H = d->H, Hp = cx->Hp;
    const int64_t t = d->go_backwards ? T - 1 - s : s;
    const int64_t v0 = j0 * U, v1 = j1 * U < H ? j1 * U : H;
    const REAL *cur = cx->hbuf + (s & 1) * B * Hp;
    REAL *nxt = cx->hbuf + ((s + 1) & 1) * B * Hp;
    if (cx->hprev) /* training: the h this step starts from, row by row (not a
                    * memcpy call per row: at H = 50 those weighed) */
        for (int64_t b = r0; b < r1; b++)
            for (int64_t v = v0; v < v1; v += U)
                FN(vstore_n)(cx->hprev + (b * T + t) * H + v, FN(vload)(cur + b * Hp + v),
                             v1 - v < U ? v1 - v : U);
#if !LF_REAL_IS_DOUBLE /* half-precision weights are for float32 only (lf_lstm_forward_*) */
    if (cx->rk_h)
        FN(fwd_step_tiles)(cx, j0, j1, r0, r1, s, t, reverse, cur, nxt, 1);
    else
#endif
        FN(fwd_step_tiles)(cx, j0, j1, r0, r1, s, t, reverse, cur, nxt, 0);
    if (s == T - 1) /* the chunk's final state */
        for (int64_t b = r0; b < r1; b++)
            for (int64_t v = v0; v < v1; v++) {
                if (cx->h_T) cx->h_T[b * H + v] = nxt[b * Hp + v];
                if (cx->c_T) cx->c_T[b * H + v] = cx->cbuf[b * Hp + v];
            }
}

/* The h that step s starts from, when small (up to 16 KiB: batch 1-4 at
 * H = 1024 in float32, 16 at H = 256): the other threads wrote their units
 * of it in the step before, and a tile's loads of those lines each waited
 * for a transfer from another core, one after another as the sum over k
 * reached them. Asked for at once: 0.94 of the time at B1 H128, 0.96 at
 * H256 and B4 H256, 0.97 at B2 H256 (two threads, with one chunk per thread
 * at B <= 2; in-process A/B, 9 rounds). */
INLINE void FN(fwd_prefetch_state)(const FN(fwd_ctx) * cx, int64_t s) {
    const int64_t n = cx->d->B * cx->Hp;
    if (n * (int64_t)sizeof(REAL) > 16384) return;
    const REAL *cur = cx->hbuf + (s & 1) * n;
    for (int64_t v = 0; v < n; v += 64 / (int64_t)sizeof(REAL)) __builtin_prefetch(cur + v, 0, 3);
}

static void FN(fwd_task)(void *arg, int tid, int nth) {
    (void)nth;
    FN(fwd_ctx) *cx = arg;
    const int64_t T = cx->d->T, cb = cx->cb;
    const int64_t q0 = cx->state_ready; /* phase q - q0 of lf_phases */
    unsigned fp_state = lf_fp_enter();
    for (int64_t q = q0; q <= T; q++) {
        /* Each thread's chunks in turn forwards and backwards: the weights a
         * thread reads every step are about its L2 (512 KB of
         * recurrent_kernel per core at H = 256 on two), and sweeping them
         * always in one order evicts each line just before its next use;
         * reversed, the lines read last are read first. */
        const int reverse = q > 0 && (q & 1) == 0;
        if (q > 0) FN(fwd_prefetch_state)(cx, q - 1);
        int64_t c, n_done = 0;
        for (; (c = lf_phases_claim(&cx->ph, tid, q - q0, reverse)) >= 0; n_done++) {
            const int64_t j0 = c * cb, j1 = j0 + cb < cx->nblk ? j0 + cb : cx->nblk;
            if (q == 0) {
                FN(fwd_pack_blocks)(cx, j0, j1);
                FN(fwd_init_state)(cx, 0, cx->d->B, j0 * U, j1 * U);
            } else {
                FN(fwd_step_chunk)(cx, j0, j1, 0, cx->d->B, q - 1, reverse);
            }
        }
        lf_phases_publish(&cx->ph, tid, n_done);
        lf_phases_wait(&cx->ph, q - q0);
    }
    lf_fp_exit(fp_state);
}

/* The forward of small layers (rows_pay), in two phases of lf_phases:
 * phase 0 packs a share of the blocks (if any need packing), phase 1 runs
 * chunks of rows (a register tile's rows or fewer, an even split: chunks of
 * whole tiles and a remainder, 6 6 6 2 at B = 20, took 1.13 times as long)
 * through every step. A chunk's rows never wait for another's, and a thread
 * whose core is slower (a busy neighbour on a shared host, an efficiency
 * core) takes fewer chunks; a member that lost its core before starting
 * leaves its chunks to the others. With one chunk per thread the call took as long
 * as the slowest core: in-process A/B at a moment when this VM's two cores
 * gave 145 and 169 GFLOP/s (a register-only FMA loop), chunks of a tile
 * took 0.96 / 0.96 / 0.91 of the time at B32 T20 H50 (the seed model), B64
 * and B20. */
static void FN(fwd_rows_task)(void *arg, int tid, int nth) {
    (void)nth;
    FN(fwd_ctx) *cx = arg;
    const int64_t B = cx->d->B, T = cx->d->T, n = cx->ph.n_chunks;
    unsigned fp_state = lf_fp_enter();
    for (int64_t q = 0; q < 2; q++) {
        int64_t c, n_done = 0;
        for (; (c = lf_phases_claim(&cx->ph, tid, q, 0)) >= 0; n_done++) {
            if (q == 0) {
                FN(fwd_pack_blocks)(cx, cx->nblk * c / n, cx->nblk * (c + 1) / n);
            } else {
                const int64_t r0 = B * c / n, r1 = B * (c + 1) / n;
                FN(fwd_init_state)(cx, r0, r1, 0, cx->Hp);
                for (int64_t s = 0; s < T; s++)
                    FN(fwd_step_chunk)(cx, 0, cx->nblk, r0, r1, s, (int)(s & 1));
            }
        }
        lf_phases_publish(&cx->ph, tid, n_done);
        lf_phases_wait(&cx->ph, q);
    }
    lf_fp_exit(fp_state);
}

int FN(lf_forward)(REAL *y, REAL *h_T, REAL *c_T, REAL *gates, REAL *cell, REAL *hprev,
                   const REAL *xproj, const REAL *x, const REAL *kernel, const REAL *rk,
                   const REAL *bias, const REAL *h0, const REAL *c0, const REAL *k_packed,
                   const REAL *rk_packed, const uint16_t *k_half, const uint16_t *rk_half,
                   const lf_lstm_dims *d, int n_threads) {
    FN(fwd_ctx) cx = {.d = d, .y = y, .h_T = h_T, .c_T = c_T, .gates = gates, .cell = cell,
                      .hprev = hprev, .xproj = xproj, .x = xproj ? NULL : x,
                      .kernel = kernel, .rk = rk, .bias = bias, .h0 = h0, .c0 = c0,
                      .rk_packed = rk_half ? NULL : rk_packed,
                      .k_packed = rk_half ? NULL : k_packed, .rk_h = rk_half,
                      .k_h = rk_half ? k_half : NULL};
    cx.nblk = (d->H + U - 1) / U;
    cx.Hp = cx.nblk * U;
    cx.prefetch_out = (double)d->B * (double)d->T * (double)d->H * sizeof(REAL) > 512.0 * 1024;
    const int pack_k = cx.x && !cx.k_packed && !cx.k_h, pack_rk = !cx.rk_packed && !cx.rk_h;
    const int nth = FN(lf_loop_threads)(d, cx.x != NULL, gates != NULL, 0, n_threads);
    const int rows = FN(rows_pay)(d->B, d->H + (cx.x ? d->I : 0), cx.Hp, nth, MR_FWD);
    const size_t n_counters = 2 * (size_t)nth * sizeof(lf_counter) / sizeof(REAL);
    size_t n_pack, n_h;
    if (lf_mul_overflows(&n_pack, (size_t)((pack_rk ? d->H : 0) + (pack_k ? d->I : 0)),
                         4 * (size_t)cx.Hp) ||
        lf_mul_overflows(&n_h, (size_t)d->B, (size_t)cx.Hp))
        return LF_ENOMEM;
    REAL *work = lf_alloc((n_counters + n_pack + 3 * n_h) * sizeof(REAL));
    if (!work) return LF_ENOMEM;
    REAL *next = work + n_counters;
    if (pack_rk) {
        cx.rk_own = next;
        cx.rk_packed = next;
        next += d->H * 4 * cx.Hp;
    }
    if (pack_k) {
        cx.k_own = next;
        cx.k_packed = next;
        next += d->I * 4 * cx.Hp;
    }
    cx.hbuf = next;
    cx.cbuf = cx.hbuf + 2 * n_h;
    const double flops =
        8.0 * (double)d->B * (double)d->T * (double)d->H * (double)(d->H + (cx.x ? d->I : 0));
    if (rows) {
        lf_phases_init(&cx.ph, nth, (d->B + MR_FWD - 1) / MR_FWD, (lf_counter *)(void *)work);
        lf_parallel_run_shared(FN(fwd_rows_task), &cx, &cx.ph, nth, flops);
    } else {
        cx.cb = FN(fwd_chunk_blocks)(d->B, d->H, cx.nblk, nth);
        /* With the weights given packed and a small state (a streaming step,
         * a batch-1 sequence), the caller sets the state itself: phase 0
         * would be only that, and its meeting cost more than the copy (a
         * B1 H256 streaming step: 0.95 of the time). */
        if (!pack_rk && !pack_k && d->T > 0 && 2.0 * (double)n_h <= 16384.0) {
            FN(fwd_init_state)(&cx, 0, d->B, 0, cx.Hp);
            cx.state_ready = 1;
        }
        lf_phases_init(&cx.ph, nth, (cx.nblk + cx.cb - 1) / cx.cb, (lf_counter *)(void *)work);
        lf_parallel_run_shared(FN(fwd_task), &cx, &cx.ph, nth, flops);
    }
    lf_free(work);
    return LF_OK;
}

/* ---- backward ----------------------------------------------------------- */

typedef struct {
    const lf_lstm_dims *d;
    int64_t Hp, nblk;
    REAL *dz, *dh0, *dc0;
    const REAL *dy, *dh_T, *dc_T, *gates, *cell, *c0, *rk;
    REAL *packed; /* (nblk, G, U): block j, row k, lane u = rk[j*U + u, k] (recurrent_kernel.T) */
    REAL *dh;     /* (B, Hp) dL/dh of the state entering the current step (from later steps) */
    REAL *dhpass; /* (B, Hp) the part of dh that bypasses the step (masked rows) */
    REAL *dc;     /* (B, Hp) dL/dc, likewise */
    lf_barrier bar; /* split by blocks: the meeting of each step */
    lf_phases ph;   /* split by rows (rows_pay): the packing, then chunks of rows */
} FN(bwd_ctx);

/* Gate gradients of one row and block at step s (time t, previous time tp);
 * tc = tanh of the row's c_t. */
INLINE void FN(bwd_gates_row)(FN(bwd_ctx) * cx, int64_t b, int64_t t, int64_t tp, int64_t s,
                              int64_t u0, int64_t nu, V tc) {
    const lf_lstm_dims *d = cx->d;
    const int64_t T = d->T, H = d->H, G = 4 * H, Hp = cx->Hp;
    const int active = d->lengths == NULL || t < d->lengths[b];
    V dh = FN(vload)(cx->dh + b * Hp + u0);
    if (cx->dy && (active || !d->zero_output_for_mask)) {
        if (d->return_sequences)
            dh += FN(vload_n)(cx->dy + (b * T + s) * H + u0, nu);
        else if (s == T - 1)
            dh += FN(vload_n)(cx->dy + b * H + u0, nu);
    }
    REAL *dzrow = cx->dz + (b * T + t) * G + u0;
    if (!active) {
        FN(vstore)(cx->dhpass + b * Hp + u0, dh);
        for (int g = 0; g < 4; g++) FN(vstore_n)(dzrow + g * H, (V){0}, nu);
        return;
    }
    const REAL *gr = cx->gates + (b * T + t) * G + u0;
    /* The next step's gates and dy of this row and block: the rows are
     * T * 4H apart, more streams than the hardware prefetcher follows, and
     * from B * T * 4H of a few MB up these loads missed to memory. */
    if (tp >= 0) {
        for (int q = 0; q < 4; q++)
            __builtin_prefetch(cx->gates + (b * T + tp) * G + q * H + u0, 1, 2);
        if (cx->dy && d->return_sequences)
            __builtin_prefetch(cx->dy + (b * T + s - 1) * H + u0, 0, 2);
    }
    V i = FN(vload_n)(gr, nu), f = FN(vload_n)(gr + H, nu), g = FN(vload_n)(gr + 2 * H, nu),
      o = FN(vload_n)(gr + 3 * H, nu);
    V c_prev = tp >= 0   ? FN(vload_n)(cx->cell + (b * T + tp) * H + u0, nu)
               : cx->c0 ? FN(vload_n)(cx->c0 + b * H + u0, nu)
                        : (V){0};
    V d_o = dh * tc;
    V dc = FN(vload)(cx->dc + b * Hp + u0) + dh * o * ((REAL)1 - tc * tc);
    V dz_i = dc * g * i * ((REAL)1 - i);
    V dz_f = dc * c_prev * f * ((REAL)1 - f);
    V dz_g = dc * i * ((REAL)1 - g * g);
    V dz_o = d_o * o * ((REAL)1 - o);
    FN(vstore_n)(dzrow, dz_i, nu); /* may overwrite gr: read above */
    FN(vstore_n)(dzrow + H, dz_f, nu);
    FN(vstore_n)(dzrow + 2 * H, dz_g, nu);
    FN(vstore_n)(dzrow + 3 * H, dz_o, nu);
    FN(vstore)(cx->dc + b * Hp + u0, dc * f);
    FN(vstore)(cx->dhpass + b * Hp + u0, (V){0});
}

/* dh[rows b0..b0+mr, blocks j..j+nb] = dz_t[rows, :] @ recurrent_kernel.T[:, blocks]
 * + dhpass, for nb = 1, 2 or 4 blocks (4: at up to 2 rows on every ISA, at
 * any rows where NB_BWD is 4, 24 FMAs per 4 weight loads and 6 broadcasts
 * at 6 rows; BWD_QUADS). Each element is one sum over k in order, whatever
 * the tile, so results do not depend on how blocks fall to threads. */
INLINE void FN(bwd_tile)(FN(bwd_ctx) * cx, int mr, int nb, int64_t b0, int64_t j, int64_t t) {
    const int64_t T = cx->d->T, G = 4 * cx->d->H, Hp = cx->Hp;
    const REAL *q = cx->packed + j * G * U;
    V acc[MR_BWD][4];
    const REAL *dzr[MR_BWD];
    for (int r = 0; r < mr; r++) {
        for (int n = 0; n < nb; n++) acc[r][n] = (V){0};
        dzr[r] = cx->dz + ((b0 + r) * T + t) * G;
    }
    for (int64_t k = 0; k < G; k++) {
        V v[4];
        for (int n = 0; n < nb; n++) v[n] = FN(vload)(q + n * G * U + k * U);
        for (int r = 0; r < mr; r++) {
            V x = FN(vbcast)(dzr[r][k]);
            for (int n = 0; n < nb; n++) acc[r][n] += x * v[n];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int n = 0; n < nb; n++) {
            int64_t o = (b0 + r) * Hp + (j + n) * U;
            FN(vstore)(cx->dh + o, acc[r][n] + FN(vload)(cx->dhpass + o));
        }
}

/* Whether tiles of `rows` rows take 4 blocks: at one or two rows on every
 * ISA (with 2 blocks, 2 or 4 sums in flight, the FMAs' latency and not the
 * loads set the pace), at more only where NB_BWD is 4 (their sums and
 * weights fit AVX-512's 32 registers, not 16). bwd_step_dh asks for 4
 * blocks, and bwd_blocks compiles their tiles, by this one rule. */
#define BWD_QUADS(rows) (NB_BWD == 4 || (rows) <= 2)

/* Row tiles of rows r0..r1 of blocks j..j+nb; nb is a constant at each call
 * site, and 4 only where BWD_QUADS(r1 - r0). */
INLINE void FN(bwd_blocks)(FN(bwd_ctx) * cx, int nb, int64_t j, int64_t t, int64_t r0,
                           int64_t r1) {
    int64_t b0 = r0;
    if (nb < 4 || BWD_QUADS(MR_BWD))
        for (; b0 + MR_BWD <= r1; b0 += MR_BWD) FN(bwd_tile)(cx, MR_BWD, nb, b0, j, t);
#define LF_BWD_TILE(mr) \
    if (nb < 4 || BWD_QUADS(mr)) FN(bwd_tile)(cx, mr, nb, b0, j, t)
    LF_REMAINDER_ROWS(r1 - b0, LF_BWD_TILE)
#undef LF_BWD_TILE
}

/* The shuffles of a U x U transpose in registers (U <= 16): step s swaps
 * bit d = 2^s of the row index with bit d of the lane index, taking rows a
 * and a + d to lo[s] and hi[s] of the pair's lanes (index >= U: the second
 * row). Built once a call: GCC did not fold them as constants, and rebuilt
 * them at every tile. */
typedef struct {
    VI lo[4], hi[4];
} FN(tmasks);
_Static_assert(U <= 16, "tmasks holds the steps of a transpose of up to 16 lanes");

static FN(tmasks) FN(transpose_masks)(void) {
    FN(tmasks) m = {{{0}}}; /* steps s >= log2(U) unused */
    VI lane;
    for (int l = 0; l < (int)U; l++) lane[l] = l;
    for (int s = 0, d = 1; d < (int)U; s++, d *= 2) {
        VI set = (lane & d) != 0; /* all ones where bit d is set */
        m.lo[s] = lane + (set & ((int)U - d));
        m.hi[s] = lane + ((set & (int)U) | (~set & d));
    }
    return m;
}

/* r[i][l] = r[l][i] */
INLINE void FN(vtranspose)(V *r, const FN(tmasks) * m) {
    _Pragma("GCC unroll 4") for (int s = 0, d = 1; d < (int)U; s++, d *= 2)
        _Pragma("GCC unroll 16") for (int i = 0; i < (int)U; i++) if (!(i & d)) {
            V a = __builtin_shuffle(r[i], r[i + d], m->lo[s]);
            r[i + d] = __builtin_shuffle(r[i], r[i + d], m->hi[s]);
            r[i] = a;
        }
}

/* recurrent_kernel.T's panels of blocks j0..j1 (layout of cx->packed), by
 * U x U tiles transposed in registers. Element by element (a block's U
 * units are U rows of recurrent_kernel, each 4H long, read across) it took
 * 15% of a B2 T30 H256 backward on one thread. */
static void FN(bwd_pack_blocks)(FN(bwd_ctx) * cx, int64_t j0, int64_t j1) {
    const int64_t H = cx->d->H, G = 4 * H;
    const FN(tmasks) m = FN(transpose_masks)();
    for (int64_t j = j0; j < j1; j++) {
        REAL *p = cx->packed + j * G * U;
        const REAL *src = cx->rk + j * U * G; /* unit j * U + u at src + u * G */
        const int64_t nu = H - j * U < U ? H - j * U : U;
        int64_t k = 0;
        for (; k + U <= G; k += U) {
            V r[U];
            for (int64_t u = 0; u < U; u++) r[u] = u < nu ? FN(vload)(src + u * G + k) : (V){0};
            FN(vtranspose)(r, &m);
            for (int64_t q = 0; q < U; q++) FN(vstore)(p + (k + q) * U, r[q]);
        }
        for (; k < G; k++) /* G = 4H not a multiple of U */
            for (int64_t u = 0; u < U; u++) p[k * U + u] = u < nu ? src[u * G + k] : (REAL)0;
    }
}

/* dh and dc of rows r0..r1, padded units v0..v1, from dh_T and dc_T */
static void FN(bwd_init_state)(FN(bwd_ctx) * cx, int64_t r0, int64_t r1, int64_t v0,
                               int64_t v1) {
    const int64_t H = cx->d->H, Hp = cx->Hp;
    for (int64_t b = r0; b < r1; b++)
        for (int64_t v = v0; v < v1; v++) {
            cx->dh[b * Hp + v] = v < H && cx->dh_T ? cx->dh_T[b * H + v] : (REAL)0;
            cx->dc[b * Hp + v] = v < H && cx->dc_T ? cx->dc_T[b * H + v] : (REAL)0;
        }
}

/* dh0 and dc0 of rows r0..r1, units v0..v1 */
static void FN(bwd_final_state)(FN(bwd_ctx) * cx, int64_t r0, int64_t r1, int64_t v0,
                                int64_t v1) {
    const int64_t H = cx->d->H, Hp = cx->Hp;
    for (int64_t b = r0; b < r1; b++)
        for (int64_t v = v0; v < v1 && v < H; v++) {
            cx->dh0[b * H + v] = cx->dh[b * Hp + v];
            cx->dc0[b * H + v] = cx->dc[b * Hp + v];
        }
}

/* Step s's gate gradients dz_t of rows r0..r1, blocks j0..j1 */
static void FN(bwd_step_gates)(FN(bwd_ctx) * cx, int64_t s, int64_t r0, int64_t r1, int64_t j0,
                               int64_t j1) {
    const lf_lstm_dims *d = cx->d;
    const int64_t T = d->T, H = d->H;
    const int64_t t = d->go_backwards ? T - 1 - s : s;
    const int64_t tp = s == 0 ? -1 : (d->go_backwards ? t + 1 : t - 1);
    for (int64_t j = j0; j < j1; j++) {
        const int64_t u0 = j * U, nu = H - u0 < U ? H - u0 : U;
        const REAL *cell = cx->cell + t * H + u0; /* row b's c_t at b * T * H */
        int64_t b = r0;
        for (; b + LF_LANES_MAX <= r1; b += LF_LANES_MAX) { /* their tanh interleaved */
            V tc[LF_LANES_MAX];
            for (int r = 0; r < LF_LANES_MAX; r++) tc[r] = FN(vload_n)(cell + (b + r) * T * H, nu);
            FN(vtanh_n)(tc, LF_LANES_MAX);
            for (int r = 0; r < LF_LANES_MAX; r++)
                FN(bwd_gates_row)(cx, b + r, t, tp, s, u0, nu, tc[r]);
        }
        for (; b < r1; b++)
            FN(bwd_gates_row)(cx, b, t, tp, s, u0, nu,
                              FN(vtanh)(FN(vload_n)(cell + b * T * H, nu)));
    }
}

/* dh entering step s of rows r0..r1, blocks j0..j1: dz_t @ recurrent_kernel.T */
static void FN(bwd_step_dh)(FN(bwd_ctx) * cx, int64_t s, int64_t r0, int64_t r1, int64_t j0,
                            int64_t j1) {
    const int64_t t = cx->d->go_backwards ? cx->d->T - 1 - s : s;
    /* Blocks j0..e4 go 4 at a time (BWD_QUADS), e4..e2 2 at a time, then the
     * last one. */
    const int64_t e4 = BWD_QUADS(r1 - r0) ? j0 + (j1 - j0) / 4 * 4 : j0;
    const int64_t e2 = e4 + (j1 - e4) / 2 * 2;
    /* Every other step backwards, as the forward's chunks: the panels read
     * last in a step are read first in the next, while still in the L2. */
    if (s & 1) {
        if (e2 < j1) FN(bwd_blocks)(cx, 1, e2, t, r0, r1);
        for (int64_t j = e2 - 2; j >= e4; j -= 2) FN(bwd_blocks)(cx, 2, j, t, r0, r1);
        for (int64_t j = e4 - 4; j >= j0; j -= 4) FN(bwd_blocks)(cx, 4, j, t, r0, r1);
        return;
    }
    for (int64_t j = j0; j < e4; j += 4) FN(bwd_blocks)(cx, 4, j, t, r0, r1);
    for (int64_t j = e4; j < e2; j += 2) FN(bwd_blocks)(cx, 2, j, t, r0, r1);
    if (e2 < j1) FN(bwd_blocks)(cx, 1, e2, t, r0, r1);
}

/* dz of step s, when small (B * 4H up to 16 KiB: batch 1 to H = 1024, 4
 * to H = 256), which the dh product reads along k: the other threads wrote
 * their units of it just before the meeting, and the loads of those lines
 * waited for them one at a time (as the forward's h: fwd_prefetch_state).
 * Asked for at once, a backward on two threads took 0.94-0.98 of the time
 * at B1 T100 H256, 0.96 at H170-192, 0.95 at B2 and B4 H256, 0.98-1.00 at
 * H512 and 1024 (in-process switch, 11-15 rounds; B16 H256, past the
 * bound, 0.97-1.00). */
INLINE void FN(bwd_prefetch_dz)(const FN(bwd_ctx) * cx, int64_t s) {
    const lf_lstm_dims *d = cx->d;
    const int64_t G = 4 * d->H, t = d->go_backwards ? d->T - 1 - s : s;
    if (d->B * G * (int64_t)sizeof(REAL) > 16384) return;
    for (int64_t b = 0; b < d->B; b++) {
        const REAL *row = cx->dz + (b * d->T + t) * G;
        for (int64_t k = 0; k < G; k += 64 / (int64_t)sizeof(REAL)) __builtin_prefetch(row + k, 0, 3);
        __builtin_prefetch(row + G - 1, 0, 3); /* rows need not start a line */
    }
}

/* Split by blocks: each thread packs and runs its own blocks for all rows,
 * and the threads meet once a step (the product reads every unit's dz_t). */
static void FN(bwd_task)(void *arg, int tid, int nth) {
    FN(bwd_ctx) *cx = arg;
    const int64_t B = cx->d->B, T = cx->d->T;
    const int64_t j0 = cx->nblk * tid / nth, j1 = cx->nblk * (tid + 1) / nth;
    unsigned fp_state = lf_fp_enter();
    FN(bwd_pack_blocks)(cx, j0, j1);
    FN(bwd_init_state)(cx, 0, B, j0 * U, j1 * U);
    for (int64_t s = T - 1; s >= 0; s--) {
        FN(bwd_step_gates)(cx, s, 0, B, j0, j1);
        lf_barrier_wait(&cx->bar);
        FN(bwd_prefetch_dz)(cx, s);
        /* No barrier after: the next step's gate gradients of a block use
         * only this thread's dh and dc, and write a different time of dz. */
        FN(bwd_step_dh)(cx, s, 0, B, j0, j1);
    }
    FN(bwd_final_state)(cx, 0, B, j0 * U, j1 * U);
    lf_fp_exit(fp_state);
}

/* Split by rows (rows_pay), in two phases of lf_phases as fwd_rows_task:
 * phase 0 packs a share of the panels, phase 1 runs chunks of rows (a
 * register tile's rows or fewer) through every step; a thread on a slower
 * core takes fewer chunks. With a fixed share per thread (on whole tiles),
 * the seed model's backward took 1.06 of the time, B64 1.09, B20 0.985
 * (the A/B of fwd_rows_task). */
static void FN(bwd_rows_task)(void *arg, int tid, int nth) {
    (void)nth;
    FN(bwd_ctx) *cx = arg;
    const int64_t B = cx->d->B, T = cx->d->T, n = cx->ph.n_chunks, nblk = cx->nblk;
    unsigned fp_state = lf_fp_enter();
    for (int64_t q = 0; q < 2; q++) {
        int64_t c, n_done = 0;
        for (; (c = lf_phases_claim(&cx->ph, tid, q, 0)) >= 0; n_done++) {
            if (q == 0) {
                FN(bwd_pack_blocks)(cx, nblk * c / n, nblk * (c + 1) / n);
                continue;
            }
            const int64_t r0 = B * c / n, r1 = B * (c + 1) / n;
            FN(bwd_init_state)(cx, r0, r1, 0, cx->Hp);
            for (int64_t s = T - 1; s >= 0; s--) {
                FN(bwd_step_gates)(cx, s, r0, r1, 0, nblk);
                FN(bwd_step_dh)(cx, s, r0, r1, 0, nblk);
            }
            FN(bwd_final_state)(cx, r0, r1, 0, cx->Hp);
        }
        lf_phases_publish(&cx->ph, tid, n_done);
        lf_phases_wait(&cx->ph, q);
    }
    lf_fp_exit(fp_state);
}

int FN(lf_backward)(REAL *dz, REAL *dh0, REAL *dc0, const REAL *dy, const REAL *dh_T,
                    const REAL *dc_T, const REAL *gates, const REAL *cell, const REAL *c0,
                    const REAL *rk, const lf_lstm_dims *d, int n_threads) {
    FN(bwd_ctx) cx = {.d = d, .dz = dz, .dh0 = dh0, .dc0 = dc0, .dy = dy, .dh_T = dh_T,
                      .dc_T = dc_T, .gates = gates, .cell = cell, .c0 = c0, .rk = rk};
    cx.nblk = (d->H + U - 1) / U;
    cx.Hp = cx.nblk * U;
    size_t n_packed, n_h;
    if (lf_mul_overflows(&n_packed, (size_t)cx.Hp, (size_t)d->H * 4) ||
        lf_mul_overflows(&n_h, (size_t)d->B, (size_t)cx.Hp))
        return LF_ENOMEM;
    const int nth = FN(lf_loop_threads)(d, 0, 1, 1, n_threads);
    const int rows = FN(rows_pay)(d->B, d->H, cx.Hp, nth, MR_BWD);
    const size_t n_counters = 2 * (size_t)nth * sizeof(lf_counter) / sizeof(REAL);
    REAL *work = lf_alloc((n_counters + n_packed + 3 * n_h) * sizeof(REAL));
    if (!work) return LF_ENOMEM;
    cx.packed = work + n_counters;
    cx.dh = cx.packed + n_packed;
    cx.dhpass = cx.dh + n_h;
    cx.dc = cx.dhpass + n_h;
    const double flops = 8.0 * (double)d->B * (double)d->T * (double)d->H * (double)d->H;
    if (rows) {
        lf_phases_init(&cx.ph, nth, (d->B + MR_BWD - 1) / MR_BWD, (lf_counter *)(void *)work);
        lf_parallel_run_shared(FN(bwd_rows_task), &cx, &cx.ph, nth, flops);
    } else {
        lf_parallel_run(FN(bwd_task), &cx, &cx.bar, nth, flops);
    }
    lf_free(work);
    return LF_OK;
}

#include "gemm.inc.c"

#undef LF_EACH
#undef LF_OPAQUE
#undef BWD_QUADS
#undef LF_LANES_MAX
#undef V
#undef VI
#undef U
#undef INLINE
#undef FN
#undef LF_CAT
#undef LF_CAT_
