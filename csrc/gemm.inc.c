/* The engine's own matrix product, for the time-batched GEMMs of a layer:
 *
 *   forward:  xproj = x @ kernel                 (B*T, I) @ (I, 4H)
 *   backward: dx = dz @ kernel.T, and the weight gradients in one product
 *             [dkernel; drecurrent; dbias] (+)= [x | hprev | 1].T @ dz
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
 * packed panels, both read as sequential streams (B's micro-panel, 24 KB
 * under AVX2, stays in L1; under AVX-512 it is 64 KB and streams from L2, at
 * 256 bytes per 24 FMAs; A's block stays in L2). Edge panels are padded with
 * zeros to whole vectors; the last rows of a block get a tile of their own
 * height and the last columns a clipped store. Products of at most
 * LF_FEW_ROWS rows skip packing (gemm_few_rows); with B one panel wide, the
 * tiles read A's rows in place (each packed value would be read once).
 *
 * C is cut into parts, contiguous ranges of whole tiles along M or of whole
 * vectors along N (the one whose split costs less repacking), a few per
 * thread; threads take their own parts first, then the others' not yet
 * started (lf_phases). Where the parts would repack 256 KB or more of the
 * operand that is not split, it is packed once for all of them in a first
 * phase (the one meeting); below, each part packs its own blocks of it.
 * Each element of C is the same sequence of operations whatever the split (its KC
 * blocks in order, each summed in order from zero and then added to C), so
 * results do not depend on the thread count.
 */
#include <pthread.h>
#include <stdatomic.h>

/* The register tile: 4 rows x 3 vectors of columns (12 accumulators, 16
 * registers with the 3 weight vectors and a broadcast under AVX2); an ISA
 * file with more registers may define its own (AVX-512: 6 x 4). 6 x 2 has
 * as many accumulators but needs 6 broadcasts per 12 FMAs against 4; here it
 * measured a few per cent slower (within this VM's noise). */
#ifndef GEMM_MR
#define GEMM_MR 4 /* rows of a register tile */
#endif
#ifndef GEMM_NV
#define GEMM_NV 3 /* vectors per row of a register tile: NR = GEMM_NV * U columns */
#endif
#define LF_FEW_ROWS 6 /* products of at most this many rows read B in place */
_Static_assert(GEMM_MR * GEMM_NV + GEMM_NV + 1 <= 32, "register tile too large");
_Static_assert(GEMM_NV >= 1 && GEMM_NV <= 4, "gemm_part picks tiles of up to 4 vectors");

#define GEMM_NR (GEMM_NV * U)
_Static_assert(GEMM_MR <= 6, "LF_GEMM_REMAINDER covers tiles of up to 6 rows");
/* The last rem < GEMM_MR rows, with the count a constant at each call. */
#define LF_GEMM_REMAINDER(rem, TILE)            \
    switch (rem) {                              \
    case 5: if (GEMM_MR > 5) TILE(5); break;    \
    case 4: if (GEMM_MR > 4) TILE(4); break;    \
    case 3: if (GEMM_MR > 3) TILE(3); break;    \
    case 2: if (GEMM_MR > 2) TILE(2); break;    \
    case 1: TILE(1); break;                     \
    default: break;                             \
    }
/* Panels of a prepacked B ahead of the one in use that the tiles prefetch
 * (gemm_tiles; x @ kernel at B1 T25 H1024: 57 GFLOP/s at 1, 73 at 2, 63 at 4) */
#ifndef LF_GEMM_PF_AHEAD
#define LF_GEMM_PF_AHEAD 2
#endif
#define LF_PACK_ROWS 16 /* rows of a matrix read together when packing across it */
#ifndef LF_GEMM_PARTS_PER_THREAD
#define LF_GEMM_PARTS_PER_THREAD 4 /* parts of a product shared out per thread */
#define LF_GEMM_MAX_THREADS 16     /* counters on the stack up to this many threads */
#define LF_GEMM_MIN_PART 256       /* columns or rows of a part, at least */
#endif
enum {
    FN(GEMM_KC) = 256,                               /* depth of a packed block */
    /* rows of A's block: 144 KB at 4 rows a tile, 216 KB at 6 */
    FN(GEMM_MC) = 36 * GEMM_MR * (int)(8 / sizeof(REAL)) / 2,
    /* columns of B's block (~2 MB), a whole number of micro-panels */
    FN(GEMM_NC) = 2048 * (int)(8 / sizeof(REAL)) / 2 / (int)GEMM_NR * (int)GEMM_NR,
};
#define KC FN(GEMM_KC)
#define MC FN(GEMM_MC)
#define NC FN(GEMM_NC)

