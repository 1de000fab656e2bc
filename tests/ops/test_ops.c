/* test_ops.c — every operation of the cpu backend's table against its naive twin (reference.c), for
 * each kernel table this CPU supports (generic, avx2, avx512), each dtype, both RoPE pairings, grouped
 * and plain attention, sizes that are not multiples of any vector width, and 1, 2 and 3 threads.
 * Results with 2 and 3 threads must equal the 1-thread results bit for bit. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_features.h"
#include "half.h"
#include "kernels.h"
#include "quant.h"
#include "reference.h"
#include "weight_arena.h"

static int failures;
static char last_error[512];

static void host_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}
static const tfm_backend_host host = {host_set_error, NULL};

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            failures++;                                             \
            if (failures < 30) {                                    \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                       \
                fprintf(stderr, "\n");                              \
            }                                                       \
        }                                                           \
    } while (0)

/* ---- deterministic random numbers ---- */
static uint64_t rng_state;
static uint32_t rng_u32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)(rng_u32() >> 8) / 16777216.0f;
}
static float *random_floats(size_t n, float lo, float hi) {
    float *v = malloc(n * sizeof *v + 64);
    for (size_t i = 0; i < n; i++)
        v[i] = rng_uniform(lo, hi);
    return v;
}

/* ---- everything an op produced, to compare runs with different thread counts bit for bit ---- */
typedef struct digest {
    float *v;
    size_t n, cap;
} digest;
static void digest_add(digest *d, const float *v, size_t n) {
    if (d->n + n > d->cap) {
        d->cap = (d->n + n) * 2;
        d->v = realloc(d->v, d->cap * sizeof *d->v);
    }
    memcpy(d->v + d->n, v, n * sizeof *v);
    d->n += n;
}

static size_t dtype_size(tfm_dtype t) {
    return t == TFM_DTYPE_F32 ? 4 : 2;
}
static const char *dtype_str(tfm_dtype t) {
    return t == TFM_DTYPE_F32 ? "f32" : t == TFM_DTYPE_F16 ? "f16" : "bf16";
}
/* Stores floats in dtype (with the exactly rounding scalar conversions). */
static void *to_dtype(tfm_dtype t, const float *src, size_t n) {
    void *dst = malloc(n * dtype_size(t) + 64);
    tfm_ref_kv_store(dst, t, 0, src, 1, (int)n);
    return dst;
}

static const tfm_dtype float_types[] = {TFM_DTYPE_F32, TFM_DTYPE_F16, TFM_DTYPE_BF16};

/* ---- matmul ---- */
static void test_matmul(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    static const int shapes[][2] = {{37, 67}, {16, 64}, {130, 257}, {300, 1000}};
    static const int ns[] = {1, 2, 3, 4, 5, 8, 9, 17, 40};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int d = 0; d < 3; d++) {
            tfm_dtype dt = float_types[d];
            int rows = shapes[s][0], cols = shapes[s][1];
            float *wf = random_floats((size_t)rows * cols, -1, 1);
            void *wd = to_dtype(dt, wf, (size_t)rows * cols);
            tfm_weight w = {0};
            CHECK(ops->weight_load(be, &w, wd, dt, rows, cols) == TFM_OK, "weight_load %s", dtype_str(dt));
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                int n = ns[k];
                float *x = random_floats((size_t)n * cols, -1, 1);
                float *y = calloc((size_t)n * rows, sizeof *y), *ref = calloc((size_t)n * rows, sizeof *ref);
                CHECK(ops->matmul(be, &w, x, y, n) == TFM_OK, "matmul");
                tfm_ref_matmul(dt, wd, rows, cols, x, ref, n);
                /* The textbook bound of float summation, cols * 2^-24 * Σ|w x|, holds for any order. */
                double worst = 0;
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < rows; r++) {
                        double mag = 0;
                        for (int c = 0; c < cols; c++)
                            mag += fabs(tfm_ref_weight_element(dt, (char *)wd + ((size_t)r * cols) * dtype_size(dt), c) *
                                        x[(size_t)t * cols + c]);
                        double err = fabs((double)y[(size_t)t * rows + r] - ref[(size_t)t * rows + r]);
                        double bound = cols * ldexp(1.0, -24) * mag + 1e-30;
                        if (err / bound > worst)
                            worst = err / bound;
                    }
                CHECK(worst <= 1.0, "matmul %s %dx%d n=%d: error %.3g x the bound", dtype_str(dt), rows, cols, n, worst);
                digest_add(dg, y, (size_t)n * rows);
                free(x);
                free(y);
                free(ref);
            }
            ops->weight_free(be, &w);
            free(wf);
            free(wd);
        }
}

