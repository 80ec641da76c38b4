/* The engine's thread team: see threadpool.h. */
#include "threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
/* Sleep while *addr == val (returns at once if it already differs). */
static void futex_wait(atomic_int *addr, int val) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake_all(atomic_int *addr) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static void futex_wait(atomic_int *addr, int val) {
    (void)addr;
    (void)val;
    sched_yield();
}
static void futex_wake_all(atomic_int *addr) { (void)addr; }
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spins before a waiter yields (barrier) or sleeps (idle worker). A spin is a
 * pause instruction, ~10-40 ns, so the idle spin lasts tens of microseconds:
 * long enough to catch the next call of a streaming loop, short enough not to
 * hold a core long after the last call (other work, NumPy's included, may
 * follow). */
enum { BARRIER_SPINS = 4000, BARRIER_YIELD_AFTER = 2048, IDLE_SPINS = 2000, MAX_WORKERS = 255 };

void lf_barrier_init(lf_barrier *b, int n) {
    b->n = n;
    atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
    atomic_store_explicit(&b->phase, 0, memory_order_relaxed);
    atomic_store_explicit(&b->sleepers, 0, memory_order_relaxed);
}

/* Spin first (a step of the time loop is microseconds, and waking a sleeper
 * costs more than that); then sleep on a futex, so that when the machine has
 * more runnable threads than cores a waiting member gives its core to the
 * member it is waiting for instead of spinning or yielding at random. */
void lf_barrier_wait(lf_barrier *b) {
    if (b->n <= 1) return;
    int phase = atomic_load(&b->phase);
    if (atomic_fetch_add(&b->arrived, 1) == b->n - 1) {
        atomic_store(&b->arrived, 0);
        atomic_store(&b->phase, phase + 1);
        if (atomic_load(&b->sleepers) > 0) futex_wake_all(&b->phase);
        return;
    }
    for (int spins = 0; spins < BARRIER_SPINS; spins++) {
        if (atomic_load_explicit(&b->phase, memory_order_acquire) != phase) return;
        cpu_relax();
        /* Past the first spins, a member is late: often because another
         * process's (or NumPy's BLAS) threads hold its core. Yielding lends
         * it ours; with nobody else runnable it returns at once. */
        if (spins >= BARRIER_YIELD_AFTER && spins % 64 == 0) sched_yield();
    }
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->phase) == phase) futex_wait(&b->phase, phase);
    atomic_fetch_sub(&b->sleepers, 1);
}

/* ---- the team ---------------------------------------------------------- */

static struct {
    pthread_mutex_t run_lock; /* held by the caller whose task uses the team */
    pthread_mutex_t lock;     /* guards sleeping workers and job publication */
    pthread_cond_t wake;
    int n_workers;            /* workers alive (members 1..n_workers)        */
    atomic_uint job_seq;      /* bumped to publish a job                     */
    atomic_int done;          /* workers finished with the current job       */
    atomic_int caller_asleep; /* the caller sleeps on done                   */
    atomic_int asleep;        /* workers waiting on wake                     */
    atomic_uint nudge_seq;    /* bumped to make sleeping workers spin again  */
    lf_task_fn fn;
    void *arg;
    int n_members; /* members of the current job, caller included */
    unsigned start_seq[MAX_WORKERS + 1]; /* job_seq when each worker was made */
    int atfork_registered;
} team = {
    .run_lock = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static void *worker_main(void *p) {
    int tid = (int)(intptr_t)p;
    /* Not job_seq as it is now: the job this worker was made for may have
     * been published before the thread got to run. */
    unsigned seen = team.start_seq[tid];
    for (;;) {
        unsigned seq;
        int spins = 0;
        while ((seq = atomic_load_explicit(&team.job_seq, memory_order_acquire)) == seen) {
            if (spins++ < IDLE_SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&team.lock);
            unsigned nudge = atomic_load_explicit(&team.nudge_seq, memory_order_relaxed);
            atomic_fetch_add(&team.asleep, 1);
            while (atomic_load_explicit(&team.job_seq, memory_order_acquire) == seen &&
                   atomic_load_explicit(&team.nudge_seq, memory_order_relaxed) == nudge)
                pthread_cond_wait(&team.wake, &team.lock);
            atomic_fetch_sub(&team.asleep, 1);
            pthread_mutex_unlock(&team.lock);
            spins = 0; /* nudged or given a job: spin again before sleeping */
        }
        seen = seq;
        if (tid < team.n_members) {
            team.fn(team.arg, tid, team.n_members);
            atomic_fetch_add(&team.done, 1);
            if (atomic_load(&team.caller_asleep)) futex_wake_all(&team.done);
        }
    }
    return NULL;
}

/* fork(): the child has only the forking thread. Hold run_lock across fork so
 * no job is half-published, and in the child forget the workers it lost. */
static void atfork_prepare(void) { pthread_mutex_lock(&team.run_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&team.run_lock); }
static void atfork_child(void) {
    team.n_workers = 0;
    pthread_mutex_init(&team.lock, NULL);
    pthread_cond_init(&team.wake, NULL);
    pthread_mutex_unlock(&team.run_lock);
}

/* Called with run_lock held. Returns the number of workers now alive. */
static int grow_team(int wanted) {
    if (!team.atfork_registered) {
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) return team.n_workers;
        team.atfork_registered = 1;
    }
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    while (team.n_workers < wanted) {
        pthread_t th;
        pthread_attr_t attr;
        team.start_seq[team.n_workers + 1] =
            atomic_load_explicit(&team.job_seq, memory_order_relaxed);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)(team.n_workers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        team.n_workers++;
    }
    return team.n_workers;
}

