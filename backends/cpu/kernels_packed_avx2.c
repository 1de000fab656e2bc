/* kernels_packed_avx2.c — matrix-vector products over packed block-quantised weights (repack.h)
 * with AVX2. Compiled with AVX2/FMA/F16C enabled; used only when the CPU has them.
 *
 * A 64-byte packed vector holds 4 bytes of each of 16 rows; here it is two 256-bit halves of 8
 * rows. AVX2 has no vpdpbusd: vpmaddubsw multiplies unsigned weight bytes with the signed
 * activation bytes and adds neighbours into saturating int16 pairs, and vpmaddwd with ones (or with
 * Q6_K's scales) adds the two pairs of each row lane into int32. Saturation never happens:
 *   Q4_0, Q4_K  nibbles <= 15, |q| <= 127: a pair is <= 3810, so the 8 steps of a 32-value block add
 *               up in int16 (<= 30480) before one vpmaddwd;
 *   Q5_K        values <= 31: a pair is <= 7874, widened to int32 every 4 steps (<= 31496);
 *   Q6_K        values <= 63: a pair is <= 16002, two steps add up in int16 (<= 32004);
 *   Q8_0        the packed bytes are value + 128 (up to 255, which would saturate): the signed value
 *               w is recovered and multiplied as |w| (<= 128) with x carrying w's sign, a pair
 *               <= 32512, no offset to correct.
 * Q4_0's 8 and Q6_K's 32 are removed by starting the integer sums at -offset x the activation sums
 * (for Q6_K weighted by its scales).
 * With one or two activation rows a pass covers both halves; with more, each half has its own pass
 * so the accumulators stay in the 16 registers. Each row's result is one accumulator that sees the
 * blocks in column order, whatever the number of rows, groups, tokens or threads. */
#include <immintrin.h>

#include "kernels.h"
#include "quant.h"
#include "repack.h"
#include "simd_shared.h"

/* Bytes between the halves of a packed vector, and rows per half. */
#define HALF 32
#define HALF_ROWS 8

/* The 4 activation bytes at p in every 32-bit lane. */
ALWAYS_INLINE __m256i bcast4(const int8_t *p) {
    return _mm256_set1_epi32(load4(p));
}

ALWAYS_INLINE __m256i load(const uint8_t *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* 8 f16 values (one half's rows) as floats. */
ALWAYS_INLINE __m256 load_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

ALWAYS_INLINE __m256i low_nibbles(__m256i v) {
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}
ALWAYS_INLINE __m256i high_nibbles(__m256i v) {
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
}

/* int16 pairs -> int32 row lanes */
ALWAYS_INLINE __m256i widen(__m256i pairs) {
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* acc += s * (wd * xd), the block's integer sums scaled by weight scale x activation scale */
ALWAYS_INLINE __m256 scale_add(__m256 acc, __m256i s, __m256 wd, float xd) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(wd, _mm256_set1_ps(xd)), acc);
}

/* Every group function computes rows 8 H0 .. 8 (H0 + NH) - 1 of the group for NT activation rows,
 * in float accumulators acc[h][t] (half H0 + h, token t). */
typedef __m256 group_acc[2][PACKED_TOKENS];

ALWAYS_INLINE void acc_zero(group_acc acc, int NH, int NT) {
    UNROLL for (int h = 0; h < NH; h++) UNROLL for (int t = 0; t < NT; t++) acc[h][t] = _mm256_setzero_ps();
}

ALWAYS_INLINE void acc_store(group_acc acc, int NH, int NT, int H0, float *y, size_t ldy) {
    UNROLL for (int h = 0; h < NH; h++)
        UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy + HALF_ROWS * (H0 + h), acc[h][t]);
}

/* Steps k0 .. k0 + steps - 1 of 4 columns over a run of packed nibbles (vector k at w + 64 k):
 * low nibbles against the activations at xl + 4 k into lo, high nibbles against xh + 4 k into hi,
 * as int16 pairs. With `qh` (Q5_K), bit `bit` of each byte of qh + 64 k is the low nibble's fifth
 * bit and bit `bit` + 1 the high nibble's. */
