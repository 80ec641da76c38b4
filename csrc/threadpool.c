/* The engine's thread team: see threadpool.h. */
#include "threadpool.h"

#include "lstm.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
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
/* Idle spin while the team is held (lf_team_hold): covers the Python work
 * between the engine calls of a training step. */
#define HELD_SPIN_S 2e-3

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
    atomic_ullong entry;      /* job_seq << 32 | workers that entered the job */
    atomic_int caller_asleep; /* the caller sleeps on done                   */
    atomic_int asleep;        /* workers waiting on wake                     */
    atomic_uint nudge_seq;    /* bumped to make sleeping workers spin again  */
    atomic_int held;          /* lf_team_hold: idle workers spin longer      */
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lf_team_hold(int delta) { return atomic_fetch_add(&team.held, delta) + delta; }

static atomic_int late_workers_us;
void lf_set_late_workers(int microseconds) { atomic_store(&late_workers_us, microseconds); }

#define ENTRY_CLOSED 0x80000000ull

/* A member joins job seq unless the caller has closed it (a shared job whose
 * work is all done) or it is already another job: a worker that read
 * job_seq and then lost its core may find the next job published (whose
 * n_members it may have read; it then runs that job on its next turn). */
static int enter_job(unsigned seq) {
    unsigned long long v = atomic_load(&team.entry);
    do {
        if ((unsigned)(v >> 32) != seq || (v & ENTRY_CLOSED)) return 0;
    } while (!atomic_compare_exchange_weak(&team.entry, &v, v + 1));
    return 1;
}

