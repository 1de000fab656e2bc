/* quant.h — GGUF block-quantised weight types (as llama.cpp lays them out) and the quantised
 * activations their dot products use.
 *
 * Weights (little-endian, blocks packed back to back along a row):
 *   Q8_0  32 values,  34 bytes: f16 d; int8 q[32]                       w = d * q
 *   Q4_0  32 values,  18 bytes: f16 d; u8 qs[16]                        w = d * (nibble - 8)
 *         value j < 16 is the low nibble of qs[j], value j + 16 its high nibble
 *   Q4_K 256 values, 144 bytes: f16 d, dmin; u8 scales[12]; u8 qs[128]
 *         8 sub-blocks of 32 with 6-bit scale sc and min m (packed in scales[12], see k_scale_min);
 *         qs[32p .. 32p+31]: low nibbles are sub-block 2p, high nibbles sub-block 2p+1;
 *         w = (d * sc) * q - (dmin * m)
 *   Q5_K 256 values, 176 bytes: f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
 *         as Q4_K plus a fifth bit: bit s of qh[l] is bit 4 of value l of sub-block s
 *   Q6_K 256 values, 210 bytes: u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
 *         per half h (128 values): value l, 32+l, 64+l, 96+l (l < 32) take the low nibble of
 *         ql[64h+l], the low nibble of ql[64h+32+l], the high nibble of ql[64h+l], the high nibble
 *         of ql[64h+32+l], and bits 0-1, 2-3, 4-5, 6-7 of qh[32h+l] as bits 4-5; q - 32 is scaled by
 *         scales[value / 16] and d: w = (d * scale) * (q - 32)
 *
 * Activations for the integer dot products are quantised per block of 32 (tfm_q8_row): an int8 per
 * value with one f32 scale per block, d = max|x| / 127, q = round-to-nearest-even(x * (127 / max|x|)).
 * The same definition everywhere (C, AVX2, AVX-512) gives identical activations. */
#ifndef TFM_CPU_QUANT_H
#define TFM_CPU_QUANT_H

#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include "half.h"
#include "tfm/tfm.h"

#define TFM_Q_BLOCK 32      /* values per Q8_0/Q4_0 block and per activation block */
#define TFM_QK_BLOCK 256    /* values per K-quant super-block */

enum {
    TFM_Q8_0_BYTES = 34,
    TFM_Q4_0_BYTES = 18,
    TFM_Q4_K_BYTES = 144,
    TFM_Q5_K_BYTES = 176,
    TFM_Q6_K_BYTES = 210,
};

static inline int tfm_is_quantized(tfm_dtype t) {
    return t == TFM_DTYPE_Q8_0 || t == TFM_DTYPE_Q4_0 || t == TFM_DTYPE_Q4_K || t == TFM_DTYPE_Q5_K ||
           t == TFM_DTYPE_Q6_K;
}

/* Values per block and bytes per block of a quantised type (0 for others). */
static inline int tfm_q_block_values(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_Q8_0:
    case TFM_DTYPE_Q4_0: return TFM_Q_BLOCK;
    case TFM_DTYPE_Q4_K:
    case TFM_DTYPE_Q5_K:
    case TFM_DTYPE_Q6_K: return TFM_QK_BLOCK;
    default: return 0;
    }
}
static inline int tfm_q_block_bytes(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_Q8_0: return TFM_Q8_0_BYTES;
    case TFM_DTYPE_Q4_0: return TFM_Q4_0_BYTES;
    case TFM_DTYPE_Q4_K: return TFM_Q4_K_BYTES;
    case TFM_DTYPE_Q5_K: return TFM_Q5_K_BYTES;
    case TFM_DTYPE_Q6_K: return TFM_Q6_K_BYTES;
    default: return 0;
    }
}

static inline float tfm_load_f16(const uint8_t *p) {
    return tfm_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block: sub-blocks 0-3 keep them
 * in the low 6 bits of bytes j and j+4; sub-blocks 4-7 in the nibbles of byte j+4 plus the top two
 * bits of bytes j-4 (scale) and j (min). */
static inline void tfm_k_scale_min(const uint8_t *scales, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* ---- quantised activations: one row of `cols` values (cols a multiple of 32) ----
 *   q      int8 [cols]
 *   lane   int32 [cols / 4]: sum of each group of 4 consecutive q (for the offset corrections)
 *   d      f32 [cols / 32]: block scales
 *   bsum   f32 [cols / 32]: d * sum of the block's q (for the Q4_K / Q5_K minimums)
 *   sum32  int32 [cols / 32]: sum of the block's q
 *   sum16  int32 [cols / 16]: sum of each half block's q (Q6_K's scale groups)
 * Rows are tfm_q8_row_bytes(cols) apart (a multiple of 64 bytes); q and lane are 32-byte aligned when
 * the row is, the other parts 4-byte aligned. */
static inline size_t tfm_q8_row_bytes(int64_t cols) {
    size_t c = (size_t)cols;
    size_t b = c + c + c / 8 + c / 8 + c / 8 + c / 4;
    return (b + 63) & ~(size_t)63;
}
typedef struct tfm_q8_row {
    int8_t *q;
    int32_t *lane;
    float *d;
    float *bsum;
    int32_t *sum32;
    int32_t *sum16;
} tfm_q8_row;
static inline tfm_q8_row tfm_q8_row_at(void *base, int64_t cols) {
    char *p = base;
    size_t c = (size_t)cols;
    tfm_q8_row r = {(int8_t *)p, (int32_t *)(p + c), (float *)(p + 2 * c), (float *)(p + 2 * c + c / 8),
                    (int32_t *)(p + 2 * c + c / 4), (int32_t *)(p + 2 * c + 3 * c / 8)};
    return r;
}

/* Quantises one block of 32 activations (the definition every path follows). */
static inline void tfm_q8_block(const float *x, int8_t *q, float *d, float *bsum, int32_t *lane, int32_t *sum32,
                                int32_t *sum16) {
    float amax = 0.0f;
    for (int i = 0; i < TFM_Q_BLOCK; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        amax = a > amax ? a : amax;
    }
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int i = 0; i < TFM_Q_BLOCK; i++) {
        /* nearest, ties to even (the FPU's default mode, as the vector conversions use) */
        float r = nearbyintf(x[i] * id);
        q[i] = (int8_t)r;
        sum += q[i];
    }
    for (int i = 0; i < TFM_Q_BLOCK / 4; i++)
        lane[i] = q[4 * i] + q[4 * i + 1] + q[4 * i + 2] + q[4 * i + 3];
    sum16[0] = lane[0] + lane[1] + lane[2] + lane[3];
    sum16[1] = lane[4] + lane[5] + lane[6] + lane[7];
    *sum32 = sum;
    *d = amax / 127.0f;
    *bsum = *d * (float)sum;
}

#endif /* TFM_CPU_QUANT_H */