ALWAYS_INLINE void nibble_steps(const uint8_t *w, const uint8_t *qh, int bit, const tfm_q8_row *x, int64_t xl,
                                int64_t xh, int k0, int steps, int NT, int H0, int NH,
                                __m256i lo[2][PACKED_TOKENS], __m256i hi[2][PACKED_TOKENS]) {
    UNROLL for (int k = k0; k < k0 + steps; k++) {
        __m256i vl[PACKED_TOKENS], vh[PACKED_TOKENS];
        UNROLL for (int t = 0; t < NT; t++) {
            vl[t] = bcast4(x[t].q + xl + 4 * k);
            vh[t] = bcast4(x[t].q + xh + 4 * k);
        }
        UNROLL for (int h = 0; h < NH; h++) {
            __m256i v = load(w + 64 * k + HALF * (H0 + h));
            __m256i wl = low_nibbles(v), wh = high_nibbles(v);
            if (qh) { /* bits `bit` and `bit` + 1 moved to bits 4 and 5 (5 is masked off for wl, 3 for wh) */
                __m256i b = _mm256_slli_epi16(_mm256_srli_epi16(load(qh + 64 * k + HALF * (H0 + h)), bit), 4);
                __m256i b4 = _mm256_set1_epi8(0x10);
                wl = _mm256_or_si256(wl, _mm256_and_si256(b, b4));
                wh = _mm256_or_si256(wh, _mm256_and_si256(_mm256_srli_epi16(b, 1), b4));
            }
            UNROLL for (int t = 0; t < NT; t++) {
                lo[h][t] = _mm256_add_epi16(lo[h][t], _mm256_maddubs_epi16(wl, vl[t]));
                hi[h][t] = _mm256_add_epi16(hi[h][t], _mm256_maddubs_epi16(wh, vh[t]));
            }
        }
    }
}

ALWAYS_INLINE void int_zero(__m256i v[2][PACKED_TOKENS], int NH, int NT) {
    UNROLL for (int h = 0; h < NH; h++) UNROLL for (int t = 0; t < NT; t++) v[h][t] = _mm256_setzero_si256();
}

/* ---- Q8_0 and Q4_0: one packed block per 32 columns ---- */

ALWAYS_INLINE void group_q8_0(const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, int H0, int NH,
                              float *y, size_t ldy) {
    group_acc acc;
    acc_zero(acc, NH, NT);
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *blk = g + (size_t)b * 544;
        __m256i s[2][PACKED_TOKENS];
        int_zero(s, NH, NT);
        UNROLL for (int k = 0; k < 8; k++) {
            __m256i xv[PACKED_TOKENS];
            UNROLL for (int t = 0; t < NT; t++) xv[t] = bcast4(x[t].q + 32 * b + 4 * k);
            UNROLL for (int h = 0; h < NH; h++) {
                __m256i w = _mm256_xor_si256(load(blk + 32 + 64 * k + HALF * (H0 + h)), _mm256_set1_epi8((char)0x80));
                __m256i aw = _mm256_abs_epi8(w);
                UNROLL for (int t = 0; t < NT; t++)
                    s[h][t] = _mm256_add_epi32(s[h][t], widen(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv[t], w))));
            }
        }
        UNROLL for (int h = 0; h < NH; h++) {
            __m256 dw = load_f16x8(blk + 2 * HALF_ROWS * (H0 + h));
            UNROLL for (int t = 0; t < NT; t++) acc[h][t] = scale_add(acc[h][t], s[h][t], dw, x[t].d[b]);
        }
    }
    acc_store(acc, NH, NT, H0, y, ldy);
}

