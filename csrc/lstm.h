/* lstm_fast engine: the whole C API.
 *
 * Legend: B = batch, T = time steps, I = input features, H = units,
 *         G = 4H (the four gates, column blocks in Keras order i, f, c(g), o).
 *
 * The engine owns the sequential part of an LSTM layer: the time loop with
 * the recurrent GEMM h_{t-1} @ recurrent_kernel fused with the gate
 * nonlinearities and the cell update (forward), and the loop that turns dy
 * into the gate gradients dZ (backward). The time-batched GEMMs around it
 * (x @ kernel over all steps; dZ @ kernel.T, x.T @ dZ, hprev.T @ dZ) are
 * large and are done by the caller's BLAS.
 *
 * Every array is C-contiguous, batch-major, and indexed by original time t
 * whatever the direction; only y is indexed by processing step s
 * (s == t forward, s == T-1-t with go_backwards), as Keras returns it.
 *
 * Functions return LF_OK or a negative LF_E* code; they never print, exit
 * or abort. All outputs are written (not accumulated).
 */
#ifndef LSTM_FAST_LSTM_H
#define LSTM_FAST_LSTM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { LF_OK = 0, LF_ENOMEM = -1, LF_EINVAL = -2 };

/* Instruction-set paths, best last. */
enum { LF_ISA_GENERIC = 0, LF_ISA_AVX2 = 1, LF_ISA_AVX512 = 2, LF_ISA_COUNT = 3 };

typedef struct {
    int64_t B, T, I, H;
    int go_backwards;         /* process t = T-1 .. 0, y in processing order */
    int return_sequences;     /* y is (B, T, H) rather than (B, H)           */
    int zero_output_for_mask; /* masked steps output zeros, not the carried h */
    const int64_t *lengths;   /* (B) or NULL: step t of row b runs iff t < lengths[b] */
} lf_lstm_dims;

/* Forward over the whole sequence.
 * The input projection is either given, xproj (B,T,G) = x @ kernel without
 *   bias (the caller's GEMM over all steps), or, with xproj == NULL, computed
 *   per step inside the loop from x (B,T,I) and kernel (I,G) (for T = 1, the
 *   streaming step, where a separate GEMM call costs more than it saves).
 *   In training mode gates may be the same array as xproj: each element is
 *   read before it is overwritten by its activation.
 * recurrent_kernel (H,G), bias (G) or NULL, h0/c0 (B,H) or NULL (zeros).
 * k_packed, rk_packed: kernel and recurrent_kernel already in the packed
 *   layout of lf_lstm_pack (for the current ISA), or NULL to pack them here.
 * k_half, rk_half: float32 only, inference only: the same two in half
 *   precision (lf_lstm_pack_half), or NULL. With rk_half the loop reads the
 *   weights from these (each converted to float32 as it is loaded; all
 *   arithmetic stays float32) and k_packed, rk_packed are ignored; k_half is
 *   then required when the loop reads kernel (xproj == NULL). The results
 *   are those of float32 weights rounded to half precision. LF_EINVAL where
 *   lf_half_supported() is 0.
 * Outputs: y (B,T,H) or (B,H); h_T, c_T (B,H) (may be NULL; h_T may be y).
 * Training cache (all NULL in inference mode, or all set):
 *   gates (B,T,G) activations i,f,g,o (zeros where masked),
 *   cell (B,T,H) c after step t, hprev (B,T,H) h before step t. */
int lf_lstm_forward_f32(float *y, float *h_T, float *c_T, float *gates, float *cell, float *hprev,
                        const float *xproj, const float *x, const float *kernel,
                        const float *recurrent_kernel, const float *bias, const float *h0,
                        const float *c0, const float *k_packed, const float *rk_packed,
                        const uint16_t *k_half, const uint16_t *rk_half, const lf_lstm_dims *d,
                        int n_threads);
int lf_lstm_forward_f64(double *y, double *h_T, double *c_T, double *gates, double *cell,
                        double *hprev, const double *xproj, const double *x,
                        const double *kernel, const double *recurrent_kernel,
                        const double *bias, const double *h0, const double *c0,
                        const double *k_packed, const double *rk_packed,
                        const uint16_t *k_half, const uint16_t *rk_half, const lf_lstm_dims *d,
                        int n_threads); /* k_half, rk_half must be NULL */

