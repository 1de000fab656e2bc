/* kernels_avx2.c — AVX2 + F16C + FMA kernels for x86-64 CPUs without AVX-512. Compiled with those
 * instruction sets enabled (backends/cpu/meson.build); used only when the CPU has them.
 *
 * AVX2 has no masked 16-bit loads: a tail shorter than a vector is copied into a zero-padded
 * buffer and goes through the same vector code, so an element is computed the same way wherever
 * it sits. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "half.h"
#include "kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __m256 ld_f32(const void *p, int64_t i) {
    return _mm256_loadu_ps((const float *)p + i);
}
ALWAYS_INLINE __m256 ld_f16(const void *p, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
ALWAYS_INLINE __m256 ld_bf16(const void *p, int64_t i) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* Loads the last `left` (< 8) elements as f32 into a zero-padded vector. */
ALWAYS_INLINE __m256 ld_tail_f32(const void *p, int64_t i, int64_t left) {
    float tmp[8] = {0};
    memcpy(tmp, (const float *)p + i, (size_t)left * sizeof(float));
    return _mm256_loadu_ps(tmp);
}
ALWAYS_INLINE __m256 ld_tail_f16(const void *p, int64_t i, int64_t left) {
    uint16_t tmp[8] = {0};
    memcpy(tmp, (const uint16_t *)p + i, (size_t)left * 2);
    return ld_f16(tmp, 0);
}
ALWAYS_INLINE __m256 ld_tail_bf16(const void *p, int64_t i, int64_t left) {
    uint16_t tmp[8] = {0};
    memcpy(tmp, (const uint16_t *)p + i, (size_t)left * 2);
    return ld_bf16(tmp, 0);
}

ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Dot products of R weight rows with NT activation rows at once, one 8-lane accumulator per
 * (row, activation) pair: each x load serves R rows, each weight load NT activations. A pair's sum
 * is the same sequence of steps whatever R and NT are. */
#define DEFINE_ROWS_DOT(NAME, LD, LDT)                                                            \
    ALWAYS_INLINE void NAME(const char *w, size_t row_bytes, int64_t cols, const float *x,        \
                            size_t ldx, int R, int NT, float *y, size_t ys, size_t ldy) {         \
        __m256 acc[8][TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
        for (int r = 0; r < R; r++)                                                               \
            for (int t = 0; t < NT; t++)                                                          \
                acc[r][t] = _mm256_setzero_ps();                                                  \
        int64_t i = 0;                                                                            \
        for (; i + 8 <= cols; i += 8) {                                                           \
            __m256 xv[TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
            for (int t = 0; t < NT; t++)                                                          \
                xv[t] = _mm256_loadu_ps(x + (size_t)t * ldx + i);                                 \
            for (int r = 0; r < R; r++) {                                                         \
                __m256 wv = LD(w + (size_t)r * row_bytes, i);                                     \
                for (int t = 0; t < NT; t++)                                                      \
                    acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);                            \
            }                                                                                     \
        }                                                                                         \
        if (i < cols) {                                                                           \
            __m256 xv[TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
            for (int t = 0; t < NT; t++)                                                          \
                xv[t] = ld_tail_f32(x + (size_t)t * ldx, i, cols - i);                            \
            for (int r = 0; r < R; r++) {                                                         \
                __m256 wv = LDT(w + (size_t)r * row_bytes, i, cols - i);                          \
                for (int t = 0; t < NT; t++)                                                      \
                    acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);                            \
            }                                                                                     \
        }                                                                                         \
        for (int r = 0; r < R; r++)                                                               \
            for (int t = 0; t < NT; t++)                                                          \
                y[(size_t)t * ldy + (size_t)r * ys] = hsum(acc[r][t]);                            \
    }
DEFINE_ROWS_DOT(rows_dot_f32, ld_f32, ld_tail_f32)
DEFINE_ROWS_DOT(rows_dot_f16, ld_f16, ld_tail_f16)
DEFINE_ROWS_DOT(rows_dot_bf16, ld_bf16, ld_tail_bf16)

/* Rows per pass for each activation count: as many accumulators as the 16 registers allow. */
#define ROWS_FOR(NT) ((NT) <= 2 ? 4 : 2)

/* One activation row streams the rows [r0, r1) as four contiguous parts read side by side (long
 * sequential streams for the hardware prefetchers); several reuse neighbouring rows from L1. */
#define DEFINE_MATVEC_NT(NAME, ROWS_DOT, NT)                                                      \
    static void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,       \
                     const float *x, size_t ldx, float *y, size_t ldy) {                          \
        const char *wb = w;                                                                       \
        int64_t r = r0;                                                                           \
        if (NT == 1) {                                                                            \
            int64_t part = (r1 - r0) / 4;                                                         \
            for (int64_t j = 0; j < part; j++)                                                    \
                ROWS_DOT(wb + (size_t)(r0 + j) * row_bytes, (size_t)part * row_bytes, cols, x, ldx, 4, 1, \
                         y + r0 + j, (size_t)part, ldy);                                          \
            r = r0 + 4 * part;                                                                    \
        } else {                                                                                  \
            for (; r + ROWS_FOR(NT) <= r1; r += ROWS_FOR(NT))                                     \
                ROWS_DOT(wb + (size_t)r * row_bytes, row_bytes, cols, x, ldx, ROWS_FOR(NT), NT, y + r, 1, ldy); \
        }                                                                                         \
        for (; r < r1; r++)                                                                       \
            ROWS_DOT(wb + (size_t)r * row_bytes, row_bytes, cols, x, ldx, 1, NT, y + r, 1, ldy);  \
    }
