/* kernels_quant_avx512.c — block-quantised kernels for AVX-512 with VNNI (vpdpbusd): activation
 * quantisation and dot products. Compiled with AVX-512 F/BW/VL/VNNI enabled; used only when the
 * CPU has them.
 *
 * Weights are unpacked to unsigned bytes (Q8_0 gets +128, Q4_0 nibbles stay 0..15, Q6_K values
 * 0..63) and multiplied with the int8 activations by vpdpbusd into 16 int32 lanes, each lane the sum
 * of 4 consecutive products. Offsets (Q8_0's 128, Q4_0's 8, Q6_K's 32) are removed by starting the
 * integer sums at -offset x (the activation's per-lane sums), shared by all rows. The int32 lanes are
 * then scaled by weight scale x activation scale per lane and added into f32 accumulators. As in
 * the float kernels, each (row, activation) pair has one accumulator that sees the same sequence of
 * steps however rows and activations are grouped. */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "quant.h"
#include "simd_shared.h"

/* ---- activations ---- */

/* Same definition as tfm_q8_block: amax, 127/amax, round to nearest even, d = amax/127. */
void tfm_quantize_q8_avx512(const float *x, int64_t cols, void *row) {
    tfm_q8_row r = tfm_q8_row_at(row, cols);
    for (int64_t b = 0; b < cols / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        __m512 a = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
        float amax = _mm512_reduce_max_ps(a);
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        __m512 idv = _mm512_set1_ps(id);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv)); /* MXCSR: nearest even */
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
        __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)), _mm512_cvtepi32_epi8(q1), 1);
        _mm256_storeu_si256((__m256i *)(r.q + 32 * b), q);
        /* sums of 4 consecutive values: 1 x q with vpdpbusd */
        q8_store_block_sums(r, b, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q), amax);
    }
}

/* ---- shared pieces ---- */

static const int32_t pair_index[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};

/* [s[0] x8 | s[1] x8] from two floats at p. */
ALWAYS_INLINE __m512 spread2(const float *p) {
    __m512 v = _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)p)));
    return _mm512_permutexvar_ps(_mm512_loadu_si512(pair_index), v);
}

/* [a x8 | b x8] from two f16 values. */
ALWAYS_INLINE __m512 spread2_f16(const uint8_t *a, const uint8_t *b) {
    __m128i h = _mm_insert_epi16(_mm_cvtsi32_si128(a[0] | (a[1] << 8)), b[0] | (b[1] << 8), 1);
    return _mm512_permutexvar_ps(_mm512_loadu_si512(pair_index), _mm512_castps128_ps512(_mm_cvtph_ps(h)));
}

ALWAYS_INLINE __mmask64 half_mask(int both) {
    return both ? ~(__mmask64)0 : (__mmask64)0xffffffffu;
}

/* ---- Q8_0 and Q4_0: steps of two blocks (64 values) ---- */

/* Unsigned weight bytes of blocks b and b+1 (b+1 only if `both`), natural order. */
ALWAYS_INLINE __m512i q8_0_weights(const uint8_t *blk, int both) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)(blk + 2));
    __m256i hi = both ? _mm256_loadu_si256((const __m256i *)(blk + TFM_Q8_0_BYTES + 2)) : _mm256_setzero_si256();
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
}

ALWAYS_INLINE __m512i q4_0_weights(const uint8_t *blk, int both) {
    __m128i a = _mm_loadu_si128((const __m128i *)(blk + 2));
    __m128i b = both ? _mm_loadu_si128((const __m128i *)(blk + TFM_Q4_0_BYTES + 2)) : _mm_setzero_si128();
    __m512i v = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
    /* [a, a, b, b] in 128-bit lanes, then low nibbles in lanes 0, 2 and high nibbles in 1, 3 */
    v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), v);
    v = _mm512_srlv_epi16(v, _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                                0x0004000400040004, 0x0004000400040004));
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}