typedef struct {
    int trans_a, trans_b, accumulate;
    int64_t M, N, K, lda, ldb, ldc;
    const REAL *A, *B;
    const REAL *bp;          /* op(B) packed once by lf_gemm_pack, or NULL */
    REAL *b_shared;          /* op(B) packed in phase 0 for all the parts (split M), or NULL */
    REAL *a_shared;          /* op(A) likewise (split N): panels (ceil(M / MR), K, MR) */
    REAL *C;
    /* A stacked op(A) (trans_a only): rows [0, M0) of op(A) are columns of A,
     * rows [M0, M0 + M1) columns of A1 (leading dimension lda1), and a row
     * M0 + M1 < M is ones; rows of C go likewise to C, C1 (ldc1) and C2.
     * A plain product has M0 = M. */
    const REAL *A1;
    int64_t M0, M1, lda1, ldc1;
    REAL *C1, *C2;
    int split_n;             /* 1: threads split the columns, else the rows */
    int few_rows;            /* op(A) has at most LF_FEW_ROWS rows and B is not transposed */
    int64_t tile;            /* columns (split_n) or rows per tile of the split */
    lf_phases ph;            /* [packing the shared operand,] the parts, shared out */
} FN(gemm_ctx);

/* rows i0..i0+mc, depth p0..p0+kc of op(A) -> micro-panels (mc/MR, kc, MR) */
static void FN(gemm_pack_a)(const FN(gemm_ctx) * g, REAL *dst, int64_t i0, int64_t mc,
                            int64_t p0, int64_t kc) {
    if (!g->trans_a) { /* A stored (M, K): each panel reads MR rows along k */
        for (int64_t ir = 0; ir < mc; ir += GEMM_MR, dst += kc * GEMM_MR) {
            const int64_t rows = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
            if (rows == GEMM_MR) { /* k outer, rows inner: the compiler interleaves
                                    * whole vectors of the MR rows (a 4x faster
                                    * pack, which weighed ~8% in dz @ kernel.T) */
                const REAL *src[GEMM_MR];
                for (int r = 0; r < GEMM_MR; r++) src[r] = g->A + (i0 + ir + r) * g->lda + p0;
                for (int64_t k = 0; k < kc; k++) {
#pragma GCC unroll 8
                    for (int r = 0; r < GEMM_MR; r++) dst[k * GEMM_MR + r] = src[r][k];
                }
                continue;
            }
            for (int64_t r = 0; r < GEMM_MR; r++) {
                if (r >= rows) {
                    for (int64_t k = 0; k < kc; k++) dst[k * GEMM_MR + r] = 0;
                    continue;
                }
                const REAL *src = g->A + (i0 + ir + r) * g->lda + p0;
                for (int64_t k = 0; k < kc; k++) dst[k * GEMM_MR + r] = src[k];
            }
        }
        return;
    }
    /* A stored (K, M): each row k gives MR neighbours to every panel. Rows are
     * taken LF_PACK_ROWS at a time across all panels, so that the reads are
     * a few sequential streams (one panel down all rows would read one cache
     * line per row, a stride the hardware prefetcher does not follow). */
    for (int64_t k0 = 0; k0 < kc; k0 += LF_PACK_ROWS) {
        const int64_t k1 = k0 + LF_PACK_ROWS < kc ? k0 + LF_PACK_ROWS : kc;
        REAL *panel = dst;
        for (int64_t ir = 0; ir < mc; ir += GEMM_MR, panel += kc * GEMM_MR) {
            const int64_t rows = mc - ir < GEMM_MR ? mc - ir : GEMM_MR, i = i0 + ir;
            const REAL *from = NULL; /* the panel's rows all in A, or all in A1 */
            int64_t ld = 0;
            if (i + rows <= g->M0) {
                from = g->A + i;
                ld = g->lda;
            } else if (i >= g->M0 && i + rows <= g->M0 + g->M1) {
                from = g->A1 + (i - g->M0);
                ld = g->lda1;
            }
            for (int64_t k = k0; k < k1; k++) {
                REAL *d = panel + k * GEMM_MR;
                if (from && rows == GEMM_MR) { /* a few moves, not MR compares and copies */
                    memcpy(d, from + (p0 + k) * ld, sizeof(REAL) * GEMM_MR);
                } else if (from) {
                    const REAL *src = from + (p0 + k) * ld;
                    for (int64_t r = 0; r < GEMM_MR; r++) d[r] = r < rows ? src[r] : 0;
                } else { /* straddles A and A1, or holds the row of ones */
                    for (int64_t r = 0; r < GEMM_MR; r++)
                        d[r] = r >= rows               ? 0
                               : i + r < g->M0         ? g->A[(p0 + k) * g->lda + i + r]
                               : i + r < g->M0 + g->M1 ? g->A1[(p0 + k) * g->lda1 + i + r - g->M0]
                                                       : 1;
                }
            }
        }
    }
}