/* The packed layout of a (rows, 4H) weight matrix for the forward loop, for
 * the current ISA: (ceil(H/U), 4/GP, rows, GP, U), the gates of U units in
 * passes of GP (the gates a register tile sums at a time: 2 for AVX2 and the
 * generic build, 4 for AVX-512), zero-padded past unit H. Packing once lets repeated calls on the
 * same weights (inference, streaming) skip it. packed_len returns elements. */
int64_t lf_lstm_packed_len_f32(int64_t rows, int64_t H);
int64_t lf_lstm_packed_len_f64(int64_t rows, int64_t H);
int lf_lstm_pack_f32(float *packed, const float *w, int64_t rows, int64_t H, int n_threads);
/* The same layout in IEEE half precision (binary16, rounded to nearest even;
 * lf_lstm_packed_len_f32 elements of 16 bits): the forward's k_half / rk_half.
 * Half the bytes the loop reads per step, for batch-1 inference, where that
 * reading bounds the step. Values beyond half's range become infinities:
 * the caller checks the range. */
int lf_lstm_pack_half(uint16_t *packed, const float *w, int64_t rows, int64_t H, int n_threads);
/* 1 if the current ISA path runs half-precision weights: all but AVX2 on a
 * CPU without F16C (none is known; a virtual machine may hide it). */
int lf_half_supported(void);
int lf_lstm_pack_f64(double *packed, const double *w, int64_t rows, int64_t H, int n_threads);

/* Backward through the time loop: the gate gradients dZ of every step.
 * dz (B,T,G) out: dL/dz_t (zeros where masked); may be the same array as gates
 *   (the cache is then consumed). dh0, dc0 (B,H) out.
 * dy: (B,T,H) or (B,H) like y, or NULL; dh_T, dc_T (B,H) or NULL.
 * gates, cell, hprev: the forward's training cache; c0 (B,H) or NULL. */
int lf_lstm_backward_f32(float *dz, float *dh0, float *dc0, const float *dy, const float *dh_T,
                         const float *dc_T, const float *gates, const float *cell,
                         const float *c0, const float *recurrent_kernel, const lf_lstm_dims *d,
                         int n_threads);
int lf_lstm_backward_f64(double *dz, double *dh0, double *dc0, const double *dy,
                         const double *dh_T, const double *dc_T, const double *gates,
                         const double *cell, const double *c0, const double *recurrent_kernel,
                         const lf_lstm_dims *d, int n_threads);

/* The threads the time loop of lf_lstm_forward_* (fused: x @ kernel in the loop,
 * xproj NULL; training: with the training cache) or lf_lstm_backward_*
 * (backward, a training loop) asks for with n_threads: one where a second
 * thread's meeting per step would cost more than it saves, or, for inference
 * at batch 1-2, where the call's d->T steps are too few to earn back
 * handing the work to the team (the kernels' blocks_pay).
 * LF_EINVAL for sizes lf_lstm_forward_* refuses, or H or I above 2^40. */
int lf_lstm_loop_threads_f32(const lf_lstm_dims *d, int fused, int training, int backward,
                             int n_threads);
int lf_lstm_loop_threads_f64(const lf_lstm_dims *d, int fused, int training, int backward,
                             int n_threads);

/* ISA dispatch: chosen once at first use from the CPU (or LSTM_FAST_ISA=
 * generic|avx2|avx512), changeable for tests. */
/* C = op(A) @ op(B), or C += op(A) @ op(B) with accumulate; row-major with
 * leading dimensions lda, ldb, ldc; op(A) is (M, K): A itself (M rows of
 * lda) or, with trans_a, the transpose of A stored (K, M); op(B) is (K, N)
 * likewise. Runs on the engine's thread team; the result does not depend on
 * n_threads. LF_EINVAL for inconsistent sizes, LF_ENOMEM without memory. */
int lf_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A,
                int64_t lda, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc,
                int n_threads);
