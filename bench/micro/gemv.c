/* The batch-1 recurrent product of lstm_fast's forward, alone: a bare loop of
 * the same FMAs over the same packed layout, to tell how fast the caches can
 * feed it on this machine (bench/micro/README.md).
 *
 * A "pair" is two blocks of 8 units: four streams of K rows x 16 weights (a
 * block's two passes of two gates each), read with one broadcast of h[k] and
 * eight FMAs a row into eight accumulators, as fwd_gemm4x2 does. A sweep reads
 * n_pairs pairs, in alternating direction from sweep to sweep (as the engine
 * alternates its chunks), which is one thread's share of one time step.
 *
 *   gemv K N_PAIRS [f32|f16|bf16] [SWEEPS]
 *
 * f16 and bf16 store the weights in half precision and convert them in
 * registers (F16C's vcvtph2ps; bf16 by interleaving with zeros): what halving
 * the bytes per weight would give. Build (no -march=native: these are the
 * engine's AVX2 + FMA + F16C instructions):
 *
 *   gcc -O2 -mavx2 -mfma -mf16c bench/micro/gemv.c -o /tmp/gemv
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define FMA32(i, p) a##i = _mm256_fmadd_ps(x, _mm256_load_ps(p), a##i)
#define FMA16(i, p) \
    a##i = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(p))), a##i)
#define FMABF(i, j, p)                                                                     \
    do {                                                                                   \
        __m256i v = _mm256_load_si256((const __m256i *)(p));                               \
        a##i = _mm256_fmadd_ps(x, _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v)), a##i); \
        a##j = _mm256_fmadd_ps(x, _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v)), a##j); \
    } while (0)
#define STORE8(out)                                                                   \
    do {                                                                              \
        _mm256_store_ps(out, a0), _mm256_store_ps(out + 8, a1);                       \
        _mm256_store_ps(out + 16, a2), _mm256_store_ps(out + 24, a3);                 \
        _mm256_store_ps(out + 32, a4), _mm256_store_ps(out + 40, a5);                 \
        _mm256_store_ps(out + 48, a6), _mm256_store_ps(out + 56, a7);                 \
    } while (0)
#define ZERO8 __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, \
                     a6 = a0, a7 = a0

/* pair_f32 and pair_f16: one weight vector of 8 per FMA, loaded by FMA_ */
#define DEFINE_PAIR(name, elem_t, FMA_)                                                   \
    __attribute__((noinline)) static void name(const elem_t *w, const float *h, long K,   \
                                               float *out) {                              \
        ZERO8;                                                                            \
        const elem_t *s0 = w, *s1 = w + K * 16, *s2 = w + 2 * K * 16, *s3 = w + 3 * K * 16; \
        for (long k = 0; k < K; k++) {                                                    \
            __m256 x = _mm256_broadcast_ss(h + k);                                        \
            FMA_(0, s0 + k * 16), FMA_(1, s0 + k * 16 + 8), FMA_(2, s1 + k * 16);         \
            FMA_(3, s1 + k * 16 + 8), FMA_(4, s2 + k * 16), FMA_(5, s2 + k * 16 + 8);     \
            FMA_(6, s3 + k * 16), FMA_(7, s3 + k * 16 + 8);                               \
        }                                                                                 \
        STORE8(out);                                                                      \
    }
DEFINE_PAIR(pair_f32, float, FMA32)
DEFINE_PAIR(pair_f16, uint16_t, FMA16)

__attribute__((noinline)) static void pair_bf16(const uint16_t *w, const float *h, long K,
                                                float *out) {
    ZERO8;
    const __m256i zero = _mm256_setzero_si256();
    const uint16_t *s0 = w, *s1 = w + K * 16, *s2 = w + 2 * K * 16, *s3 = w + 3 * K * 16;
    for (long k = 0; k < K; k++) {
        __m256 x = _mm256_broadcast_ss(h + k);
        FMABF(0, 1, s0 + k * 16);
        FMABF(2, 3, s1 + k * 16);
        FMABF(4, 5, s2 + k * 16);
        FMABF(6, 7, s3 + k * 16);
    }
    STORE8(out);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s K N_PAIRS [f32|f16|bf16] [SWEEPS]\n", argv[0]);
        return 2;
    }
    const long K = atol(argv[1]), n_pairs = atol(argv[2]);
    const char *kind = argc > 3 ? argv[3] : "f32";
    const long sweeps = argc > 4 ? atol(argv[4]) : 4000;
    const int f32 = strcmp(kind, "f32") == 0, f16 = strcmp(kind, "f16") == 0;
    if (K < 1 || n_pairs < 1 || sweeps < 1 || (!f32 && !f16 && strcmp(kind, "bf16") != 0)) {
        fprintf(stderr, "K, N_PAIRS, SWEEPS must be >= 1 and the kind f32, f16 or bf16\n");
        return 2;
    }
    const long per = K * 64; /* weights of a pair */
    const size_t elem = f32 ? 4 : 2, bytes = (size_t)(per * n_pairs) * elem;
    char *w = aligned_alloc(64, (bytes + 63) / 64 * 64);
    float *h = aligned_alloc(64, (size_t)(K + 15) / 16 * 64);
    float *out = aligned_alloc(64, (size_t)n_pairs * 64 * sizeof(float));
    if (!w || !h || !out) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (long i = 0; i < per * n_pairs; i++) { /* small normal numbers in every format */
        if (f32)
            ((float *)w)[i] = 1e-3f * (float)(i % 5);
        else
            ((uint16_t *)w)[i] = (uint16_t)(f16 ? 0x1400 + i % 5 : 0x3a80 + i % 5);
    }
    for (long k = 0; k < K; k++) h[k] = 0.5f;
    for (int rep = 0; rep < 4; rep++) {
        const double t0 = now();
        for (long s = 0; s < sweeps; s++)
            for (long p = 0; p < n_pairs; p++) {
                const long q = (s & 1) ? n_pairs - 1 - p : p;
                if (f32)
                    pair_f32((const float *)w + q * per, h, K, out + 64 * q);
                else if (f16)
                    pair_f16((const uint16_t *)w + q * per, h, K, out + 64 * q);
                else
                    pair_bf16((const uint16_t *)w + q * per, h, K, out + 64 * q);
            }
        const double t = (now() - t0) / (double)sweeps;
        printf("%s K=%ld pairs=%ld: %.0f KiB of weights (%.0f KiB as float32), %.2f us/sweep, "
               "%.1f GB/s\n",
               kind, K, n_pairs, bytes / 1024.0, per * n_pairs * 4 / 1024.0, t * 1e6,
               bytes / t / 1e9);
    }
    const float sink = out[0];
    free(w), free(h), free(out);
    return sink == 12345.0f; /* keeps the sums alive */
}
