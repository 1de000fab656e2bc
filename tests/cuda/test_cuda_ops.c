/* test_cuda_ops.c — every operation of the cuda plugin against the cpu backend's naive twins
 * (backends/cpu/reference.c), for each weight and KV dtype, both RoPE pairings, grouped and plain
 * attention on the decode, flash and simple kernels, decode attention with RoPE and the KV append
 * folded in, shapes that are not multiples of any vector or tile width; then a recorded decode step (CUDA graph) replayed at later positions against eager
 * runs (with and without op fusion), and the error paths (out of memory, unsupported weight types).
 *
 * Tolerances are relative L2 errors, per path: f32 arithmetic 2e-5; batched matmuls round the
 * activations to the weight type (f16 2e-3, bf16 1.2e-2); flash attention rounds Q and P to the cache
 * type (f16 3e-3, bf16 2e-2).
 *
 * Usage: test_cuda_ops path/to/libtfm-cuda.so. Exits 77 (skipped) when no usable GPU is present. */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "half.h"
#include "reference.h"

static int failures, checks;
static char last_error[1024];

static void host_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}
static void host_log(tfm_log_level level, const char *fmt, ...) {
    (void)level;
    (void)fmt;
}
static const tfm_backend_host host = {host_set_error, host_log};

#define CHECK(cond, ...)                                             \
    do {                                                             \
        checks++;                                                    \
        if (!(cond)) {                                               \
            failures++;                                              \
            if (failures < 40) {                                     \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                        \
                fprintf(stderr, "\n");                               \
            }                                                        \
        }                                                            \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng_u32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float rng_uniform(float lo, float hi) { return lo + (hi - lo) * (float)(rng_u32() >> 8) / 16777216.0f; }
static float *random_floats(size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof *v + 64);
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform(lo, hi);
    return v;
}
static size_t dsize(tfm_dtype t) { return t == TFM_DTYPE_F32 ? 4 : 2; }
static const char *dname(tfm_dtype t) {
    return t == TFM_DTYPE_F32 ? "f32" : t == TFM_DTYPE_F16 ? "f16" : "bf16";
}
static void *to_dtype(tfm_dtype t, const float *src, size_t n) {
    void *dst = malloc(n * dsize(t) + 64);
    tfm_ref_kv_store(dst, t, 0, src, 1, (int)n);
    return dst;
}

/* ‖a − b‖ / ‖b‖ (NaN anywhere fails) */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) return INFINITY;
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static const tfm_backend_ops *ops;
static tfm_backend *be;

static void *dev_upload(const void *src, size_t bytes) {
    void *d = ops->alloc(be, bytes);
    if (!d) {
        fprintf(stderr, "alloc of %zu bytes failed: %s\n", bytes, last_error);
        exit(1);
    }
    if (ops->upload(be, d, src, bytes) != TFM_OK) {
        fprintf(stderr, "upload failed: %s\n", last_error);
        exit(1);
    }
    return d;
}
static void *dev_poisoned(size_t bytes) {
    unsigned char *h = malloc(bytes);
    memset(h, 0xff, bytes); /* NaN in every float: unwritten outputs fail */
    void *d = dev_upload(h, bytes);
    free(h);
    return d;
}
static void dev_download(void *dst, const void *src, size_t bytes) {
    if (ops->download(be, dst, src, bytes) != TFM_OK || ops->sync(be) != TFM_OK) {
        fprintf(stderr, "download failed: %s\n", last_error);
        exit(1);
    }
}

/* ------------------------------------------------------------------ matmul */

static void test_matmul(tfm_dtype dtype, int64_t rows, int64_t cols, int n) {
    float *wf = random_floats((size_t)(rows * cols), -1.0f, 1.0f);
    void *w = to_dtype(dtype, wf, (size_t)(rows * cols));
    float *x = random_floats((size_t)n * cols, -1.0f, 1.0f);
    float *ref = malloc((size_t)n * rows * sizeof *ref), *got = malloc((size_t)n * rows * sizeof *got);
    tfm_ref_matmul(dtype, w, rows, cols, x, ref, n);

    tfm_weight wt;
    tfm_status st = ops->weight_load(be, &wt, w, dtype, rows, cols);
    CHECK(st == TFM_OK, "weight_load %s %lldx%lld: %s", dname(dtype), (long long)rows, (long long)cols, last_error);
    if (st == TFM_OK && wt.dtype != dtype) {
        /* stored converted: the reference uses the weights as the device holds them */
        void *wr = to_dtype(wt.dtype, wf, (size_t)(rows * cols));
        if (dtype != TFM_DTYPE_F32) { /* from 16 bits: round through the source type first */
            float *back = malloc((size_t)(rows * cols) * sizeof *back);
            for (int64_t i = 0; i < rows * cols; i++) back[i] = tfm_ref_weight_element(dtype, w, i);
            free(wr);
            wr = to_dtype(wt.dtype, back, (size_t)(rows * cols));
            free(back);
        }
        tfm_ref_matmul(wt.dtype, wr, rows, cols, x, ref, n);
        free(wr);
    }
    if (st == TFM_OK) {
        float *dx = dev_upload(x, (size_t)n * cols * sizeof(float));
        float *dy = dev_poisoned((size_t)n * rows * sizeof(float));
        st = ops->matmul(be, &wt, dx, dy, n);
        CHECK(st == TFM_OK, "matmul: %s", last_error);
        dev_download(got, dy, (size_t)n * rows * sizeof(float));
        /* the device type decides: batches round the activations to it */
        double tol = n == 1 || wt.dtype == TFM_DTYPE_F32 ? 2e-5 : wt.dtype == TFM_DTYPE_F16 ? 2e-3 : 1.2e-2;
        double e = rel_err(got, ref, (size_t)n * rows);
        CHECK(e <= tol, "matmul %s (device %s) rows %lld cols %lld n %d: rel err %.3g > %.3g", dname(dtype),
              dname(wt.dtype), (long long)rows, (long long)cols, n, e, tol);
        ops->free(be, dx);
        ops->free(be, dy);
        ops->weight_free(be, &wt);
    }
    free(wf);
    free(w);
    free(x);
    free(ref);
    free(got);
}

