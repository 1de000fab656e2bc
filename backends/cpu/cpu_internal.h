/* cpu_internal.h — the cpu backend's instance and the operations shared between its files. */
#ifndef TFM_CPU_INTERNAL_H
#define TFM_CPU_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include "backend.h"
#include "kernels.h"
#include "thread_pool.h"
#include "weight_arena.h"

/* RoPE's cos/sin of one position and the frequencies they were made from (elementwise.c). */
typedef struct tfm_rope_cache {
    float *cs;    /* cos[half], sin[half], then freq[half] */
    float *freq;
    int half;     /* 0: empty */
    int pos;
    int capacity; /* halves cs has room for */
} tfm_rope_cache;

struct tfm_backend {
    tfm_backend_host host;
    const tfm_cpu_kernels *k;
    tfm_thread_pool *pool;
    int n_threads;
    /* Up to this many activation rows use the matrix-vector kernels, more use sgemm tiles
     * (TFM_CPU_MATVEC_MAX_N overrides it, for measurements). */
    int matvec_max_n;
    /* Whether block-quantised weights are packed at load (repack.h) when the kernels read packed
     * weights; TFM_CPU_REPACK=0 keeps the file's layout, for measurements. */
    int repack;
    /* Memory of the packed weights (weight_arena.h). */
    tfm_weight_arena *arena;
    /* One operation at a time: sessions on different threads may share a backend instance. */
    pthread_mutex_t lock;
    /* Per-thread scratch (f32 tiles of converted weights, attention scores), grown on demand. */
    float **scratch;
    size_t scratch_floats;
    /* Quantised activations shared by all threads during a matmul over block-quantised weights. */
    void *act;
    size_t act_bytes;
    tfm_rope_cache rope;
};

/* Makes every thread's scratch hold at least `floats` floats. TFM_E_OOM if that fails. */
tfm_status tfm_cpu_reserve_scratch(tfm_backend *be, size_t floats);

/* Makes be->act hold at least `bytes`. TFM_E_OOM if that fails. */
tfm_status tfm_cpu_reserve_act(tfm_backend *be, size_t bytes);

/* Records an error message through the host and returns `status`. */
tfm_status tfm_cpu_error(tfm_backend *be, tfm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Operations (the caller holds be->lock and has checked the arguments). */
tfm_status tfm_cpu_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n);
/* Weights per matmul_shared call. */
#define TFM_CPU_SHARED_MAX 4
tfm_status tfm_cpu_matmul_shared(tfm_backend *be, const tfm_weight *const *w, int count, const float *x,
                                 float *const *y, int n);
tfm_status tfm_cpu_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                             tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                             int head_dim, float scale, int causal);
tfm_status tfm_cpu_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out);
tfm_status tfm_cpu_rmsnorm(tfm_backend *be, const float *x, const float *g, float *y, int n, int dim,
                           float eps);
tfm_status tfm_cpu_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                        const float *inv_freq, tfm_rope_pairing pairing);
tfm_status tfm_cpu_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src,
                            int n, int width);
tfm_status tfm_cpu_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count);
tfm_status tfm_cpu_add(tfm_backend *be, float *x, const float *y, size_t count);

#endif /* TFM_CPU_INTERNAL_H */
