/* test_cuda_ops.c — every operation of the cuda plugin against the cpu backend's naive twins
 * (backends/cpu/reference.c), for each weight and KV dtype, both RoPE pairings, grouped and plain
 * attention on the decode, flash and simple kernels, shapes that are not multiples of any vector or
 * tile width; then a recorded decode step (CUDA graph) replayed at later positions against eager
 * runs, and the error paths (out of memory, unsupported weight types).
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
    if (st == TFM_OK) {
        float *dx = dev_upload(x, (size_t)n * cols * sizeof(float));
        float *dy = dev_poisoned((size_t)n * rows * sizeof(float));
        st = ops->matmul(be, &wt, dx, dy, n);
        CHECK(st == TFM_OK, "matmul: %s", last_error);
        dev_download(got, dy, (size_t)n * rows * sizeof(float));
        double tol = n == 1 || dtype == TFM_DTYPE_F32 ? 2e-5 : dtype == TFM_DTYPE_F16 ? 2e-3 : 1.2e-2;
        double e = rel_err(got, ref, (size_t)n * rows);
        CHECK(e <= tol, "matmul %s rows %lld cols %lld n %d: rel err %.3g > %.3g", dname(dtype), (long long)rows,
              (long long)cols, n, e, tol);
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
    /* the table may have been converted (f32 -> f16): compare within that rounding */
    double e = rel_err(got, ref, 5 * 132);
    CHECK(e <= (dtype == TFM_DTYPE_F32 ? 1e-3 : 0.0), "embed %s: rel err %.3g", dname(dtype), e);
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

/* ------------------------------------------------------------------ recorded decode steps */

/* A miniature decode step: embed the token, project to q/k/v, RoPE, append to the cache, attend,
 * project out. Run on `b` at position pos; returns the output (n_out floats) in host memory. */
typedef struct mini_model {
    tfm_weight embd, wq, wk, wv, wo, norm;
    float *inv_freq, *x, *xb, *q, *k, *v, *att, *y;
    void *kc, *vc;
} mini_model;

enum { MM_VOCAB = 40, MM_DIM = 256, MM_HEADS = 4, MM_KV = 2, MM_HD = 64, MM_CTX = 300 };

static void mini_load(const tfm_backend_ops *o, tfm_backend *b, mini_model *m, uint64_t seed) {
    uint64_t saved = rng_state;
    rng_state = seed;
    float *e = random_floats(MM_VOCAB * MM_DIM, -1, 1), *wq = random_floats(MM_DIM * MM_DIM, -0.1f, 0.1f);
    float *wk = random_floats(MM_KV * MM_HD * MM_DIM, -0.1f, 0.1f), *wv = random_floats(MM_KV * MM_HD * MM_DIM, -0.1f, 0.1f);
    float *wo = random_floats(MM_DIM * MM_DIM, -0.1f, 0.1f), *g = random_floats(MM_DIM, 0.5f, 1.5f);
    float inv[MM_HD / 2];
    for (int i = 0; i < MM_HD / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / MM_HD);
    rng_state = saved;
    o->weight_load(b, &m->embd, e, TFM_DTYPE_F32, MM_VOCAB, MM_DIM);
    o->weight_load(b, &m->wq, wq, TFM_DTYPE_F32, MM_DIM, MM_DIM);
    o->weight_load(b, &m->wk, wk, TFM_DTYPE_F32, MM_KV * MM_HD, MM_DIM);
    o->weight_load(b, &m->wv, wv, TFM_DTYPE_F32, MM_KV * MM_HD, MM_DIM);
    o->weight_load(b, &m->wo, wo, TFM_DTYPE_F32, MM_DIM, MM_DIM);
    o->weight_load(b, &m->norm, g, TFM_DTYPE_F32, 1, MM_DIM);
    m->inv_freq = o->alloc(b, sizeof inv);
    o->upload(b, m->inv_freq, inv, sizeof inv);
    m->x = o->alloc(b, MM_DIM * 4);
    m->xb = o->alloc(b, MM_DIM * 4);
    m->q = o->alloc(b, MM_DIM * 4);
    m->k = o->alloc(b, MM_KV * MM_HD * 4);
    m->v = o->alloc(b, MM_KV * MM_HD * 4);
    m->att = o->alloc(b, MM_DIM * 4);
    m->y = o->alloc(b, MM_DIM * 4);
    m->kc = o->alloc(b, (size_t)MM_CTX * MM_KV * MM_HD * 2);
    m->vc = o->alloc(b, (size_t)MM_CTX * MM_KV * MM_HD * 2);
    free(e);
    free(wq);
    free(wk);
    free(wv);
    free(wo);
    free(g);
}

static void mini_free(const tfm_backend_ops *o, tfm_backend *b, mini_model *m) {
    tfm_weight *w[] = {&m->embd, &m->wq, &m->wk, &m->wv, &m->wo, &m->norm};
    for (int i = 0; i < 6; i++) o->weight_free(b, w[i]);
    void *p[] = {m->inv_freq, m->x, m->xb, m->q, m->k, m->v, m->att, m->y, m->kc, m->vc};
    for (int i = 0; i < 10; i++) o->free(b, p[i]);
}