/* ---- block-quantised weights ---- */
static const tfm_dtype quant_types[] = {TFM_DTYPE_Q8_0, TFM_DTYPE_Q4_0, TFM_DTYPE_Q4_K, TFM_DTYPE_Q5_K, TFM_DTYPE_Q6_K};

static void put_f16(uint8_t *p, float v) {
    uint16_t h = tfm_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Random blocks: random bits everywhere, then sane f16 scales (positive and negative). */
static uint8_t *random_quant(tfm_dtype t, int64_t rows, int64_t cols) {
    int bb = tfm_q_block_bytes(t), bv = tfm_q_block_values(t);
    size_t nblocks = (size_t)(rows * cols / bv);
    uint8_t *p = malloc(nblocks * (size_t)bb + 64);
    for (size_t i = 0; i < nblocks * (size_t)bb; i++)
        p[i] = (uint8_t)(rng_u32() >> 13);
    for (size_t b = 0; b < nblocks; b++) {
        uint8_t *blk = p + b * (size_t)bb;
        float d = rng_uniform(-0.02f, 0.02f);
        if (t == TFM_DTYPE_Q6_K) {
            put_f16(blk + 208, d);
        } else {
            put_f16(blk, d);
            if (t == TFM_DTYPE_Q4_K || t == TFM_DTYPE_Q5_K)
                put_f16(blk + 2, rng_uniform(0.0f, 0.01f));
        }
    }
    return p;
}

static const char *qname(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_Q8_0: return "q8_0";
    case TFM_DTYPE_Q4_0: return "q4_0";
    case TFM_DTYPE_Q4_K: return "q4_k";
    case TFM_DTYPE_Q5_K: return "q5_k";
    default: return "q6_k";
    }
}

static void test_quant(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    static const int shapes[][2] = {{19, 256}, {64, 512}, {45, 1280}};
    static const int ns[] = {1, 2, 3, 4, 5, 9, 20};
    for (size_t q = 0; q < sizeof quant_types / sizeof quant_types[0]; q++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            tfm_dtype dt = quant_types[q];
            int rows = shapes[s][0], cols = shapes[s][1];
            uint8_t *wd = random_quant(dt, rows, cols);
            size_t row_bytes = tfm_cpu_row_bytes(dt, cols);
            tfm_weight w = {0};
            CHECK(ops->weight_load(be, &w, wd, dt, rows, cols) == TFM_OK, "weight_load %s", qname(dt));
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                int n = ns[k];
                float *x = random_floats((size_t)n * cols, -1, 1);
                float *y = calloc((size_t)n * rows, sizeof *y), *ref = calloc((size_t)n * rows, sizeof *ref);
                CHECK(ops->matmul(be, &w, x, y, n) == TFM_OK, "matmul %s", qname(dt));
                tfm_ref_matmul(dt, wd, rows, cols, x, ref, n);
                double worst = 0;
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < rows; r++) {
                        double mag = 0;
                        for (int c = 0; c < cols; c++)
                            mag += fabs(tfm_ref_weight_element(dt, wd + (size_t)r * row_bytes, c) * x[(size_t)t * cols + c]);
                        double err = fabs((double)y[(size_t)t * rows + r] - ref[(size_t)t * rows + r]);
                        double bound = cols * ldexp(1.0, -24) * mag + 1e-30;
                        worst = err / bound > worst ? err / bound : worst;
                    }
                CHECK(worst <= 1.0, "matmul %s %dx%d n=%d: error %.3g x the bound", qname(dt), rows, cols, n, worst);
                digest_add(dg, y, (size_t)n * rows);
                free(x), free(y), free(ref);
            }
            /* embedding rows of a quantised table are dequantised exactly */
            int32_t ids[3] = {rows - 1, 0, rows / 2};
            float *out = malloc((size_t)3 * cols * sizeof *out);
            CHECK(ops->embed(be, &w, ids, 3, out) == TFM_OK, "embed %s", qname(dt));
            int exact = 1;
            for (int i = 0; i < 3; i++)
                for (int c = 0; c < cols; c++) {
                    float e = tfm_ref_weight_element(dt, wd + (size_t)ids[i] * row_bytes, c);
                    exact &= memcmp(&e, &out[(size_t)i * cols + c], sizeof e) == 0;
                }
            CHECK(exact, "embed %s differs from the block definition", qname(dt));
            free(out);
            ops->weight_free(be, &w);
            free(wd);
        }
    /* a row must hold whole blocks */
    tfm_weight w = {0};
    uint8_t buf[1024] = {0};
    CHECK(ops->weight_load(be, &w, buf, TFM_DTYPE_Q4_K, 2, 128) == TFM_E_UNSUPPORTED, "q4_k with 128 columns");
    CHECK(ops->weight_load(be, &w, buf, TFM_DTYPE_Q4_0, 2, 48) == TFM_E_UNSUPPORTED, "q4_0 with 48 columns");
}