/* One step of two blocks (`both`) or of the last, odd block, for R rows and NT activations. */
#define DEFINE_SMALL_BLOCK_STEP(NAME, BYTES, WEIGHTS, OFFSET_SHIFT)                                     \
    ALWAYS_INLINE void NAME(const uint8_t *w, size_t row_bytes, const tfm_q8_row *x, int64_t b,         \
                            int both, int R, int NT, __m512 acc[4][TFM_CPU_MATVEC_MAX_TOKENS]) {        \
        __mmask64 m = half_mask(both);                                                                  \
        __m512i xv[TFM_CPU_MATVEC_MAX_TOKENS], corr[TFM_CPU_MATVEC_MAX_TOKENS];                         \
        __m512 dx[TFM_CPU_MATVEC_MAX_TOKENS];                                                           \
        UNROLL for (int t = 0; t < NT; t++) {                                                           \
            xv[t] = _mm512_maskz_loadu_epi8(m, x[t].q + 32 * b);                                        \
            __m512i lanes = _mm512_maskz_loadu_epi32(both ? 0xffff : 0x00ff, x[t].lane + 8 * b);        \
            corr[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(lanes, OFFSET_SHIFT)); \
            dx[t] = both ? spread2(x[t].d + b) : _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(x[t].d[b])); \
        }                                                                                               \
        UNROLL for (int r = 0; r < R; r++) {                                                            \
            const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)b * BYTES;                         \
            __m512i wv = WEIGHTS(blk, both);                                                            \
            __m512 dw = spread2_f16(blk, both ? blk + BYTES : blk);                                     \
            UNROLL for (int t = 0; t < NT; t++) {                                                       \
                __m512i s = _mm512_dpbusd_epi32(corr[t], wv, xv[t]);                                    \
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dx[t]), acc[r][t]); \
            }                                                                                           \
        }                                                                                               \
    }
DEFINE_SMALL_BLOCK_STEP(step_q8_0, TFM_Q8_0_BYTES, q8_0_weights, 7)
DEFINE_SMALL_BLOCK_STEP(step_q4_0, TFM_Q4_0_BYTES, q4_0_weights, 3)

#define DEFINE_SMALL_BLOCK_DOT(NAME, STEP)                                                              \
    ALWAYS_INLINE void NAME(const uint8_t *w, size_t row_bytes, int64_t cols, const char *xq,           \
                            size_t xq_stride, int R, int NT, float *y, size_t ys, size_t ldy) {         \
        __m512 acc[4][TFM_CPU_MATVEC_MAX_TOKENS];                                                       \
        tfm_q8_row x[TFM_CPU_MATVEC_MAX_TOKENS];                                                        \
        UNROLL for (int t = 0; t < NT; t++)                                                             \
            x[t] = tfm_q8_row_at((void *)(xq + (size_t)t * xq_stride), cols);                           \
        UNROLL for (int r = 0; r < R; r++)                                                              \
            UNROLL for (int t = 0; t < NT; t++)                                                         \
                acc[r][t] = _mm512_setzero_ps();                                                        \
        int64_t nb = cols / 32, b = 0;                                                                  \
        for (; b + 2 <= nb; b += 2)                                                                     \
            STEP(w, row_bytes, x, b, 1, R, NT, acc);                                                    \
        if (b < nb)                                                                                     \
            STEP(w, row_bytes, x, b, 0, R, NT, acc);                                                    \
        UNROLL for (int r = 0; r < R; r++)                                                              \
            UNROLL for (int t = 0; t < NT; t++)                                                         \
                y[(size_t)t * ldy + (size_t)r * ys] = _mm512_reduce_add_ps(acc[r][t]);                  \
    }
DEFINE_SMALL_BLOCK_DOT(rows_dot_q8_0, step_q8_0)
DEFINE_SMALL_BLOCK_DOT(rows_dot_q4_0, step_q4_0)

/* ---- K-quants: super-blocks of 256 values in 4 steps of 64 ---- */

