/* The batch-1 step of lstm_fast's AVX-512 forward on two threads, alone: each
 * thread sweeps its half of the blocks (the gemv512.c product, four
 * accumulators, alternating direction from sweep to sweep), and the threads
 * meet once a sweep as the engine's do once a time step. What a step of two
 * threads costs beyond the product (bench/micro/README.md):
 *
 *   alone  no meeting: each thread sweeps on (the two products at once)
 *   meet   a meeting after every sweep (a release store, an acquire spin)
 *   share  the meeting, and each sweep reads the h that both threads wrote
 *          in the sweep before (half of it from the other core), as the
 *          engine's step reads h_{t-1}
 *
 *   team512 K N_BLOCKS alone|meet|share [SWEEPS]
 *
 * N_BLOCKS is all of a step's blocks (H / 16); each thread takes half. Build
 * (no -march=native: the engine's AVX-512F instructions):
 *
 *   gcc -O2 -mavx512f -mfma -pthread bench/micro/team512.c -o /tmp/team512
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define ROW 64 /* floats of a block's row: 4 gates x 16 lanes */

enum { ALONE, MEET, SHARE };

typedef struct {
    long K, n_blocks, sweeps;
    int mode;
    const float *w;
    float *h[2];    /* share: h_{s} and h_{s+1}, K floats each */
    float *own[2];  /* alone / meet: each thread's outputs, h read stays fixed */
    _Alignas(64) _Atomic long done[2][16]; /* sweeps finished, a line per thread */
    double seconds[2];
} team;

typedef struct {
    team *tm;
    int id;
} member;

/* One block's four gates: out[0..16) = a reduction of h @ w (kept alive). */
__attribute__((noinline)) static void block(const float *w, const float *h, long K, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (long k = 0; k < K; k++) {
        const __m512 x = _mm512_set1_ps(h[k]);
        const float *p = w + k * ROW;
        a0 = _mm512_fmadd_ps(x, _mm512_load_ps(p), a0);
        a1 = _mm512_fmadd_ps(x, _mm512_load_ps(p + 16), a1);
        a2 = _mm512_fmadd_ps(x, _mm512_load_ps(p + 32), a2);
        a3 = _mm512_fmadd_ps(x, _mm512_load_ps(p + 48), a3);
    }
    /* x / (1 + |x|) of the sums scaled by 250 / K (the weights average 2e-3,
     * so x is about 2 h): in share mode h settles at 0.5 (h = 2h / (1 + 2h))
     * and stays in (-1, 1), as an LSTM's h does, with no denormals, zeros or
     * overflow */
    const __m512 s = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    const __m512 x = _mm512_mul_ps(s, _mm512_set1_ps(250.0f / (float)K));
    _mm512_store_ps(out, _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_abs_ps(x))));
}

static void *run(void *arg) {
    const member *me = arg;
    team *tm = me->tm;
    const int id = me->id;
    const long K = tm->K, half = tm->n_blocks / 2, b0 = id * half;
    _mm_setcsr(_mm_getcsr() | 0x8040); /* flush and read denormals as zero, as the engine */
    const double t0 = now();
    for (long s = 0; s < tm->sweeps; s++) {
        const float *cur = tm->mode == SHARE ? tm->h[s & 1] : tm->h[0];
        for (long i = 0; i < half; i++) {
            const long q = b0 + ((s & 1) ? half - 1 - i : i);
            float *out = tm->mode == SHARE ? tm->h[(s + 1) & 1] + q * 16 : tm->own[id] + (q - b0) * 16;
            block(tm->w + q * K * ROW, cur, K, out);
        }
        if (tm->mode != ALONE) {
            atomic_store_explicit(&tm->done[id][0], s + 1, memory_order_release);
            while (atomic_load_explicit(&tm->done[1 - id][0], memory_order_acquire) < s + 1)
                _mm_pause();
        }
    }
    tm->seconds[id] = (now() - t0) / (double)tm->sweeps;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s K N_BLOCKS alone|meet|share [SWEEPS]\n", argv[0]);
        return 2;
    }
    static team tm;
    tm.K = atol(argv[1]);
    tm.n_blocks = atol(argv[2]);
    tm.mode = !strcmp(argv[3], "alone") ? ALONE : !strcmp(argv[3], "meet") ? MEET
              : !strcmp(argv[3], "share")  ? SHARE
                                           : -1;
    tm.sweeps = argc > 4 ? atol(argv[4]) : 4000;
    if (tm.K < 1 || tm.K > 65536 || tm.n_blocks < 2 || tm.n_blocks % 2 || tm.mode < 0 ||
        tm.sweeps < 1 || tm.n_blocks * 16 > tm.K) {
        fprintf(stderr, "1 <= K <= 65536, an even N_BLOCKS >= 2 with 16 N_BLOCKS <= K (h has K "
                        "units), alone|meet|share, SWEEPS >= 1\n");
        return 2;
    }
    /* one CPU each, before the threads start: two threads that spin at each
     * meeting on one CPU would time the scheduler */
    cpu_set_t allowed, cpus[2];
    if (sched_getaffinity(0, sizeof allowed, &allowed) || CPU_COUNT(&allowed) < 2) {
        fprintf(stderr, "needs two CPUs this process may run on\n");
        return 2;
    }
    for (int c = 0, i = 0; c < CPU_SETSIZE && i < 2; c++)
        if (CPU_ISSET(c, &allowed)) {
            CPU_ZERO(&cpus[i]);
            CPU_SET(c, &cpus[i]);
            i++;
        }
    const size_t n = (size_t)(tm.K * ROW * tm.n_blocks);
    float *w = aligned_alloc(64, n * sizeof(float));
    const size_t hb = (size_t)(tm.K + 15) / 16 * 64;
    for (int i = 0; i < 2; i++) {
        tm.h[i] = aligned_alloc(64, hb);
        tm.own[i] = aligned_alloc(64, (size_t)tm.n_blocks * 64);
    }
    if (!w || !tm.h[0] || !tm.h[1] || !tm.own[0] || !tm.own[1]) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) w[i] = 1e-3f * (float)(i % 5);
    for (long k = 0; k < tm.K; k++) tm.h[0][k] = tm.h[1][k] = 0.5f;
    tm.w = w;
    for (int rep = 0; rep < 4; rep++) {
        pthread_t th[2];
        member m[2] = {{&tm, 0}, {&tm, 1}};
        for (int i = 0; i < 2; i++) atomic_store(&tm.done[i][0], 0);
        for (int i = 0; i < 2; i++) {
            pthread_attr_t attr;
            if (pthread_attr_init(&attr) ||
                pthread_attr_setaffinity_np(&attr, sizeof cpus[i], &cpus[i]) ||
                pthread_create(&th[i], &attr, run, &m[i])) {
                fprintf(stderr, "could not start a thread on its own CPU\n");
                return 1;
            }
            pthread_attr_destroy(&attr);
        }
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        printf("K=%ld blocks=%ld %s: %.0f KiB a thread, %.2f / %.2f us/sweep\n", tm.K,
               tm.n_blocks, argv[3], (double)(n / 2 * sizeof(float)) / 1024.0,
               tm.seconds[0] * 1e6, tm.seconds[1] * 1e6);
    }
    const float sink = tm.h[0][0] + tm.own[0][0];
    free(w);
    for (int i = 0; i < 2; i++) free(tm.h[i]), free(tm.own[i]);
    return sink == 12345.0f; /* keeps the sums alive */
}
