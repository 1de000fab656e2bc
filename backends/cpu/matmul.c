/* matmul.c — y[n][rows] = x[n][cols] · wᵀ.
 *
 * Block-quantised weights, any number of activation rows: the activations are quantised once, then
 * meet the weight in integer dot products, threads splitting the weight by groups of 16 rows;
 * packed weights (repack.h) go through the packed kernels, their last rows % 16 rows through the
 * file-layout kernels.
 *
 * Float weights: few activation rows (decode) use our matrix-vector kernels, which stream the
 * weight once, threads splitting it by rows. Many rows (prompt) use single-threaded OpenBLAS sgemm
 * on fixed tiles of weight rows, one tile per pool turn; f16/bf16 tiles are first widened to f32 in
 * the thread's scratch, so no f32 copy of a whole matrix ever exists.
 *
 * Fixed chunks and tiles keep every output element's computation independent of the thread count. */
#include <cblas.h>

#include "cpu_internal.h"
#include "quant.h"
#include "repack.h"

/* Rows per pool chunk of the matrix-vector path (one packed group): a small block stays in L1/L2
 * while the activation rows pass over it. */
#define MATVEC_CHUNK_ROWS TFM_PACK_ROWS
/* Rows that every group of activation rows passes over before the next rows are read: small enough
 * to stay in L1 while the activations stream from L2. */
#define MATVEC_BLOCK_ROWS 8

/* Weight rows per sgemm call. */
#define GEMM_TILE_ROWS 128

typedef struct matmul_job {
    tfm_backend *be;
    const tfm_weight *w;
    size_t row_bytes;
    const float *x;
    float *y;
    int n;
    const char *xq;      /* quantised activations (block-quantised weights) */
    size_t xq_stride;
    int64_t groups;      /* packed groups of 16 rows (0: not packed) */
} matmul_job;

/* Rows [r0, r1) of a packed weight's unpacked tail, every activation row. */
static void tail_rows(const matmul_job *j, int64_t r0, int64_t r1) {
    const tfm_weight *w = j->w;
    for (int t0 = 0; t0 < j->n; t0 += TFM_CPU_MATVEC_MAX_TOKENS) {
        int nt = j->n - t0 < TFM_CPU_MATVEC_MAX_TOKENS ? j->n - t0 : TFM_CPU_MATVEC_MAX_TOKENS;
        j->be->k->matvec_q[w->dtype](w->data, j->row_bytes, w->cols, r0, r1, j->xq + (size_t)t0 * j->xq_stride,
                                     j->xq_stride, nt, j->y + (size_t)t0 * (size_t)w->rows, (size_t)w->rows);
    }
}

static void packed_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    const tfm_weight *w = j->w;
    int64_t g1 = end < j->groups ? end : j->groups;
    if (begin < g1)
        j->be->k->matvec_packed[w->dtype](w->backend_data, j->row_bytes, w->cols, begin, g1, j->xq, j->xq_stride,
                                          j->n, j->y, (size_t)w->rows);
    if (end > j->groups)
        tail_rows(j, j->groups * TFM_PACK_ROWS, w->rows);
}

static void matvec_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const matmul_job *j = ctx;
    const tfm_weight *w = j->w;
    tfm_matvec_fn fn = j->be->k->matvec[w->dtype];
    int64_t r_end = end * MATVEC_CHUNK_ROWS < w->rows ? end * MATVEC_CHUNK_ROWS : w->rows;
    /* One group of activations: the kernel gets the whole range and streams it. */
    int64_t block = j->n <= TFM_CPU_MATVEC_MAX_TOKENS ? r_end : MATVEC_BLOCK_ROWS;
    for (int64_t r0 = begin * MATVEC_CHUNK_ROWS; r0 < r_end; r0 += block) {
        int64_t r1 = r0 + block < r_end ? r0 + block : r_end;
        for (int t0 = 0; t0 < j->n; t0 += TFM_CPU_MATVEC_MAX_TOKENS) {
            int nt = j->n - t0 < TFM_CPU_MATVEC_MAX_TOKENS ? j->n - t0 : TFM_CPU_MATVEC_MAX_TOKENS;
            if (j->xq) {
                j->be->k->matvec_q[w->dtype](w->data, j->row_bytes, w->cols, r0, r1, j->xq + (size_t)t0 * j->xq_stride,
                                             j->xq_stride, nt, j->y + (size_t)t0 * (size_t)w->rows, (size_t)w->rows);
                continue;
            }
            fn(w->data, j->row_bytes, w->cols, r0, r1, j->x + (size_t)t0 * (size_t)w->cols, (size_t)w->cols, nt,
               j->y + (size_t)t0 * (size_t)w->rows, (size_t)w->rows);
        }
    }
}

static void gemm_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    const matmul_job *j = ctx;
    const tfm_weight *w = j->w;
    for (int64_t tile = begin; tile < end; tile++) {
        int64_t r0 = tile * GEMM_TILE_ROWS;
        int64_t nr = w->rows - r0 < GEMM_TILE_ROWS ? w->rows - r0 : GEMM_TILE_ROWS;
        const char *src = (const char *)w->data + (size_t)r0 * j->row_bytes;
        const float *b;
        if (w->dtype == TFM_DTYPE_F32) {
            b = (const float *)src;
        } else {
            float *tmp = j->be->scratch[thread];
            j->be->k->to_f32[w->dtype](src, tmp, nr * w->cols);
            b = tmp;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, (int)nr, (int)w->cols, 1.0f, j->x,
                    (int)w->cols, b, (int)w->cols, 0.0f, j->y + r0, (int)w->rows);
    }
}

