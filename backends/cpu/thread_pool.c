/* thread_pool.c — persistent workers: spin briefly, then sleep on a condition variable.
 *
 * A worker takes part in a job only if it joins before the caller has finished its own share and
 * closed the job; the caller then waits for the workers that joined, not for all of them. On a
 * machine shared with other programs a descheduled worker therefore never holds up an operation:
 * the threads that run take all the chunks. */
#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Idle threads spin with `pause` for PAUSE_NS, then keep checking while yielding the core to other
 * runnable threads until SPIN_NS, then sleep. Ops of one forward pass follow each other within
 * microseconds; between tokens or requests the pool sleeps and costs nothing. */
#define PAUSE_NS 30000
#define SPIN_NS 200000

/* job_state: bits 0-31 workers inside the job, bit 32 closed, bits 33-63 the job's generation. */
#define STATE_COUNT(s) ((uint32_t)(s))
#define STATE_CLOSED ((uint64_t)1 << 32)
#define STATE_GEN(g) ((uint64_t)(g) << 33)
#define STATE_GEN_OF(s) ((s) >> 33)
#define GEN_MASK ((((uint64_t)1) << 31) - 1)

typedef struct job {
    tfm_pool_fn fn;
    void *ctx;
    int64_t n_chunks;
    int64_t grain;
} job;

struct tfm_thread_pool {
    int n_threads;
    pthread_t *threads;

    job current;
    _Atomic int64_t next_chunk;     /* shared work counter of the current job */
    _Atomic uint64_t generation;    /* bumped for each job (and for shutdown) */
    _Atomic uint64_t job_state;
    _Atomic int sleepers;           /* threads blocked (or about to block) on `wake` / `done` */
    _Atomic int shutdown;

    pthread_mutex_t mutex;
    pthread_cond_t wake;            /* workers wait here for a new generation */
    pthread_cond_t done;            /* the caller waits here for the joined workers */
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One round of waiting; returns 0 once the thread should go to sleep. */
typedef struct spin {
    int64_t start;
    int i;
} spin;
static int spin_once(spin *s) {
    cpu_relax();
    if ((++s->i & 63) != 0)
        return 1;
    int64_t t = now_ns();
    if (s->start == 0)
        s->start = t;
    if (t - s->start > SPIN_NS)
        return 0;
    if (t - s->start > PAUSE_NS)
        sched_yield();
    return 1;
}

static void run_chunks(tfm_thread_pool *pool, int thread) {
    const job *j = &pool->current;
    for (;;) {
        int64_t begin = atomic_fetch_add_explicit(&pool->next_chunk, j->grain, memory_order_relaxed);
        if (begin >= j->n_chunks)
            break;
        int64_t end = begin + j->grain < j->n_chunks ? begin + j->grain : j->n_chunks;
        j->fn(j->ctx, begin, end, thread);
    }
}

typedef struct worker_arg {
    tfm_thread_pool *pool;
    int thread;
} worker_arg;

/* Waits until the generation differs from `seen`: spinning first, then sleeping. */
static uint64_t wait_generation(tfm_thread_pool *pool, uint64_t seen) {
    uint64_t g;
    spin s = {0, 0};
    for (;;) {
        g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen)
            return g;
        if (!spin_once(&s))
            break;
    }
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add(&pool->sleepers, 1);
    while ((g = atomic_load(&pool->generation)) == seen)
        pthread_cond_wait(&pool->wake, &pool->mutex);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->mutex);
    return g;
}

/* Joins job `g` if it is still open. */
static int try_join(tfm_thread_pool *pool, uint64_t g) {
    uint64_t s = atomic_load(&pool->job_state);
    while (STATE_GEN_OF(s) == (g & GEN_MASK) && !(s & STATE_CLOSED))
        if (atomic_compare_exchange_weak(&pool->job_state, &s, s + 1))
            return 1;
    return 0;
}

static void *worker_main(void *arg) {
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    tfm_thread_pool *pool = a.pool;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_generation(pool, seen);
        if (atomic_load(&pool->shutdown))
            break;
        if (!try_join(pool, seen))
            continue;
        run_chunks(pool, a.thread);
        uint64_t before = atomic_fetch_sub(&pool->job_state, 1);
        if (STATE_COUNT(before) == 1 && (before & STATE_CLOSED) && atomic_load(&pool->sleepers) > 0) {
            /* The caller may be asleep waiting for the last worker. */
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_broadcast(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
    return NULL;
}

tfm_thread_pool *tfm_pool_create(int n_threads) {
    if (n_threads < 1)
        n_threads = 1;
    tfm_thread_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_store(&pool->job_state, STATE_CLOSED);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        tfm_pool_destroy(pool);
        return NULL;
    }
    for (int t = 1; t < n_threads; t++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg) {
            pool->n_threads = t;
            tfm_pool_destroy(pool);
            return NULL;
        }
        arg->pool = pool;
        arg->thread = t;
        if (pthread_create(&pool->threads[t], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->n_threads = t;
            tfm_pool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void tfm_pool_destroy(tfm_thread_pool *pool) {
    if (!pool)
        return;
    if (pool->threads) {
        atomic_store(&pool->shutdown, 1);
        pthread_mutex_lock(&pool->mutex);
        atomic_fetch_add(&pool->generation, 1);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
        for (int t = 1; t < pool->n_threads; t++)
            pthread_join(pool->threads[t], NULL);
        free(pool->threads);
    }
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool);
}

int tfm_pool_threads(const tfm_thread_pool *pool) {
    return pool->n_threads;
}

void tfm_pool_run(tfm_thread_pool *pool, tfm_pool_fn fn, void *ctx, int64_t n_chunks, int64_t grain) {
    if (n_chunks <= 0)
        return;
    int nt = pool->n_threads;
    if (grain <= 0)
        grain = (n_chunks + nt - 1) / nt;
    if (nt == 1 || n_chunks <= grain) {
        fn(ctx, 0, n_chunks, 0);
        return;
    }
    /* Publish the job, open it, then wake the workers. */
    uint64_t g = atomic_load(&pool->generation) + 1;
    pool->current = (job){fn, ctx, n_chunks, grain};
    atomic_store_explicit(&pool->next_chunk, 0, memory_order_relaxed);
    atomic_store(&pool->job_state, STATE_GEN(g & GEN_MASK));
    atomic_store(&pool->generation, g);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }

    run_chunks(pool, 0);

    /* Every chunk is taken: close the job and wait for the workers still inside it. */
    atomic_fetch_or(&pool->job_state, STATE_CLOSED);
    spin s = {0, 0};
    while (STATE_COUNT(atomic_load(&pool->job_state)) != 0) {
        if (spin_once(&s))
            continue;
        pthread_mutex_lock(&pool->mutex);
        atomic_fetch_add(&pool->sleepers, 1);
        while (STATE_COUNT(atomic_load(&pool->job_state)) != 0)
            pthread_cond_wait(&pool->done, &pool->mutex);
        atomic_fetch_sub(&pool->sleepers, 1);
        pthread_mutex_unlock(&pool->mutex);
        break;
    }
}
