/* kernels_avx512.c — AVX-512 (F, BW, VL) + F16C + FMA kernels. Compiled with those instruction sets
 * enabled (backends/cpu/meson.build); used only when cpu_features.c finds them at run time.
 *
 * Tails shorter than a vector use masked loads, so an element is computed the same way wherever it
 * sits; bf16 is widened by shifts (exact), f16 with vcvtph2ps (exact). */
#include <immintrin.h>
#include <math.h>

#include "half.h"
#include "kernels.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- 16-lane loads of each weight dtype, full and masked ---- */
ALWAYS_INLINE __m512 ld_f32(const void *p, int64_t i) {
    return _mm512_loadu_ps((const float *)p + i);
}
ALWAYS_INLINE __m512 ldm_f32(__mmask16 m, const void *p, int64_t i) {
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}
ALWAYS_INLINE __m512 ld_f16(const void *p, int64_t i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
ALWAYS_INLINE __m512 ldm_f16(__mmask16 m, const void *p, int64_t i) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}
ALWAYS_INLINE __m512 widen_bf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
ALWAYS_INLINE __m512 ld_bf16(const void *p, int64_t i) {
    return widen_bf16(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
ALWAYS_INLINE __m512 ldm_bf16(__mmask16 m, const void *p, int64_t i) {
    return widen_bf16(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

ALWAYS_INLINE __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* Dot products of R weight rows with NT activation rows at once: one 16-lane accumulator per
 * (row, activation) pair, so each x vector load serves R rows and each weight load NT activations
 * (loads, not FMAs, bound this loop). A pair's sum is the same sequence of 16-lane steps whatever R
 * and NT are, so results do not depend on how rows and activations are grouped. */
#define DEFINE_ROWS_DOT(NAME, LD, LDM)                                                            \
    ALWAYS_INLINE void NAME(const char *w, size_t row_bytes, int64_t cols, const float *x,        \
                            size_t ldx, int R, int NT, float *y, size_t ys, size_t ldy) {         \
        __m512 acc[8][TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
        for (int r = 0; r < R; r++)                                                               \
            for (int t = 0; t < NT; t++)                                                          \
                acc[r][t] = _mm512_setzero_ps();                                                  \
        int64_t i = 0;                                                                            \
        for (; i + 16 <= cols; i += 16) {                                                         \
            __m512 xv[TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
            for (int t = 0; t < NT; t++)                                                          \
                xv[t] = _mm512_loadu_ps(x + (size_t)t * ldx + i);                                 \
            for (int r = 0; r < R; r++) {                                                         \
                __m512 wv = LD(w + (size_t)r * row_bytes, i);                                     \
                for (int t = 0; t < NT; t++)                                                      \
                    acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);                            \
            }                                                                                     \
        }                                                                                         \
        if (i < cols) {                                                                           \
            __mmask16 m = tail_mask(cols - i);                                                    \
            __m512 xv[TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
            for (int t = 0; t < NT; t++)                                                          \
                xv[t] = _mm512_maskz_loadu_ps(m, x + (size_t)t * ldx + i);                        \
            for (int r = 0; r < R; r++) {                                                         \
                __m512 wv = LDM(m, w + (size_t)r * row_bytes, i);                                 \
                for (int t = 0; t < NT; t++)                                                      \
                    acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);                            \
            }                                                                                     \
        }                                                                                         \
        for (int r = 0; r < R; r++)                                                               \
            for (int t = 0; t < NT; t++)                                                          \
                y[(size_t)t * ldy + (size_t)r * ys] = _mm512_reduce_add_ps(acc[r][t]);            \
    }
DEFINE_ROWS_DOT(rows_dot_f32, ld_f32, ldm_f32)
DEFINE_ROWS_DOT(rows_dot_f16, ld_f16, ldm_f16)
DEFINE_ROWS_DOT(rows_dot_bf16, ld_bf16, ldm_bf16)

/* Rows per pass: four, so that R x NT accumulators fit the 32 registers for NT up to 4. */
#define ROWS 4

/* One activation row (decode) streams the weights once: the rows [r0, r1) are cut into four
 * contiguous parts read side by side, one row of each per pass, so that the hardware prefetchers
 * see four long sequential streams (neighbouring short rows read side by side would be many short
 * streams, which they follow badly). Several activation rows reuse each group of four neighbouring
 * rows from L1 instead: there the arithmetic, not the memory, is the limit. */
#define DEFINE_MATVEC_NT(NAME, ROWS_DOT, NT)                                                      \
    static void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,       \
                     const float *x, size_t ldx, float *y, size_t ldy) {                          \
        const char *wb = w;                                                                       \
        int64_t r = r0;                                                                           \
        if (NT == 1) {                                                                            \
            int64_t part = (r1 - r0) / ROWS;                                                      \
            for (int64_t j = 0; j < part; j++)                                                    \
                ROWS_DOT(wb + (size_t)(r0 + j) * row_bytes, (size_t)part * row_bytes, cols, x, ldx, ROWS, 1, \
                         y + r0 + j, (size_t)part, ldy);                                          \
            r = r0 + ROWS * part;                                                                 \
        } else {                                                                                  \
            for (; r + ROWS <= r1; r += ROWS)                                                     \
                ROWS_DOT(wb + (size_t)r * row_bytes, row_bytes, cols, x, ldx, ROWS, NT, y + r, 1, ldy); \
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

/* y stays in registers, 4 vectors (64 values) at a time, while the rows go by. */
#define DEFINE_AXPY(NAME, LDM)                                                                            \
    static void NAME(const float *a, const void *v, size_t row_bytes, int64_t rows, float *y, int64_t n) { \
        const char *vb = v;                                                                               \
        for (int64_t i = 0; i < n; i += 64) {                                                             \
            __mmask16 m[4];                                                                               \
            __m512 yv[4];                                                                                 \
            for (int j = 0; j < 4; j++) {                                                                 \
                m[j] = i + 16 * j < n ? tail_mask(n - i - 16 * j) : 0;                                    \
                yv[j] = _mm512_maskz_loadu_ps(m[j], y + i + 16 * j);                                      \
            }                                                                                             \
            for (int64_t r = 0; r < rows; r++) {                                                          \
                __m512 av = _mm512_set1_ps(a[r]);                                                         \
                for (int j = 0; j < 4; j++)                                                               \
                    yv[j] = _mm512_fmadd_ps(av, LDM(m[j], vb + (size_t)r * row_bytes, i + 16 * j), yv[j]); \
            }                                                                                             \
            for (int j = 0; j < 4; j++)                                                                   \
                _mm512_mask_storeu_ps(y + i + 16 * j, m[j], yv[j]);                                       \
        }                                                                                                 \
    }
DEFINE_AXPY(axpy_f32, ldm_f32)
DEFINE_AXPY(axpy_f16, ldm_f16)
DEFINE_AXPY(axpy_bf16, ldm_bf16)

#define DEFINE_TO_F32(NAME, LD, LDM)                                      \
    static void NAME(const void *src, float *dst, int64_t n) {            \
        int64_t i = 0;                                                    \
        for (; i + 16 <= n; i += 16)                                      \
            _mm512_storeu_ps(dst + i, LD(src, i));                        \
        if (i < n) {                                                      \
            __mmask16 m = tail_mask(n - i);                               \
            _mm512_mask_storeu_ps(dst + i, m, LDM(m, src, i));            \
        }                                                                 \
    }
DEFINE_TO_F32(f32_to_f32, ld_f32, ldm_f32)
DEFINE_TO_F32(f16_to_f32, ld_f16, ldm_f16)
DEFINE_TO_F32(bf16_to_f32, ld_bf16, ldm_bf16)

static void f32_from_f32(const float *src, void *dst, int64_t n) {
    f32_to_f32(src, dst, n);
}

static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(d + i, m, h);
    }
}

/* Round to nearest even in integers (as half.h does), keeping NaNs NaN. */
static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i quiet = _mm512_set1_epi32(0x40);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(bias, lsb)), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, abs_mask), inf);
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), quiet);
        _mm256_mask_storeu_epi16(d + i, m, _mm512_cvtepi32_epi16(r));
    }
}