/* f32 matrices become f16 on the device (the default): results within f16 rounding of the weights */
static void test_matmul_converted(void) {
    int64_t rows = 96, cols = 520;
    float *w = random_floats((size_t)(rows * cols), -1.0f, 1.0f);
    float *x = random_floats((size_t)cols, -1.0f, 1.0f);
    float ref[96], got[96];
    tfm_ref_matmul(TFM_DTYPE_F32, w, rows, cols, x, ref, 1);
    tfm_weight wt;
    tfm_status st = ops->weight_load(be, &wt, w, TFM_DTYPE_F32, rows, cols);
    CHECK(st == TFM_OK && wt.dtype == TFM_DTYPE_F16, "f32 weight is stored as f16 (got %d): %s", (int)wt.dtype,
          last_error);
    if (st == TFM_OK) {
        float *dx = dev_upload(x, (size_t)cols * sizeof(float));
        float *dy = dev_poisoned(sizeof got);
        CHECK(ops->matmul(be, &wt, dx, dy, 1) == TFM_OK, "matmul: %s", last_error);
        dev_download(got, dy, sizeof got);
        double e = rel_err(got, ref, (size_t)rows);
        CHECK(e <= 2e-3, "matmul on f32->f16 weights: rel err %.3g", e);
        ops->free(be, dx);
        ops->free(be, dy);
        ops->weight_free(be, &wt);
    }
    free(w);
    free(x);
}

/* ------------------------------------------------------------------ small ops */

static void test_embed(tfm_dtype dtype) {
    int64_t rows = 50, cols = 132;
    float *tf = random_floats((size_t)(rows * cols), -2.0f, 2.0f);
    void *t = to_dtype(dtype, tf, (size_t)(rows * cols));
    int32_t ids[5] = {3, 49, 0, 3, 17};
    float ref[5 * 132], got[5 * 132];
    tfm_ref_embed(dtype, t, cols, ids, 5, ref);
    tfm_weight wt;
    CHECK(ops->weight_load(be, &wt, t, dtype, rows, cols) == TFM_OK, "weight_load: %s", last_error);
    float *dout = dev_poisoned(sizeof got);
    CHECK(ops->embed(be, &wt, ids, 5, dout) == TFM_OK, "embed: %s", last_error);
    dev_download(got, dout, sizeof got);
    if (wt.dtype != dtype) { /* stored converted: compare with the table as the device holds it */
        float *back = malloc((size_t)(rows * cols) * sizeof *back);
        for (int64_t i = 0; i < rows * cols; i++) back[i] = tfm_ref_weight_element(dtype, t, i);
        void *tr = to_dtype(wt.dtype, back, (size_t)(rows * cols));
        tfm_ref_embed(wt.dtype, tr, cols, ids, 5, ref);
        free(back);
        free(tr);
    }
    double e = rel_err(got, ref, 5 * 132);
    CHECK(e == 0.0, "embed %s (device %s): rel err %.3g", dname(dtype), dname(wt.dtype), e);
    ops->free(be, dout);
    ops->weight_free(be, &wt);
    free(tf);
    free(t);
}

static void test_rmsnorm(int n, int dim, int in_place) {
    float *x = random_floats((size_t)n * dim, -3.0f, 3.0f), *g = random_floats((size_t)dim, 0.5f, 1.5f);
    float *ref = malloc((size_t)n * dim * sizeof *ref), *got = malloc((size_t)n * dim * sizeof *got);
    tfm_ref_rmsnorm(x, g, ref, n, dim, 1e-5f);
    tfm_weight gw;
    CHECK(ops->weight_load(be, &gw, g, TFM_DTYPE_F32, 1, dim) == TFM_OK, "weight_load gain: %s", last_error);
    float *dx = dev_upload(x, (size_t)n * dim * sizeof(float));
    float *dy = in_place ? dx : dev_poisoned((size_t)n * dim * sizeof(float));
    CHECK(ops->rmsnorm(be, dx, &gw, dy, n, dim, 1e-5f) == TFM_OK, "rmsnorm: %s", last_error);
    dev_download(got, dy, (size_t)n * dim * sizeof(float));
    double e = rel_err(got, ref, (size_t)n * dim);
    CHECK(e <= 2e-6, "rmsnorm n %d dim %d in place %d: rel err %.3g", n, dim, in_place, e);
    ops->free(be, dx);
    if (!in_place) ops->free(be, dy);
    ops->weight_free(be, &gw);
    free(x);
    free(g);
    free(ref);
    free(got);
}

static void test_rope(int n, int n_head, int head_dim, int pos0, tfm_rope_pairing pairing) {
    size_t count = (size_t)n * n_head * head_dim;
    float *x = random_floats(count, -1.0f, 1.0f), *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    float inv[128];
    for (int i = 0; i < head_dim / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / head_dim);
    memcpy(ref, x, count * sizeof *x);
    tfm_ref_rope(ref, n, n_head, head_dim, pos0, inv, pairing);
    float *dx = dev_upload(x, count * sizeof(float)), *dinv = dev_upload(inv, (size_t)head_dim / 2 * sizeof(float));
    CHECK(ops->rope(be, dx, n, n_head, head_dim, pos0, dinv, pairing) == TFM_OK, "rope: %s", last_error);
    dev_download(got, dx, count * sizeof(float));
    double e = rel_err(got, ref, count);
    CHECK(e <= 2e-6, "rope n %d heads %d dim %d pos0 %d pairing %d: rel err %.3g", n, n_head, head_dim, pos0,
          (int)pairing, e);
    ops->free(be, dx);
    ops->free(be, dinv);
    free(x);
    free(ref);
    free(got);
}

