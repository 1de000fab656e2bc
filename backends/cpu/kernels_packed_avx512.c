/* kernels_packed_avx512.c — matrix-vector products over packed block-quantised weights (repack.h)
 * with AVX-512 VNNI. Compiled with AVX-512 F/BW/VL/VNNI enabled; used only when the CPU has them.
 *
 * A group holds 16 rows interleaved 4 bytes at a time, so one vpdpbusd of a 64-byte weight vector
 * against 4 activation bytes broadcast to all lanes adds 4 products to each of 16 row lanes. The
 * integer sums of one activation block (32 values; 16 for Q6_K's scale groups) are converted once
 * and scaled by weight scale x activation scale for all 16 rows with one multiply-add. Offsets
 * (Q8_0's 128, Q4_0's 8, Q6_K's 32) start the integer sums at -offset x the activation block's sum.
 * The groups are read one after another, one sequential stream per thread: reading two groups side by
 * side (each broadcast activation serving 32 rows) saves instructions but made the hardware prefetchers
 * follow two streams, and decode from memory was 10-35 % slower on 768-column matrices (bench_matvec,
 * Zen 4). Each row's result is one accumulator that sees the blocks in column order, whatever the
 * number of rows, groups, tokens or threads. */
#include <immintrin.h>

#include "kernels.h"
#include "quant.h"
#include "repack.h"
#include "simd_shared.h"

/* The 4 activation bytes at p in every 32-bit lane. */
ALWAYS_INLINE __m512i bcast4(const int8_t *p) {
    return _mm512_set1_epi32(load4(p));
}

ALWAYS_INLINE __m512 load_f16x16(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

ALWAYS_INLINE __m512i low_nibbles(__m512i v) {
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}
ALWAYS_INLINE __m512i high_nibbles(__m512i v) {
    return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
}

/* Every kernel below: the group at g x NT tokens; y[t * ldy + r]. */
#define KERNEL_ARGS const uint8_t *g, int64_t cols, const tfm_q8_row *x, int NT, float *y, size_t ldy
#define ACC_ZERO()              \
    __m512 acc[PACKED_TOKENS]; \
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps()
#define ACC_STORE() UNROLL for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t])

/* ---- Q8_0 and Q4_0: one packed block per 32 columns ---- */

ALWAYS_INLINE void group_q8_0(KERNEL_ARGS) {
    ACC_ZERO();
    for (int64_t b = 0; b < cols / 32; b++) {
        /* two chains (even and odd steps) halve the dependent vpdpbusd latency; integer sums are
         * exact, so the split does not change them */
        __m512i s[2][PACKED_TOKENS];
        UNROLL for (int t = 0; t < NT; t++) {
            s[0][t] = _mm512_set1_epi32(-128 * x[t].sum32[b]);
            s[1][t] = _mm512_setzero_si512();
        }
        UNROLL for (int k = 0; k < 8; k++) {
            __m512i xb[PACKED_TOKENS];
            UNROLL for (int t = 0; t < NT; t++) xb[t] = bcast4(x[t].q + 32 * b + 4 * k);
            __m512i wv = _mm512_loadu_si512(g + (size_t)b * 544 + 32 + 64 * k);
            UNROLL for (int t = 0; t < NT; t++) s[k & 1][t] = _mm512_dpbusd_epi32(s[k & 1][t], wv, xb[t]);
        }
        __m512 dw = load_f16x16(g + (size_t)b * 544);
        UNROLL for (int t = 0; t < NT; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s[0][t], s[1][t])),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(x[t].d[b])), acc[t]);
    }
    ACC_STORE();
}

ALWAYS_INLINE void group_q4_0(KERNEL_ARGS) {
    ACC_ZERO();
    for (int64_t b = 0; b < cols / 32; b++) {
        /* two chains (low and high nibbles) halve the dependent vpdpbusd latency */
        __m512i lo[PACKED_TOKENS], hi[PACKED_TOKENS];
        UNROLL for (int t = 0; t < NT; t++) {
            lo[t] = _mm512_set1_epi32(-8 * x[t].sum32[b]);
            hi[t] = _mm512_setzero_si512();
        }
        UNROLL for (int k = 0; k < 4; k++) {
            __m512i xl[PACKED_TOKENS], xh[PACKED_TOKENS];
            UNROLL for (int t = 0; t < NT; t++) {
                xl[t] = bcast4(x[t].q + 32 * b + 4 * k);
                xh[t] = bcast4(x[t].q + 32 * b + 16 + 4 * k);
            }
            __m512i v = _mm512_loadu_si512(g + (size_t)b * 288 + 32 + 64 * k);
            __m512i wl = low_nibbles(v), wh = high_nibbles(v);
            UNROLL for (int t = 0; t < NT; t++) {
                lo[t] = _mm512_dpbusd_epi32(lo[t], wl, xl[t]);
                hi[t] = _mm512_dpbusd_epi32(hi[t], wh, xh[t]);
            }
        }
        __m512 dw = load_f16x16(g + (size_t)b * 288);
        UNROLL for (int t = 0; t < NT; t++) {
            __m512i sum = _mm512_add_epi32(lo[t], hi[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(x[t].d[b])), acc[t]);
        }
    }
    ACC_STORE();
}

