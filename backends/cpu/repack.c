/* repack.c — the packed layouts of repack.h, written from the file's blocks. Portable C: the
 * layout is the same on every machine, only the kernels that read it need AVX-512. */
#include <string.h>

#include "quant.h"
#include "repack.h"

#define R TFM_PACK_ROWS

int tfm_packable(tfm_dtype dtype) {
    return dtype == TFM_DTYPE_Q8_0 || dtype == TFM_DTYPE_Q4_0 || dtype == TFM_DTYPE_Q4_K || dtype == TFM_DTYPE_Q5_K ||
           dtype == TFM_DTYPE_Q6_K;
}

/* Copies 4-byte runs: run k of `src` (bytes 4k .. 4k+3) of row r goes to dst + (k * R + r) * 4. */
static void interleave_runs(uint8_t *dst, const uint8_t *src, int runs, int r) {
    for (int k = 0; k < runs; k++)
        memcpy(dst + ((size_t)k * R + (size_t)r) * 4, src + 4 * k, 4);
}

static void pack_q8_0(uint8_t *dst, const uint8_t *const blk[R]) {
    for (int r = 0; r < R; r++) {
        memcpy(dst + 2 * r, blk[r], 2);
        uint8_t *q = dst + 2 * R;
        for (int k = 0; k < 8; k++)
            for (int i = 0; i < 4; i++)
                q[(k * R + r) * 4 + i] = (uint8_t)(blk[r][2 + 4 * k + i] ^ 0x80); /* int8 + 128 */
    }
}

static void pack_q4_0(uint8_t *dst, const uint8_t *const blk[R]) {
    for (int r = 0; r < R; r++) {
        memcpy(dst + 2 * r, blk[r], 2);
        interleave_runs(dst + 2 * R, blk[r] + 2, 4, r);
    }
}

static void pack_q4_k(uint8_t *dst, const uint8_t *const blk[R]) {
    for (int r = 0; r < R; r++) {
        memcpy(dst + 2 * r, blk[r], 2);              /* d */
        memcpy(dst + 2 * R + 2 * r, blk[r] + 2, 2);  /* dmin */
        interleave_runs(dst + 4 * R, blk[r] + 4, 3, r);
        for (int p = 0; p < 4; p++)
            interleave_runs(dst + 16 * R + (size_t)p * 8 * R * 4, blk[r] + 16 + 32 * p, 8, r);
    }
}

static void pack_q5_k(uint8_t *dst, const uint8_t *const blk[R]) {
    for (int r = 0; r < R; r++) {
        memcpy(dst + 2 * r, blk[r], 2);              /* d */
        memcpy(dst + 2 * R + 2 * r, blk[r] + 2, 2);  /* dmin */
        interleave_runs(dst + 4 * R, blk[r] + 4, 3, r);
        interleave_runs(dst + 16 * R, blk[r] + 16, 8, r);
        for (int p = 0; p < 4; p++)
            interleave_runs(dst + 48 * R + (size_t)p * 8 * R * 4, blk[r] + 48 + 32 * p, 8, r);
    }
}

static void pack_q6_k(uint8_t *dst, const uint8_t *const blk[R]) {
    uint8_t *scales = dst + 2 * R, *runs = scales + 16 * R;
    for (int r = 0; r < R; r++) {
        memcpy(dst + 2 * r, blk[r] + 208, 2);
        for (int g = 0; g < 16; g++)
            scales[g * R + r] = blk[r][192 + g];
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 8; k++) {
                uint8_t *at = runs + (size_t)(8 * h + k) * 3 * R * 4;
                memcpy(at + 4 * r, blk[r] + 64 * h + 4 * k, 4);
                memcpy(at + R * 4 + 4 * r, blk[r] + 64 * h + 32 + 4 * k, 4);
                memcpy(at + 2 * R * 4 + 4 * r, blk[r] + 128 + 32 * h + 4 * k, 4);
            }
    }
}

void tfm_repack_groups(tfm_dtype dtype, const void *w, size_t row_bytes, int64_t cols, int64_t g0, int64_t g1,
                       void *packed) {
    void (*pack)(uint8_t *, const uint8_t *const[R]);
    switch (dtype) {
    case TFM_DTYPE_Q8_0: pack = pack_q8_0; break;
    case TFM_DTYPE_Q4_0: pack = pack_q4_0; break;
    case TFM_DTYPE_Q4_K: pack = pack_q4_k; break;
    case TFM_DTYPE_Q5_K: pack = pack_q5_k; break;
    case TFM_DTYPE_Q6_K: pack = pack_q6_k; break;
    default: return;
    }
    size_t bb = (size_t)tfm_q_block_bytes(dtype);
    int64_t nb = cols / tfm_q_block_values(dtype);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *rows = (const uint8_t *)w + (size_t)g * R * row_bytes;
        uint8_t *out = (uint8_t *)packed + (size_t)g * R * row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk[R];
            for (int r = 0; r < R; r++)
                blk[r] = rows + (size_t)r * row_bytes + (size_t)b * bb;
            pack(out + (size_t)b * R * bb, blk);
        }
    }
}
