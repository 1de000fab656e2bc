/* cpu_backend.c — the cpu backend's table: instance, host memory, weights, and the operations'
 * argument checks. The kernels are in matmul.c, attention.c and elementwise.c. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cpu_features.h"
#include "cpu_internal.h"
#include "repack.h"
#include "weight_arena.h"

tfm_status tfm_cpu_error(tfm_backend *be, tfm_status status, const char *fmt, ...) {
    if (be && be->host.set_error) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        be->host.set_error("%s", msg);
    }
    return status;
}

/* The backend names dtypes itself: it links nothing of the core. */
static const char *dtype_name(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_F32: return "f32";
    case TFM_DTYPE_F16: return "f16";
    case TFM_DTYPE_BF16: return "bf16";
    case TFM_DTYPE_I32: return "i32";
    case TFM_DTYPE_Q8_0: return "q8_0";
    case TFM_DTYPE_Q4_0: return "q4_0";
    case TFM_DTYPE_Q4_K: return "q4_k";
    case TFM_DTYPE_Q6_K: return "q6_k";
    case TFM_DTYPE_Q5_K: return "q5_k";
    }
    return "unknown";
}

static int online_cores(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int cpu_available(void) {
    return 1;
}

static void cpu_destroy(tfm_backend *be) {
    if (!be)
        return;
    tfm_pool_destroy(be->pool);
    if (be->scratch) {
        for (int t = 0; t < be->n_threads; t++)
            free(be->scratch[t]);
        free(be->scratch);
    }
    free(be->act);
    tfm_arena_destroy(&be->arena);
    free(be->rope.cs);
    pthread_mutex_destroy(&be->lock);
    free(be);
}

static tfm_status cpu_init(const tfm_backend_init_params *params, const tfm_backend_host *host,
                           tfm_backend **out) {
    *out = NULL;
    tfm_backend *be = calloc(1, sizeof *be);
    if (!be) {
        if (host && host->set_error)
            host->set_error("cpu backend: out of memory allocating the instance");
        return TFM_E_OOM;
    }
    if (host)
        be->host = *host;
    pthread_mutex_init(&be->lock, NULL);
    int n = params ? params->n_threads : 0;
    if (n < 0) {
        tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: n_threads is %d, expected >= 0", n);
        cpu_destroy(be);
        return TFM_E_INVALID_ARGUMENT;
    }
    be->n_threads = n > 0 ? n : online_cores();
    be->k = tfm_cpu_pick_kernels();
    be->matvec_max_n = be->k->matvec_max_n;
    const char *env = getenv("TFM_CPU_MATVEC_MAX_N");
    if (env && *env)
        be->matvec_max_n = atoi(env);
    env = getenv("TFM_CPU_REPACK");
    be->repack = !(env && strcmp(env, "0") == 0);
    be->scratch = calloc((size_t)be->n_threads, sizeof *be->scratch);
    be->pool = be->scratch ? tfm_pool_create(be->n_threads) : NULL;
    if (!be->pool) {
        tfm_cpu_error(be, TFM_E_OOM, "cpu backend: cannot start a pool of %d threads", be->n_threads);
        cpu_destroy(be);
        return TFM_E_OOM;
    }
    /* Our pool's threads each call a single-threaded sgemm on their own tiles; OpenBLAS's own
     * threads would compete with them for the same cores. */
    openblas_set_num_threads(1);
    if (be->host.log)
        be->host.log(TFM_LOG_INFO, "cpu backend: %d threads, %s kernels, OpenBLAS %s", be->n_threads,
                     be->k->name, openblas_get_corename());
    *out = be;
    return TFM_OK;
}

tfm_status tfm_cpu_reserve_scratch(tfm_backend *be, size_t floats) {
    if (floats <= be->scratch_floats)
        return TFM_OK;
    /* Attention's need grows by one float per decoded token: grow by doubling, so that a decode
     * step does not free and allocate every thread's scratch each time. */
    if (floats < 2 * be->scratch_floats)
        floats = 2 * be->scratch_floats;
    for (int t = 0; t < be->n_threads; t++) {
        free(be->scratch[t]);
        be->scratch[t] = NULL;
        if (posix_memalign((void **)&be->scratch[t], 64, floats * sizeof(float)) != 0) {
            be->scratch[t] = NULL;
            be->scratch_floats = 0;
            for (int u = 0; u < t; u++) {
                free(be->scratch[u]);
                be->scratch[u] = NULL;
            }
            return tfm_cpu_error(be, TFM_E_OOM, "cpu backend: cannot allocate %zu bytes of scratch per thread",
                                 floats * sizeof(float));
        }
    }
    be->scratch_floats = floats;
    return TFM_OK;
}

tfm_status tfm_cpu_reserve_act(tfm_backend *be, size_t bytes) {
    if (bytes <= be->act_bytes)
        return TFM_OK;
    free(be->act);
    be->act_bytes = 0;
    if (posix_memalign(&be->act, 64, bytes) != 0) {
        be->act = NULL;
        return tfm_cpu_error(be, TFM_E_OOM, "cpu backend: cannot allocate %zu bytes for quantised activations", bytes);
    }
    be->act_bytes = bytes;
    return TFM_OK;
}

/* ---- memory ---- */

static void *cpu_alloc(tfm_backend *be, size_t bytes) {
    size_t size = (bytes + 63) & ~(size_t)63;
    if (size < bytes || size == 0)
        size = size < bytes ? 0 : 64;
    void *p = NULL;
    if (size == 0 || posix_memalign(&p, 64, size) != 0) {
        tfm_cpu_error(be, TFM_E_OOM, "cpu backend: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, size);
    return p;
}

static void cpu_free(tfm_backend *be, void *ptr) {
    (void)be;
    free(ptr);
}

static tfm_status cpu_copy(tfm_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes)
        memmove(dst, src, bytes);
    return TFM_OK;
}

static void cpu_mem_info(tfm_backend *be, size_t *free_bytes, size_t *total_bytes) {
    (void)be;
    /* Host memory is the operating system's business (weights are mapped, not allocated). */
    if (free_bytes)
        *free_bytes = 0;
    if (total_bytes)
        *total_bytes = 0;
}

/* ---- weights ---- */

typedef struct pack_job {
    const tfm_weight *w;
    size_t row_bytes;
    void *packed;
} pack_job;

static void pack_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const pack_job *j = ctx;
    tfm_repack_groups(j->w->dtype, j->w->data, j->row_bytes, j->w->cols, begin, end, j->packed);
}

/* The packed rows of a model file's mapping are not read again: drop their pages from this process
 * (they stay in the page cache and read back from the file if ever touched). Whole pages only. */
static void release_source(const void *p, size_t bytes) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (page == 0 || (page & (page - 1)))
        return;
    uintptr_t begin = ((uintptr_t)p + page - 1) & ~(page - 1), end = ((uintptr_t)p + bytes) & ~(page - 1);
    if (end > begin)
        (void)madvise((void *)begin, end - begin, MADV_DONTNEED);
}