static void test_kv_store(tfm_dtype kv) {
    int n_ctx = 40, width = 72, row0 = 11, n = 6;
    size_t bytes = (size_t)n_ctx * width * dsize(kv);
    float *src = random_floats((size_t)n * width, -4.0f, 4.0f);
    unsigned char *ref = calloc(1, bytes), *got = malloc(bytes);
    tfm_ref_kv_store(ref, kv, row0, src, n, width);
    void *dcache = ops->alloc(be, bytes); /* zeroed by contract */
    float *dsrc = dev_upload(src, (size_t)n * width * sizeof(float));
    CHECK(ops->kv_store(be, dcache, kv, row0, dsrc, n, width) == TFM_OK, "kv_store: %s", last_error);
    dev_download(got, dcache, bytes);
    CHECK(memcmp(got, ref, bytes) == 0, "kv_store %s: cache bytes differ from the reference", dname(kv));
    ops->free(be, dcache);
    ops->free(be, dsrc);
    free(src);
    free(ref);
    free(got);
}

static void test_swiglu_add(size_t count) {
    float *g = random_floats(count, -6.0f, 6.0f), *u = random_floats(count, -2.0f, 2.0f);
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    tfm_ref_swiglu(g, u, ref, count);
    float *dg = dev_upload(g, count * sizeof(float)), *du = dev_upload(u, count * sizeof(float));
    CHECK(ops->swiglu(be, dg, du, dg, count) == TFM_OK, "swiglu: %s", last_error); /* out aliases gate */
    dev_download(got, dg, count * sizeof(float));
    double e = rel_err(got, ref, count);
    CHECK(e <= 2e-6, "swiglu count %zu: rel err %.3g", count, e);

    memcpy(ref, g, count * sizeof *g);
    tfm_ref_add(ref, u, count);
    ops->upload(be, dg, g, count * sizeof(float));
    CHECK(ops->add(be, dg, du, count) == TFM_OK, "add: %s", last_error);
    dev_download(got, dg, count * sizeof(float));
    e = rel_err(got, ref, count);
    CHECK(e == 0.0, "add count %zu: rel err %.3g", count, e);
    /* an unaligned view takes the scalar path */
    if (count > 3) {
        memcpy(ref, g, count * sizeof *g);
        tfm_ref_add(ref + 1, u + 1, count - 2);
        ops->upload(be, dg, g, count * sizeof(float));
        CHECK(ops->add(be, dg + 1, du + 1, count - 2) == TFM_OK, "add: %s", last_error);
        dev_download(got, dg, count * sizeof(float));
        CHECK(rel_err(got, ref, count) == 0.0, "add (unaligned view) count %zu", count);
    }
    ops->free(be, dg);
    ops->free(be, du);
    free(g);
    free(u);
    free(ref);
    free(got);
}

/* ------------------------------------------------------------------ attention */

static void test_attention(tfm_dtype kv, int n, int pos0, int n_head, int n_head_kv, int head_dim, int causal) {
    int L = pos0 + n, width = n_head_kv * head_dim;
    size_t qcount = (size_t)n * n_head * head_dim;
    float *q = random_floats(qcount, -1.5f, 1.5f);
    float *k = random_floats((size_t)L * width, -1.5f, 1.5f), *v = random_floats((size_t)L * width, -1.0f, 1.0f);
    void *kc = malloc((size_t)L * width * dsize(kv)), *vc = malloc((size_t)L * width * dsize(kv));
    tfm_ref_kv_store(kc, kv, 0, k, L, width);
    tfm_ref_kv_store(vc, kv, 0, v, L, width);
    float *ref = malloc(qcount * sizeof *ref), *got = malloc(qcount * sizeof *got);
    float scale = 1.0f / sqrtf((float)head_dim);
    tfm_ref_attention(q, kc, vc, kv, ref, n, pos0, n_head, n_head_kv, head_dim, scale, causal);

    float *dq = dev_upload(q, qcount * sizeof(float)), *dout = dev_poisoned(qcount * sizeof(float));
    void *dk = dev_upload(kc, (size_t)L * width * dsize(kv)), *dv = dev_upload(vc, (size_t)L * width * dsize(kv));
    CHECK(ops->attention(be, dq, dk, dv, kv, dout, n, pos0, n_head, n_head_kv, head_dim, scale, causal) == TFM_OK,
          "attention: %s", last_error);
    dev_download(got, dout, qcount * sizeof(float));
    int flash = n > 1 && kv != TFM_DTYPE_F32 && (head_dim == 64 || head_dim == 128);
    double tol = !flash ? 2e-5 : kv == TFM_DTYPE_F16 ? 3e-3 : 2e-2;
    double e = rel_err(got, ref, qcount);
    CHECK(e <= tol, "attention kv %s n %d pos0 %d heads %d/%d dim %d causal %d: rel err %.3g > %.3g", dname(kv), n,
          pos0, n_head, n_head_kv, head_dim, causal, e, tol);
    ops->free(be, dq);
    ops->free(be, dout);
    ops->free(be, dk);
    ops->free(be, dv);
    free(q);
    free(k);
    free(v);
    free(kc);
    free(vc);
    free(ref);
    free(got);
}

/* Batches: flash for f16/bf16 with dims 64/128, simple otherwise. Run on the default instance and on
 * one with each prefill flash kernel (TFM_CUDA_FA=0 the 64-query one, 1..3 the 128-query shapes). */