/* exp(x) for x in about [-104, 89]: 2^k * p(r) with r = x - k ln2, |r| <= ln2/2, and a degree-6
 * polynomial (relative error ~1e-7); scalef applies 2^k and flushes to 0 / inf at the ends. */
ALWAYS_INLINE __m512 vexp(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-104.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

static float sum_squares(const float *x, int64_t n) {
    float out;
    rows_dot_f32((const char *)x, 0, n, x, 0, 1, 1, &out, 1, 0);
    return out;
}

static void scale_mul(const float *x, float s, const float *g, float *y, int64_t n) {
    __m512 sv = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv), _mm512_maskz_loadu_ps(m, g + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static void swiglu(const float *gate, const float *up, float *out, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 e = vexp(_mm512_sub_ps(_mm512_setzero_ps(), g));
        __m512 v = _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

static void add(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static float max_f32(const float *x, int64_t n) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        mv = _mm512_mask_max_ps(mv, m, mv, _mm512_maskz_loadu_ps(m, x + i));
    }
    return _mm512_reduce_max_ps(mv);
}

static float exp_sum(float *x, int64_t n, float mx) {
    __m512 mv = _mm512_set1_ps(mx), sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 e = vexp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

static void scale(float *x, float s, int64_t n) {
    __m512 sv = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv));
    }
}