#define DEFINE_MATVEC(NAME, ROWS_DOT)                                                             \
    DEFINE_MATVEC_NT(NAME##_1, ROWS_DOT, 1)                                                       \
    DEFINE_MATVEC_NT(NAME##_2, ROWS_DOT, 2)                                                       \
    DEFINE_MATVEC_NT(NAME##_3, ROWS_DOT, 3)                                                       \
    DEFINE_MATVEC_NT(NAME##_4, ROWS_DOT, 4)                                                       \
    static void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,       \
                     const float *x, size_t ldx, int nt, float *y, size_t ldy) {                  \
        switch (nt) {                                                                             \
        case 1: NAME##_1(w, row_bytes, cols, r0, r1, x, ldx, y, ldy); break;                      \
        case 2: NAME##_2(w, row_bytes, cols, r0, r1, x, ldx, y, ldy); break;                      \
        case 3: NAME##_3(w, row_bytes, cols, r0, r1, x, ldx, y, ldy); break;                      \
        default: NAME##_4(w, row_bytes, cols, r0, r1, x, ldx, y, ldy); break;                     \
        }                                                                                         \
    }
DEFINE_MATVEC(matvec_f32, rows_dot_f32)
DEFINE_MATVEC(matvec_f16, rows_dot_f16)
DEFINE_MATVEC(matvec_bf16, rows_dot_bf16)

/* y stays in registers, 4 vectors at a time, while the rows go by. */
#define DEFINE_AXPY(NAME, LD, LDT)                                                                        \
    static void NAME(const float *a, const void *v, size_t row_bytes, int64_t rows, float *y, int64_t n) { \
        const char *vb = v;                                                                               \
        int64_t i = 0;                                                                                    \
        for (; i + 32 <= n; i += 32) {                                                                    \
            __m256 yv[4];                                                                                 \
            for (int j = 0; j < 4; j++)                                                                   \
                yv[j] = _mm256_loadu_ps(y + i + 8 * j);                                                   \
            for (int64_t r = 0; r < rows; r++) {                                                          \
                __m256 av = _mm256_set1_ps(a[r]);                                                         \
                for (int j = 0; j < 4; j++)                                                               \
                    yv[j] = _mm256_fmadd_ps(av, LD(vb + (size_t)r * row_bytes, i + 8 * j), yv[j]);        \
            }                                                                                             \
            for (int j = 0; j < 4; j++)                                                                   \
                _mm256_storeu_ps(y + i + 8 * j, yv[j]);                                                   \
        }                                                                                                 \
        for (; i + 8 <= n; i += 8) {                                                                      \
            __m256 yv = _mm256_loadu_ps(y + i);                                                           \
            for (int64_t r = 0; r < rows; r++)                                                            \
                yv = _mm256_fmadd_ps(_mm256_set1_ps(a[r]), LD(vb + (size_t)r * row_bytes, i), yv);        \
            _mm256_storeu_ps(y + i, yv);                                                                  \
        }                                                                                                 \
        if (i < n) {                                                                                      \
            __m256 yv = ld_tail_f32(y, i, n - i);                                                         \
            for (int64_t r = 0; r < rows; r++)                                                            \
                yv = _mm256_fmadd_ps(_mm256_set1_ps(a[r]), LDT(vb + (size_t)r * row_bytes, i, n - i), yv); \
            float tmp[8];                                                                                 \
            _mm256_storeu_ps(tmp, yv);                                                                    \
            memcpy(y + i, tmp, (size_t)(n - i) * sizeof(float));                                          \
        }                                                                                                 \
    }
DEFINE_AXPY(axpy_f32, ld_f32, ld_tail_f32)
DEFINE_AXPY(axpy_f16, ld_f16, ld_tail_f16)
DEFINE_AXPY(axpy_bf16, ld_bf16, ld_tail_bf16)

#define DEFINE_TO_F32(NAME, LD, LDT)                                      \
    static void NAME(const void *src, float *dst, int64_t n) {            \
        int64_t i = 0;                                                    \
        for (; i + 8 <= n; i += 8)                                        \
            _mm256_storeu_ps(dst + i, LD(src, i));                        \
        if (i < n) {                                                      \
            float tmp[8];                                                 \
            _mm256_storeu_ps(tmp, LDT(src, i, n - i));                    \
            memcpy(dst + i, tmp, (size_t)(n - i) * sizeof(float));        \
        }                                                                 \
    }
DEFINE_TO_F32(f32_to_f32, ld_f32, ld_tail_f32)
DEFINE_TO_F32(f16_to_f32, ld_f16, ld_tail_f16)
DEFINE_TO_F32(bf16_to_f32, ld_bf16, ld_tail_bf16)

static void f32_from_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) /* the scalar conversion rounds identically */
        d[i] = tfm_f32_to_f16(src[i]);
}

static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = tfm_f32_to_bf16(src[i]);
}