/* Runs one token through the mini model: returns 1 if the backend replayed a recording. */
static int mini_step(const tfm_backend_ops *o, tfm_backend *b, mini_model *m, uint64_t key, int pos, int32_t token,
                     float *out) {
    int replayed = o->step_begin ? o->step_begin(b, key, pos, token) : 0;
    if (!replayed) {
        tfm_status st = TFM_OK;
        if (!st) st = o->embed(b, &m->embd, &token, 1, m->x);
        if (!st) st = o->rmsnorm(b, m->x, &m->norm, m->xb, 1, MM_DIM, 1e-5f);
        if (!st) st = o->matmul(b, &m->wq, m->xb, m->q, 1);
        if (!st) st = o->matmul(b, &m->wk, m->xb, m->k, 1);
        if (!st) st = o->matmul(b, &m->wv, m->xb, m->v, 1);
        if (!st) st = o->rope(b, m->q, 1, MM_HEADS, MM_HD, pos, m->inv_freq, TFM_ROPE_HALF);
        if (!st) st = o->rope(b, m->k, 1, MM_KV, MM_HD, pos, m->inv_freq, TFM_ROPE_HALF);
        if (!st) st = o->kv_store(b, m->kc, TFM_DTYPE_F16, pos, m->k, 1, MM_KV * MM_HD);
        if (!st) st = o->kv_store(b, m->vc, TFM_DTYPE_F16, pos, m->v, 1, MM_KV * MM_HD);
        if (!st)
            st = o->attention(b, m->q, m->kc, m->vc, TFM_DTYPE_F16, m->att, 1, pos, MM_HEADS, MM_KV, MM_HD,
                              1.0f / sqrtf((float)MM_HD), 1);
        if (!st) st = o->matmul(b, &m->wo, m->att, m->y, 1);
        if (!st) st = o->swiglu(b, m->y, m->x, m->y, MM_DIM);
        if (!st) st = o->add(b, m->y, m->xb, MM_DIM);
        if (o->step_end) {
            tfm_status end = o->step_end(b);
            if (!st) st = end;
        }
        CHECK(st == TFM_OK, "mini step at %d: %s", pos, last_error);
    }
    CHECK(o->download(b, out, m->y, MM_DIM * 4) == TFM_OK && o->sync(b) == TFM_OK, "download: %s", last_error);
    return replayed;
}

static void test_recorded_steps(const char *plugin_path) {
    /* The eager twin: a second instance with graphs and programmatic launch turned off. */
    setenv("TFM_CUDA_GRAPHS", "0", 1);
    setenv("TFM_CUDA_PDL", "0", 1);
    tfm_backend_init_params p = {0, 0};
    tfm_backend *eager = NULL;
    tfm_status st = ops->init(&p, &host, &eager);
    unsetenv("TFM_CUDA_GRAPHS");
    unsetenv("TFM_CUDA_PDL");
    (void)plugin_path;
    CHECK(st == TFM_OK, "second instance: %s", last_error);
    if (st) return;

    mini_model a, b;
    mini_load(ops, be, &a, 42);
    mini_load(ops, eager, &b, 42);
    float out_a[MM_DIM], out_b[MM_DIM];
    int32_t tokens[] = {5, 17, 39, 0, 22, 22, 8, 31};
    int replays = 0;
    /* a prompt of 3 positions first, eagerly (not inside a step) */
    for (int pos = 0; pos < 200; pos++) {
        int32_t tok = tokens[pos % 8];
        int r = mini_step(ops, be, &a, 7777, pos, tok, out_a);
        mini_step(ops, eager, &b, 0, pos, tok, out_b);
        replays += r;
        double e = rel_err(out_a, out_b, MM_DIM);
        CHECK(e <= 2e-5, "recorded step at pos %d (replayed %d): rel err %.3g vs eager", pos, r, e);
    }
    CHECK(replays == 199, "expected 199 replays of the recorded step, got %d", replays);
    /* a different key records again and replays independently */
    int r2 = mini_step(ops, be, &a, 8888, 200, 3, out_a);
    mini_step(ops, eager, &b, 0, 200, 3, out_b);
    CHECK(r2 == 0 && rel_err(out_a, out_b, MM_DIM) <= 2e-5, "second key, first step");
    r2 = mini_step(ops, be, &a, 8888, 201, 4, out_a);
    mini_step(ops, eager, &b, 0, 201, 4, out_b);
    CHECK(r2 == 1 && rel_err(out_a, out_b, MM_DIM) <= 2e-5, "second key replayed (%d)", r2);

    mini_free(ops, be, &a);
    mini_free(ops, eager, &b);
    ops->destroy(eager);
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
    setenv("TFM_CUDA_WEIGHT_DTYPE", "f32", 1); /* keep f32 weights f32 for the exact checks */
    for (int d = 0; d < 3; d++) {
        if (d == 1) unsetenv("TFM_CUDA_WEIGHT_DTYPE");
        int shapes[][2] = {{37, 64}, {300, 4096}, {129, 136}, {67, 100}, {1000, 11008}};
        int ns[] = {1, 2, 5, 64, 300};
        for (int s = 0; s < 5; s++)
            for (int i = 0; i < 5; i++) {
                if (s == 4 && i > 1) continue; /* keep the big shape cheap on the CPU reference */
                test_matmul(wt[d], shapes[s][0], shapes[s][1], ns[i]);
            }
        test_embed(wt[d]);
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
        /* batches: flash for f16/bf16 with dims 64/128, simple otherwise */
        test_attention(kv, 7, 0, 4, 4, 64, 1);
        test_attention(kv, 64, 0, 4, 2, 128, 1);
        test_attention(kv, 130, 5, 4, 1, 128, 1);
        test_attention(kv, 100, 300, 2, 2, 64, 1);
        test_attention(kv, 65, 0, 4, 4, 128, 0);
        test_attention(kv, 9, 3, 3, 1, 40, 1);
    }

    test_recorded_steps(argv[1]);
    test_errors();

    ops->destroy(be);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
