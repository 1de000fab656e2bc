/* thread_pool.h — a persistent pool of worker threads for the cpu backend's operations.
 *
 * A job is a function over a range of chunks [0, n_chunks). Threads (the caller counts as thread 0)
 * take `grain` chunks at a time from a shared counter until none are left, so a thread slowed down by
 * another process simply takes fewer chunks. Kernels must compute each chunk the same way whichever
 * thread runs it: then results do not depend on the number of threads.
 *
 * Idle workers spin for a short while (the next operation usually follows within microseconds) and
 * then sleep on a condition variable, so an idle pool costs no CPU time. One job runs at a time; the
 * caller serialises concurrent users. */
#ifndef TFM_CPU_THREAD_POOL_H
#define TFM_CPU_THREAD_POOL_H

#include <stdint.h>

typedef struct tfm_thread_pool tfm_thread_pool;

/* Runs chunks [begin, end) on thread `thread` (0 .. n_threads-1, for per-thread scratch). */
typedef void (*tfm_pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* Creates a pool of n_threads threads in all (n_threads - 1 workers plus the calling thread).
 * Returns NULL when threads or memory cannot be had. */
tfm_thread_pool *tfm_pool_create(int n_threads);

void tfm_pool_destroy(tfm_thread_pool *pool);

int tfm_pool_threads(const tfm_thread_pool *pool);

/* Runs fn over [0, n_chunks) and returns when every chunk is done. grain <= 0 gives each thread one
 * contiguous turn of n_chunks / n_threads (rounded up): a thread then reads one stream of weights,
 * which the hardware prefetchers follow best (s110m-q4_0 decode on two threads was about 10 % faster
 * than with four turns each); a worker that does not join in time leaves its turn to the others.
 * Small jobs (n_chunks <= grain) run on the calling thread. */
void tfm_pool_run(tfm_thread_pool *pool, tfm_pool_fn fn, void *ctx, int64_t n_chunks, int64_t grain);

#endif /* TFM_CPU_THREAD_POOL_H */