ALWAYS_INLINE void group_q4_0(const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, int H0, int NH,
                              float *y, size_t ldy) {
    group_acc acc;
    acc_zero(acc, NH, NT);
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *blk = g + (size_t)b * 288;
        /* the block's low and high nibbles' products in int16 pairs (each <= 4 x 3810) */
        __m256i lo[2][PACKED_TOKENS], hi[2][PACKED_TOKENS];
        int_zero(lo, NH, NT);
        int_zero(hi, NH, NT);
        nibble_steps(blk + 32, NULL, 0, x, 32 * b, 32 * b + 16, 0, 4, NT, H0, NH, lo, hi);
        UNROLL for (int h = 0; h < NH; h++) {
            __m256 dw = load_f16x8(blk + 2 * HALF_ROWS * (H0 + h));
            UNROLL for (int t = 0; t < NT; t++) {
                __m256i s = _mm256_add_epi32(widen(_mm256_add_epi16(lo[h][t], hi[h][t])),
                                             _mm256_set1_epi32(-8 * x[t].sum32[b]));
                acc[h][t] = scale_add(acc[h][t], s, dw, x[t].d[b]);
            }
        }
    }
    acc_store(acc, NH, NT, H0, y, ldy);
}

/* ---- Q4_K and Q5_K: super-blocks of 256 columns, 8 sub-blocks of 32 with their own scale and
 * minimum ---- */

/* Byte j (0..3) of every lane of v, as floats. */
ALWAYS_INLINE __m256 lane_byte(__m256i v, int j) {
    return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v, 8 * j), _mm256_set1_epi32(0xFF)));
}

/* Q4_K, and Q5_K (HIGH_BIT = 1: 2816-byte blocks with the fifth bits at 256, nibbles at 768). */
ALWAYS_INLINE void group_k4(const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, int H0, int NH, float *y,
                            size_t ldy, int HIGH_BIT) {
    const size_t bytes = HIGH_BIT ? 2816 : 2304, qs_at = HIGH_BIT ? 768 : 256;
    /* int16 pairs of 4-bit values stay <= 3810 and take all 8 steps of a sub-block; 5-bit values
     * make pairs of up to 7874, so they are widened to int32 every 4 steps (<= 31496) */
    const int steps = HIGH_BIT ? 4 : 8;
    group_acc acc;
    acc_zero(acc, NH, NT);
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = g + (size_t)sb * bytes;
        __m256 d[2], sc[2][8];
        UNROLL for (int h = 0; h < NH; h++) {
            int o = HALF * (H0 + h);
            d[h] = load_f16x8(blk + o / 2);
            __m256 dmin = load_f16x8(blk + 32 + o / 2);
            /* the 6-bit scales and minimums of the half's 8 rows (see tfm_k_scale_min) */
            __m256i u0 = load(blk + 64 + o), u1 = load(blk + 128 + o), u2 = load(blk + 192 + o);
            __m256i m63 = _mm256_set1_epi8(63), m15 = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
            __m256i sc_lo = _mm256_and_si256(u0, m63), m_lo = _mm256_and_si256(u1, m63);
            __m256i sc_hi = _mm256_or_si256(_mm256_and_si256(u2, m15), _mm256_and_si256(_mm256_srli_epi32(u0, 2), top));
            __m256i m_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), m15),
                                           _mm256_and_si256(_mm256_srli_epi32(u1, 2), top));
            /* the minimums: acc -= dmin * m_j * (d_x * sum of block j's q) */
            UNROLL for (int j = 0; j < 8; j++) {
                __m256 mj = _mm256_mul_ps(lane_byte(j < 4 ? m_lo : m_hi, j & 3), dmin);
                UNROLL for (int t = 0; t < NT; t++)
                    acc[h][t] = _mm256_fnmadd_ps(mj, _mm256_set1_ps(x[t].bsum[8 * sb + j]), acc[h][t]);
                sc[h][j] = lane_byte(j < 4 ? sc_lo : sc_hi, j & 3);
            }
        }
        UNROLL for (int pp = 0; pp < 4; pp++) {
            /* sub-blocks 2pp (low nibbles) and 2pp+1 (high) */
            __m256i lo32[2][PACKED_TOKENS], hi32[2][PACKED_TOKENS];
            UNROLL for (int k0 = 0; k0 < 8; k0 += steps) {
                __m256i lo[2][PACKED_TOKENS], hi[2][PACKED_TOKENS];
                int_zero(lo, NH, NT);
                int_zero(hi, NH, NT);
                nibble_steps(blk + qs_at + 512 * pp, HIGH_BIT ? blk + 256 : NULL, 2 * pp, x, 256 * sb + 64 * pp,
                             256 * sb + 64 * pp + 32, k0, steps, NT, H0, NH, lo, hi);
                UNROLL for (int h = 0; h < NH; h++)
                    UNROLL for (int t = 0; t < NT; t++) {
                        lo32[h][t] = k0 ? _mm256_add_epi32(lo32[h][t], widen(lo[h][t])) : widen(lo[h][t]);
                        hi32[h][t] = k0 ? _mm256_add_epi32(hi32[h][t], widen(hi[h][t])) : widen(hi[h][t]);
                    }
            }
            int j = 2 * pp;
            UNROLL for (int h = 0; h < NH; h++) {
                __m256 sl = _mm256_mul_ps(sc[h][j], d[h]), sh = _mm256_mul_ps(sc[h][j + 1], d[h]);
                UNROLL for (int t = 0; t < NT; t++) {
                    acc[h][t] = scale_add(acc[h][t], lo32[h][t], sl, x[t].d[8 * sb + j]);
                    acc[h][t] = scale_add(acc[h][t], hi32[h][t], sh, x[t].d[8 * sb + j + 1]);
                }
            }
        }
    }
    acc_store(acc, NH, NT, H0, y, ldy);
}