static void *worker_main(void *p) {
    int tid = (int)(intptr_t)p;
    /* Not job_seq as it is now: the job this worker was made for may have
     * been published before the thread got to run. */
    unsigned seen = team.start_seq[tid];
    for (;;) {
        unsigned seq;
        int spins = 0;
        double idle_since = -1;
        while ((seq = atomic_load_explicit(&team.job_seq, memory_order_acquire)) == seen) {
            if (spins++ < IDLE_SPINS) {
                cpu_relax();
                continue;
            }
            if (atomic_load_explicit(&team.held, memory_order_relaxed) > 0) {
                /* a loop of calls with Python work between them (fit): stay
                 * up for the next call, which may be too small to wake us */
                double now = now_s();
                if (idle_since < 0) idle_since = now;
                if (now - idle_since < HELD_SPIN_S) {
                    for (int k = 0; k < 64; k++) cpu_relax();
                    continue;
                }
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
            idle_since = -1;
        }
        seen = seq;
        int late = atomic_load_explicit(&late_workers_us, memory_order_relaxed);
        if (late > 0) usleep((useconds_t)late);
        if (tid < team.n_members && enter_job(seq)) {
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

static int run(lf_task_fn fn, void *arg, lf_barrier *bar, lf_phases *ph, int n_threads,
               double flops) {
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
                if (ph) ph->n = 1;
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
    if (ph) ph->n = n;
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
    unsigned seq = atomic_load_explicit(&team.job_seq, memory_order_relaxed) + 1;
    atomic_store_explicit(&team.entry, (unsigned long long)seq << 32, memory_order_relaxed);
    atomic_store_explicit(&team.job_seq, seq, memory_order_release);
    pthread_cond_broadcast(&team.wake);
    pthread_mutex_unlock(&team.lock);

    fn(arg, 0, n);

    /* Every worker sees every job (members and the others alike); only the
     * members that entered it report done. A shared job's work is all done
     * now: close it to the members that have not started. */
    int expect = n - 1;
    if (ph) expect = (int)(atomic_fetch_or(&team.entry, ENTRY_CLOSED) & 0xffffffffull);
    for (int spins = 0; spins < BARRIER_SPINS; spins++) {
        if (atomic_load_explicit(&team.done, memory_order_acquire) == expect) break;
        cpu_relax();
        if (spins >= BARRIER_YIELD_AFTER && spins % 64 == 0) sched_yield(); /* as in a barrier */
    }
    int done;
    if ((done = atomic_load(&team.done)) < expect) {
        atomic_store(&team.caller_asleep, 1);
        while ((done = atomic_load(&team.done)) < expect) futex_wait(&team.done, done);
        atomic_store(&team.caller_asleep, 0);
    }
    pthread_mutex_unlock(&team.run_lock);
    return n;
}

int lf_parallel_run(lf_task_fn fn, void *arg, lf_barrier *bar, int n_threads, double flops) {
    return run(fn, arg, bar, NULL, n_threads, flops);
}

int lf_parallel_run_shared(lf_task_fn fn, void *arg, lf_phases *ph, int n_threads, double flops) {
    return run(fn, arg, NULL, ph, n_threads, flops);
}

/* ---- phases of shared chunks ------------------------------------------ */

void lf_phases_init(lf_phases *ph, int max_members, int64_t n_chunks, lf_counter *counters) {
    ph->n = max_members;
    ph->n_chunks = n_chunks;
    ph->claimed = counters;
    ph->finished = counters + max_members;
    for (int r = 0; r < 2 * max_members; r++)
        atomic_store_explicit(&counters[r].v, 0, memory_order_relaxed);
    atomic_store_explicit(&ph->word, 0, memory_order_relaxed);
    atomic_store_explicit(&ph->sleepers, 0, memory_order_relaxed);
}

/* Chunk of phase q from owner r's range, or -1 if they are all claimed. The
 * counter can only be behind phase q's range if phase q - 1 is unfinished,
 * which a caller of phase q has waited for. */
static int64_t claim_from(lf_phases *ph, int r, int64_t q, int reverse) {
    const int64_t c0 = ph->n_chunks * r / ph->n, c1 = ph->n_chunks * (r + 1) / ph->n;
    const int64_t len = c1 - c0;
    if (len == 0) return -1;
    long long v = atomic_load_explicit(&ph->claimed[r].v, memory_order_relaxed);
    if (v >= (q + 1) * len) return -1;
    if (ph->n == 1) /* alone: no locked instruction */
        atomic_store_explicit(&ph->claimed[r].v, v + 1, memory_order_relaxed);
    else
        while (!atomic_compare_exchange_weak_explicit(&ph->claimed[r].v, &v, v + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
            if (v >= (q + 1) * len) return -1;
    const int64_t i = v - q * len;
    return reverse ? c1 - 1 - i : c0 + i;
}

int64_t lf_phases_claim(lf_phases *ph, int tid, int64_t q, int reverse) {
    for (int k = 0; k < ph->n; k++) {
        int64_t c = claim_from(ph, (tid + k) % ph->n, q, reverse);
        if (c >= 0) return c;
    }
    return -1;
}

/* One store per member and phase, not per chunk: a waiter spinning on the
 * counts would otherwise take the line back from the member after each of
 * its chunks. A member that has finished its chunks but not yet published
 * them holds the others up as one running its last chunk would. */
void lf_phases_publish(lf_phases *ph, int tid, int64_t n_done) {
    if (n_done > 0) {
        long long v = atomic_load_explicit(&ph->finished[tid].v, memory_order_relaxed);
        atomic_store_explicit(&ph->finished[tid].v, v + n_done, memory_order_release);
    }
    /* sleepers is read after the count (the fence) and a sleeper reads the
     * counts after announcing itself: one of them sees the other */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&ph->sleepers) > 0) {
        atomic_fetch_add(&ph->word, 1);
        futex_wake_all(&ph->word);
    }
}

int lf_phases_finished(lf_phases *ph, int64_t q) {
    long long sum = 0;
    for (int r = 0; r < ph->n; r++) sum += atomic_load(&ph->finished[r].v);
    return sum >= (q + 1) * ph->n_chunks;
}

/* As lf_barrier_wait: spin, yield to a late member, then sleep (woken by
 * lf_phases_publish). */
void lf_phases_wait(lf_phases *ph, int64_t q) {
    for (int spins = 0; spins < BARRIER_SPINS; spins++) {
        if (lf_phases_finished(ph, q)) return;
        cpu_relax();
        if (spins >= BARRIER_YIELD_AFTER && spins % 64 == 0) sched_yield();
    }
    atomic_fetch_add(&ph->sleepers, 1);
    for (;;) {
        int w = atomic_load(&ph->word);
        if (lf_phases_finished(ph, q)) break;
        futex_wait(&ph->word, w);
    }
    atomic_fetch_sub(&ph->sleepers, 1);
}