int lf_gemm_f64(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const double *A,
                int64_t lda, const double *B, int64_t ldb, int accumulate, double *C,
                int64_t ldc, int n_threads);

/* B (K, N) packed once for many products with the same B (the kernel of
 * repeated inference): lf_gemm_packed_len_* elements, made by lf_gemm_pack_*
 * on the current ISA path and valid only on it; lf_gemm_prepacked_* is then
 * lf_gemm_* (trans_b = 0) without packing B, with the same results. */
int64_t lf_gemm_packed_len_f32(int64_t K, int64_t N);
int64_t lf_gemm_packed_len_f64(int64_t K, int64_t N);
int lf_gemm_pack_f32(float *dst, const float *B, int64_t K, int64_t N, int64_t ldb);
int lf_gemm_pack_f64(double *dst, const double *B, int64_t K, int64_t N, int64_t ldb);
int lf_gemm_prepacked_f32(int trans_a, int64_t M, int64_t N, int64_t K, const float *A,
                          int64_t lda, const float *bp, int accumulate, float *C, int64_t ldc,
                          int n_threads);
int lf_gemm_prepacked_f64(int trans_a, int64_t M, int64_t N, int64_t K, const double *A,
                          int64_t lda, const double *bp, int accumulate, double *C,
                          int64_t ldc, int n_threads);

/* An LSTM layer's weight gradients in one product over its K = B*T rows:
 * dk (I, N) (+)= x.T @ dz, dr (H, N) (+)= hprev.T @ dz and, unless db is
 * NULL, db (N) (+)= the column sums of dz, computed as [x | hprev | 1].T @ dz;
 * x (K, I), hprev (K, H), dz (K, N) row-major and contiguous. dk and dr equal
 * lf_gemm's separate products bit for bit; db is a sum over the rows in order
 * per block of 256 (as every element of the product), with denormals flushed
 * as in all the engine's kernels. */
int lf_gemm_weight_grads_f32(int64_t K, int64_t N, const float *x, int64_t I, const float *hprev,
                             int64_t H, const float *dz, int accumulate, float *dk, float *dr,
                             float *db, int n_threads);
int lf_gemm_weight_grads_f64(int64_t K, int64_t N, const double *x, int64_t I,
                             const double *hprev, int64_t H, const double *dz, int accumulate,
                             double *dk, double *dr, double *db, int n_threads);

int lf_isa_supported(int isa);            /* 1 if the CPU and the build support it */
int lf_get_isa(void);
int lf_set_isa(int isa);                  /* LF_EINVAL if unsupported */
const char *lf_isa_name(int isa);

/* While held (delta +1, released with -1; nested holds add up), idle pool
 * workers spin for 2 ms after each job instead of tens of microseconds, so
 * that the small calls of a loop with other work between them (a training
 * step at small sizes) find the team awake instead of running alone.
 * Returns the holds now in place. */
int lf_team_hold(int delta);

/* Testing aid: each pool worker waits this many microseconds before it joins
 * a job (0, the default: none), as a worker that lost its core to another
 * process would. Results must not change; calls whose work the others can
 * take over must not wait for it. */
void lf_set_late_workers(int microseconds);

/* One Adam step over n weights, in place (p, m, v; v_hat too when not NULL:
 * amsgrad): m += (g - m) * (1 - beta_1); v += (g * g - v) * (1 - beta_2);
 * v_hat = max(v_hat, v); p -= m * alpha / (sqrt(v or v_hat) + epsilon), each
 * operation rounded as written (the NumPy form in lstm_fast.optimizers). */
int lf_adam_f32(float *p, const float *g, float *m, float *v, float *v_hat, int64_t n,
                float one_minus_beta_1, float one_minus_beta_2, float epsilon, float alpha);
int lf_adam_f64(double *p, const double *g, double *m, double *v, double *v_hat, int64_t n,
                double one_minus_beta_1, double one_minus_beta_2, double epsilon,
                double alpha);

/* Units handled per SIMD block by the current ISA, for float (4-byte) or
 * double (8-byte) elements; exposed so tests can cover the block tails. */
int lf_block_units(int elem_size);

#ifdef __cplusplus
}
#endif
#endif