static void attention_batch_cases(tfm_dtype kv) {
    test_attention(kv, 7, 0, 4, 4, 64, 1);
    test_attention(kv, 64, 0, 4, 2, 128, 1);
    test_attention(kv, 130, 5, 4, 1, 128, 1);
    test_attention(kv, 100, 300, 2, 2, 64, 1);
    test_attention(kv, 65, 0, 4, 4, 128, 0);
    /* several 128-query blocks: a partial last block, a start position inside a tile, GQA groups of
     * 2 and 4, tiles past a warp's diagonal, no causal mask */
    test_attention(kv, 300, 0, 4, 2, 128, 1);
    test_attention(kv, 257, 40, 4, 1, 64, 1);
    test_attention(kv, 384, 0, 2, 2, 128, 1);
    test_attention(kv, 200, 77, 2, 1, 128, 0);
    test_attention(kv, 129, 1000, 2, 2, 64, 1);
    test_attention(kv, 9, 3, 3, 1, 40, 1);
}

static void test_attention_batches(tfm_dtype kv) {
    static const char *kernels[] = {"0", "1", "2", "3"};
    attention_batch_cases(kv);
    if (kv == TFM_DTYPE_F32) return; /* the simple kernel, whatever TFM_CUDA_FA says */
    tfm_backend *saved = be;
    for (int i = 0; i < 4; i++) {
        setenv("TFM_CUDA_FA", kernels[i], 1);
        tfm_backend_init_params p = {0, 0};
        tfm_backend *b = NULL;
        tfm_status st = ops->init(&p, &host, &b);
        unsetenv("TFM_CUDA_FA");
        CHECK(st == TFM_OK, "instance with TFM_CUDA_FA=%s: %s", kernels[i], last_error);
        if (st != TFM_OK) continue;
        int before = failures;
        be = b;
        attention_batch_cases(kv);
        be = saved;
        if (failures != before) fprintf(stderr, "  (those with TFM_CUDA_FA=%s)\n", kernels[i]);
        ops->destroy(b);
    }
}

/* One decode token's RoPE of q and k, both cache appends and attention, issued as the core issues
 * them: the planner runs them as one kernel (RoPE in registers, the newest key and value taken from
 * registers). Checks the output, the rotated q and k left behind, and the cache rows written (and
 * the row after them untouched). `after_matvec`: a matvec runs right before, as in a decode layer
 * (attention then loads its cached keys before waiting for it). */
static float cache_value(const void *cache, tfm_dtype kv, size_t i) {
    if (kv == TFM_DTYPE_F32) return ((const float *)cache)[i];
    uint16_t h = ((const uint16_t *)cache)[i];
    return kv == TFM_DTYPE_F16 ? tfm_f16_to_f32(h) : tfm_bf16_to_f32(h);
}

static void test_rope_attention(tfm_dtype kv, int pos0, int n_head, int n_head_kv, int head_dim,
                                tfm_rope_pairing pairing, int after_matvec) {
    int width = n_head_kv * head_dim, rows = pos0 + 2;
    size_t qcount = (size_t)n_head * head_dim, cbytes = (size_t)rows * width * dsize(kv);
    float *q = random_floats(qcount, -1.5f, 1.5f), *k = random_floats((size_t)width, -1.5f, 1.5f);
    float *v = random_floats((size_t)width, -1.0f, 1.0f), *old = random_floats((size_t)pos0 * width + 1, -1.5f, 1.5f);
    float inv[128];
    for (int i = 0; i < head_dim / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / head_dim);
    unsigned char *kc = malloc(cbytes), *vc = malloc(cbytes), *got_c = malloc(cbytes);
    memset(kc, 0xff, cbytes); /* NaN: rows nobody should write */
    memset(vc, 0xff, cbytes);
    tfm_ref_kv_store(kc, kv, 0, old, pos0, width);
    tfm_ref_kv_store(vc, kv, 0, old, pos0, width);

    float *dq = dev_upload(q, qcount * 4), *dk = dev_upload(k, (size_t)width * 4), *dv = dev_upload(v, (size_t)width * 4);
    float *dinv = dev_upload(inv, (size_t)head_dim / 2 * 4), *dout = dev_poisoned(qcount * 4);
    void *dkc = dev_upload(kc, cbytes), *dvc = dev_upload(vc, cbytes);

    float *rq = malloc(qcount * 4), *rk = malloc((size_t)width * 4), *ref = malloc(qcount * 4), *got = malloc(qcount * 4);
    memcpy(rq, q, qcount * 4);
    memcpy(rk, k, (size_t)width * 4);
    tfm_ref_rope(rq, 1, n_head, head_dim, pos0, inv, pairing);
    tfm_ref_rope(rk, 1, n_head_kv, head_dim, pos0, inv, pairing);
    tfm_ref_kv_store(kc, kv, pos0, rk, 1, width);
    tfm_ref_kv_store(vc, kv, pos0, v, 1, width);
    float scale = 1.0f / sqrtf((float)head_dim);
    tfm_ref_attention(rq, kc, vc, kv, ref, 1, pos0, n_head, n_head_kv, head_dim, scale, 1);

    tfm_weight mw;
    float *mx = NULL, *my = NULL;
    if (after_matvec) {
        float *wf = random_floats(64 * 64, -1.0f, 1.0f);
        CHECK(ops->weight_load(be, &mw, wf, TFM_DTYPE_F32, 64, 64) == TFM_OK, "weight: %s", last_error);
        mx = dev_upload(wf, 64 * 4);
        my = dev_poisoned(64 * 4);
        free(wf);
        CHECK(ops->matmul(be, &mw, mx, my, 1) == TFM_OK, "matmul: %s", last_error);
    }
    tfm_status st = ops->rope(be, dq, 1, n_head, head_dim, pos0, dinv, pairing);
    if (!st) st = ops->rope(be, dk, 1, n_head_kv, head_dim, pos0, dinv, pairing);
    if (!st) st = ops->kv_store(be, dkc, kv, pos0, dk, 1, width);
    if (!st) st = ops->kv_store(be, dvc, kv, pos0, dv, 1, width);
    if (!st) st = ops->attention(be, dq, dkc, dvc, kv, dout, 1, pos0, n_head, n_head_kv, head_dim, scale, 1);
    CHECK(st == TFM_OK, "rope + kv append + attention: %s", last_error);
    const char *what = pairing == TFM_ROPE_HALF ? "half" : "adjacent";
    dev_download(got, dout, qcount * 4);
    double e = rel_err(got, ref, qcount);
    CHECK(e <= 2e-5, "rope+attention kv %s pos0 %d heads %d/%d dim %d %s: output rel err %.3g", dname(kv), pos0,
          n_head, n_head_kv, head_dim, what, e);
    dev_download(got, dq, qcount * 4);
    e = rel_err(got, rq, qcount);
    CHECK(e <= 2e-6, "rope+attention kv %s pos0 %d dim %d %s: rotated q rel err %.3g", dname(kv), pos0, head_dim, what,
          e);
    dev_download(got, dk, (size_t)width * 4);
    e = rel_err(got, rk, (size_t)width);
    CHECK(e <= 2e-6, "rope+attention kv %s pos0 %d dim %d %s: rotated k rel err %.3g", dname(kv), pos0, head_dim, what,
          e);
    for (int c = 0; c < 2; c++) {
        const unsigned char *want = c ? vc : kc;
        dev_download(got_c, c ? dvc : dkc, cbytes);
        size_t upto = (size_t)(pos0 + 1) * width;
        float *a = malloc(upto * 4), *b = malloc(upto * 4);
        for (size_t i = 0; i < upto; i++) a[i] = cache_value(got_c, kv, i), b[i] = cache_value(want, kv, i);
        e = rel_err(a, b, upto);
        /* 16 bits: a last-bit difference in the rotation may round the new row's values one step apart */
        CHECK(e <= (kv == TFM_DTYPE_F32 ? 2e-6 : 1e-3), "rope+attention kv %s pos0 %d dim %d %s: %s cache rows 0..%d rel err %.3g", dname(kv), pos0,
              head_dim, what, c ? "v" : "k", pos0, e);
        CHECK(memcmp(got_c + upto * dsize(kv), want + upto * dsize(kv), cbytes - upto * dsize(kv)) == 0,
              "rope+attention kv %s pos0 %d: %s cache row %d was written", dname(kv), pos0, c ? "v" : "k", pos0 + 1);
        free(a);
        free(b);
    }
    void *dev[] = {dq, dk, dv, dinv, dout, dkc, dvc};
    for (int i = 0; i < 7; i++) ops->free(be, dev[i]);
    if (after_matvec) {
        ops->weight_free(be, &mw);
        ops->free(be, mx);
        ops->free(be, my);
    }
    void *host_bufs[] = {q, k, v, old, kc, vc, got_c, rq, rk, ref, got};
    for (int i = 0; i < 11; i++) free(host_bufs[i]);
}