/* exp(x): 2^k * p(r), r = x - k ln2, degree-6 polynomial; 0 below -87.3, clamped above 88.3. */
ALWAYS_INLINE __m256 vexp(__m256 x) {
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}


static float sum_squares(const float *x, int64_t n) {
    float out;
    rows_dot_f32((const char *)x, 0, n, x, 0, 1, 1, &out, 1, 0);
    return out;
}

static void scale_mul(const float *x, float s, const float *g, float *y, int64_t n) {
    __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv), _mm256_loadu_ps(g + i)));
    for (; i < n; i++) /* same operations, same rounding, one lane at a time */
        y[i] = x[i] * s * g[i];
}

ALWAYS_INLINE __m256 swiglu8(__m256 g, __m256 u) {
    __m256 e = vexp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

static void swiglu(const float *gate, const float *up, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        float tmp[8];
        _mm256_storeu_ps(tmp, swiglu8(ld_tail_f32(gate, i, n - i), ld_tail_f32(up, i, n - i)));
        memcpy(out + i, tmp, (size_t)(n - i) * sizeof(float));
    }
}

static void add(float *x, const float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        x[i] += y[i];
}

static float max_f32(const float *x, int64_t n) {
    float m = -INFINITY;
    int64_t i = 0;
    if (n >= 8) {
        __m256 mv = _mm256_set1_ps(-INFINITY);
        for (; i + 8 <= n; i += 8)
            mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
        float tmp[8];
        _mm256_storeu_ps(tmp, mv);
        for (int k = 0; k < 8; k++)
            m = tmp[k] > m ? tmp[k] : m;
    }
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum(float *x, int64_t n, float mx) {
    __m256 mv = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = vexp(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        float tmp[8];
        __m256 e = vexp(_mm256_sub_ps(ld_tail_f32(x, i, n - i), mv));
        __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)),
                                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        e = _mm256_and_ps(e, keep);
        _mm256_storeu_ps(tmp, e);
        memcpy(x + i, tmp, (size_t)(n - i) * sizeof(float));
        sum = _mm256_add_ps(sum, e);
    }
    return hsum(sum);
}

static void scale(float *x, float s, int64_t n) {
    int64_t i = 0;
    __m256 sv = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
    for (; i < n; i++)
        x[i] *= s;
}

static const tfm_cpu_kernels avx2_kernels = {
    .matvec_max_n = 32, /* measured crossover on a Zen5 with this table forced */
    .name = "avx2",
    .matvec = {[TFM_DTYPE_F32] = matvec_f32, [TFM_DTYPE_F16] = matvec_f16, [TFM_DTYPE_BF16] = matvec_bf16},
    .to_f32 = {[TFM_DTYPE_F32] = f32_to_f32, [TFM_DTYPE_F16] = f16_to_f32, [TFM_DTYPE_BF16] = bf16_to_f32,
               TFM_GENERIC_DEQUANT},
    .matvec_q = {[TFM_DTYPE_Q8_0] = tfm_matvec_q8_0_generic, [TFM_DTYPE_Q4_0] = tfm_matvec_q4_0_generic,
                 [TFM_DTYPE_Q4_K] = tfm_matvec_q4_k_generic, [TFM_DTYPE_Q5_K] = tfm_matvec_q5_k_generic,
                 [TFM_DTYPE_Q6_K] = tfm_matvec_q6_k_generic},
    .matvec_packed = {[TFM_DTYPE_Q8_0] = tfm_matvec_packed_q8_0_avx2, [TFM_DTYPE_Q4_0] = tfm_matvec_packed_q4_0_avx2,
                      [TFM_DTYPE_Q4_K] = tfm_matvec_packed_q4_k_avx2, [TFM_DTYPE_Q5_K] = tfm_matvec_packed_q5_k_avx2,
                      [TFM_DTYPE_Q6_K] = tfm_matvec_packed_q6_k_avx2},
    .quantize_q8 = tfm_quantize_q8_avx2,
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

const tfm_cpu_kernels *tfm_cpu_kernels_avx2(void) {
    return &avx2_kernels;
}