/* ---- matmul_shared: several weights over one input give what matmul gives, bit for bit ---- */
static void test_matmul_shared(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    /* Q4_K_M-like mixes: the same type, mixed quantised types, float types, quantised with float */
    static const tfm_dtype mixes[][3] = {
        {TFM_DTYPE_Q4_K, TFM_DTYPE_Q4_K, TFM_DTYPE_Q6_K}, {TFM_DTYPE_Q4_0, TFM_DTYPE_Q8_0, TFM_DTYPE_Q4_0},
        {TFM_DTYPE_F16, TFM_DTYPE_F16, TFM_DTYPE_F16}, {TFM_DTYPE_BF16, TFM_DTYPE_F32, TFM_DTYPE_Q8_0}};
    static const int rows[3] = {48, 21, 16};
    static const int ns[] = {1, 3, 7, 40};
    const int cols = 512;
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        tfm_weight w[3] = {{0}};
        void *data[3];
        for (int i = 0; i < 3; i++) {
            tfm_dtype dt = mixes[m][i];
            if (tfm_is_quantized(dt)) {
                data[i] = random_quant(dt, rows[i], cols);
            } else {
                float *f = random_floats((size_t)rows[i] * cols, -1, 1);
                data[i] = to_dtype(dt, f, (size_t)rows[i] * cols);
                free(f);
            }
            CHECK(ops->weight_load(be, &w[i], data[i], dt, rows[i], cols) == TFM_OK, "weight_load for matmul_shared");
        }
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            int n = ns[k];
            float *x = random_floats((size_t)n * cols, -1, 1);
            float *y[3], *ref[3];
            for (int i = 0; i < 3; i++) {
                y[i] = calloc((size_t)n * rows[i], sizeof(float));
                ref[i] = calloc((size_t)n * rows[i], sizeof(float));
                CHECK(ops->matmul(be, &w[i], x, ref[i], n) == TFM_OK, "matmul");
            }
            const tfm_weight *ws[3] = {&w[0], &w[1], &w[2]};
            for (int count = 2; count <= 3; count++) {
                CHECK(ops->matmul_shared(be, ws, count, x, y, n) == TFM_OK, "matmul_shared: %s", last_error);
                for (int i = 0; i < count; i++)
                    CHECK(memcmp(y[i], ref[i], (size_t)n * rows[i] * sizeof(float)) == 0,
                          "matmul_shared mix %zu, weight %d of %d, n=%d differs from matmul", m, i, count, n);
            }
            for (int i = 0; i < 3; i++) {
                digest_add(dg, y[i], (size_t)n * rows[i]);
                free(y[i]), free(ref[i]);
            }
            free(x);
        }
        /* bad calls: no weights, too many, different widths */
        float x1[512] = {0}, out[64];
        float *outs[5] = {out, out, out, out, out};
        const tfm_weight *five[5] = {&w[0], &w[0], &w[0], &w[0], &w[0]};
        CHECK(ops->matmul_shared(be, five, 0, x1, outs, 1) == TFM_E_INVALID_ARGUMENT, "matmul_shared of 0 weights");
        CHECK(ops->matmul_shared(be, five, 5, x1, outs, 1) == TFM_E_INVALID_ARGUMENT, "matmul_shared of 5 weights");
        tfm_weight narrow = {0};
        float nd[16 * 32] = {0};
        CHECK(ops->weight_load(be, &narrow, nd, TFM_DTYPE_F32, 16, 32) == TFM_OK, "narrow weight");
        const tfm_weight *mixed[2] = {&w[0], &narrow};
        CHECK(ops->matmul_shared(be, mixed, 2, x1, outs, 1) == TFM_E_INVALID_ARGUMENT, "matmul_shared of 512 and 32 columns");
        ops->weight_free(be, &narrow);
        for (int i = 0; i < 3; i++) {
            ops->weight_free(be, &w[i]);
            free(data[i]);
        }
    }
}