int lf_parallel_run(lf_task_fn fn, void *arg, lf_barrier *bar, int n_threads, double flops) {
    int n = n_threads < 1 ? 1 : n_threads;
    int have_team = 0;
    if (n > 1) {
        if (pthread_mutex_trylock(&team.run_lock) == 0) {
            have_team = 1;
            if (flops < LF_COLD_FLOPS && (team.n_workers < n - 1 || atomic_load(&team.asleep))) {
                /* cold team, small task: alone now, then wake the workers to
                 * spin for the calls that may follow */
                pthread_mutex_unlock(&team.run_lock);
                if (bar) lf_barrier_init(bar, 1);
                fn(arg, 0, 1);
                if (pthread_mutex_trylock(&team.run_lock) == 0) {
                    grow_team(n - 1);
                    pthread_mutex_lock(&team.lock);
                    atomic_fetch_add_explicit(&team.nudge_seq, 1, memory_order_relaxed);
                    pthread_cond_broadcast(&team.wake);
                    pthread_mutex_unlock(&team.lock);
                    pthread_mutex_unlock(&team.run_lock);
                }
                return 1;
            } else {
                int workers = grow_team(n - 1);
                if (n > workers + 1) n = workers + 1;
            }
        } else {
            n = 1; /* the team is busy with another caller's task */
        }
    }
    if (bar) lf_barrier_init(bar, n);
    if (n == 1) {
        if (have_team) pthread_mutex_unlock(&team.run_lock);
        fn(arg, 0, 1);
        return 1;
    }
    team.fn = fn;
    team.arg = arg;
    team.n_members = n;
    atomic_store_explicit(&team.done, 0, memory_order_relaxed);
    pthread_mutex_lock(&team.lock);
    atomic_fetch_add_explicit(&team.job_seq, 1, memory_order_release);
    pthread_cond_broadcast(&team.wake);
    pthread_mutex_unlock(&team.lock);

    fn(arg, 0, n);

    /* Every worker sees every job (members and the others alike); only the
     * members report done. */
    for (int spins = 0; spins < BARRIER_SPINS; spins++) {
        if (atomic_load_explicit(&team.done, memory_order_acquire) == n - 1) break;
        cpu_relax();
        if (spins >= BARRIER_YIELD_AFTER && spins % 64 == 0) sched_yield(); /* as in a barrier */
    }
    int done;
    if ((done = atomic_load(&team.done)) < n - 1) {
        atomic_store(&team.caller_asleep, 1);
        while ((done = atomic_load(&team.done)) < n - 1) futex_wait(&team.done, done);
        atomic_store(&team.caller_asleep, 0);
    }
    pthread_mutex_unlock(&team.run_lock);
    return n;
}