/* ------------------------------------------------------------------ recorded and fused decode steps */

/* A miniature Llama (2 layers, GQA, SwiGLU) driven through the vtable exactly as the core drives it.
 * The same model runs on four instances: the default (op fusion, recorded steps, programmatic
 * launch), fusion without recording, the shared-memory-staged matvec (TFM_CUDA_MVX=1) recorded, and
 * the plain eager path (all off), which is the twin. */
enum { MM_VOCAB = 40, MM_DIM = 256, MM_HEADS = 4, MM_KV = 2, MM_HD = 64, MM_FF = 512, MM_CTX = 300, MM_LAYERS = 2 };

typedef struct mini_layer {
    tfm_weight attn_norm, wq, wk, wv, wo, ffn_norm, gate, up, down;
    void *kc, *vc;
} mini_layer;

typedef struct mini_model {
    const tfm_backend_ops *o;
    tfm_backend *b;
    tfm_weight embd, out_norm, head;
    mini_layer layer[MM_LAYERS];
    float *inv_freq, *x, *xb, *q, *k, *v, *att, *hb, *hb2, *logits;
} mini_model;

static void mini_weight(mini_model *m, tfm_weight *w, int64_t rows, int64_t cols, float lo, float hi) {
    float *v = random_floats((size_t)(rows * cols), lo, hi);
    tfm_status st = m->o->weight_load(m->b, w, v, TFM_DTYPE_F32, rows, cols);
    CHECK(st == TFM_OK, "mini weight: %s", last_error);
    free(v);
}

