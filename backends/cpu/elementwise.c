/* elementwise.c — embedding lookup, RMSNorm, RoPE, KV-cache stores, SwiGLU and residual adds.
 *
 * These are cheap next to the matrix products: small ones (a decode step) run on the calling thread,
 * large ones (a prompt batch) are split into fixed chunks over the pool. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

/* Below this many floats an operation is not worth waking the pool for. */
#define PARALLEL_MIN_FLOATS 32768
/* Chunk of the flat elementwise ops (a multiple of every vector width). */
#define FLAT_CHUNK 4096

/* Grain that keeps small jobs on the calling thread (tfm_pool_run runs n_chunks <= grain inline). */
static int64_t grain_for(int64_t n_chunks, int64_t total_floats) {
    return total_floats < PARALLEL_MIN_FLOATS ? n_chunks : 0;
}

/* ---- embed ---- */

typedef struct embed_job {
    tfm_backend *be;
    const tfm_weight *table;
    size_t row_bytes;
    const int32_t *ids;
    float *out;
} embed_job;

static void embed_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const embed_job *j = ctx;
    for (int64_t i = begin; i < end; i++)
        j->be->k->to_f32[j->table->dtype]((const char *)j->table->data + (size_t)j->ids[i] * j->row_bytes,
                                          j->out + (size_t)i * (size_t)j->table->cols, j->table->cols);
}

tfm_status tfm_cpu_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out) {
    embed_job job = {be, table, tfm_cpu_row_bytes(table->dtype, table->cols), ids, out};
    if (job.row_bytes == 0)
        return tfm_cpu_error(be, TFM_E_INVALID_ARGUMENT, "cpu backend: embedding table has %lld columns",
                             (long long)table->cols);
    tfm_pool_run(be->pool, embed_chunk, &job, n, grain_for(n, (int64_t)n * table->cols));
    return TFM_OK;
}

/* ---- rmsnorm ---- */

typedef struct rmsnorm_job {
    const tfm_cpu_kernels *k;
    const float *x, *g;
    float *y;
    int dim;
    float eps;
} rmsnorm_job;

static void rmsnorm_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const rmsnorm_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        const float *x = j->x + (size_t)i * (size_t)j->dim;
        float ss = j->k->sum_squares(x, j->dim);
        float s = 1.0f / sqrtf(ss / (float)j->dim + j->eps);
        j->k->scale_mul(x, s, j->g, j->y + (size_t)i * (size_t)j->dim, j->dim);
    }
}

tfm_status tfm_cpu_rmsnorm(tfm_backend *be, const float *x, const float *g, float *y, int n, int dim,
                           float eps) {
    rmsnorm_job job = {be->k, x, g, y, dim, eps};
    tfm_pool_run(be->pool, rmsnorm_chunk, &job, n, grain_for(n, (int64_t)n * dim));
    return TFM_OK;
}

/* ---- rope ---- */

typedef struct rope_job {
    float *x;
    int n_head, head_dim, pos0;
    const float *inv_freq;
    tfm_rope_pairing pairing;
    float **scratch;
} rope_job;

/* cs = cos[half], sin[half] of position pos. The angle is a float product, as in the reference
 * implementations; its sine and cosine are taken in double and rounded once. */
static void rope_angles(int pos, const float *inv_freq, int half, float *cs) {
    float p_f = (float)pos;
    for (int p = 0; p < half; p++) {
        double angle = (double)(p_f * inv_freq[p]);
        cs[p] = (float)cos(angle);
        cs[half + p] = (float)sin(angle);
    }
}

/* Rotates the n_head heads of one row by the angles cs. */
static void rope_rotate(float *x, int n_head, int head_dim, tfm_rope_pairing pairing, const float *cs) {
    int half = head_dim / 2;
    /* element a pairs with element a + step; successive pairs start `stride` apart */
    int stride = pairing == TFM_ROPE_ADJACENT ? 2 : 1;
    int step = pairing == TFM_ROPE_ADJACENT ? 1 : half;
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int p = 0; p < half; p++) {
            float *a = v + p * stride, *b = a + step;
            float c = cs[p], s = cs[half + p];
            float x0 = *a, x1 = *b;
            *a = x0 * c - x1 * s;
            *b = x0 * s + x1 * c;
        }
    }
}