static tfm_status pack_weight(tfm_backend *be, tfm_weight *w) {
    size_t row_bytes = tfm_cpu_row_bytes(w->dtype, w->cols);
    int64_t groups = w->rows / TFM_PACK_ROWS;
    size_t bytes = (size_t)groups * TFM_PACK_ROWS * row_bytes;
    pthread_mutex_lock(&be->lock);
    void *packed = tfm_arena_alloc(&be->arena, bytes);
    if (packed) {
        pack_job job = {w, row_bytes, packed};
        tfm_pool_run(be->pool, pack_chunk, &job, groups, 0);
    }
    pthread_mutex_unlock(&be->lock);
    if (!packed)
        return tfm_cpu_error(be, TFM_E_OOM, "cpu backend: cannot allocate %zu bytes for a packed %lld x %lld %s weight",
                             bytes, (long long)w->rows, (long long)w->cols, dtype_name(w->dtype));
    if (w->flags & TFM_WEIGHT_HOST_MAPPED)
        release_source(w->data, bytes);
    w->backend_data = packed;
    return TFM_OK;
}

/* A float matrix read from the model file's mapping is copied onto the arena's huge pages (see
 * weight_arena.h: a decode step streams it once per token, a TLB miss every 4 KB otherwise), and
 * the file's pages are dropped from this process. Nothing to gain for memory the caller owns. */
static void copy_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const pack_job *j = ctx;
    memcpy((char *)j->packed + (size_t)begin * j->row_bytes, (const char *)j->w->data + (size_t)begin * j->row_bytes,
           (size_t)(end - begin) * j->row_bytes);
}