/* [v[i] x8 | v[i+1] x8] for the sub-block pair of step p. */
static const int32_t pair_steps[4][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};
/* [v[4k] x4 | v[4k+1] x4 | v[4k+2] x4 | v[4k+3] x4]: Q6_K's scales of 16 values for step k. */
static const int32_t quad_steps[4][16] = {
    {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
    {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
    {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
    {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};

/* [d*sc_0..7 | dmin*m_0..7] of a Q4_K / Q5_K super-block (see tfm_k_scale_min). */
ALWAYS_INLINE __m512 k_scales_mins(const uint8_t *blk) {
    uint32_t u0, u1, u2;
    memcpy(&u0, blk + 4, 4);
    memcpy(&u1, blk + 8, 4);
    memcpy(&u2, blk + 12, 4);
    uint32_t sc_lo = u0 & 0x3f3f3f3fu, m_lo = u1 & 0x3f3f3f3fu;
    uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
    __m128i bytes = _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
    __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
    __m256 d = _mm256_set1_ps(tfm_load_f16(blk)), dmin = _mm256_set1_ps(tfm_load_f16(blk + 2));
    __m512 dd = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(d)),
                                                       _mm256_castps_si256(dmin), 1));
    return _mm512_mul_ps(v, dd);
}

/* [0 x8 | bsum[0..7]]: the activation sums that meet the minimums. */
ALWAYS_INLINE __m512 upper_bsum(const float *bsum) {
    return _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_loadu_si256((const __m256i *)bsum), 1));
}

/* Q4_K / Q5_K (HIGH_BIT = 1): values of step p, natural order (sub-block 2p, then 2p+1). */
ALWAYS_INLINE __m512i k_step_weights(const uint8_t *qs, __m512i qh2, int p, int HIGH_BIT) {
    __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * p)));
    v = _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_setr_epi64(0, 0, 0, 0, 0x0004000400040004, 0x0004000400040004,
                                                                0x0004000400040004, 0x0004000400040004)),
                         _mm512_set1_epi8(0x0F));
    if (HIGH_BIT) {
        __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * p)), _mm256_set1_epi16((short)(2 * p + 1)), 1);
        __m512i hb = _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(qh2, sh), 4), _mm512_set1_epi8(0x10));
        v = _mm512_or_si512(v, hb);
    }
    return v;
}

#define DEFINE_K4_DOT(NAME, BYTES, QS_OFFSET, HIGH_BIT)                                                  \
    ALWAYS_INLINE void NAME(const uint8_t *w, size_t row_bytes, int64_t cols, const char *xq,           \
                            size_t xq_stride, int R, int NT, float *y, size_t ys, size_t ldy) {                    \
        __m512 acc[4][TFM_CPU_MATVEC_MAX_TOKENS];                                                       \
        tfm_q8_row x[TFM_CPU_MATVEC_MAX_TOKENS];                                                        \
        UNROLL for (int t = 0; t < NT; t++)                                                                    \
            x[t] = tfm_q8_row_at((void *)(xq + (size_t)t * xq_stride), cols);                           \
        UNROLL for (int r = 0; r < R; r++)                                                                     \
            UNROLL for (int t = 0; t < NT; t++)                                                                \
                acc[r][t] = _mm512_setzero_ps();                                                        \
        for (int64_t sb = 0; sb < cols / 256; sb++) {                                                   \
            __m512 sm[4];                                                                               \
            __m512i qh2[4];                                                                             \
            UNROLL for (int r = 0; r < R; r++) {                                                        \
                const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)sb * BYTES;                    \
                sm[r] = k_scales_mins(blk);                                                             \
                qh2[r] = HIGH_BIT ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 16))) \
                                  : _mm512_setzero_si512();                                             \
                UNROLL for (int t = 0; t < NT; t++) /* the minimums: acc -= dmin*m_s * bsum_s */               \
                    acc[r][t] = _mm512_fnmadd_ps(sm[r], upper_bsum(x[t].bsum + 8 * sb), acc[r][t]);     \
            }                                                                                           \
            UNROLL for (int p = 0; p < 4; p++) {                                                               \
                __m512i xv[TFM_CPU_MATVEC_MAX_TOKENS];                                                  \
                __m512 dx[TFM_CPU_MATVEC_MAX_TOKENS];                                                   \
                UNROLL for (int t = 0; t < NT; t++) {                                                          \
                    xv[t] = _mm512_loadu_si512(x[t].q + 256 * sb + 64 * p);                             \
                    dx[t] = spread2(x[t].d + 8 * sb + 2 * p);                                           \
                }                                                                                       \
                __m512i idx = _mm512_loadu_si512(pair_steps[p]);                                        \
                UNROLL for (int r = 0; r < R; r++) {                                                           \
                    const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)sb * BYTES;                \
                    __m512i wv = k_step_weights(blk + QS_OFFSET, qh2[r], p, HIGH_BIT);                  \
                    __m512 sc = _mm512_permutexvar_ps(idx, sm[r]);                                      \
                    UNROLL for (int t = 0; t < NT; t++) {                                                      \
                        __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv[t]);             \
                        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc, dx[t]), acc[r][t]); \
                    }                                                                                   \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
        UNROLL for (int r = 0; r < R; r++)                                                                     \
            UNROLL for (int t = 0; t < NT; t++)                                                                \
                y[(size_t)t * ldy + (size_t)r * ys] = _mm512_reduce_add_ps(acc[r][t]);                       \
    }
