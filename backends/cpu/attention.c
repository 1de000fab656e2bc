/* attention.c — causal grouped-query attention over the KV cache.
 *
 * One pool chunk is one (query, head) pair: scores = q·K[t] * scale for the visible cache rows (the
 * matrix-vector kernel over the head's rows), a max-subtracted softmax, then out = Σ p_t V[t] with out
 * kept in registers while the rows go by (axpy_rows). Each pair is computed the same way on any thread. */
#include <string.h>

#include "cpu_internal.h"

typedef struct attention_job {
    tfm_backend *be;
    const float *q;
    const char *k_cache, *v_cache;
    size_t elem_size;
    tfm_dtype kv_dtype;
    float *out;
    int n, pos0, n_head, n_head_kv, head_dim, causal;
    float scale;
} attention_job;

static void attention_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const attention_job *j = ctx;
    const tfm_cpu_kernels *k = j->be->k;
    float *scores = j->be->scratch[thread];
    int group = j->n_head / j->n_head_kv;
    size_t row_stride = (size_t)j->n_head_kv * (size_t)j->head_dim * j->elem_size;

    for (int64_t c = begin; c < end; c++) {
        int i = (int)(c / j->n_head), h = (int)(c % j->n_head);
        size_t head_offset = (size_t)(h / group) * (size_t)j->head_dim * j->elem_size;
        int n_keys = j->causal ? j->pos0 + i + 1 : j->pos0 + j->n;
        const float *qv = j->q + ((size_t)i * (size_t)j->n_head + (size_t)h) * (size_t)j->head_dim;

        /* The head's cache rows are a matrix of n_keys rows, row_stride bytes apart: the scores are
         * one matrix-vector product with q. */
        k->matvec[j->kv_dtype](j->k_cache + head_offset, row_stride, j->head_dim, 0, n_keys, qv,
                               (size_t)j->head_dim, 1, scores, (size_t)n_keys);
        k->scale(scores, j->scale, n_keys);
        float m = k->max(scores, n_keys);
        float sum = k->exp_sum(scores, n_keys, m);

        /* q is fully read: out may alias it. */
        float *o = j->out + ((size_t)i * (size_t)j->n_head + (size_t)h) * (size_t)j->head_dim;
        memset(o, 0, (size_t)j->head_dim * sizeof(float));
        k->axpy_rows[j->kv_dtype](scores, j->v_cache + head_offset, row_stride, n_keys, o, j->head_dim);
        k->scale(o, 1.0f / sum, j->head_dim);
    }
}

tfm_status tfm_cpu_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                             tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                             int head_dim, float scale, int causal) {
    if (n == 0)
        return TFM_OK;
    tfm_status st = tfm_cpu_reserve_scratch(be, (size_t)pos0 + (size_t)n);
    if (st != TFM_OK)
        return st;
    attention_job job = {
        .be = be, .q = q, .k_cache = k_cache, .v_cache = v_cache,
        .elem_size = kv_dtype == TFM_DTYPE_F32 ? 4 : 2, .kv_dtype = kv_dtype, .out = out,
        .n = n, .pos0 = pos0, .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = head_dim,
        .causal = causal, .scale = scale,
    };
    /* A decode step's heads cost the same: one contiguous share per thread. Causal queries cost more
     * the later they come: one query's heads a turn. */
    tfm_pool_run(be->pool, attention_chunk, &job, (int64_t)n * n_head, n > 1 ? n_head : 0);
    return TFM_OK;
}