typedef struct quantize_job {
    tfm_quantize_q8_fn fn;
    const float *x;
    int64_t cols;
    char *xq;
    size_t stride;
} quantize_job;

static void quantize_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const quantize_job *j = ctx;
    for (int64_t t = begin; t < end; t++)
        j->fn(j->x + (size_t)t * (size_t)j->cols, j->cols, j->xq + (size_t)t * j->stride);
}

/* Quantises the n activation rows once into be->act (shared by the threads and by every weight
 * of a matmul_shared call). */
static tfm_status quantize_activations(tfm_backend *be, const float *x, int64_t cols, int n, size_t *stride) {
    *stride = tfm_q8_row_bytes(cols);
    tfm_status st = tfm_cpu_reserve_act(be, (size_t)n * *stride);
    if (st != TFM_OK)
        return st;
    quantize_job qj = {be->k->quantize_q8, x, cols, be->act, *stride};
    tfm_pool_run(be->pool, quantize_chunk, &qj, n, n < 16 ? n : 0);
    return TFM_OK;
}

/* The matrix-vector path of one weight: its job (given the activations) and its chunk function. */
static tfm_pool_fn matvec_job(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n, const char *xq,
                              size_t xq_stride, matmul_job *job) {
    *job = (matmul_job){be, w, tfm_cpu_row_bytes(w->dtype, w->cols), x, y, n, xq, xq_stride, 0};
    if (xq && w->backend_data && tfm_packable(w->dtype)) { /* float weights may own a plain copy */
        job->groups = w->rows / TFM_PACK_ROWS;
        return packed_chunk;
    }
    return matvec_chunk;
}

static int64_t matvec_chunks(const tfm_weight *w) {
    return (w->rows + MATVEC_CHUNK_ROWS - 1) / MATVEC_CHUNK_ROWS;
}

/* Several weights over the same activations as one pool job: chunks [first[i], first[i+1]) are
 * weight i's. */
typedef struct shared_job {
    int count;
    matmul_job parts[TFM_CPU_SHARED_MAX];
    tfm_pool_fn fn[TFM_CPU_SHARED_MAX];
    int64_t first[TFM_CPU_SHARED_MAX + 1];
} shared_job;

static void shared_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
    shared_job *s = ctx; /* the chunk functions take a mutable context */
    for (int i = 0; i < s->count; i++) {
        int64_t b = begin > s->first[i] ? begin : s->first[i], e = end < s->first[i + 1] ? end : s->first[i + 1];
        if (b < e)
            s->fn[i](&s->parts[i], b - s->first[i], e - s->first[i], thread);
    }
}

tfm_status tfm_cpu_matmul_shared(tfm_backend *be, const tfm_weight *const *w, int count, const float *x,
                                 float *const *y, int n) {
    /* One job when every weight takes the matrix-vector path and all are block-quantised (one
     * quantisation of x) or none is; otherwise one matmul after another. */
    int quantized = 0;
    for (int i = 0; i < count; i++)
        quantized += tfm_is_quantized(w[i]->dtype);
    if (count > TFM_CPU_SHARED_MAX || (quantized != 0 && quantized != count) || (!quantized && n > be->matvec_max_n)) {
        for (int i = 0; i < count; i++) {
            tfm_status st = tfm_cpu_matmul(be, w[i], x, y[i], n);
            if (st != TFM_OK)
                return st;
        }
        return TFM_OK;
    }
    size_t stride = 0;
    if (quantized) {
        tfm_status st = quantize_activations(be, x, w[0]->cols, n, &stride);
        if (st != TFM_OK)
            return st;
    }
    shared_job s = {.count = count};
    for (int i = 0; i < count; i++) {
        s.fn[i] = matvec_job(be, w[i], x, y[i], n, quantized ? be->act : NULL, stride, &s.parts[i]);
        s.first[i + 1] = s.first[i] + matvec_chunks(w[i]);
    }
    tfm_pool_run(be->pool, shared_chunk, &s, s.first[count], 0);
    return TFM_OK;
}

tfm_status tfm_cpu_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n) {
    matmul_job job;
    if (tfm_is_quantized(w->dtype)) {
        size_t stride;
        tfm_status st = quantize_activations(be, x, w->cols, n, &stride);
        if (st != TFM_OK)
            return st;
        tfm_pool_fn fn = matvec_job(be, w, x, y, n, be->act, stride, &job);
        tfm_pool_run(be->pool, fn, &job, matvec_chunks(w), 0);
        return TFM_OK;
    }
    if (n <= be->matvec_max_n) {
        tfm_pool_fn fn = matvec_job(be, w, x, y, n, NULL, 0, &job);
        tfm_pool_run(be->pool, fn, &job, matvec_chunks(w), 0);
        return TFM_OK;
    }
    job = (matmul_job){be, w, tfm_cpu_row_bytes(w->dtype, w->cols), x, y, n, NULL, 0, 0};
    if (w->dtype != TFM_DTYPE_F32) {
        tfm_status st = tfm_cpu_reserve_scratch(be, (size_t)GEMM_TILE_ROWS * (size_t)w->cols);
        if (st != TFM_OK)
            return st;
    }
    int64_t tiles = (w->rows + GEMM_TILE_ROWS - 1) / GEMM_TILE_ROWS;
    tfm_pool_run(be->pool, gemm_chunk, &job, tiles, 1);
    return TFM_OK;
}