DEFINE_K4_DOT(rows_dot_q4_k, TFM_Q4_K_BYTES, 16, 0)
DEFINE_K4_DOT(rows_dot_q5_k, TFM_Q5_K_BYTES, 48, 1)

/* Q6_K: step k = 2h + s covers values 128h + 64s .. +63. */
ALWAYS_INLINE __m512i q6_step_weights(__m512i ql, __m512i qh2, int s) {
    __m512i lo = s ? _mm512_srli_epi16(ql, 4) : ql;
    lo = _mm512_and_si512(lo, _mm512_set1_epi8(0x0F));
    __m512i sh = s ? _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1)
                   : _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    __m512i hb = _mm512_and_si512(_mm512_slli_epi16(_mm512_srlv_epi16(qh2, sh), 4), _mm512_set1_epi8(0x30));
    return _mm512_or_si512(lo, hb);
}

ALWAYS_INLINE void rows_dot_q6_k(const uint8_t *w, size_t row_bytes, int64_t cols, const char *xq, size_t xq_stride,
                                 int R, int NT, float *y, size_t ys, size_t ldy) {
    __m512 acc[4][TFM_CPU_MATVEC_MAX_TOKENS];
    tfm_q8_row x[TFM_CPU_MATVEC_MAX_TOKENS];
    UNROLL for (int t = 0; t < NT; t++)
        x[t] = tfm_q8_row_at((void *)(xq + (size_t)t * xq_stride), cols);
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        __m512 s16[4];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)sb * TFM_Q6_K_BYTES;
            __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192))));
            s16[r] = _mm512_mul_ps(sc, _mm512_set1_ps(tfm_load_f16(blk + 208)));
        }
        UNROLL for (int h = 0; h < 2; h++) {
            __m512i ql[4], qh2[4];
            UNROLL for (int r = 0; r < R; r++) {
                const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)sb * TFM_Q6_K_BYTES;
                ql[r] = _mm512_loadu_si512(blk + 64 * h);
                qh2[r] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h)));
            }
            UNROLL for (int s = 0; s < 2; s++) {
                int k = 2 * h + s;
                __m512i xv[TFM_CPU_MATVEC_MAX_TOKENS], corr[TFM_CPU_MATVEC_MAX_TOKENS];
                __m512 dx[TFM_CPU_MATVEC_MAX_TOKENS];
                UNROLL for (int t = 0; t < NT; t++) {
                    xv[t] = _mm512_loadu_si512(x[t].q + 256 * sb + 64 * k);
                    __m512i lanes = _mm512_loadu_si512(x[t].lane + 64 * sb + 16 * k);
                    corr[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(lanes, 5));
                    dx[t] = spread2(x[t].d + 8 * sb + 2 * k);
                }
                __m512i idx = _mm512_loadu_si512(quad_steps[k]);
                UNROLL for (int r = 0; r < R; r++) {
                    __m512i wv = q6_step_weights(ql[r], qh2[r], s);
                    __m512 sc = _mm512_permutexvar_ps(idx, s16[r]);
                    UNROLL for (int t = 0; t < NT; t++) {
                        __m512i sum = _mm512_dpbusd_epi32(corr[t], wv, xv[t]);
                        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(sc, dx[t]), acc[r][t]);
                    }
                }
            }
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < NT; t++)
            y[(size_t)t * ldy + (size_t)r * ys] = _mm512_reduce_add_ps(acc[r][t]);
}

