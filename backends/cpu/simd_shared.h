/* simd_shared.h — small helpers shared by the AVX2 and AVX-512 quantised kernels. Include it only
 * from files compiled with AVX2 enabled (every x86 kernel file is). */
#ifndef TFM_CPU_SIMD_SHARED_H
#define TFM_CPU_SIMD_SHARED_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"
#include "repack.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* The row and token loops must unroll to keep the accumulators in registers. */
#define UNROLL _Pragma("GCC unroll 16")
/* Activation rows per pass over a packed group's weights. */
#define PACKED_TOKENS 4

/* The 4 bytes at p as one int32 (any alignment): 4 activation values, to broadcast to every lane. */
ALWAYS_INLINE int32_t load4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The rows t0 .. t0 + n - 1 of quantised activations xq (rows xq_stride bytes apart) as tfm_q8_row. */
ALWAYS_INLINE void q8_rows(const void *xq, size_t xq_stride, int64_t cols, int t0, int n, tfm_q8_row *x) {
    for (int t = 0; t < n; t++)
        x[t] = tfm_q8_row_at((char *)xq + (size_t)(t0 + t) * xq_stride, cols);
}

/* The exported packed matvec of a kernel table: groups g0 .. g1 - 1 of 16 rows, the nt activation
 * rows PACKED_TOKENS at a time. CALL(GROUP, g, cols, x, NT, yo, ldy) runs GROUP over one group for NT
 * rows (NT a constant, so each count gets its own unrolled code). */
#define DEFINE_MATVEC_PACKED_WITH(NAME, CALL, GROUP)                                                    \
    void NAME(const void *packed, size_t row_bytes, int64_t cols, int64_t g0, int64_t g1, const void *xq, \
              size_t xq_stride, int nt, float *y, size_t ldy) {                                         \
        for (int64_t gi = g0; gi < g1; gi++) {                                                          \
            const uint8_t *g = (const uint8_t *)packed + (size_t)gi * TFM_PACK_ROWS * row_bytes;        \
            for (int t0 = 0; t0 < nt; t0 += PACKED_TOKENS) {                                            \
                int n = nt - t0 < PACKED_TOKENS ? nt - t0 : PACKED_TOKENS;                              \
                tfm_q8_row x[PACKED_TOKENS];                                                            \
                q8_rows(xq, xq_stride, cols, t0, n, x);                                                 \
                float *yo = y + (size_t)t0 * ldy + (size_t)gi * TFM_PACK_ROWS;                          \
                switch (n) {                                                                            \
                case 1: CALL(GROUP, g, cols, x, 1, yo, ldy); break;                                     \
                case 2: CALL(GROUP, g, cols, x, 2, yo, ldy); break;                                     \
                case 3: CALL(GROUP, g, cols, x, 3, yo, ldy); break;                                     \
                default: CALL(GROUP, g, cols, x, 4, yo, ldy); break;                                    \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    }

/* Stores block b's sums given its 8 sums of 4 values (`lanes`) and its amax: lane, sum16, sum32, d,
 * bsum of the tfm_q8_row layout. Integer sums are exact, so their order does not matter. */
ALWAYS_INLINE void q8_store_block_sums(tfm_q8_row r, int64_t b, __m256i lanes, float amax) {
    _mm256_storeu_si256((__m256i *)(r.lane + 8 * b), lanes);
    __m256i s4 = _mm256_hadd_epi32(lanes, lanes);
    s4 = _mm256_hadd_epi32(s4, s4); /* element 0: lanes 0-3, element 4: lanes 4-7 */
    int lo = _mm256_extract_epi32(s4, 0), hi = _mm256_extract_epi32(s4, 4);
    r.sum16[2 * b] = lo;
    r.sum16[2 * b + 1] = hi;
    r.sum32[b] = lo + hi;
    r.d[b] = amax / 127.0f;
    r.bsum[b] = r.d[b] * (float)(lo + hi);
}

#endif /* TFM_CPU_SIMD_SHARED_H */