ALWAYS_INLINE void group_q4_k(const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, int H0, int NH,
                              float *y, size_t ldy) {
    group_k4(g, cols, x, NT, H0, NH, y, ldy, 0);
}
ALWAYS_INLINE void group_q5_k(const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, int H0, int NH,
                              float *y, size_t ldy) {
    group_k4(g, cols, x, NT, H0, NH, y, ldy, 1);
}

/* ---- Q6_K: super-blocks of 256 columns, a scale per 16 values ---- */

/* Values 128h + 32s + 4k .. +3 of every row: a nibble of ql and two bits of qh as bits 4-5. */
ALWAYS_INLINE __m256i q6_weights(__m256i ql, __m256i qh, int s) {
    __m256i lo = (s >> 1) ? high_nibbles(ql) : low_nibbles(ql);
    __m256i hb;
    switch (s) {
    case 0: hb = _mm256_slli_epi16(qh, 4); break;
    case 1: hb = _mm256_slli_epi16(qh, 2); break;
    case 2: hb = qh; break;
    default: hb = _mm256_srli_epi16(qh, 2); break;
    }
    return _mm256_or_si256(lo, _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
}

/* The int8 scales of 8 rows as int16 in both halves of each lane (a vpmaddwd multiplier). */
ALWAYS_INLINE __m256i q6_scale16(const uint8_t *p) {
    __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}

/* The scales of two consecutive groups (a, b) of 8 rows as int16 pairs [a, b] per lane. */
ALWAYS_INLINE __m256i q6_scale_pair(const uint8_t *a, const uint8_t *b) {
    __m256i va = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)a));
    __m256i vb = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)b));
    return _mm256_or_si256(_mm256_and_si256(va, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(vb, 16));
}

/* Each 32-value activation block meets two scale groups: the scales are applied in integers by
 * vpmaddwd, so one float multiply-add per block remains. The offset 32 x (sc_a x sum16_a + sc_b x
 * sum16_b) is one more vpmaddwd against the activation's two half-block sums. */