static void rope_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const rope_job *j = ctx;
    float *cs = j->scratch[thread];
    for (int64_t i = begin; i < end; i++) {
        rope_angles(j->pos0 + (int)i, j->inv_freq, j->head_dim / 2, cs);
        rope_rotate(j->x + (size_t)i * (size_t)j->n_head * (size_t)j->head_dim, j->n_head, j->head_dim, j->pairing, cs);
    }
}

/* The angles of one position, kept between calls: a decode step rotates q and k of every layer at
 * the same position with the same frequencies, so the sines and cosines are taken once per token.
 * NULL when the memory cannot be had (the caller then computes them itself). */
static const float *cached_angles(tfm_backend *be, int pos, const float *inv_freq, int half) {
    tfm_rope_cache *c = &be->rope;
    size_t bytes = (size_t)half * sizeof(float);
    if (c->half == half && c->pos == pos && memcmp(c->freq, inv_freq, bytes) == 0)
        return c->cs;
    if (half > c->capacity) {
        float *m = realloc(c->cs, 3 * bytes);
        if (!m)
            return NULL;
        c->cs = m;
        c->freq = m + 2 * (size_t)half;
        c->capacity = half;
    }
    rope_angles(pos, inv_freq, half, c->cs);
    memcpy(c->freq, inv_freq, bytes);
    c->half = half;
    c->pos = pos;
    return c->cs;
}

tfm_status tfm_cpu_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                        const float *inv_freq, tfm_rope_pairing pairing) {
    const float *cs = n == 1 ? cached_angles(be, pos0, inv_freq, head_dim / 2) : NULL;
    if (cs) {
        rope_rotate(x, n_head, head_dim, pairing, cs);
        return TFM_OK;
    }
    tfm_status st = tfm_cpu_reserve_scratch(be, (size_t)head_dim);
    if (st != TFM_OK)
        return st;
    rope_job job = {x, n_head, head_dim, pos0, inv_freq, pairing, be->scratch};
    tfm_pool_run(be->pool, rope_chunk, &job, n, grain_for(n, (int64_t)n * n_head * head_dim / 8));
    return TFM_OK;
}

/* ---- kv_store ---- */

typedef struct kv_store_job {
    tfm_from_f32_fn convert;
    char *dst;
    const float *src;
    int width;
    size_t elem_size;
} kv_store_job;

static void kv_store_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const kv_store_job *j = ctx;
    j->convert(j->src + (size_t)begin * (size_t)j->width, j->dst + (size_t)begin * (size_t)j->width * j->elem_size,
               (end - begin) * j->width);
}

tfm_status tfm_cpu_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src,
                            int n, int width) {
    size_t es = kv_dtype == TFM_DTYPE_F32 ? 4 : 2;
    kv_store_job job = {be->k->from_f32[kv_dtype], (char *)cache + (size_t)row0 * (size_t)width * es, src, width, es};
    tfm_pool_run(be->pool, kv_store_chunk, &job, n, grain_for(n, (int64_t)n * width));
    return TFM_OK;
}

/* ---- swiglu, add ---- */

typedef struct flat_job {
    const tfm_cpu_kernels *k;
    const float *a, *b;
    float *out;
    size_t count;
} flat_job;

static void swiglu_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const flat_job *j = ctx;
    size_t i0 = (size_t)begin * FLAT_CHUNK, i1 = (size_t)end * FLAT_CHUNK;
    if (i1 > j->count)
        i1 = j->count;
    j->k->swiglu(j->a + i0, j->b + i0, j->out + i0, (int64_t)(i1 - i0));
}

static void add_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const flat_job *j = ctx;
    size_t i0 = (size_t)begin * FLAT_CHUNK, i1 = (size_t)end * FLAT_CHUNK;
    if (i1 > j->count)
        i1 = j->count;
    j->k->add(j->out + i0, j->b + i0, (int64_t)(i1 - i0));
}

tfm_status tfm_cpu_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count) {
    flat_job job = {be->k, gate, up, out, count};
    int64_t chunks = (int64_t)((count + FLAT_CHUNK - 1) / FLAT_CHUNK);
    tfm_pool_run(be->pool, swiglu_chunk, &job, chunks, grain_for(chunks, (int64_t)count));
    return TFM_OK;
}

tfm_status tfm_cpu_add(tfm_backend *be, float *x, const float *y, size_t count) {
    flat_job job = {be->k, NULL, y, x, count};
    int64_t chunks = (int64_t)((count + FLAT_CHUNK - 1) / FLAT_CHUNK);
    tfm_pool_run(be->pool, add_chunk, &job, chunks, grain_for(chunks, (int64_t)count));
    return TFM_OK;
}
