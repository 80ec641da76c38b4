/* The batch-1 recurrent product of lstm_fast's AVX-512 forward, alone: the
 * float32 FMAs over the packed layout of lstm_isa_avx512.c (a block is 16
 * units and all four gates, one pass: K rows of 64 floats), with nothing else
 * in the loop, to tell how fast the caches feed it (bench/micro/README.md).
 *
 * A sweep reads n_blocks blocks, in alternating direction from sweep to sweep
 * (as the engine alternates its chunks): one thread's share of one time step.
 * Tiles:
 *   1  one block at a time, four accumulators (the engine's tile at batch 1)
 *   2  two blocks at a time, eight accumulators
 *
 *   gemv512 K N_BLOCKS [1|2] [SWEEPS]
 *
 * Build (no -march=native: the engine's AVX-512F instructions):
 *
 *   gcc -O2 -mavx512f -mfma bench/micro/gemv512.c -o /tmp/gemv512
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define ROW 64 /* floats of a block's row: 4 gates x 16 lanes */
#define FMA4(a, x, p)                                                   \
    a##0 = _mm512_fmadd_ps(x, _mm512_load_ps(p), a##0);                 \
    a##1 = _mm512_fmadd_ps(x, _mm512_load_ps((p) + 16), a##1);          \
    a##2 = _mm512_fmadd_ps(x, _mm512_load_ps((p) + 32), a##2);          \
    a##3 = _mm512_fmadd_ps(x, _mm512_load_ps((p) + 48), a##3)
#define STORE4(out, a)                                                                   \
    _mm512_store_ps(out, a##0), _mm512_store_ps((out) + 16, a##1),                       \
        _mm512_store_ps((out) + 32, a##2), _mm512_store_ps((out) + 48, a##3)

__attribute__((noinline)) static void block1(const float *w, const float *h, long K,
                                             float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long k = 0; k < K; k++) {
        const __m512 x = _mm512_set1_ps(h[k]);
        FMA4(a, x, w + k * ROW);
    }
    STORE4(out, a);
}

__attribute__((noinline)) static void block2(const float *w, const float *h, long K,
                                             float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const float *v = w + K * ROW;
    for (long k = 0; k < K; k++) {
        const __m512 x = _mm512_set1_ps(h[k]);
        FMA4(a, x, w + k * ROW);
        FMA4(b, x, v + k * ROW);
    }
    STORE4(out, a);
    STORE4(out + ROW, b);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s K N_BLOCKS [1|2] [SWEEPS]\n", argv[0]);
        return 2;
    }
    const long K = atol(argv[1]), n_blocks = atol(argv[2]);
    const int tile = argc > 3 ? atoi(argv[3]) : 1;
    const long sweeps = argc > 4 ? atol(argv[4]) : 4000;
    if (K < 1 || n_blocks < 1 || sweeps < 1 || (tile != 1 && tile != 2) ||
        (tile == 2 && n_blocks % 2)) {
        fprintf(stderr, "K, N_BLOCKS, SWEEPS >= 1; tile 1 or 2 (2: an even N_BLOCKS)\n");
        return 2;
    }
    const size_t n = (size_t)(K * ROW * n_blocks), bytes = n * sizeof(float);
    float *w = aligned_alloc(64, bytes); /* a multiple of 64 bytes */
    float *h = aligned_alloc(64, (size_t)(K + 15) / 16 * 64);
    float *out = aligned_alloc(64, (size_t)n_blocks * ROW * sizeof(float));
    if (!w || !h || !out) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) w[i] = 1e-3f * (float)(i % 5);
    for (long k = 0; k < K; k++) h[k] = 0.5f;
    const long per = K * ROW; /* floats of a block */
    for (int rep = 0; rep < 4; rep++) {
        const double t0 = now();
        for (long s = 0; s < sweeps; s++)
            for (long i = 0; i < n_blocks; i += tile) {
                const long q = (s & 1) ? n_blocks - tile - i : i;
                if (tile == 1)
                    block1(w + q * per, h, K, out + q * ROW);
                else
                    block2(w + q * per, h, K, out + q * ROW);
            }
        const double t = (now() - t0) / (double)sweeps;
        printf("K=%ld blocks=%ld tile=%d: %.0f KiB of weights, %.2f us/sweep, %.1f GB/s\n", K,
               n_blocks, tile, bytes / 1024.0, t * 1e6, bytes / t / 1e9);
    }
    const float sink = out[0];
    free(w), free(h), free(out);
    return sink == 12345.0f; /* keeps the sums alive */
}