static tfm_status copy_float_weight(tfm_backend *be, tfm_weight *w) {
    size_t row_bytes = tfm_cpu_row_bytes(w->dtype, w->cols), bytes = (size_t)w->rows * row_bytes;
    pthread_mutex_lock(&be->lock);
    void *copy = tfm_arena_alloc(&be->arena, bytes);
    if (copy) {
        pack_job job = {w, row_bytes, copy}; /* the threads fault the source and huge pages in together */
        tfm_pool_run(be->pool, copy_chunk, &job, w->rows, 0);
    }
    pthread_mutex_unlock(&be->lock);
    if (!copy)
        return tfm_cpu_error(be, TFM_E_OOM, "cpu backend: cannot allocate %zu bytes for a %lld x %lld %s weight",
                             bytes, (long long)w->rows, (long long)w->cols, dtype_name(w->dtype));
    release_source(w->data, bytes);
    w->data = copy;
    w->backend_data = copy;
    return TFM_OK;
}

static int is_float_dtype(tfm_dtype t) {
    return t == TFM_DTYPE_F32 || t == TFM_DTYPE_F16 || t == TFM_DTYPE_BF16;
}

static tfm_status cpu_weight_load(tfm_backend *be, tfm_weight *w, const void *host, tfm_dtype dtype,
                                  int64_t rows, int64_t cols) {
    if (!w || !host || rows <= 0 || cols <= 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT,
                             "cpu backend: weight_load needs data and positive rows, cols (got %lld x %lld)",
                             (long long)rows, (long long)cols);
    if ((unsigned)dtype >= TFM_CPU_DTYPE_SLOTS || (!be->k->matvec[dtype] && !be->k->matvec_q[dtype]) ||
        !be->k->to_f32[dtype])
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED, "cpu backend: weights of dtype %s are not supported",
                             dtype_name(dtype));
    if (tfm_cpu_row_bytes(dtype, cols) == 0)
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED,
                             "cpu backend: %lld columns of %s do not make whole blocks",
                             (long long)cols, dtype_name(dtype));
    tfm_weight loaded = {host, dtype, rows, cols, NULL, w->flags};
    /* Weights that are multiplied and have packed kernels get a packed copy, float matrices from the
     * file's mapping a plain copy on huge pages; everything else (and a packed weight's embedding rows
     * and last rows % 16 rows) is read from `host` in place. */
    if (be->repack && !(w->flags & TFM_WEIGHT_EMBED_ONLY) && rows >= TFM_PACK_ROWS && be->k->matvec_packed[dtype] && tfm_packable(dtype)) {
        tfm_status st = pack_weight(be, &loaded);
        if (st != TFM_OK)
            return st;
    } else if (be->repack && !(w->flags & TFM_WEIGHT_EMBED_ONLY) && (w->flags & TFM_WEIGHT_HOST_MAPPED) &&
               is_float_dtype(dtype)) {
        tfm_status st = copy_float_weight(be, &loaded);
        if (st != TFM_OK)
            return st;
    }
    *w = loaded;
    return TFM_OK;
}

static void cpu_weight_free(tfm_backend *be, tfm_weight *w) {
    if (w && w->backend_data) {
        pthread_mutex_lock(&be->lock);
        tfm_arena_free(&be->arena, w->backend_data);
        pthread_mutex_unlock(&be->lock);
        w->backend_data = NULL;
    }
}

/* ---- operations: check, lock, run ---- */

static int is_kv_dtype(tfm_dtype t) { return is_float_dtype(t); }

#define LOCKED(be, call)                       \
    do {                                       \
        pthread_mutex_lock(&(be)->lock);       \
        tfm_status st_ = (call);               \
        pthread_mutex_unlock(&(be)->lock);     \
        return st_;                            \
    } while (0)

static tfm_status check_matmul(tfm_backend *be, const tfm_weight *w, const float *x, const float *y, int n) {
    if (!w || !w->data || !x || !y || n < 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: matmul with a missing weight or buffer");
    if ((unsigned)w->dtype >= TFM_CPU_DTYPE_SLOTS || (!be->k->matvec[w->dtype] && !be->k->matvec_q[w->dtype]))
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED, "cpu backend: matmul over %s weights is not supported",
                             dtype_name(w->dtype));
    if (tfm_cpu_row_bytes(w->dtype, w->cols) == 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: matmul weight has %lld columns",
                             (long long)w->cols);
    return TFM_OK;
}

static tfm_status cpu_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n) {
    tfm_status st = check_matmul(be, w, x, y, n);
    if (st != TFM_OK || n == 0)
        return st;
    LOCKED(be, tfm_cpu_matmul(be, w, x, y, n));
}

