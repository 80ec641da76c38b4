/* The engine's own matrix product, for the time-batched GEMMs of a layer:
 *
 *   forward:  xproj = x @ kernel                 (B*T, I) @ (I, 4H)
 *   backward: dx = dz @ kernel.T,  dkernel += x.T @ dz,  drecurrent += hprev.T @ dz
 *
 * They run on the engine's own thread team, so no second thread pool (NumPy's
 * BLAS) spins on the cores between a GEMM and the time loop that follows it.
 * Included at the end of lstm_kernels.inc.c, so it is compiled once per
 * element type and instruction set with that file's vector helpers.
 *
 * The usual blocked structure (as in BLIS and GotoBLAS): a block of B, KC
 * rows deep and NC columns wide, is packed into micro-panels of NR columns;
 * a block of A, MC rows by KC, into micro-panels of MR rows; a register tile
 * of MR x NR elements of C is then summed over the KC depth from the two
 * packed panels, both read as sequential streams (B's micro-panel stays in
 * L1, A's block in L2). Edges are packed with zeros, so the tile code has no
 * special cases; only its store is clipped.
 *
 * Threads split C into contiguous ranges of whole tiles along M or N (the one
 * whose split costs less repacking) and run independently: no barrier. Each
 * element of C is the same sequence of operations whatever the split (its KC
 * blocks in order, each summed in order from zero and then added to C), so
 * results do not depend on the thread count.
 */
#include <pthread.h>
#include <stdatomic.h>

#ifndef GEMM_MR
#define GEMM_MR 6 /* rows of a register tile */
#endif
#ifndef GEMM_NV
#define GEMM_NV 2 /* vectors per row of a register tile: NR = GEMM_NV * U columns */
#endif
_Static_assert(GEMM_MR * GEMM_NV + GEMM_NV + 1 <= 32, "register tile too large");

#define GEMM_NR (GEMM_NV * U)
enum {
    FN(GEMM_KC) = 256,                               /* depth of a packed block */
    FN(GEMM_MC) = 24 * GEMM_MR * (int)(8 / sizeof(REAL)) / 2, /* rows of A's block: ~72-144 KB */
    FN(GEMM_NC) = 2048 * (int)(8 / sizeof(REAL)) / 2, /* columns of B's block: ~1-2 MB */
};
#define KC FN(GEMM_KC)
#define MC FN(GEMM_MC)
#define NC FN(GEMM_NC)

typedef struct {
    int trans_a, trans_b, accumulate;
    int64_t M, N, K, lda, ldb, ldc;
    const REAL *A, *B;
    REAL *C;
    int split_n;             /* 1: threads split the columns, else the rows */
    atomic_int failed;       /* a thread could not get its packing buffers */
} FN(gemm_ctx);

/* rows i0..i0+mc, depth p0..p0+kc of op(A) -> micro-panels (mc/MR, kc, MR) */
static void FN(gemm_pack_a)(const FN(gemm_ctx) * g, REAL *dst, int64_t i0, int64_t mc,
                            int64_t p0, int64_t kc) {
    for (int64_t ir = 0; ir < mc; ir += GEMM_MR, dst += kc * GEMM_MR) {
        const int64_t rows = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
        if (g->trans_a) { /* A stored (K, M): each k gives MR neighbours */
            for (int64_t k = 0; k < kc; k++) {
                const REAL *src = g->A + (p0 + k) * g->lda + i0 + ir;
                REAL *d = dst + k * GEMM_MR;
                int64_t r = 0;
                for (; r < rows; r++) d[r] = src[r];
                for (; r < GEMM_MR; r++) d[r] = 0;
            }
        } else { /* A stored (M, K): read each row along k */
            for (int64_t r = 0; r < GEMM_MR; r++) {
                if (r < rows) {
                    const REAL *src = g->A + (i0 + ir + r) * g->lda + p0;
                    for (int64_t k = 0; k < kc; k++) dst[k * GEMM_MR + r] = src[k];
                } else {
                    for (int64_t k = 0; k < kc; k++) dst[k * GEMM_MR + r] = 0;
                }
            }
        }
    }
}