/* Entries shared by the AVX-512 tables with and without VNNI. */
#define AVX512_COMMON \
    .matvec = {[TFM_DTYPE_F32] = matvec_f32, [TFM_DTYPE_F16] = matvec_f16, [TFM_DTYPE_BF16] = matvec_bf16}, \
    .to_f32 = {[TFM_DTYPE_F32] = f32_to_f32, [TFM_DTYPE_F16] = f16_to_f32, [TFM_DTYPE_BF16] = bf16_to_f32, \
               TFM_GENERIC_DEQUANT}, \
    .from_f32 = {[TFM_DTYPE_F32] = f32_from_f32, [TFM_DTYPE_F16] = f16_from_f32, \
                 [TFM_DTYPE_BF16] = bf16_from_f32}, \
    .axpy_rows = {[TFM_DTYPE_F32] = axpy_f32, [TFM_DTYPE_F16] = axpy_f16, [TFM_DTYPE_BF16] = axpy_bf16}, \
    .sum_squares = sum_squares, \
    .scale_mul = scale_mul, \
    .swiglu = swiglu, \
    .add = add, \
    .max = max_f32, \
    .exp_sum = exp_sum, \
    .scale = scale,

static const tfm_cpu_kernels avx512_kernels = {
    .name = "avx512",
    .matvec_max_n = INT32_MAX, /* faster than sgemm tiles at every size measured (up to 512) */
    AVX512_COMMON
    .matvec_q = {[TFM_DTYPE_Q8_0] = tfm_matvec_q8_0_generic, [TFM_DTYPE_Q4_0] = tfm_matvec_q4_0_generic,
                 [TFM_DTYPE_Q4_K] = tfm_matvec_q4_k_generic, [TFM_DTYPE_Q5_K] = tfm_matvec_q5_k_generic,
                 [TFM_DTYPE_Q6_K] = tfm_matvec_q6_k_generic},
    .quantize_q8 = tfm_quantize_q8_generic,
};

#if defined(TFM_CPU_VNNI)
/* The same with the integer dot products of the block-quantised types (kernels_quant_avx512.c). */
static const tfm_cpu_kernels avx512vnni_kernels = {
    .name = "avx512vnni",
    .matvec_max_n = INT32_MAX,
    AVX512_COMMON
    .matvec_q = {[TFM_DTYPE_Q8_0] = tfm_matvec_q8_0_avx512vnni, [TFM_DTYPE_Q4_0] = tfm_matvec_q4_0_avx512vnni,
                 [TFM_DTYPE_Q4_K] = tfm_matvec_q4_k_avx512vnni, [TFM_DTYPE_Q5_K] = tfm_matvec_q5_k_avx512vnni,
                 [TFM_DTYPE_Q6_K] = tfm_matvec_q6_k_avx512vnni},
    .matvec_packed = {[TFM_DTYPE_Q8_0] = tfm_matvec_packed_q8_0_avx512vnni,
                      [TFM_DTYPE_Q4_0] = tfm_matvec_packed_q4_0_avx512vnni,
                      [TFM_DTYPE_Q4_K] = tfm_matvec_packed_q4_k_avx512vnni,
                      [TFM_DTYPE_Q5_K] = tfm_matvec_packed_q5_k_avx512vnni,
                      [TFM_DTYPE_Q6_K] = tfm_matvec_packed_q6_k_avx512vnni},
    .quantize_q8 = tfm_quantize_q8_avx512,
};

const tfm_cpu_kernels *tfm_cpu_kernels_avx512vnni(void) {
    return &avx512vnni_kernels;
}
#endif

const tfm_cpu_kernels *tfm_cpu_kernels_avx512(void) {
    return &avx512_kernels;
}