static void mini_load(const tfm_backend_ops *o, tfm_backend *b, mini_model *m, uint64_t seed) {
    uint64_t saved = rng_state;
    rng_state = seed;
    m->o = o;
    m->b = b;
    mini_weight(m, &m->embd, MM_VOCAB, MM_DIM, -1, 1);
    mini_weight(m, &m->out_norm, 1, MM_DIM, 0.5f, 1.5f);
    mini_weight(m, &m->head, MM_VOCAB, MM_DIM, -0.2f, 0.2f);
    size_t cache = (size_t)MM_CTX * MM_KV * MM_HD * 2;
    for (int l = 0; l < MM_LAYERS; l++) {
        mini_layer *L = &m->layer[l];
        mini_weight(m, &L->attn_norm, 1, MM_DIM, 0.5f, 1.5f);
        mini_weight(m, &L->wq, MM_HEADS * MM_HD, MM_DIM, -0.15f, 0.15f);
        mini_weight(m, &L->wk, MM_KV * MM_HD, MM_DIM, -0.15f, 0.15f);
        mini_weight(m, &L->wv, MM_KV * MM_HD, MM_DIM, -0.1f, 0.1f);
        mini_weight(m, &L->wo, MM_DIM, MM_HEADS * MM_HD, -0.1f, 0.1f);
        mini_weight(m, &L->ffn_norm, 1, MM_DIM, 0.5f, 1.5f);
        mini_weight(m, &L->gate, MM_FF, MM_DIM, -0.1f, 0.1f);
        mini_weight(m, &L->up, MM_FF, MM_DIM, -0.1f, 0.1f);
        mini_weight(m, &L->down, MM_DIM, MM_FF, -0.1f, 0.1f);
        L->kc = o->alloc(b, cache);
        L->vc = o->alloc(b, cache);
    }
    float inv[MM_HD / 2];
    for (int i = 0; i < MM_HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / MM_HD);
    rng_state = saved;
    m->inv_freq = o->alloc(b, sizeof inv);
    o->upload(b, m->inv_freq, inv, sizeof inv);
    int rows = 8; /* activation rows: a prompt chunk of up to 8 tokens */
    m->x = o->alloc(b, (size_t)rows * MM_DIM * 4);
    m->xb = o->alloc(b, (size_t)rows * MM_DIM * 4);
    m->q = o->alloc(b, (size_t)rows * MM_HEADS * MM_HD * 4);
    m->k = o->alloc(b, (size_t)rows * MM_KV * MM_HD * 4);
    m->v = o->alloc(b, (size_t)rows * MM_KV * MM_HD * 4);
    m->att = o->alloc(b, (size_t)rows * MM_HEADS * MM_HD * 4);
    m->hb = o->alloc(b, (size_t)rows * MM_FF * 4);
    m->hb2 = o->alloc(b, (size_t)rows * MM_FF * 4);
    m->logits = o->alloc(b, (size_t)rows * MM_VOCAB * 4);
}

static void mini_free(mini_model *m) {
    const tfm_backend_ops *o = m->o;
    tfm_backend *b = m->b;
    o->weight_free(b, &m->embd);
    o->weight_free(b, &m->out_norm);
    o->weight_free(b, &m->head);
    for (int l = 0; l < MM_LAYERS; l++) {
        mini_layer *L = &m->layer[l];
        tfm_weight *w[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->gate, &L->up, &L->down};
        for (int i = 0; i < 9; i++) o->weight_free(b, w[i]);
        o->free(b, L->kc);
        o->free(b, L->vc);
    }
    void *p[] = {m->inv_freq, m->x, m->xb, m->q, m->k, m->v, m->att, m->hb, m->hb2, m->logits};
    for (int i = 0; i < 10; i++) o->free(b, p[i]);
}

/* n tokens at pos; a single token is bracketed as a decode step (key != 0). Returns 1 if replayed. */
static int mini_forward(mini_model *m, uint64_t key, const int32_t *ids, int n, int pos) {
    const tfm_backend_ops *o = m->o;
    tfm_backend *b = m->b;
    int step = n == 1 && key && o->step_begin;
    int replayed = step ? o->step_begin(b, key, pos, ids[0]) : 0;
    if (replayed) return 1;
    tfm_status st = o->embed(b, &m->embd, ids, n, m->x);
    for (int l = 0; l < MM_LAYERS && !st; l++) {
        mini_layer *L = &m->layer[l];
        if (!st) st = o->rmsnorm(b, m->x, &L->attn_norm, m->xb, n, MM_DIM, 1e-5f);
        if (!st) st = o->matmul(b, &L->wq, m->xb, m->q, n);
        if (!st) st = o->matmul(b, &L->wk, m->xb, m->k, n);
        if (!st) st = o->matmul(b, &L->wv, m->xb, m->v, n);
        if (!st) st = o->rope(b, m->q, n, MM_HEADS, MM_HD, pos, m->inv_freq, TFM_ROPE_HALF);
        if (!st) st = o->rope(b, m->k, n, MM_KV, MM_HD, pos, m->inv_freq, TFM_ROPE_HALF);
        if (!st) st = o->kv_store(b, L->kc, TFM_DTYPE_F16, pos, m->k, n, MM_KV * MM_HD);
        if (!st) st = o->kv_store(b, L->vc, TFM_DTYPE_F16, pos, m->v, n, MM_KV * MM_HD);
        if (!st)
            st = o->attention(b, m->q, L->kc, L->vc, TFM_DTYPE_F16, m->att, n, pos, MM_HEADS, MM_KV, MM_HD,
                              1.0f / sqrtf((float)MM_HD), 1);
        if (!st) st = o->matmul(b, &L->wo, m->att, m->xb, n);
        if (!st) st = o->add(b, m->x, m->xb, (size_t)n * MM_DIM);
        if (!st) st = o->rmsnorm(b, m->x, &L->ffn_norm, m->xb, n, MM_DIM, 1e-5f);
        if (!st) st = o->matmul(b, &L->gate, m->xb, m->hb, n);
        if (!st) st = o->matmul(b, &L->up, m->xb, m->hb2, n);
        if (!st) st = o->swiglu(b, m->hb, m->hb2, m->hb, (size_t)n * MM_FF);
        if (!st) st = o->matmul(b, &L->down, m->hb, m->xb, n);
        if (!st) st = o->add(b, m->x, m->xb, (size_t)n * MM_DIM);
    }
    const float *last = m->x + (size_t)(n - 1) * MM_DIM;
    if (!st) st = o->rmsnorm(b, last, &m->out_norm, m->xb, 1, MM_DIM, 1e-5f);
    if (!st) st = o->matmul(b, &m->head, m->xb, m->logits, 1);
    if (step) {
        tfm_status end = o->step_end(b);
        if (!st) st = end;
    }
    CHECK(st == TFM_OK, "mini forward of %d at %d: %s", n, pos, last_error);
    return 0;
}