/* ---- embed ---- */
static void test_embed(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    int vocab = 50, cols = 37, n = 6;
    int32_t ids[6] = {0, 49, 7, 7, 13, 1};
    for (int d = 0; d < 3; d++) {
        tfm_dtype dt = float_types[d];
        float *tf = random_floats((size_t)vocab * cols, -2, 2);
        void *td = to_dtype(dt, tf, (size_t)vocab * cols);
        tfm_weight w = {0};
        CHECK(ops->weight_load(be, &w, td, dt, vocab, cols) == TFM_OK, "weight_load");
        float out[6 * 37], ref[6 * 37];
        CHECK(ops->embed(be, &w, ids, n, out) == TFM_OK, "embed");
        tfm_ref_embed(dt, td, cols, ids, n, ref);
        CHECK(memcmp(out, ref, sizeof out) == 0, "embed %s differs from the exact conversion", dtype_str(dt));
        int32_t bad = vocab;
        CHECK(ops->embed(be, &w, &bad, 1, out) == TFM_E_INVALID_ARGUMENT, "embed accepted id %d", bad);
        digest_add(dg, out, sizeof out / sizeof out[0]);
        free(tf);
        free(td);
    }
}

/* ---- rmsnorm ---- */
static void test_rmsnorm(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    static const int dims[] = {1, 7, 64, 1000, 2048};
    static const int ns[] = {1, 3, 20};
    for (size_t a = 0; a < sizeof dims / sizeof dims[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            int dim = dims[a], n = ns[b];
            float *x = random_floats((size_t)n * dim, -3, 3), *g = random_floats((size_t)dim, 0.5f, 1.5f);
            float *y = malloc((size_t)n * dim * sizeof *y), *ref = malloc((size_t)n * dim * sizeof *ref);
            tfm_weight gw = {0};
            ops->weight_load(be, &gw, g, TFM_DTYPE_F32, 1, dim);
            CHECK(ops->rmsnorm(be, x, &gw, y, n, dim, 1e-5f) == TFM_OK, "rmsnorm");
            tfm_ref_rmsnorm(x, g, ref, n, dim, 1e-5f);
            for (size_t i = 0; i < (size_t)n * dim; i++)
                CHECK(fabsf(y[i] - ref[i]) <= 2e-6f * fabsf(ref[i]) + 1e-7f, "rmsnorm dim %d: %g vs %g", dim, y[i], ref[i]);
            digest_add(dg, y, (size_t)n * dim);
            /* in place */
            CHECK(ops->rmsnorm(be, x, &gw, x, n, dim, 1e-5f) == TFM_OK, "rmsnorm in place");
            CHECK(memcmp(x, y, (size_t)n * dim * sizeof *x) == 0, "rmsnorm in place differs");
            free(x), free(g), free(y), free(ref);
        }
}

/* ---- rope ---- */
static void test_rope(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    static const int cases[][4] = {/* n, n_head, head_dim, pos0 */ {3, 5, 6, 0}, {1, 4, 64, 17}, {9, 2, 128, 1000}, {40, 8, 64, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int pairing = 0; pairing < 2; pairing++) {
            int n = cases[c][0], nh = cases[c][1], hd = cases[c][2], pos0 = cases[c][3];
            size_t count = (size_t)n * nh * hd;
            float inv_freq[64];
            for (int i = 0; i < hd / 2; i++)
                inv_freq[i] = (float)pow(10000.0, -2.0 * i / hd);
            float *x = random_floats(count, -2, 2);
            float *ref = malloc(count * sizeof *ref);
            memcpy(ref, x, count * sizeof *x);
            CHECK(ops->rope(be, x, n, nh, hd, pos0, inv_freq, (tfm_rope_pairing)pairing) == TFM_OK, "rope");
            tfm_ref_rope(ref, n, nh, hd, pos0, inv_freq, (tfm_rope_pairing)pairing);
            for (size_t i = 0; i < count; i++)
                CHECK(fabsf(x[i] - ref[i]) <= 1e-6f * 4, "rope pairing %d hd %d: %g vs %g", pairing, hd, x[i], ref[i]);
            digest_add(dg, x, count);
            free(x), free(ref);
        }
    /* the two pairings rotate different elements */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {1, 2, 3, 4, 5, 6, 7, 8}, f[4] = {1, 0.5f, 0.25f, 0.125f};
    ops->rope(be, a, 1, 1, 8, 1, f, TFM_ROPE_ADJACENT);
    ops->rope(be, b, 1, 1, 8, 1, f, TFM_ROPE_HALF);
    CHECK(fabsf(a[0] - (float)(1 * cos(1.0) - 2 * sin(1.0))) < 1e-6f, "adjacent pairing rotates (x0, x1)");
    CHECK(fabsf(b[0] - (float)(1 * cos(1.0) - 5 * sin(1.0))) < 1e-6f, "half pairing rotates (x0, x4)");
    /* single-token angles are kept between calls: new frequencies at the same address and position
     * must not meet the old angles */
    f[0] = 2.0f;
    float c[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ops->rope(be, c, 1, 1, 8, 1, f, TFM_ROPE_ADJACENT);
    CHECK(fabsf(c[0] - (float)(1 * cos(2.0) - 2 * sin(2.0))) < 1e-6f, "rope after the frequencies changed");
}

/* ---- kv_store ---- */
static void test_kv_store(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    /* Values that exercise rounding: ties, subnormal f16, overflow to inf, signed zero, nan. */
    float special[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, 5.96e-8f, 2.98e-8f, 2.99e-8f,
                       6.1e-5f, -6.0e-5f, 1e-40f, 1.00048828125f, 1.000244140625f, 1.0009765625f, 3.0e-39f,
                       INFINITY, -INFINITY, NAN, 1.00390625f, 1.001953125f, 1.005859375f, 0.1f, -123.456f};
    int nspec = (int)(sizeof special / sizeof special[0]);
    int width = 29, n = 7, row0 = 3;
    for (int d = 0; d < 3; d++) {
        tfm_dtype dt = float_types[d];
        float *src = random_floats((size_t)n * width, -100, 100);
        memcpy(src, special, (size_t)nspec * sizeof(float));
        size_t bytes = (size_t)(row0 + n + 1) * width * dtype_size(dt);
        void *cache = ops->alloc(be, bytes);
        void *ref = calloc(1, bytes);
        CHECK(cache != NULL, "alloc");
        CHECK(((uintptr_t)cache & 63) == 0, "alloc not 64-byte aligned");
        CHECK(ops->kv_store(be, cache, dt, row0, src, n, width) == TFM_OK, "kv_store");
        tfm_ref_kv_store(ref, dt, row0, src, n, width);
        CHECK(memcmp(cache, ref, bytes) == 0, "kv_store %s differs from round-to-nearest-even", dtype_str(dt));
        float tmp[29 * 7];
        for (int i = 0; i < n * width; i++)
            tmp[i] = tfm_ref_weight_element(dt, (char *)cache + (size_t)row0 * width * dtype_size(dt), i);
        digest_add(dg, tmp, (size_t)n * width);
        ops->free(be, cache);
        free(ref), free(src);
    }
    /* the scalar conversions against known encodings */
    CHECK(tfm_f32_to_f16(65520.0f) == 0x7c00 && tfm_f32_to_f16(65519.0f) == 0x7bff, "f16 overflow rounding");
    CHECK(tfm_f32_to_f16(5.9604644775390625e-8f) == 0x0001 && tfm_f32_to_f16(2.98e-8f) == 0x0000 &&
              tfm_f32_to_f16(2.99e-8f) == 0x0001, "f16 subnormal rounding");
    CHECK(tfm_f32_to_f16(1.00048828125f) == 0x3c00 && tfm_f32_to_f16(1.00146484375f) == 0x3c02, "f16 ties to even");
    CHECK(tfm_f32_to_bf16(1.00390625f) == 0x3f80 && tfm_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 ties to even");
    CHECK(tfm_f16_to_f32(0x0001) == 5.9604644775390625e-8f && tfm_f16_to_f32(0xfc00) == -INFINITY, "f16 decode");
}

/* ---- attention ---- */
static void test_attention(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    static const int cases[][6] = {/* n, pos0, n_head, n_head_kv, head_dim, causal */
                                   {1, 0, 4, 4, 64, 1},  {1, 37, 8, 2, 64, 1}, {7, 13, 8, 2, 20, 1},
                                   {5, 0, 6, 3, 19, 1},  {4, 9, 4, 1, 128, 0}, {33, 0, 4, 2, 64, 1},
                                   {3, 200, 32, 4, 64, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int d = 0; d < 3; d++) {
            tfm_dtype dt = float_types[d];
            int n = cases[c][0], pos0 = cases[c][1], nh = cases[c][2], nkv = cases[c][3], hd = cases[c][4];
            int causal = cases[c][5];
            int rows = pos0 + n;
            size_t kv_count = (size_t)rows * nkv * hd, q_count = (size_t)n * nh * hd;
            float *kf = random_floats(kv_count, -1, 1), *vf = random_floats(kv_count, -1, 1);
            float *q = random_floats(q_count, -1, 1);
            void *kc = ops->alloc(be, kv_count * dtype_size(dt)), *vc = ops->alloc(be, kv_count * dtype_size(dt));
            ops->kv_store(be, kc, dt, 0, kf, rows, nkv * hd);
            ops->kv_store(be, vc, dt, 0, vf, rows, nkv * hd);
            float *out = malloc(q_count * sizeof *out), *ref = malloc(q_count * sizeof *ref);
            float scale = 1.0f / sqrtf((float)hd) * 3.0f; /* peaked enough that masking errors show */
            CHECK(ops->attention(be, q, kc, vc, dt, out, n, pos0, nh, nkv, hd, scale, causal) == TFM_OK, "attention");
            tfm_ref_attention(q, kc, vc, dt, ref, n, pos0, nh, nkv, hd, scale, causal);
            for (size_t i = 0; i < q_count; i++)
                CHECK(fabsf(out[i] - ref[i]) <= 2e-6f, "attention case %zu %s: %g vs %g at %zu", c, dtype_str(dt),
                      out[i], ref[i], i);
            digest_add(dg, out, q_count);
            /* out may alias q */
            CHECK(ops->attention(be, q, kc, vc, dt, q, n, pos0, nh, nkv, hd, scale, causal) == TFM_OK, "attention");
            CHECK(memcmp(q, out, q_count * sizeof *q) == 0, "attention with out == q differs");
            ops->free(be, kc), ops->free(be, vc);
            free(kf), free(vf), free(q), free(out), free(ref);
        }
}

/* ---- swiglu, add ---- */
static void test_swiglu_add(const tfm_backend_ops *ops, tfm_backend *be, digest *dg) {
    static const size_t counts[] = {1, 15, 100, 5632, 70001};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t n = counts[c];
        float *g = random_floats(n, -20, 20), *u = random_floats(n, -3, 3);
        float *out = malloc(n * sizeof *out), *ref = malloc(n * sizeof *ref);
        CHECK(ops->swiglu(be, g, u, out, n) == TFM_OK, "swiglu");
        tfm_ref_swiglu(g, u, ref, n);
        for (size_t i = 0; i < n; i++)
            CHECK(fabsf(out[i] - ref[i]) <= 1e-6f * fabsf(ref[i]) + 1e-37f, "swiglu(%g, %g): %g vs %g", g[i], u[i],
                  out[i], ref[i]);
        digest_add(dg, out, n);
        CHECK(ops->swiglu(be, g, u, g, n) == TFM_OK && memcmp(g, out, n * sizeof *g) == 0, "swiglu in place differs");

        memcpy(ref, u, n * sizeof *u);
        tfm_ref_add(ref, out, n);
        CHECK(ops->add(be, u, out, n) == TFM_OK, "add");
        CHECK(memcmp(u, ref, n * sizeof *u) == 0, "add differs");
        free(g), free(u), free(out), free(ref);
    }
}

/* ---- memory and the rest of the table ---- */
static void test_table(const tfm_backend_ops *ops, tfm_backend *be) {
    CHECK(ops->abi_version == TFM_BACKEND_ABI_VERSION && strcmp(ops->name, "cpu") == 0, "table identity");
    CHECK(ops->available() == 1, "cpu is always available");
    unsigned char *p = ops->alloc(be, 1000);
    CHECK(p && ((uintptr_t)p & 63) == 0, "alloc aligned");
    int zero = 1;
    for (int i = 0; i < 1000; i++)
        zero &= p[i] == 0;
    CHECK(zero, "alloc not zeroed");
    unsigned char src[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        src[i] = (unsigned char)(i * 7);
    CHECK(ops->upload(be, p, src, 1000) == TFM_OK && ops->download(be, back, p, 1000) == TFM_OK &&
              memcmp(src, back, 1000) == 0, "upload/download");
    ops->free(be, p);
    ops->free(be, NULL);
    CHECK(ops->alloc(be, SIZE_MAX - 8) == NULL && last_error[0], "absurd alloc must fail with a message");
    size_t fr = 1, tot = 1;
    ops->mem_info(be, &fr, &tot);
    CHECK(fr == 0 && tot == 0, "cpu mem_info reports unknown");
    CHECK(ops->sync(be) == TFM_OK, "sync");
    tfm_weight w = {0};
    float data[4] = {0};
    last_error[0] = 0;
    CHECK(ops->weight_load(be, &w, data, TFM_DTYPE_I32, 2, 2) == TFM_E_UNSUPPORTED && last_error[0], "i32 weights");
    CHECK(ops->weight_load(be, &w, data, TFM_DTYPE_F32, 2, 2) == TFM_OK && w.data == data, "weights are not copied");
}

/* Every field of a table's activation quantisation against tfm_q8_block, bit for bit: random blocks,
 * an all-zero block, blocks whose scaled values fall exactly on .5 (ties to even) and tiny values. */
static void test_quantize_q8(const char *isa) {
    const tfm_cpu_kernels *k = tfm_cpu_kernels_named(isa);
    if (!k)
        return;
    enum { COLS = 32 * 12 };
    float *x = random_floats(COLS, -3, 3);
    memset(x + 32, 0, 32 * sizeof *x);
    for (int i = 0; i < 32; i++) {
        x[64 + i] = (float)(i - 16) + 0.5f;          /* amax 127 below: 127/amax = 1 */
        x[96 + i] = (float)(i - 16) * 0.5f + 0.25f;  /* amax 63.5 below: 127/amax = 2 */
        x[128 + i] = rng_uniform(-1e-30f, 1e-30f);
    }
    x[64] = -127.0f;
    x[96] = 63.5f;
    size_t bytes = tfm_q8_row_bytes(COLS);
    void *got = aligned_alloc(64, bytes), *want = aligned_alloc(64, bytes);
    memset(got, 0, bytes);
    memset(want, 0, bytes);
    k->quantize_q8(x, COLS, got);
    tfm_q8_row w = tfm_q8_row_at(want, COLS);
    for (int b = 0; b < COLS / 32; b++)
        tfm_q8_block(x + 32 * b, w.q + 32 * b, w.d + b, w.bsum + b, w.lane + 8 * b, w.sum32 + b, w.sum16 + 2 * b);
    CHECK(memcmp(got, want, bytes) == 0, "%s: quantize_q8 differs from tfm_q8_block", isa);
    free(x), free(got), free(want);
}

/* The packed weights' arena: aligned, distinct pieces; blocks come and go with their pieces. */
static void test_weight_arena(void) {
    tfm_weight_arena *arena = NULL;
    static const size_t sizes[] = {1, 331776, 100 << 20, 64, 5000, 40 << 20, 30 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = tfm_arena_alloc(&arena, sizes[i]);
        CHECK(p[i] && ((uintptr_t)p[i] & 63) == 0, "arena piece %d of %zu bytes: %p", i, sizes[i], (void *)p[i]);
        if (p[i]) {
            p[i][0] = (unsigned char)i; /* touch only the ends: the big pieces stay unbacked */
            p[i][sizes[i] - 1] = (unsigned char)i;
        }
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (i != j && p[i] && p[j])
                CHECK(p[i] + sizes[i] <= p[j] || p[j] + sizes[j] <= p[i], "arena pieces %d and %d overlap", i, j);
    for (int i = 0; i < N; i++)
        CHECK(!p[i] || (p[i][0] == (unsigned char)i && p[i][sizes[i] - 1] == (unsigned char)i), "arena piece %d overwritten", i);
    static const int order[N] = {2, 0, 6, 3, 1, 5, 4};
    for (int i = 0; i < N; i++)
        tfm_arena_free(&arena, p[order[i]]);
    tfm_arena_free(&arena, NULL);
    CHECK(tfm_arena_alloc(&arena, 128) != NULL, "arena after every piece was freed");
    tfm_arena_destroy(&arena);
    CHECK(arena == NULL, "arena destroyed");
    tfm_arena_destroy(&arena);
}

int main(void) {
    test_weight_arena();
    const char *isas[] = {"generic", "avx2", "avx512", "avx512vnni"};
    const int threads[] = {1, 2, 3};
    const tfm_backend_ops *ops = tfm_cpu_backend_ops();
    for (int a = 0; a < 4; a++) {
        setenv("TFM_CPU_ISA", isas[a], 1);
        digest first = {0};
        for (int t = 0; t < 3; t++) {
            tfm_backend_init_params params = {threads[t], 0};
            tfm_backend *be = NULL;
            CHECK(ops->init(&params, &host, &be) == TFM_OK, "init");
            if (!be)
                return 1;
            rng_state = 42;
            digest dg = {0};
            int before = failures;
            test_table(ops, be);
            test_matmul(ops, be, &dg);
            test_embed(ops, be, &dg);
            test_quant(ops, be, &dg);
            test_matmul_shared(ops, be, &dg);
            test_rmsnorm(ops, be, &dg);
            test_rope(ops, be, &dg);
            test_kv_store(ops, be, &dg);
            test_attention(ops, be, &dg);
            test_swiglu_add(ops, be, &dg);
            ops->destroy(be);
            if (t == 0) {
                first = dg;
            } else {
                CHECK(dg.n == first.n && memcmp(dg.v, first.v, dg.n * sizeof(float)) == 0,
                      "%s: %d threads give different results than 1 thread", isas[a], threads[t]);
                free(dg.v);
            }
            printf("%-8s %d thread(s): %s\n", isas[a], threads[t], failures == before ? "ok" : "FAILED");
        }
        free(first.v);
        test_quantize_q8(isas[a]);
    }
    unsetenv("TFM_CPU_ISA");
    if (failures)
        printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