/* depth p0..p0+kc, columns j0..j0+nc of op(B) -> micro-panels (nc/NR, kc, NR) */
static void FN(gemm_pack_b)(const FN(gemm_ctx) * g, REAL *dst, int64_t p0, int64_t kc,
                            int64_t j0, int64_t nc) {
    for (int64_t jr = 0; jr < nc; jr += GEMM_NR, dst += kc * GEMM_NR) {
        const int64_t cols = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
        if (!g->trans_b) { /* B stored (K, N): each k gives NR neighbours */
            for (int64_t k = 0; k < kc; k++) {
                const REAL *src = g->B + (p0 + k) * g->ldb + j0 + jr;
                REAL *d = dst + k * GEMM_NR;
                if (cols == GEMM_NR) {
                    for (int q = 0; q < GEMM_NV; q++) FN(vstore)(d + q * U, FN(vload)(src + q * U));
                } else {
                    int64_t n = 0;
                    for (; n < cols; n++) d[n] = src[n];
                    for (; n < GEMM_NR; n++) d[n] = 0;
                }
            }
        } else { /* B stored (N, K): read each column of op(B) along k */
            for (int64_t n = 0; n < GEMM_NR; n++) {
                if (n < cols) {
                    const REAL *src = g->B + (j0 + jr + n) * g->ldb + p0;
                    for (int64_t k = 0; k < kc; k++) dst[k * GEMM_NR + n] = src[k];
                } else {
                    for (int64_t k = 0; k < kc; k++) dst[k * GEMM_NR + n] = 0;
                }
            }
        }
    }
}

/* C[0:mr, 0:nr] (+)= a_panel @ b_panel over kc: one register tile. */
INLINE void FN(gemm_tile)(int64_t kc, const REAL *a, const REAL *b, REAL *c, int64_t ldc,
                          int64_t mr, int64_t nr, int add) {
    V acc[GEMM_MR][GEMM_NV];
    for (int r = 0; r < GEMM_MR; r++)
        for (int q = 0; q < GEMM_NV; q++) acc[r][q] = (V){0};
    for (int64_t k = 0; k < kc; k++, a += GEMM_MR, b += GEMM_NR) {
        V w[GEMM_NV];
        for (int q = 0; q < GEMM_NV; q++) w[q] = FN(vload)(b + q * U);
        for (int r = 0; r < GEMM_MR; r++) {
            V x = FN(vbcast)(a[r]);
            for (int q = 0; q < GEMM_NV; q++) acc[r][q] += x * w[q];
        }
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
        for (int r = 0; r < GEMM_MR; r++)
            for (int q = 0; q < GEMM_NV; q++) {
                REAL *p = c + r * ldc + q * U;
                FN(vstore)(p, add ? FN(vload)(p) + acc[r][q] : acc[r][q]);
            }
        return;
    }
    REAL tile[GEMM_MR][GEMM_NR];
    for (int r = 0; r < GEMM_MR; r++)
        for (int q = 0; q < GEMM_NV; q++) FN(vstore)(&tile[r][q * U], acc[r][q]);
    for (int64_t r = 0; r < mr; r++)
        for (int64_t n = 0; n < nr; n++)
            c[r * ldc + n] = add ? c[r * ldc + n] + tile[r][n] : tile[r][n];
}

/* This thread's part: rows m0..m1 and columns n0..n1 of C. */
static void FN(gemm_part)(const FN(gemm_ctx) * g, REAL *pa, REAL *pb, int64_t m0, int64_t m1,
                          int64_t n0, int64_t n1) {
    const int64_t K = g->K, ldc = g->ldc;
    if (K == 0) { /* an empty sum */
        if (!g->accumulate)
            for (int64_t i = m0; i < m1; i++)
                for (int64_t n = n0; n < n1; n++) g->C[i * ldc + n] = 0;
        return;
    }
    for (int64_t jc = n0; jc < n1; jc += NC) {
        const int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = K - pc < KC ? K - pc : KC;
            const int add = g->accumulate || pc > 0;
            FN(gemm_pack_b)(g, pb, pc, kc, jc, nc);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                const int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                FN(gemm_pack_a)(g, pa, ic, mc, pc, kc);
                for (int64_t jr = 0; jr < nc; jr += GEMM_NR) {
                    const int64_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                    for (int64_t ir = 0; ir < mc; ir += GEMM_MR) {
                        const int64_t mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                        FN(gemm_tile)(kc, pa + ir * kc, pb + jr * kc,
                                      g->C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, add);
                    }
                }
            }
        }
    }
}