/* Everything a step leaves behind that the core may read: logits, residual, normed input, FFN
 * hidden state, rotated q, and the cache rows written. */
static void mini_state(mini_model *m, int pos, float *out) {
    const tfm_backend_ops *o = m->o;
    tfm_backend *b = m->b;
    size_t at = 0;
    o->download(b, out + at, m->logits, MM_VOCAB * 4), at += MM_VOCAB;
    o->download(b, out + at, m->x, MM_DIM * 4), at += MM_DIM;
    o->download(b, out + at, m->xb, MM_DIM * 4), at += MM_DIM;
    o->download(b, out + at, m->hb, MM_FF * 4), at += MM_FF;
    o->download(b, out + at, m->q, MM_HEADS * MM_HD * 4), at += MM_HEADS * MM_HD;
    uint16_t row[MM_KV * MM_HD];
    o->download(b, row, (char *)m->layer[MM_LAYERS - 1].kc + (size_t)pos * sizeof row, sizeof row);
    for (int i = 0; i < MM_KV * MM_HD; i++) out[at++] = tfm_f16_to_f32(row[i]);
    CHECK(o->sync(b) == TFM_OK, "sync: %s", last_error);
}
#define MM_STATE (MM_VOCAB + 2 * MM_DIM + MM_FF + MM_HEADS * MM_HD + MM_KV * MM_HD)

static tfm_backend *instance(const char *graphs, const char *pdl, const char *fuse, const char *mvx,
                             const char *splits) {
    setenv("TFM_CUDA_GRAPHS", graphs, 1);
    setenv("TFM_CUDA_PDL", pdl, 1);
    setenv("TFM_CUDA_FUSE", fuse, 1);
    setenv("TFM_CUDA_MVX", mvx, 1);
    setenv("TFM_CUDA_ATTN_SPLITS", splits, 1);
    tfm_backend_init_params p = {0, 0};
    tfm_backend *b = NULL;
    tfm_status st = ops->init(&p, &host, &b);
    unsetenv("TFM_CUDA_GRAPHS");
    unsetenv("TFM_CUDA_PDL");
    unsetenv("TFM_CUDA_FUSE");
    unsetenv("TFM_CUDA_MVX");
    unsetenv("TFM_CUDA_ATTN_SPLITS");
    CHECK(st == TFM_OK, "instance: %s", last_error);
    return st == TFM_OK ? b : NULL;
}

