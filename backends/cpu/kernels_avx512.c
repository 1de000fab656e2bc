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

/* Dot products of one weight row with NT activation rows: four accumulators per activation row,
 * 64 elements per step; the tail continues the accumulator rotation with masked loads. */
#define DEFINE_ROW_DOT(NAME, LD, LDM)                                                             \
    ALWAYS_INLINE void NAME(const void *w, int64_t cols, const float *x, size_t ldx, int NT,      \
                            float *out) {                                                         \
        __m512 acc[TFM_CPU_MATVEC_MAX_TOKENS][4];                                                 \
        for (int t = 0; t < NT; t++)                                                              \
            for (int u = 0; u < 4; u++)                                                           \
                acc[t][u] = _mm512_setzero_ps();                                                  \
        int64_t i = 0;                                                                            \
        for (; i + 64 <= cols; i += 64) {                                                         \
            __m512 wv[4];                                                                         \
            for (int u = 0; u < 4; u++)                                                           \
                wv[u] = LD(w, i + 16 * u);                                                        \
            for (int t = 0; t < NT; t++)                                                          \
                for (int u = 0; u < 4; u++)                                                       \
                    acc[t][u] = _mm512_fmadd_ps(wv[u], _mm512_loadu_ps(x + (size_t)t * ldx + i + 16 * u), \
                                                acc[t][u]);                                       \
        }                                                                                         \
        for (int u = 0; i < cols; i += 16, u++) {                                                 \
            __mmask16 m = tail_mask(cols - i);                                                    \
            __m512 wv = LDM(m, w, i);                                                             \
            for (int t = 0; t < NT; t++)                                                          \
                acc[t][u] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + (size_t)t * ldx + i), acc[t][u]); \
        }                                                                                         \
        for (int t = 0; t < NT; t++)                                                              \
            out[t] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]),       \
                                                        _mm512_add_ps(acc[t][2], acc[t][3])));    \
    }
DEFINE_ROW_DOT(row_dot_f32, ld_f32, ldm_f32)
DEFINE_ROW_DOT(row_dot_f16, ld_f16, ldm_f16)
DEFINE_ROW_DOT(row_dot_bf16, ld_bf16, ldm_bf16)

/* One specialisation per activation count keeps the accumulators in registers. */
#define DEFINE_MATVEC(NAME, ROW_DOT)                                                              \
    ALWAYS_INLINE void NAME##_nt(const void *w, size_t row_bytes, int64_t cols, int64_t r0,       \
                                 int64_t r1, const float *x, size_t ldx, int NT, float *y,        \
                                 size_t ldy) {                                                    \
        for (int64_t r = r0; r < r1; r++) {                                                       \
            float out[TFM_CPU_MATVEC_MAX_TOKENS];                                                 \
            ROW_DOT((const char *)w + (size_t)r * row_bytes, cols, x, ldx, NT, out);              \
            for (int t = 0; t < NT; t++)                                                          \
                y[(size_t)t * ldy + (size_t)r] = out[t];                                          \
        }                                                                                         \
    }                                                                                             \
    static void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,       \
                     const float *x, size_t ldx, int nt, float *y, size_t ldy) {                  \
        switch (nt) {                                                                             \
        case 1: NAME##_nt(w, row_bytes, cols, r0, r1, x, ldx, 1, y, ldy); break;                  \
        case 2: NAME##_nt(w, row_bytes, cols, r0, r1, x, ldx, 2, y, ldy); break;                  \
        case 3: NAME##_nt(w, row_bytes, cols, r0, r1, x, ldx, 3, y, ldy); break;                  \
        default: NAME##_nt(w, row_bytes, cols, r0, r1, x, ldx, 4, y, ldy); break;                 \
        }                                                                                         \
    }
DEFINE_MATVEC(matvec_f32, row_dot_f32)
DEFINE_MATVEC(matvec_f16, row_dot_f16)
DEFINE_MATVEC(matvec_bf16, row_dot_bf16)

#define DEFINE_DOT(NAME, ROW_DOT)                                      \
    static float NAME(const float *x, const void *v, int64_t n) {      \
        float out[1];                                                  \
        ROW_DOT(v, n, x, 0, 1, out);                                   \
        return out[0];                                                 \
    }
DEFINE_DOT(dot_f32, row_dot_f32)
DEFINE_DOT(dot_f16, row_dot_f16)
DEFINE_DOT(dot_bf16, row_dot_bf16)

#define DEFINE_AXPY(NAME, LDM)                                                          \
    static void NAME(float a, const void *v, float *y, int64_t n) {                     \
        __m512 av = _mm512_set1_ps(a);                                                  \
        for (int64_t i = 0; i < n; i += 16) {                                           \
            __mmask16 m = tail_mask(n - i);                                             \
            __m512 yv = _mm512_maskz_loadu_ps(m, y + i);                                \
            _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, LDM(m, v, i), yv));     \
        }                                                                               \
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
    return dot_f32(x, x, n);
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

static const tfm_cpu_kernels avx512_kernels = {
    .name = "avx512",
    .matvec = {[TFM_DTYPE_F32] = matvec_f32, [TFM_DTYPE_F16] = matvec_f16, [TFM_DTYPE_BF16] = matvec_bf16},
    .to_f32 = {[TFM_DTYPE_F32] = f32_to_f32, [TFM_DTYPE_F16] = f16_to_f32, [TFM_DTYPE_BF16] = bf16_to_f32},
    .from_f32 = {[TFM_DTYPE_F32] = f32_from_f32, [TFM_DTYPE_F16] = f16_from_f32,
                 [TFM_DTYPE_BF16] = bf16_from_f32},
    .dot = {[TFM_DTYPE_F32] = dot_f32, [TFM_DTYPE_F16] = dot_f16, [TFM_DTYPE_BF16] = dot_bf16},
    .axpy = {[TFM_DTYPE_F32] = axpy_f32, [TFM_DTYPE_F16] = axpy_f16, [TFM_DTYPE_BF16] = axpy_bf16},
    .sum_squares = sum_squares,
    .scale_mul = scale_mul,
    .swiglu = swiglu,
    .add = add,
    .max = max_f32,
    .exp_sum = exp_sum,
    .scale = scale,
};

const tfm_cpu_kernels *tfm_cpu_kernels_avx512(void) {
    return &avx512_kernels;
}