/* ---- row grouping, as in the float kernels ---- */

#define ROWS_FOR(NT) 4

/* One activation row streams [r0, r1) as four contiguous parts read side by side (long sequential
 * streams for the hardware prefetchers); several reuse neighbouring rows from L1. */
#define DEFINE_MATVEC_Q_NT(NAME, ROWS_DOT, NT)                                                          \
    static void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1,             \
                     const void *xq, size_t xq_stride, float *y, size_t ldy) {                          \
        const uint8_t *wb = w;                                                                          \
        int64_t r = r0;                                                                                 \
        if (NT == 1) {                                                                                  \
            int64_t part = (r1 - r0) / 4;                                                               \
            for (int64_t j = 0; j < part; j++)                                                          \
                ROWS_DOT(wb + (size_t)(r0 + j) * row_bytes, (size_t)part * row_bytes, cols, xq, xq_stride, 4, 1, \
                         y + r0 + j, (size_t)part, ldy);                                                \
            r = r0 + 4 * part;                                                                          \
        } else {                                                                                        \
            for (; r + ROWS_FOR(NT) <= r1; r += ROWS_FOR(NT))                                           \
                ROWS_DOT(wb + (size_t)r * row_bytes, row_bytes, cols, xq, xq_stride, ROWS_FOR(NT), NT, y + r, 1, ldy); \
        }                                                                                               \
        for (; r < r1; r++)                                                                             \
            ROWS_DOT(wb + (size_t)r * row_bytes, row_bytes, cols, xq, xq_stride, 1, NT, y + r, 1, ldy);  \
    }
#define DEFINE_MATVEC_Q(NAME, ROWS_DOT)                                                                 \
    DEFINE_MATVEC_Q_NT(NAME##_1, ROWS_DOT, 1)                                                           \
    DEFINE_MATVEC_Q_NT(NAME##_2, ROWS_DOT, 2)                                                           \
    DEFINE_MATVEC_Q_NT(NAME##_3, ROWS_DOT, 3)                                                           \
    DEFINE_MATVEC_Q_NT(NAME##_4, ROWS_DOT, 4)                                                           \
    void NAME(const void *w, size_t row_bytes, int64_t cols, int64_t r0, int64_t r1, const void *xq,    \
              size_t xq_stride, int nt, float *y, size_t ldy) {                                         \
        switch (nt) {                                                                                   \
        case 1: NAME##_1(w, row_bytes, cols, r0, r1, xq, xq_stride, y, ldy); break;                     \
        case 2: NAME##_2(w, row_bytes, cols, r0, r1, xq, xq_stride, y, ldy); break;                     \
        case 3: NAME##_3(w, row_bytes, cols, r0, r1, xq, xq_stride, y, ldy); break;                     \
        default: NAME##_4(w, row_bytes, cols, r0, r1, xq, xq_stride, y, ldy); break;                    \
        }                                                                                               \
    }
DEFINE_MATVEC_Q(tfm_matvec_q8_0_avx512vnni, rows_dot_q8_0)
DEFINE_MATVEC_Q(tfm_matvec_q4_0_avx512vnni, rows_dot_q4_0)
DEFINE_MATVEC_Q(tfm_matvec_q4_k_avx512vnni, rows_dot_q4_k)
DEFINE_MATVEC_Q(tfm_matvec_q5_k_avx512vnni, rows_dot_q5_k)
DEFINE_MATVEC_Q(tfm_matvec_q6_k_avx512vnni, rows_dot_q6_k)