static void test_decode_steps(void) {
    tfm_backend *plain = instance("0", "0", "0", "0", "0"), *fused = instance("0", "1", "1", "0", "0");
    tfm_backend *staged = instance("1", "1", "1", "1", "0"), *clustered = instance("1", "1", "1", "0", "8");
    if (!plain || !fused || !staged || !clustered) return;
    /* all on (the default instance; 16 attention splits for 4 heads, merged through memory), fused
     * eager, the staged matvec recorded, all on with 8 splits (merged through a block cluster on
     * Hopper), plain eager */
    mini_model a, f, g, c, e;
    mini_load(ops, be, &a, 42);
    mini_load(ops, fused, &f, 42);
    mini_load(ops, staged, &g, 42);
    mini_load(ops, clustered, &c, 42);
    mini_load(ops, plain, &e, 42);
    static float sa[MM_STATE], sf[MM_STATE], sg[MM_STATE], sc[MM_STATE], se[MM_STATE];
    int32_t prompt[5] = {5, 17, 39, 0, 22};
    mini_forward(&a, 0, prompt, 5, 0);
    mini_forward(&f, 0, prompt, 5, 0);
    mini_forward(&g, 0, prompt, 5, 0);
    mini_forward(&c, 0, prompt, 5, 0);
    mini_forward(&e, 0, prompt, 5, 0);
    int replays = 0, pos = 5;
    for (; pos < 205; pos++) {
        int32_t tok = (int32_t)((pos * 7) % MM_VOCAB);
        replays += mini_forward(&a, 7777, &tok, 1, pos);
        mini_forward(&f, 0, &tok, 1, pos);
        mini_forward(&g, 5555, &tok, 1, pos);
        mini_forward(&c, 3333, &tok, 1, pos);
        mini_forward(&e, 0, &tok, 1, pos);
        if (pos % 20 == 5 || pos == 204) {
            mini_state(&a, pos, sa);
            mini_state(&f, pos, sf);
            mini_state(&g, pos, sg);
            mini_state(&c, pos, sc);
            mini_state(&e, pos, se);
            double ea = rel_err(sa, se, MM_STATE), ef = rel_err(sf, se, MM_STATE), eg = rel_err(sg, se, MM_STATE);
            double ec = rel_err(sc, se, MM_STATE);
            CHECK(ea <= 2e-5 && ef <= 2e-5 && eg <= 2e-5 && ec <= 2e-5,
                  "decode step at pos %d: recorded+fused rel err %.3g, fused %.3g, staged %.3g, 8 splits %.3g vs plain",
                  pos, ea, ef, eg, ec);
            double el = rel_err(sa, se, MM_VOCAB);
            CHECK(el <= 2e-5, "decode step logits at pos %d: rel err %.3g", pos, el);
        }
    }
    CHECK(replays == 199, "expected 199 replays of the recorded step, got %d", replays);
    /* a different key records again and replays independently; a prompt chunk in between */
    int32_t chunk[3] = {1, 2, 3};
    mini_forward(&a, 0, chunk, 3, pos);
    mini_forward(&e, 0, chunk, 3, pos);
    pos += 3;
    for (int i = 0; i < 3; i++, pos++) {
        int32_t tok = (int32_t)i + 9;
        int r = mini_forward(&a, 8888, &tok, 1, pos);
        mini_forward(&e, 0, &tok, 1, pos);
        mini_state(&a, pos, sa);
        mini_state(&e, pos, se);
        CHECK(r == (i > 0) && rel_err(sa, se, MM_STATE) <= 2e-5, "second key, step %d (replayed %d): rel err %.3g", i,
              r, rel_err(sa, se, MM_STATE));
    }
    mini_free(&a);
    mini_free(&f);
    mini_free(&g);
    mini_free(&c);
    mini_free(&e);
    ops->destroy(clustered);
    ops->destroy(plain);
    ops->destroy(fused);
    ops->destroy(staged);
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void) {
    last_error[0] = 0;
    void *p = ops->alloc(be, (size_t)1 << 52);
    CHECK(p == NULL, "4 PiB allocation succeeded");
    CHECK(strstr(last_error, "4503599627370496") != NULL && strstr(last_error, "free") != NULL,
          "OOM message names the size and free memory: '%s'", last_error);
    unsigned char block[34] = {0};
    tfm_weight w;
    tfm_status st = ops->weight_load(be, &w, block, TFM_DTYPE_Q8_0, 1, 32);
    CHECK(st == TFM_E_UNSUPPORTED && strstr(last_error, "q8_0"), "q8_0 weight: status %d '%s'", (int)st, last_error);
    /* the backend still works after the failures */
    size_t free_b = 0, total_b = 0;
    ops->mem_info(be, &free_b, &total_b);
    CHECK(total_b > 0 && free_b <= total_b, "mem_info %zu / %zu", free_b, total_b);
    CHECK(ops->sync(be) == TFM_OK, "sync after errors: %s", last_error);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s path/to/libtfm-cuda.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    tfm_backend_entry_fn entry = (tfm_backend_entry_fn)dlsym(h, TFM_BACKEND_ENTRY_SYMBOL);
    ops = entry ? entry() : NULL;
    if (!ops || ops->abi_version != TFM_BACKEND_ABI_VERSION || strcmp(ops->name, "cuda") != 0) {
        fprintf(stderr, "%s: no cuda backend table with ABI version %d\n", argv[1], TFM_BACKEND_ABI_VERSION);
        return 1;
    }
    if (!ops->available()) {
        printf("SKIP: no CUDA device of compute capability 8.0 or newer is usable here (driver or GPU missing)\n");
        return 77;
    }
    tfm_backend_init_params params = {0, 0};
    if (ops->init(&params, &host, &be) != TFM_OK) {
        fprintf(stderr, "init failed: %s\n", last_error);
        return 1;
    }

    tfm_dtype wt[] = {TFM_DTYPE_F32, TFM_DTYPE_F16, TFM_DTYPE_BF16};
    /* source type, and the device type forced (NULL: the default choice, f16) */
    struct {
        tfm_dtype src;
        const char *device;
    } wcases[] = {{TFM_DTYPE_F32, "f32"}, {TFM_DTYPE_F16, NULL}, {TFM_DTYPE_BF16, NULL}, {TFM_DTYPE_BF16, "bf16"},
                  {TFM_DTYPE_F32, "bf16"}};
    for (int d = 0; d < 5; d++) {
        if (wcases[d].device) setenv("TFM_CUDA_WEIGHT_DTYPE", wcases[d].device, 1);
        int shapes[][2] = {{37, 64}, {300, 4096}, {129, 136}, {67, 100}, {1000, 11008}, {4096, 4096}};
        int ns[] = {1, 2, 5, 64, 300};
        for (int s = 0; s < 6; s++)
            for (int i = 0; i < 5; i++) {
                if (s >= 4 && i > 1) continue; /* keep the big shapes cheap on the CPU reference */
                test_matmul(wcases[d].src, shapes[s][0], shapes[s][1], ns[i]);
            }
        test_embed(wcases[d].src);
        unsetenv("TFM_CUDA_WEIGHT_DTYPE");
    }
    test_matmul_converted();

    test_rmsnorm(3, 4096, 0);
    test_rmsnorm(2, 100, 1);
    test_rmsnorm(1, 4096, 1);
    for (int pairing = 0; pairing < 2; pairing++) {
        test_rope(5, 4, 64, 17, (tfm_rope_pairing)pairing);
        test_rope(1, 32, 128, 4000, (tfm_rope_pairing)pairing);
        test_rope(3, 3, 18, 0, (tfm_rope_pairing)pairing);
    }
    for (int d = 0; d < 3; d++) test_kv_store(wt[d]);
    test_swiglu_add(4096);
    test_swiglu_add(1001);

    for (int d = 0; d < 3; d++) {
        tfm_dtype kv = wt[d];
        /* decode (split-K), every head_dim it handles, GQA, long and short */
        test_attention(kv, 1, 0, 4, 4, 64, 1);
        test_attention(kv, 1, 700, 8, 2, 128, 1);
        test_attention(kv, 1, 37, 6, 3, 32, 1);
        test_attention(kv, 1, 130, 2, 1, 256, 1);
        test_attention(kv, 1, 20, 2, 2, 48, 1); /* simple kernel */
        test_attention_batches(kv);
        /* decode with RoPE and the cache appends folded in: every head_dim, both pairings, GQA */
        for (int pairing = 0; pairing < 2; pairing++) {
            tfm_rope_pairing pr = (tfm_rope_pairing)pairing;
            for (int mv = 0; mv < 2; mv++) {
                test_rope_attention(kv, 0, 4, 4, 64, pr, mv);
                test_rope_attention(kv, 700, 8, 2, 128, pr, mv);
                test_rope_attention(kv, 37, 6, 3, 32, pr, mv);
                test_rope_attention(kv, 130, 2, 1, 256, pr, mv);
                test_rope_attention(kv, 255, 32, 32, 128, pr, mv);
            }
            test_rope_attention(kv, 20, 2, 2, 48, pr, 1); /* no fused kernel for this head size */
        }
    }

    test_decode_steps();
    test_errors();

    ops->destroy(be);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
