/* kernels_generic.c — portable C kernels: the fallback on any CPU, and the baseline the vector
 * tables are checked against. Sums use eight interleaved partial sums so compilers can vectorise. */
#include <math.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "quant.h"

/* ---- element loaders ---- */
static inline float load_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
static inline float load_f16(const void *p, int64_t i) { return tfm_f16_to_f32(((const uint16_t *)p)[i]); }
static inline float load_bf16(const void *p, int64_t i) { return tfm_bf16_to_f32(((const uint16_t *)p)[i]); }

#define DEFINE_DOT(NAME, LOAD)                                                       \
    static float NAME(const float *x, const void *v, int64_t n) {                    \
        float s[8] = {0};                                                            \
        int64_t i = 0;                                                               \
        for (; i + 8 <= n; i += 8)                                                   \
            for (int k = 0; k < 8; k++)                                              \
                s[k] += x[i + k] * LOAD(v, i + k);                                   \
        for (int k = 0; i < n; i++, k++)                                             \
            s[k] += x[i] * LOAD(v, i);                                               \
        return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));     \
    }
DEFINE_DOT(dot_f32, load_f32)
DEFINE_DOT(dot_f16, load_f16)
DEFINE_DOT(dot_bf16, load_bf16)

#define DEFINE_MATVEC(NAME, DOT)                                                                  \
    static void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,       \
                     const float *x, size_t ldx, int nt, float *y, size_t ldy) {                  \
        for (int64_t r = r0; r < r1; r++) {                                                       \
            const void *row = (const char *)w + (size_t)r * row_bytes;                            \
            for (int t = 0; t < nt; t++)                                                          \
                y[(size_t)t * ldy + (size_t)r] = DOT(x + (size_t)t * ldx, row, cols);             \
        }                                                                                         \
    }
DEFINE_MATVEC(matvec_f32, dot_f32)
DEFINE_MATVEC(matvec_f16, dot_f16)
DEFINE_MATVEC(matvec_bf16, dot_bf16)

#define DEFINE_AXPY(NAME, LOAD)                                                                           \
    static void NAME(const float *a, const void *v, size_t row_bytes, int64_t rows, float *y, int64_t n) { \
        for (int64_t r = 0; r < rows; r++) {                                                              \
            const char *vr = (const char *)v + (size_t)r * row_bytes;                                     \
            for (int64_t i = 0; i < n; i++)                                                               \
                y[i] += a[r] * LOAD(vr, i);                                                               \
        }                                                                                                 \
    }
DEFINE_AXPY(axpy_f32, load_f32)
DEFINE_AXPY(axpy_f16, load_f16)
DEFINE_AXPY(axpy_bf16, load_bf16)

static void f32_to_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void f16_to_f32(const void *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = load_f16(src, i);
}
static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = load_bf16(src, i);
}

static void f32_from_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void f16_from_f32(const float *src, void *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ((uint16_t *)dst)[i] = tfm_f32_to_f16(src[i]);
}
static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ((uint16_t *)dst)[i] = tfm_f32_to_bf16(src[i]);
}

static float sum_squares(const float *x, int64_t n) {
    return dot_f32(x, x, n);
}

static void scale_mul(const float *x, float s, const float *g, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * s * g[i];
}

static void swiglu(const float *gate, const float *up, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void add(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static float max_f32(const float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum(float *x, int64_t n, float m) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static void scale(float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

static const tfm_cpu_kernels generic_kernels = {
    .matvec_max_n = 4, /* sgemm wins from a few activations on */
    .name = "generic",
    .matvec = {[TFM_DTYPE_F32] = matvec_f32, [TFM_DTYPE_F16] = matvec_f16, [TFM_DTYPE_BF16] = matvec_bf16},
    .to_f32 = {[TFM_DTYPE_F32] = f32_to_f32, [TFM_DTYPE_F16] = f16_to_f32, [TFM_DTYPE_BF16] = bf16_to_f32,
               TFM_GENERIC_DEQUANT},
    .matvec_q = {[TFM_DTYPE_Q8_0] = tfm_matvec_q8_0_generic, [TFM_DTYPE_Q4_0] = tfm_matvec_q4_0_generic,
                 [TFM_DTYPE_Q4_K] = tfm_matvec_q4_k_generic, [TFM_DTYPE_Q5_K] = tfm_matvec_q5_k_generic,
                 [TFM_DTYPE_Q6_K] = tfm_matvec_q6_k_generic},
    .quantize_q8 = tfm_quantize_q8_generic,
    .from_f32 = {[TFM_DTYPE_F32] = f32_from_f32, [TFM_DTYPE_F16] = f16_from_f32,
                 [TFM_DTYPE_BF16] = bf16_from_f32},
    .axpy_rows = {[TFM_DTYPE_F32] = axpy_f32, [TFM_DTYPE_F16] = axpy_f16, [TFM_DTYPE_BF16] = axpy_bf16},
    .sum_squares = sum_squares,
    .scale_mul = scale_mul,
    .swiglu = swiglu,
    .add = add,
    .max = max_f32,
    .exp_sum = exp_sum,
    .scale = scale,
};

const tfm_cpu_kernels *tfm_cpu_kernels_generic(void) {
    return &generic_kernels;
}

size_t tfm_cpu_row_bytes(tfm_dtype dtype, int64_t cols) {
    if (cols <= 0)
        return 0;
    switch (dtype) {
    case TFM_DTYPE_F32: return (size_t)cols * 4;
    case TFM_DTYPE_F16:
    case TFM_DTYPE_BF16: return (size_t)cols * 2;
    default:
        if (!tfm_is_quantized(dtype) || cols % tfm_q_block_values(dtype) != 0)
            return 0;
        return (size_t)(cols / tfm_q_block_values(dtype)) * (size_t)tfm_q_block_bytes(dtype);
    }
}
