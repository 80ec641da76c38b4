/* A persistent team of threads for the time loops (internal to the engine).
 *
 * One task runs on the whole team for a whole sequence: the caller's thread
 * is member 0, pool workers are 1..n-1, and members meet once per time step,
 * at lf_barrier_wait or, when any member may do any part of a step's work,
 * at lf_phases_wait (below). Workers live across calls (spinning briefly, then
 * sleeping), so a streaming call per time step does not pay thread start-up.
 *
 * Only one task uses the team at a time; a second caller that finds it busy
 * (another Python thread) runs its task alone on its own thread, which gives
 * the same results since no kernel's arithmetic depends on the thread count.
 * After fork() the child starts with no workers and makes new ones on use.
 */
#ifndef LSTM_FAST_THREADPOOL_H
#define LSTM_FAST_THREADPOOL_H

#include <stdatomic.h>
#include <stdint.h>

typedef void (*lf_task_fn)(void *arg, int tid, int n_threads);

typedef struct {
    int n;
    atomic_int arrived;
    atomic_int phase;
    atomic_int sleepers; /* members asleep on phase (after spinning) */
} lf_barrier;

void lf_barrier_init(lf_barrier *b, int n);
void lf_barrier_wait(lf_barrier *b);

/* Runs fn(arg, tid, n) for tid in 0..n-1 with n <= n_threads and returns n
 * (n < n_threads when the team is busy or workers cannot be created). bar,
 * if not NULL, is initialised for the n members before any of them starts.
 *
 * flops is the task's size. Waking a sleeping worker takes a few hundred
 * microseconds on a virtual machine (measured here: a streaming step went
 * from 25 us to 500 us when called every millisecond), so a task below
 * LF_COLD_FLOPS runs alone on the caller when the workers sleep, and wakes
 * them to spin for the calls that may follow. */
int lf_parallel_run(lf_task_fn fn, void *arg, lf_barrier *bar, int n_threads, double flops);

/* ---- phases of shared chunks (a barrier that lends work) ---------------
 *
 * A task made of phases (the time steps of a sequence), each of n_chunks
 * chunks that may run in any order but must all finish before the next
 * phase starts. Member r owns chunks [n_chunks*r/n, n_chunks*(r+1)/n) of
 * every phase and takes them first (its weights stay in its cache); then it
 * takes whatever the others have not started, and waits only for chunks
 * that are running. A member that loses its core therefore delays a phase
 * by the chunk it holds, not by a whole time slice, as with a barrier.
 * Claims are compare-and-swap on one counter per owner, counting chunks
 * claimed over all phases; completion is one counter per member, published
 * once per phase. */
typedef struct {
    _Alignas(64) atomic_llong v;
} lf_counter;

typedef struct {
    int n;            /* members                                   */
    int64_t n_chunks; /* chunks per phase                          */
    lf_counter *claimed; /* n: chunks of owner r's ranges claimed so far */
    lf_counter *finished; /* n: chunks finished by member r so far     */
    atomic_int word;     /* bumped to wake sleepers                   */
    atomic_int sleepers;
} lf_phases;

/* counters: 2 * max_members lf_counter, 64-byte aligned (lf_alloc). */
void lf_phases_init(lf_phases *ph, int max_members, int64_t n_chunks, lf_counter *counters);
/* The next chunk of phase q for member tid (its own first, in reverse order
 * within each owner's range if reverse), or -1 when every chunk of the phase
 * has been claimed. */
int64_t lf_phases_claim(lf_phases *ph, int tid, int64_t q, int reverse);
/* Member tid has finished n_done more chunks (their results are written);
 * called when lf_phases_claim has no more for it, before lf_phases_wait. */
void lf_phases_publish(lf_phases *ph, int tid, int64_t n_done);
/* Returns when every chunk of phase q has finished (their writes visible). */
void lf_phases_wait(lf_phases *ph, int64_t q);
/* Whether every chunk of phase q has finished. */
int lf_phases_finished(lf_phases *ph, int64_t q);

/* lf_parallel_run for a task that shares its work out through ph (set up by
 * lf_phases_init for n_threads members; its member count is set here to the
 * members that run). A worker that has not started by the time the caller's
 * fn returns skips the job: all the work is done, and a worker that lost its
 * core to another process does not hold up the call. */
int lf_parallel_run_shared(lf_task_fn fn, void *arg, lf_phases *ph, int n_threads, double flops);

#define LF_COLD_FLOPS 3e7

#endif
