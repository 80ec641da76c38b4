/* A persistent team of threads for the time loops (internal to the engine).
 *
 * One task runs on the whole team for a whole sequence: the caller's thread
 * is member 0, pool workers are 1..n-1, and members meet at lf_barrier_wait
 * once per time step. Workers live across calls (spinning briefly, then
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

#define LF_COLD_FLOPS 3e7

#endif