ALWAYS_INLINE void group_q6_k(const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, int H0, int NH,
                              float *y, size_t ldy) {
    group_acc acc;
    acc_zero(acc, NH, NT);
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = g + (size_t)sb * 3360;
        const uint8_t *scales = blk + 32, *runs = blk + 288;
        __m256 d[2];
        UNROLL for (int h = 0; h < NH; h++) d[h] = load_f16x8(blk + HALF * (H0 + h) / 2);
        UNROLL for (int hv = 0; hv < 2; hv++)
            UNROLL for (int s = 0; s < 4; s++) {
                int grp = 8 * hv + 2 * s, xb = 8 * (int)sb + 4 * hv + s; /* scale group, activation block */
                __m256i si[2][PACKED_TOKENS];
                UNROLL for (int h = 0; h < NH; h++) {
                    const uint8_t *sa = scales + 16 * grp + HALF_ROWS * (H0 + h);
                    __m256i pair = q6_scale_pair(sa, sa + 16);
                    UNROLL for (int t = 0; t < NT; t++) {
                        const int32_t *s16 = x[t].sum16 + 2 * xb;
                        __m256i xs = _mm256_set1_epi32((s16[0] & 0xFFFF) | (int32_t)((uint32_t)s16[1] << 16));
                        si[h][t] = _mm256_slli_epi32(_mm256_madd_epi16(pair, xs), 5);
                        si[h][t] = _mm256_sub_epi32(_mm256_setzero_si256(), si[h][t]);
                    }
                }
                UNROLL for (int kh = 0; kh < 2; kh++) {
                    __m256i sc16[2];
                    UNROLL for (int h = 0; h < NH; h++)
                        sc16[h] = q6_scale16(scales + 16 * (grp + kh) + HALF_ROWS * (H0 + h));
                    /* two steps of 4 columns in int16 pairs (<= 2 x 16002), then x scale into int32 */
                    UNROLL for (int k2 = 0; k2 < 2; k2++) {
                        __m256i p[2][PACKED_TOKENS];
                        UNROLL for (int k1 = 0; k1 < 2; k1++) {
                            int k = 4 * kh + 2 * k2 + k1;
                            const uint8_t *at = runs + (size_t)(8 * hv + k) * 192 + 64 * (s & 1);
                            __m256i xv[PACKED_TOKENS];
                            UNROLL for (int t = 0; t < NT; t++)
                                xv[t] = bcast4(x[t].q + 256 * sb + 128 * hv + 32 * s + 4 * k);
                            UNROLL for (int h = 0; h < NH; h++) {
                                int o = HALF * (H0 + h);
                                __m256i w = q6_weights(load(at + o), load(runs + (size_t)(8 * hv + k) * 192 + 128 + o), s);
                                UNROLL for (int t = 0; t < NT; t++) {
                                    __m256i m = _mm256_maddubs_epi16(w, xv[t]);
                                    p[h][t] = k1 ? _mm256_add_epi16(p[h][t], m) : m;
                                }
                            }
                        }
                        UNROLL for (int h = 0; h < NH; h++)
                            UNROLL for (int t = 0; t < NT; t++)
                                si[h][t] = _mm256_add_epi32(si[h][t], _mm256_madd_epi16(p[h][t], sc16[h]));
                    }
                }
                UNROLL for (int h = 0; h < NH; h++)
                    UNROLL for (int t = 0; t < NT; t++) acc[h][t] = scale_add(acc[h][t], si[h][t], d[h], x[t].d[xb]);
            }
    }
    acc_store(acc, NH, NT, H0, y, ldy);
}

/* ---- groups x tokens ---- */

/* One or two activation rows: both halves in one pass; more: a pass per half. */
#define PASSES(GROUP, g, cols, x, NT, yo, ldy)          \
    do {                                                \
        if (NT <= 2) {                                  \
            GROUP(g, cols, x, NT, 0, 2, yo, ldy);       \
        } else {                                        \
            GROUP(g, cols, x, NT, 0, 1, yo, ldy);       \
            GROUP(g, cols, x, NT, 1, 1, yo, ldy);       \
        }                                               \
    } while (0)

#define DEFINE_MATVEC_PACKED(NAME, GROUP) DEFINE_MATVEC_PACKED_WITH(NAME, PASSES, GROUP)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q8_0_avx2, group_q8_0)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q4_0_avx2, group_q4_0)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q4_k_avx2, group_q4_k)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q5_k_avx2, group_q5_k)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q6_k_avx2, group_q6_k)