/* Packing buffers, one pair per thread, kept across calls (a GEMM per layer
 * and step of training would otherwise map and fault them in every time) and
 * freed when the thread exits. */
static pthread_key_t FN(gemm_key);
static pthread_once_t FN(gemm_once) = PTHREAD_ONCE_INIT;
static void FN(gemm_key_make)(void) { pthread_key_create(&FN(gemm_key), lf_free); }

static REAL *FN(gemm_buffers)(void) {
    pthread_once(&FN(gemm_once), FN(gemm_key_make));
    REAL *buf = pthread_getspecific(FN(gemm_key));
    if (!buf) {
        buf = lf_alloc(((size_t)MC * KC + (size_t)KC * (NC + GEMM_NR)) * sizeof(REAL));
        if (buf && pthread_setspecific(FN(gemm_key), buf) != 0) {
            lf_free(buf);
            buf = NULL;
        }
    }
    return buf;
}

static void FN(gemm_task)(void *arg, int tid, int nth) {
    FN(gemm_ctx) *g = arg;
    REAL *pa = FN(gemm_buffers)();
    if (!pa) {
        atomic_store(&g->failed, 1);
        return;
    }
    REAL *pb = pa + (size_t)MC * KC;
    unsigned fp_state = lf_fp_enter();
    if (g->split_n) {
        const int64_t tiles = (g->N + GEMM_NR - 1) / GEMM_NR;
        int64_t n0 = tiles * tid / nth * GEMM_NR, n1 = tiles * (tid + 1) / nth * GEMM_NR;
        if (n1 > g->N) n1 = g->N;
        if (n0 < n1) FN(gemm_part)(g, pa, pb, 0, g->M, n0, n1);
    } else {
        const int64_t tiles = (g->M + GEMM_MR - 1) / GEMM_MR;
        int64_t m0 = tiles * tid / nth * GEMM_MR, m1 = tiles * (tid + 1) / nth * GEMM_MR;
        if (m1 > g->M) m1 = g->M;
        if (m0 < m1) FN(gemm_part)(g, pa, pb, m0, m1, 0, g->N);
    }
    lf_fp_exit(fp_state);
}

int FN(lf_gemm)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const REAL *A,
                int64_t lda, const REAL *B, int64_t ldb, int accumulate, REAL *C, int64_t ldc,
                int n_threads) {
    FN(gemm_ctx) g = {.trans_a = trans_a, .trans_b = trans_b, .accumulate = accumulate,
                      .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc,
                      .A = A, .B = B, .C = C};
    atomic_init(&g.failed, 0);
    if (M == 0 || N == 0) return LF_OK;
    /* Splitting M makes every thread pack all of B (K x N), splitting N all
     * of A (M x K): split the larger of M and N. */
    g.split_n = N > M;
    const int64_t tiles = g.split_n ? (N + GEMM_NR - 1) / GEMM_NR : (M + GEMM_MR - 1) / GEMM_MR;
    int64_t nth = n_threads < 1 ? 1 : n_threads;
    if (nth > tiles) nth = tiles;
    if (2.0 * (double)M * (double)N * (double)K < 4e5) nth = 1; /* waking the team costs more */
    lf_parallel_run(FN(gemm_task), &g, NULL, (int)nth);
    return atomic_load(&g.failed) ? LF_ENOMEM : LF_OK;
}

#undef KC
#undef MC
#undef NC
#undef GEMM_NR