/* ---- Q4_K: super-blocks of 256 columns, 8 sub-blocks of 32 with their own scale and minimum ---- */

/* Byte j (0..3) of every lane of v, as floats. */
ALWAYS_INLINE __m512 lane_byte(__m512i v, int j) {
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * j), _mm512_set1_epi32(0xFF)));
}

/* The 6-bit scales (lanes' bytes 0-3: sub-blocks 0-3, sc[1]: 4-7) and minimums of 16 rows
 * (see tfm_k_scale_min). */
typedef struct k_scales {
    __m512i sc[2], m[2];
} k_scales;

ALWAYS_INLINE k_scales unpack_k_scales(const uint8_t *blk) {
    __m512i u0 = _mm512_loadu_si512(blk + 64), u1 = _mm512_loadu_si512(blk + 128), u2 = _mm512_loadu_si512(blk + 192);
    __m512i m63 = _mm512_set1_epi8(63), m15 = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    k_scales k;
    k.sc[0] = _mm512_and_si512(u0, m63);
    k.m[0] = _mm512_and_si512(u1, m63);
    k.sc[1] = _mm512_or_si512(_mm512_and_si512(u2, m15), _mm512_and_si512(_mm512_srli_epi32(u0, 2), top));
    k.m[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m15), _mm512_and_si512(_mm512_srli_epi32(u1, 2), top));
    return k;
}

/* Moves bit `bit` (0..7) of every byte to bit 4 (other bits are left for the caller to mask). */
ALWAYS_INLINE __m512i bit_to_4(__m512i v, int bit) {
    if (bit < 4)
        return _mm512_slli_epi16(v, 4 - bit);
    return bit == 4 ? v : _mm512_srli_epi16(v, bit - 4);
}

/* Q4_K, and Q5_K (HIGH_BIT = 1: 2816-byte blocks with the fifth bits at 256, nibbles at 768). */
ALWAYS_INLINE void group_k4(KERNEL_ARGS, int HIGH_BIT) {
    const size_t bytes = HIGH_BIT ? 2816 : 2304, qs_at = HIGH_BIT ? 768 : 256;
    ACC_ZERO();
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = g + (size_t)sb * bytes;
        __m512 d = load_f16x16(blk), dmin = load_f16x16(blk + 32);
        k_scales ks = unpack_k_scales(blk);
        /* the minimums: acc -= dmin * m_j * (d_x * sum of block j's q) */
        UNROLL for (int j = 0; j < 8; j++) {
            __m512 mj = _mm512_mul_ps(lane_byte(ks.m[j >> 2], j & 3), dmin);
            UNROLL for (int t = 0; t < NT; t++)
                acc[t] = _mm512_fnmadd_ps(mj, _mm512_set1_ps(x[t].bsum[8 * sb + j]), acc[t]);
        }
        UNROLL for (int p = 0; p < 4; p++) {
            /* even and odd steps in separate chains (exact integer sums, added at the end) */
            __m512i lo[2][PACKED_TOKENS], hi[2][PACKED_TOKENS];
            UNROLL for (int t = 0; t < NT; t++)
                lo[0][t] = hi[0][t] = lo[1][t] = hi[1][t] = _mm512_setzero_si512();
            UNROLL for (int k = 0; k < 8; k++) {
                __m512i xl[PACKED_TOKENS], xh[PACKED_TOKENS];
                UNROLL for (int t = 0; t < NT; t++) {
                    xl[t] = bcast4(x[t].q + 256 * sb + 64 * p + 4 * k);
                    xh[t] = bcast4(x[t].q + 256 * sb + 64 * p + 32 + 4 * k);
                }
                __m512i v = _mm512_loadu_si512(blk + qs_at + 512 * p + 64 * k);
                __m512i wl = low_nibbles(v), wh = high_nibbles(v);
                if (HIGH_BIT) { /* bit 2p of qh is bit 4 of sub-block 2p, bit 2p+1 of 2p+1 */
                    __m512i qh = _mm512_loadu_si512(blk + 256 + 64 * k), b4 = _mm512_set1_epi8(0x10);
                    wl = _mm512_or_si512(wl, _mm512_and_si512(bit_to_4(qh, 2 * p), b4));
                    wh = _mm512_or_si512(wh, _mm512_and_si512(bit_to_4(qh, 2 * p + 1), b4));
                }
                UNROLL for (int t = 0; t < NT; t++) {
                    lo[k & 1][t] = _mm512_dpbusd_epi32(lo[k & 1][t], wl, xl[t]);
                    hi[k & 1][t] = _mm512_dpbusd_epi32(hi[k & 1][t], wh, xh[t]);
                }
            }
            int j = 2 * p;
            __m512 sl = _mm512_mul_ps(lane_byte(ks.sc[j >> 2], j & 3), d);
            __m512 sh = _mm512_mul_ps(lane_byte(ks.sc[(j + 1) >> 2], (j + 1) & 3), d);
            UNROLL for (int t = 0; t < NT; t++) {
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(lo[0][t], lo[1][t])), _mm512_mul_ps(sl, _mm512_set1_ps(x[t].d[8 * sb + j])),
                                         acc[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(hi[0][t], hi[1][t])),
                                         _mm512_mul_ps(sh, _mm512_set1_ps(x[t].d[8 * sb + j + 1])), acc[t]);
            }
        }
    }
    ACC_STORE();
}

