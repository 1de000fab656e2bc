/* thread_pool.c — persistent workers: spin briefly, then sleep on a condition variable. */
#include "thread_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle thread spins before it sleeps. Ops of one forward pass follow each other within a
 * few microseconds; between tokens or requests the pool goes to sleep and costs nothing. */
#define SPIN_NS 200000

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
    _Atomic int busy_workers;       /* workers still inside the current job */
    _Atomic int sleepers;           /* threads blocked (or about to block) on `wake` / `done` */
    _Atomic int shutdown;

    pthread_mutex_t mutex;
    pthread_cond_t wake;            /* workers wait here for a new generation */
    pthread_cond_t done;            /* the caller waits here for busy_workers == 0 */
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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

/* Waits until *value differs from `seen` (workers: a new generation) — spinning first. */
static uint64_t wait_generation(tfm_thread_pool *pool, uint64_t seen) {
    uint64_t g;
    int64_t start = 0;
    for (int i = 0;; i++) {
        g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen)
            return g;
        cpu_relax();
        if ((i & 63) == 63) {
            int64_t t = now_ns();
            if (start == 0)
                start = t;
            else if (t - start > SPIN_NS)
                break;
        }
    }
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add(&pool->sleepers, 1);
    while ((g = atomic_load(&pool->generation)) == seen)
        pthread_cond_wait(&pool->wake, &pool->mutex);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->mutex);
    return g;
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
        run_chunks(pool, a.thread);
        if (atomic_fetch_sub(&pool->busy_workers, 1) == 1 &&
            atomic_load(&pool->sleepers) > 0) {
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
    if (grain <= 0) {
        grain = n_chunks / ((int64_t)nt * 4);
        if (grain < 1)
            grain = 1;
    }
    if (nt == 1 || n_chunks <= grain) {
        fn(ctx, 0, n_chunks, 0);
        return;
    }
    pool->current = (job){fn, ctx, n_chunks, grain};
    atomic_store_explicit(&pool->next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->busy_workers, nt - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_seq_cst);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }

    run_chunks(pool, 0);

    /* Wait for the workers: spin, then sleep until the last one signals. */
    int64_t start = 0;
    for (int i = 0; atomic_load_explicit(&pool->busy_workers, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 63) == 63) {
            int64_t t = now_ns();
            if (start == 0) {
                start = t;
            } else if (t - start > SPIN_NS) {
                pthread_mutex_lock(&pool->mutex);
                atomic_fetch_add(&pool->sleepers, 1);
                while (atomic_load(&pool->busy_workers) > 0)
                    pthread_cond_wait(&pool->done, &pool->mutex);
                atomic_fetch_sub(&pool->sleepers, 1);
                pthread_mutex_unlock(&pool->mutex);
                break;
            }
        }
    }
}