/* depth p0..p0+kc, columns j0..j0+nc of op(B) -> micro-panels (nc/NR, kc, NR).
 * A narrow last panel is padded with zeros to whole vectors only: its tiles
 * read no further (gemm_part), and zeroing the rest of NR, a store per k and
 * column, took a third of the time of dz @ kernel.T at the seed model's
 * sizes (N = 10 columns of NR = 64 under AVX-512). */
static void FN(gemm_pack_b)(const FN(gemm_ctx) * g, REAL *dst, int64_t p0, int64_t kc,
                            int64_t j0, int64_t nc) {
    if (!g->trans_b) { /* B stored (K, N): rows in groups across panels, as in pack_a */
        for (int64_t k0 = 0; k0 < kc; k0 += LF_PACK_ROWS) {
            const int64_t k1 = k0 + LF_PACK_ROWS < kc ? k0 + LF_PACK_ROWS : kc;
            REAL *panel = dst;
            for (int64_t jr = 0; jr < nc; jr += GEMM_NR, panel += kc * GEMM_NR) {
                const int64_t cols = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                for (int64_t k = k0; k < k1; k++) {
                    const REAL *src = g->B + (p0 + k) * g->ldb + j0 + jr;
                    REAL *d = panel + k * GEMM_NR;
                    if (cols == GEMM_NR) {
                        for (int q = 0; q < GEMM_NV; q++)
                            FN(vstore)(d + q * U, FN(vload)(src + q * U));
                    } else { /* whole vectors, then the last under a mask (zeros past it) */
                        int64_t n = 0;
                        for (; n + U <= cols; n += U) FN(vstore)(d + n, FN(vload)(src + n));
                        if (n < cols) FN(vstore)(d + n, FN(vload_n)(src + n, cols - n));
                    }
                }
            }
        }
        return;
    }
    for (int64_t jr = 0; jr < nc; jr += GEMM_NR, dst += kc * GEMM_NR) {
        const int64_t cols = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
        const int64_t filled = (cols + U - 1) / U * U;
        { /* B stored (N, K): read each column of op(B) along k */
            for (int64_t n = 0; n < filled; n++) {
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

/* C[0:mr, 0:nr] (+)= A[0:mr, 0:kc] @ B[0:kc, 0:nr] for one register tile,
 * from a micro-panel of A (row r, depth k at a[r * a_rs + k * a_ks]: packed,
 * 1 and MR; read in place, lda and 1) and a packed one of B (NR a step);
 * c[r] is row r of the tile in C. nv = ceil(nr / U) vectors of columns (the
 * last panel of a product, or of a part split in vectors, may be narrower:
 * at N = 200 its 8 columns were a ninth of the work done in full width, and
 * the thread with that panel finished last). mr and nv are constants at each
 * call.
 * Every element is one chain of FMAs over k in order from zero, whatever mr
 * and nv: a row's result does not depend on which tile it falls in (nor then
 * on the batch it came in). */
INLINE void FN(gemm_tile)(int64_t kc, const REAL *a, int64_t a_rs, int64_t a_ks, const REAL *b,
                          REAL *const *c, int mr, int nv, int64_t nr, int add, const char *pf,
                          int64_t npf) {
    /* C's tile is read and written after the sum: start fetching it now, or
     * every tile ends waiting on memory */
    for (int r = 0; r < mr; r++) {
        __builtin_prefetch(c[r], 1);
        __builtin_prefetch(c[r] + nr - 1, 1);
    }
    V acc[GEMM_MR][GEMM_NV];
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < nv; q++) acc[r][q] = (V){0};
#define LF_GEMM_STEP(k)                                                          \
    do {                                                                         \
        V w[GEMM_NV];                                                            \
        for (int q = 0; q < nv; q++) w[q] = FN(vload)(b + (k) * GEMM_NR + q * U); \
        for (int r = 0; r < mr; r++) {                                          \
            V x = FN(vbcast)(a[(k) * a_ks + r * a_rs]);                          \
            for (int q = 0; q < nv; q++) acc[r][q] += x * w[q];                  \
        }                                                                        \
    } while (0)
    if (npf > 0) { /* npf lines from pf, spread over the steps of k (gemm_tiles) */
        const int64_t per = kc >= 4 ? (npf + kc / 4 - 1) / (kc / 4) : 0; /* lines per 4 steps */
        int64_t k = 0, i = 0;
        for (; i < npf && k + 4 <= kc; k += 4) {
            for (int64_t e = 0; e < per && i < npf; e++, i++) __builtin_prefetch(pf + i * 64, 0, 2);
            LF_GEMM_STEP(k);
            LF_GEMM_STEP(k + 1);
            LF_GEMM_STEP(k + 2);
            LF_GEMM_STEP(k + 3);
        }
#pragma GCC unroll 4
        for (; k < kc; k++) LF_GEMM_STEP(k);
    } else { /* (a loop of its own: from a variable k, the seed's products at
              * K = 10 took 1.06 of the time) */
#pragma GCC unroll 4
        for (int64_t k = 0; k < kc; k++) LF_GEMM_STEP(k);
    }
#undef LF_GEMM_STEP
    if (nr == nv * U) {
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < nv; q++) {
                REAL *p = c[r] + q * U;
                FN(vstore)(p, add ? FN(vload)(p) + acc[r][q] : acc[r][q]);
            }
        return;
    }
    REAL tile[GEMM_MR][GEMM_NR];
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < nv; q++) FN(vstore)(&tile[r][q * U], acc[r][q]);
    for (int r = 0; r < mr; r++)
        for (int64_t n = 0; n < nr; n++)
            c[r][n] = add ? c[r][n] + tile[r][n] : tile[r][n];
}

/* op(A) with at most LF_FEW_ROWS rows and B not transposed (a batch of one,
 * one step): each element of B is used at most LF_FEW_ROWS times, so packing
 * B would cost about as much as the product. B is read in place, row by row
 * like a matrix-vector product (sequential runs that the hardware prefetcher
 * follows; a strip of columns down the rows would be one cache line per row).
 * The rounding is the packed path's: per KC block of depth, a sum from zero
 * over k in order (in buf), then added to C, so a row's result does not
 * depend on how many rows came with it. */
static void FN(gemm_few_rows)(const FN(gemm_ctx) * g, REAL *buf, int64_t n0, int64_t n1) {
    enum { CHUNK = 2048 / (int)sizeof(REAL) }; /* columns: 2 KB of each row of C */
    const int64_t M = g->M, K = g->K, ldb = g->ldb, ldc = g->ldc;
    const int64_t a_rs = g->trans_a ? 1 : g->lda, a_ks = g->trans_a ? g->lda : 1;
    for (int64_t j0 = n0; j0 < n1; j0 += CHUNK) {
        const int64_t w = n1 - j0 < CHUNK ? n1 - j0 : CHUNK;
        const int64_t wv = w / U * U; /* the whole vectors */
        for (int64_t p0 = 0; p0 < K; p0 += KC) {
            const int64_t kc = K - p0 < KC ? K - p0 : KC;
            memset(buf, 0, (size_t)(M * CHUNK) * sizeof(REAL));
            for (int64_t k = 0; k < kc; k++) {
                const REAL *b = g->B + (p0 + k) * ldb + j0;
                for (int64_t r = 0; r < M; r++) {
                    const V x = FN(vbcast)(g->A[r * a_rs + (p0 + k) * a_ks]);
                    REAL *t = buf + r * CHUNK;
                    int64_t n = 0;
                    for (; n < wv; n += U) FN(vstore)(t + n, FN(vload)(t + n) + x * FN(vload)(b + n));
                    for (; n < w; n++) t[n] += x[0] * b[n];
                }
            }
            const int add = g->accumulate || p0 > 0;
            for (int64_t r = 0; r < M; r++) {
                REAL *c = g->C + r * ldc + j0;
                const REAL *t = buf + r * CHUNK;
                for (int64_t n = 0; n < w; n++) c[n] = add ? c[n] + t[n] : t[n];
            }
        }
    }
}

/* Row i of C (of a stacked C, the row of C, C1 or C2 it stands for). */
INLINE REAL *FN(gemm_c_row)(const FN(gemm_ctx) * g, int64_t i) {
    if (i < g->M0) return g->C + i * g->ldc;
    if (i < g->M0 + g->M1) return g->C1 + (i - g->M0) * g->ldc1;
    return g->C2;
}

/* The tiles of rows i0..i0+mc of a block (mr a constant at each call), for nv
 * vectors of columns; A's micro-panels a_panel apart (a_inplace, a constant
 * at each call: rows of A itself, not packed). They share out the prefetch
 * of the pf_len values at pf (a later panel of a prepacked B, or NULL). The
 * panels of a prepacked B are K * NR apart, a jump the hardware prefetcher
 * does not follow, so the first tile over each panel ran at the pace of
 * memory, not of the FMAs: at B1 T25 (25 rows, 7 tiles a panel) x @ kernel
 * took 0.73-0.80 ms at H = 512 (4 MB of kernel) and 3.3-3.8 ms at H = 1024
 * (16 MB), 0.44-0.53 and 2.9 with the prefetch (2 threads). */
INLINE void FN(gemm_tiles)(const FN(gemm_ctx) * g, int nv, int64_t kc, const REAL *ablk,
                           int64_t a_panel, int a_inplace, const REAL *b, int64_t i0,
                           int64_t mc, int64_t j0, int64_t nr, int add, const REAL *pf,
                           int64_t pf_len) {
    const int64_t a_rs = a_inplace ? g->lda : 1, a_ks = a_inplace ? 1 : GEMM_MR;
    int64_t ir = 0;
    const int64_t lines = pf ? (pf_len * (int64_t)sizeof(REAL) + 63) / 64 : 0;
    const int64_t n_tiles = (mc + GEMM_MR - 1) / GEMM_MR;
#define LF_GEMM_TILE(mr)                                                                \
    do {                                                                                \
        REAL *c[GEMM_MR];                                                               \
        const int64_t ti = ir / GEMM_MR;                                                \
        const int64_t l0 = lines ? lines * ti / n_tiles : 0;                            \
        const int64_t l1 = lines ? lines * (ti + 1) / n_tiles : 0;                      \
        for (int r = 0; r < (mr); r++) c[r] = FN(gemm_c_row)(g, i0 + ir + r) + j0;       \
        FN(gemm_tile)(kc, ablk + ti * a_panel, a_rs, a_ks, b, c, mr, nv, nr, add,       \
                      lines ? (const char *)pf + l0 * 64 : NULL, l1 - l0);              \
    } while (0)
    for (; ir + GEMM_MR <= mc; ir += GEMM_MR) LF_GEMM_TILE(GEMM_MR);
    LF_GEMM_REMAINDER(mc - ir, LF_GEMM_TILE)
#undef LF_GEMM_TILE
}

/* TILES(nv) for nv, the vectors of columns a panel needs (a constant at each
 * call: 1 .. GEMM_NV). */
#if GEMM_NV > 3
#define LF_GEMM_MIDDLE(TILES) case 2: TILES(2); break; case 3: TILES(3); break;
#elif GEMM_NV > 2
#define LF_GEMM_MIDDLE(TILES) case 2: TILES(2); break;
#else
#define LF_GEMM_MIDDLE(TILES)
#endif
#define LF_GEMM_VECTORS(nv, TILES)                  \
    switch (nv) {                                   \
    case 1: TILES(1); break;                        \
    LF_GEMM_MIDDLE(TILES)                           \
    default: TILES(GEMM_NV); break;                 \
    }

/* This thread's part: rows m0..m1 and columns n0..n1 of C. */
static void FN(gemm_part)(const FN(gemm_ctx) * g, REAL *pa, REAL *pb, int64_t m0, int64_t m1,
                          int64_t n0, int64_t n1) {
    const int64_t K = g->K;
    /* With one panel of columns, each packed value of A would be read once:
     * the tiles read A's rows in place instead (dz @ kernel.T of the seed
     * model, N = 10: packing A was most of its time). */
    const int a_inplace = !g->a_shared && !g->trans_a && n1 - n0 <= GEMM_NR;
    for (int64_t jc = n0; jc < n1; jc += NC) {
        const int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = K - pc < KC ? K - pc : KC;
            const int add = g->accumulate || pc > 0;
            if (!g->bp) FN(gemm_pack_b)(g, pb, pc, kc, jc, nc);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                const int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                /* the block's micro-panels of A: packed here, or in a_shared
                 * (panels of all of op(A), each K deep), or A's own rows */
                const REAL *ablk = pa;
                int64_t a_panel = kc * GEMM_MR;
                if (g->a_shared) {
                    ablk = g->a_shared + (ic * K + pc * GEMM_MR);
                    a_panel = K * GEMM_MR;
                } else if (a_inplace) {
                    ablk = g->A + ic * g->lda + pc;
                    a_panel = GEMM_MR * g->lda;
                } else {
                    FN(gemm_pack_a)(g, pa, ic, mc, pc, kc);
                }
                for (int64_t jr = 0; jr < nc; jr += GEMM_NR) {
                    const int64_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                    const REAL *b = g->bp ? g->bp + ((jc + jr) / GEMM_NR * K + pc) * GEMM_NR
                                          : pb + jr * kc;
                    /* the panel of a prepacked B used LF_GEMM_PF_AHEAD panels
                     * later: at depth pc (for this block of rows or, past the
                     * last panels, the next), else the next depth (a panel of
                     * pb, packed just now, is in the caches) */
                    const REAL *pf = NULL;
                    int64_t pf_len = 0;
                    if (g->bp) {
                        const int64_t np = (nc + GEMM_NR - 1) / GEMM_NR;
                        int64_t pn = jr / GEMM_NR + LF_GEMM_PF_AHEAD, pcn = pc;
                        if (pn >= np) {
                            pn -= np;
                            if (ic + MC >= m1) pcn += KC; /* else the next rows' block */
                        }
                        if (pcn < K && pn < np) {
                            pf = g->bp + ((jc / GEMM_NR + pn) * K + pcn) * GEMM_NR;
                            pf_len = (K - pcn < KC ? K - pcn : KC) * GEMM_NR;
                        }
                    }
#define LF_GEMM_PACKED(nv) \
    FN(gemm_tiles)(g, nv, kc, ablk, a_panel, 0, b, ic, mc, jc + jr, nr, add, pf, pf_len)
#define LF_GEMM_INPLACE(nv) \
    FN(gemm_tiles)(g, nv, kc, ablk, a_panel, 1, b, ic, mc, jc + jr, nr, add, NULL, 0)
                    if (a_inplace)
                        LF_GEMM_VECTORS((nr + U - 1) / U, LF_GEMM_INPLACE)
                    else
                        LF_GEMM_VECTORS((nr + U - 1) / U, LF_GEMM_PACKED)
#undef LF_GEMM_INPLACE
#undef LF_GEMM_PACKED
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

/* Part c of the split (of ph.n_chunks): whole tiles of columns or rows. */
static void FN(gemm_run_part)(FN(gemm_ctx) * g, REAL *pa, REAL *pb, int64_t c) {
    const int64_t n = g->ph.n_chunks, len = g->split_n ? g->N : g->M;
    const int64_t tiles = (len + g->tile - 1) / g->tile;
    int64_t e0 = tiles * c / n * g->tile, e1 = tiles * (c + 1) / n * g->tile;
    if (e1 > len) e1 = len;
    if (e0 >= e1) return;
    if (g->few_rows)
        FN(gemm_few_rows)(g, pb, e0, e1);
    else if (g->split_n)
        FN(gemm_part)(g, pa, pb, 0, g->M, e0, e1);
    else
        FN(gemm_part)(g, pa, pb, e0, e1, 0, g->N);
}

/* Panels p0..p1 of op(B) into the layout of lf_gemm_pack ((ceil(N / NR), K,
 * NR), zero past column N). B not transposed: a row of NR values at a time.
 * Transposed, in squares of LF_PACK_ROWS depth by NR columns: each column of
 * op(B) is a row of B, read a cache line at a time, and the writes stay
 * within a few KB. */
static void FN(gemm_pack_panels)(const FN(gemm_ctx) * g, REAL *dst, int64_t p0, int64_t p1) {
    const int64_t K = g->K, N = g->N, ldb = g->ldb;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t j = p * GEMM_NR, cols = N - j < GEMM_NR ? N - j : GEMM_NR;
        REAL *d = dst + p * K * GEMM_NR;
        if (!g->trans_b) {
            for (int64_t k = 0; k < K; k++) {
                const REAL *src = g->B + k * ldb + j;
                REAL *row = d + k * GEMM_NR;
                if (cols == GEMM_NR) {
                    for (int q = 0; q < GEMM_NV; q++) FN(vstore)(row + q * U, FN(vload)(src + q * U));
                } else {
                    for (int64_t n = 0; n < GEMM_NR; n++) row[n] = n < cols ? src[n] : 0;
                }
            }
            continue;
        }
        for (int64_t k0 = 0; k0 < K; k0 += LF_PACK_ROWS) {
            const int64_t k1 = k0 + LF_PACK_ROWS < K ? k0 + LF_PACK_ROWS : K;
            for (int64_t n = 0; n < GEMM_NR; n++)
                for (int64_t k = k0; k < k1; k++)
                    d[k * GEMM_NR + n] = n < cols ? g->B[(j + n) * ldb + k] : 0;
        }
    }
}

/* With b_shared or a_shared, phase 0 packs that operand (chunk c: a share of
 * its panels) and phase 1 runs the parts on it; otherwise phase 0 runs the
 * parts. */
static void FN(gemm_task)(void *arg, int tid, int nth) {
    (void)nth;
    FN(gemm_ctx) *g = arg;
    REAL *pa = FN(gemm_buffers)();
    if (!pa) return; /* leaves its chunks to the others; gemm_exec checks they were done */
    REAL *pb = pa + (size_t)MC * KC;
    unsigned fp_state = lf_fp_enter();
    const int64_t n = g->ph.n_chunks, shared = g->a_shared || g->b_shared;
    const int64_t panels =
        g->a_shared ? (g->M + GEMM_MR - 1) / GEMM_MR : (g->N + GEMM_NR - 1) / GEMM_NR;
    for (int64_t q = 0; q < (shared ? 2 : 1); q++) {
        const int pack = shared && q == 0;
        int64_t c, n_done = 0;
        for (; (c = lf_phases_claim(&g->ph, tid, q, 0)) >= 0; n_done++) {
            const int64_t p0 = panels * c / n, p1 = panels * (c + 1) / n;
            if (pack && g->b_shared) {
                FN(gemm_pack_panels)(g, g->b_shared, p0, p1);
            } else if (pack) { /* rows p0 * MR.., all of the depth */
                const int64_t i1 = p1 * GEMM_MR < g->M ? p1 * GEMM_MR : g->M;
                if (i1 > p0 * GEMM_MR)
                    FN(gemm_pack_a)(g, g->a_shared + p0 * GEMM_MR * g->K, p0 * GEMM_MR,
                                    i1 - p0 * GEMM_MR, 0, g->K);
            } else {
                FN(gemm_run_part)(g, pa, pb, c);
            }
        }
        lf_phases_publish(&g->ph, tid, n_done);
        if (pack) lf_phases_wait(&g->ph, q);
    }
    lf_fp_exit(fp_state);
}

/* B (K, N) -> panels (ceil(N / NR), K, NR), zero past column N: the layout
 * gemm_part reads its packed blocks in, for a B used by many products (the
 * kernel of repeated inference, ops.pack_weights). */
int64_t FN(lf_gemm_packed_len)(int64_t K, int64_t N) {
    return (N + GEMM_NR - 1) / GEMM_NR * GEMM_NR * K;
}

int FN(lf_gemm_pack)(REAL *dst, const REAL *B, int64_t K, int64_t N, int64_t ldb) {
    for (int64_t k0 = 0; k0 < K; k0 += LF_PACK_ROWS) { /* rows in groups, as pack_b */
        const int64_t k1 = k0 + LF_PACK_ROWS < K ? k0 + LF_PACK_ROWS : K;
        for (int64_t j = 0; j < N; j += GEMM_NR) {
            const int64_t cols = N - j < GEMM_NR ? N - j : GEMM_NR;
            for (int64_t k = k0; k < k1; k++) {
                REAL *d = dst + (j / GEMM_NR * K + k) * GEMM_NR;
                for (int64_t n = 0; n < GEMM_NR; n++) d[n] = n < cols ? B[k * ldb + j + n] : 0;
            }
        }
    }
    return LF_OK;
}

/* Runs the product g describes (every field but the split's). */
static int FN(gemm_exec)(FN(gemm_ctx) * g, int n_threads) {
    const int64_t M = g->M, N = g->N, K = g->K;
    if (M == 0 || N == 0) return LF_OK;
    if (K == 0) { /* an empty sum */
        if (!g->accumulate)
            for (int64_t i = 0; i < M; i++) {
                REAL *c = FN(gemm_c_row)(g, i);
                for (int64_t n = 0; n < N; n++) c[n] = 0;
            }
        return LF_OK;
    }
    /* Splitting M makes every thread pack all of B (K x N), splitting N all
     * of A (M x K): split the larger of M and N. */
    g->few_rows = M <= LF_FEW_ROWS && !g->trans_b && !g->bp && M == g->M0;
    g->split_n = N > M || g->few_rows;
    /* Parts of whole vectors of columns where B is packed per part: at N =
     * 200 (the seed model's weight gradients) whole panels of 64 split 128
     * and 72; a prepacked B keeps its panels whole. */
    g->tile = !g->split_n ? GEMM_MR : g->bp ? GEMM_NR : U;
    const int64_t tiles = ((g->split_n ? N : M) + g->tile - 1) / g->tile;
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    int64_t nth = n_threads < 1 ? 1 : n_threads;
    if (nth > tiles) nth = tiles;
    if (flops < 4e5) nth = 1; /* waking the team costs more */
    /* A few parts per thread, so that a thread that loses its core to another
     * process leaves most of its share to the others; but without the shared
     * packing (below) each part packs again the operand that is not split
     * (all of op(A) when N is split), so parts stay at least LF_GEMM_MIN_PART
     * columns or rows wide. */
    int64_t parts = nth * LF_GEMM_PARTS_PER_THREAD;
    if (parts > (g->split_n ? N : M) / LF_GEMM_MIN_PART) parts = (g->split_n ? N : M) / LF_GEMM_MIN_PART;
    if (parts < nth) parts = nth;
    lf_counter counters[2 * LF_GEMM_MAX_THREADS];
    lf_counter *heap = NULL;
    if (nth > LF_GEMM_MAX_THREADS && !(heap = lf_alloc(2 * (size_t)nth * sizeof(lf_counter))))
        return LF_ENOMEM;
    /* Each part packed all of the operand that is not split, again (8 parts
     * of the large layer's dz @ kernel.T each transposed all 4 MB of kernel;
     * of its weight gradients, each packed all 13 MB of [x | hprev | 1]):
     * pack it once, shared, in a first phase, when the packing that saves is
     * 256 KB or more (below, the extra phase costs about what it saves; from
     * 1 MB of the operand instead, the medium layer's dz @ kernel.T, 8 parts
     * of a 512 KB kernel, took 1.2 times as long and a batch-1 x @ kernel
     * 1.04) and the operand at most 64 MB (beyond, or without the memory,
     * each part packs its own blocks as before). The buffer is allocated per
     * call: below glibc's 32 MB mmap ceiling, freeing one raises its mmap
     * threshold past that size, so the next ones come from the heap without
     * new page faults. */
#define LF_SHARED_PACK(len)                                                                   \
    ((double)(parts - 1) * (double)(len) * sizeof(REAL) >= 256.0 * 1024 &&                     \
     (double)(len) * sizeof(REAL) <= 64.0 * 1024 * 1024)
    if (parts > 1 && !g->few_rows && !g->split_n && !g->bp) {
        const int64_t len = (N + GEMM_NR - 1) / GEMM_NR * GEMM_NR * K;
        if (LF_SHARED_PACK(len)) {
            g->b_shared = lf_alloc((size_t)len * sizeof(REAL));
            g->bp = g->b_shared; /* the parts read it as a prepacked B */
        }
    } else if (parts > 1 && !g->few_rows && g->split_n) {
        const int64_t len = (M + GEMM_MR - 1) / GEMM_MR * GEMM_MR * K;
        /* parts of at most one panel read A in place (gemm_part): nothing to share */
        const int64_t vectors = (N + U - 1) / U, widest = (vectors + parts - 1) / parts * U;
        if (LF_SHARED_PACK(len) && (g->trans_a || widest > GEMM_NR))
            g->a_shared = lf_alloc((size_t)len * sizeof(REAL));
    }
#undef LF_SHARED_PACK
    lf_phases_init(&g->ph, (int)nth, parts, heap ? heap : counters);
    lf_parallel_run_shared(FN(gemm_task), g, &g->ph, (int)nth, flops);
    lf_free(heap);
    const int ok = lf_phases_finished(&g->ph, g->a_shared || g->b_shared ? 1 : 0);
    lf_free(g->b_shared);
    lf_free(g->a_shared);
    return ok ? LF_OK : LF_ENOMEM;
}

static int FN(gemm_run)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const REAL *A,
                        int64_t lda, const REAL *B, int64_t ldb, const REAL *bp, int accumulate,
                        REAL *C, int64_t ldc, int n_threads) {
    FN(gemm_ctx) g = {.trans_a = trans_a, .trans_b = trans_b, .accumulate = accumulate,
                      .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc,
                      .A = A, .B = B, .bp = bp, .C = C, .M0 = M};
    return FN(gemm_exec)(&g, n_threads);
}

int FN(lf_gemm)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const REAL *A,
                int64_t lda, const REAL *B, int64_t ldb, int accumulate, REAL *C, int64_t ldc,
                int n_threads) {
    return FN(gemm_run)(trans_a, trans_b, M, N, K, A, lda, B, ldb, NULL, accumulate, C, ldc,
                        n_threads);
}

/* C (+)= op(A) @ B with B given packed by lf_gemm_pack: bit-identical to
 * lf_gemm on the same B (the same blocks, summed in the same order). */
int FN(lf_gemm_prepacked)(int trans_a, int64_t M, int64_t N, int64_t K, const REAL *A,
                          int64_t lda, const REAL *bp, int accumulate, REAL *C, int64_t ldc,
                          int n_threads) {
    return FN(gemm_run)(trans_a, 0, M, N, K, A, lda, NULL, N, bp, accumulate, C, ldc,
                        n_threads);
}

/* The weight gradients of an LSTM layer in one product over the B*T rows:
 * dk (I, N) (+)= x.T @ dz, dr (H, N) (+)= hprev.T @ dz and, if db is given,
 * db (N) (+)= the column sums of dz, as [x | hprev | 1].T @ dz (x (K, I),
 * hprev (K, H), dz (K, N), all row-major and contiguous). One team wake-up
 * and one packing of dz instead of two, and the bias gradient is a row of
 * the product (at the seed model's sizes the separate products and NumPy's
 * column sum took ~200 us, this ~150). dk's and dr's elements are those of
 * the separate products bit for bit (the same sums in the same order). */
int FN(lf_gemm_weight_grads)(int64_t K, int64_t N, const REAL *x, int64_t I, const REAL *hprev,
                             int64_t H, const REAL *dz, int accumulate, REAL *dk, REAL *dr,
                             REAL *db, int n_threads) {
    FN(gemm_ctx) g = {.trans_a = 1, .accumulate = accumulate, .M = I + H + (db != NULL), .N = N,
                      .K = K, .lda = I, .ldb = N, .ldc = N, .A = x, .B = dz, .C = dk,
                      .M0 = I, .M1 = H, .A1 = hprev, .lda1 = H, .C1 = dr, .ldc1 = N, .C2 = db};
    return FN(gemm_exec)(&g, n_threads);
}

#undef KC
#undef MC
#undef NC
#undef GEMM_NR
#undef LF_FEW_ROWS
#undef LF_GEMM_REMAINDER
#undef LF_GEMM_VECTORS
#undef LF_GEMM_MIDDLE
#undef LF_PACK_ROWS