ALWAYS_INLINE void group_q4_k(KERNEL_ARGS) {
    group_k4(g, cols, x, NT, y, ldy, 0);
}
ALWAYS_INLINE void group_q5_k(KERNEL_ARGS) {
    group_k4(g, cols, x, NT, y, ldy, 1);
}

/* ---- Q6_K: super-blocks of 256 columns, a scale per 16 values ---- */

/* Values 128h + 32s + 4k .. +3 of every row: a nibble of ql and two bits of qh as bits 4-5. */
ALWAYS_INLINE __m512i q6_weights(__m512i ql, __m512i qh, int s) {
    __m512i lo = (s >> 1) ? high_nibbles(ql) : low_nibbles(ql);
    __m512i hb;
    switch (s) {
    case 0: hb = _mm512_slli_epi16(qh, 4); break;
    case 1: hb = _mm512_slli_epi16(qh, 2); break;
    case 2: hb = qh; break;
    default: hb = _mm512_srli_epi16(qh, 2); break;
    }
    return _mm512_or_si512(lo, _mm512_and_si512(hb, _mm512_set1_epi8(0x30)));
}

ALWAYS_INLINE void group_q6_k(KERNEL_ARGS) {
    ACC_ZERO();
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        UNROLL for (int h = 0; h < 2; h++)
            UNROLL for (int kh = 0; kh < 2; kh++) {
                /* four 16-value groups at once: s = 0 .. 3, values 128h + 32s + 16kh .. +15 */
                __m512i acc_i[4][PACKED_TOKENS];
                UNROLL for (int s = 0; s < 4; s++)
                    UNROLL for (int t = 0; t < NT; t++)
                        acc_i[s][t] = _mm512_set1_epi32(-32 * x[t].sum16[16 * sb + 8 * h + 2 * s + kh]);
                UNROLL for (int kk = 0; kk < 4; kk++) {
                    int k = 4 * kh + kk;
                    const uint8_t *at = g + (size_t)sb * 3360 + 288 + (size_t)(8 * h + k) * 192;
                    __m512i l0 = _mm512_loadu_si512(at), l1 = _mm512_loadu_si512(at + 64);
                    __m512i hv = _mm512_loadu_si512(at + 128);
                    UNROLL for (int s = 0; s < 4; s++) {
                        __m512i wv = q6_weights(s & 1 ? l1 : l0, hv, s);
                        UNROLL for (int t = 0; t < NT; t++)
                            acc_i[s][t] = _mm512_dpbusd_epi32(
                                acc_i[s][t], wv, bcast4(x[t].q + 256 * sb + 128 * h + 32 * s + 4 * k));
                    }
                }
                const uint8_t *blk = g + (size_t)sb * 3360;
                __m512 d = load_f16x16(blk);
                UNROLL for (int s = 0; s < 4; s++) {
                    int grp = 8 * h + 2 * s + kh;
                    __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                  _mm_loadu_si128((const __m128i *)(blk + 32 + 16 * grp)))), d);
                    UNROLL for (int t = 0; t < NT; t++)
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc_i[s][t]),
                                                 _mm512_mul_ps(sc, _mm512_set1_ps(x[t].d[8 * sb + 4 * h + s])), acc[t]);
                }
            }
    }
    ACC_STORE();
}

/* ---- groups x tokens ---- */

#define ONE_PASS(GROUP, g, cols, x, NT, yo, ldy) GROUP(g, cols, x, NT, yo, ldy)
#define DEFINE_MATVEC_PACKED(NAME, GROUP) DEFINE_MATVEC_PACKED_WITH(NAME, ONE_PASS, GROUP)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q8_0_avx512vnni, group_q8_0)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q4_0_avx512vnni, group_q4_0)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q4_k_avx512vnni, group_q4_k)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q5_k_avx512vnni, group_q5_k)
DEFINE_MATVEC_PACKED(tfm_matvec_packed_q6_k_avx512vnni, group_q6_k)