static tfm_status cpu_matmul_shared(tfm_backend *be, const tfm_weight *const *w, int count, const float *x,
                                    float *const *y, int n) {
    if (!w || !y || count < 1 || count > TFM_CPU_SHARED_MAX)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: matmul_shared over %d weights (1 to %d)",
                             count, TFM_CPU_SHARED_MAX);
    for (int i = 0; i < count; i++) {
        tfm_status st = check_matmul(be, w[i], x, y[i], n);
        if (st != TFM_OK)
            return st;
        if (w[i]->cols != w[0]->cols)
            return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: matmul_shared over %lld and %lld columns",
                                 (long long)w[0]->cols, (long long)w[i]->cols);
    }
    if (n == 0)
        return TFM_OK;
    LOCKED(be, tfm_cpu_matmul_shared(be, w, count, x, y, n));
}

static tfm_status cpu_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out) {
    if (!table || !table->data || !ids || !out || n < 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: embed with a missing table or buffer");
    if ((unsigned)table->dtype >= TFM_CPU_DTYPE_SLOTS || !be->k->to_f32[table->dtype])
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED, "cpu backend: embedding tables of %s are not supported",
                             dtype_name(table->dtype));
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= table->rows)
            return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: token id %d outside [0, %lld)",
                                 ids[i], (long long)table->rows);
    LOCKED(be, tfm_cpu_embed(be, table, ids, n, out));
}

static tfm_status cpu_rmsnorm(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim,
                              float eps) {
    if (!x || !g || !g->data || !y || n < 0 || dim <= 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: rmsnorm with bad arguments (dim %d)", dim);
    if (g->dtype != TFM_DTYPE_F32)
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED, "cpu backend: rmsnorm gain must be f32, got %s",
                             dtype_name(g->dtype));
    LOCKED(be, tfm_cpu_rmsnorm(be, x, g->data, y, n, dim, eps));
}

static tfm_status cpu_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                           const float *inv_freq, tfm_rope_pairing pairing) {
    if (!x || !inv_freq || n < 0 || n_head <= 0 || head_dim <= 0 || (head_dim & 1) || pos0 < 0 ||
        (pairing != TFM_ROPE_ADJACENT && pairing != TFM_ROPE_HALF))
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT,
                             "cpu backend: rope with bad arguments (head_dim %d must be even, pairing %d)",
                             head_dim, (int)pairing);
    LOCKED(be, tfm_cpu_rope(be, x, n, n_head, head_dim, pos0, inv_freq, pairing));
}

static tfm_status cpu_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src,
                               int n, int width) {
    if (!cache || !src || row0 < 0 || n < 0 || width <= 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: kv_store with bad arguments");
    if (!is_kv_dtype(kv_dtype))
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED, "cpu backend: KV cache of %s is not supported",
                             dtype_name(kv_dtype));
    LOCKED(be, tfm_cpu_kv_store(be, cache, kv_dtype, row0, src, n, width));
}

static tfm_status cpu_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                int head_dim, float scale, int causal) {
    if (!q || !k_cache || !v_cache || !out || n < 0 || pos0 < 0 || n_head <= 0 || n_head_kv <= 0 ||
        head_dim <= 0 || n_head % n_head_kv != 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT,
                             "cpu backend: attention with bad arguments (%d heads over %d kv heads)", n_head,
                             n_head_kv);
    if (!is_kv_dtype(kv_dtype))
        return tfm_cpu_error(be, TFM_E_UNSUPPORTED, "cpu backend: KV cache of %s is not supported",
                             dtype_name(kv_dtype));
    LOCKED(be, tfm_cpu_attention(be, q, k_cache, v_cache, kv_dtype, out, n, pos0, n_head, n_head_kv, head_dim,
                                 scale, causal));
}

static tfm_status cpu_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count) {
    if (!gate || !up || !out)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: swiglu with a missing buffer");
    LOCKED(be, tfm_cpu_swiglu(be, gate, up, out, count));
}

static tfm_status cpu_add(tfm_backend *be, float *x, const float *y, size_t count) {
    if (!x || !y)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: add with a missing buffer");
    LOCKED(be, tfm_cpu_add(be, x, y, count));
}

static tfm_status cpu_sync(tfm_backend *be) {
    (void)be; /* every operation has finished when it returns */
    return TFM_OK;
}

static const tfm_backend_ops cpu_ops = {
    .abi_version = TFM_BACKEND_ABI_VERSION,
    .name = "cpu",
    .score = 10,
    .available = cpu_available,
    .init = cpu_init,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .mem_info = cpu_mem_info,
    .weight_load = cpu_weight_load,
    .weight_free = cpu_weight_free,
    .matmul = cpu_matmul,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .sync = cpu_sync,
    .step_begin = NULL,
    .step_end = NULL,
    .matmul_shared = cpu_matmul_shared,
};

const tfm_backend_ops *tfm_cpu_backend_ops(void) {
    return &cpu_ops;
}
