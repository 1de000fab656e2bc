/* repack.h — block-quantised weights regrouped for the packed kernels (AVX-512 VNNI and AVX2:
 * kernels_packed_avx512.c, kernels_packed_avx2.c).
 *
 * Sixteen rows are interleaved so that one 64-byte vector holds 4 consecutive bytes of each of the
 * 16 rows: vpdpbusd against 4 activation bytes broadcast to every lane then yields 16 rows' partial
 * sums at once, and one float multiply-add scales a block of all 16 rows. A weight of `rows` rows
 * has rows / 16 groups of TFM_PACK_ROWS * row_bytes bytes each (the same bytes in another order);
 * the last rows % 16 rows are not packed and stay in the file's layout.
 *
 * Inside a group, one packed block follows another, in column order. Arrays are indexed [..][r][i]
 * with r the row in the group and i a byte of a 4-byte run:
 *
 *   Q8_0, 544 bytes per 32 columns
 *     f16 d[16]              the rows' scales
 *     u8  q[8][16][4]        q[k][r][i] = value 4k+i of row r, plus 128 (an unsigned byte)
 *   Q4_0, 288 bytes per 32 columns
 *     f16 d[16]
 *     u8  qs[4][16][4]       qs[k][r][i] = byte 4k+i of row r's qs (low nibble: value 4k+i,
 *                            high nibble: value 16+4k+i)
 *   Q4_K, 2304 bytes per 256 columns
 *     f16 d[16], dmin[16]
 *     u8  sc[3][16][4]       sc[j][r][i] = byte 4j+i of row r's 12 scale bytes
 *     u8  qs[4][8][16][4]    qs[p][k][r][i] = byte 32p+4k+i of row r's qs (low nibble: value
 *                            64p+4k+i, high nibble: value 64p+32+4k+i)
 *   Q5_K, 2816 bytes per 256 columns
 *     as Q4_K, with between sc and qs:
 *     u8  qh[8][16][4]       qh[k][r][i] = byte 4k+i of row r's qh (bit s: bit 4 of value
 *                            32s+4k+i)
 *   Q6_K, 3360 bytes per 256 columns
 *     f16 d[16]
 *     i8  scales[16][16]     scales[g][r] = row r's scale of values 16g .. 16g+15
 *     then for h = 0, 1 and k = 0 .. 7, in the order the kernel reads them:
 *       u8 ql0[16][4], ql1[16][4], qh[16][4]
 *                            byte i of row r: ql byte 64h+4k+i, ql byte 64h+32+4k+i, qh byte
 *                            32h+4k+i (together values 128h+32s+4k+i for s = 0 .. 3)
 */
#ifndef TFM_CPU_REPACK_H
#define TFM_CPU_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"

#define TFM_PACK_ROWS 16

/* Whether tfm_repack_groups knows the dtype. */
int tfm_packable(tfm_dtype dtype);

/* Writes groups [g0, g1) of the weight `w` (rows of `row_bytes` bytes holding `cols` values) into
 * `packed`, the start of the whole packed weight (group g at packed + g * TFM_PACK_ROWS * row_bytes). */
void tfm_repack_groups(tfm_dtype dtype, const void *w, size_t row_bytes, int64_t cols, int64_t g0, int64_t g1,
                       void *packed);

#endif /* TFM_CPU_REPACK_H */
