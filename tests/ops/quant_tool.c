/* quant_tool.c — runs one kernel table's block-quantised kernels on data from a file, for the
 * numpy reference test (test_quant_numpy.py).
 *
 *   quant_tool ISA IN OUT
 * IN:  int32 dtype, rows, cols, n; rows*row_bytes weight bytes; n*cols f32 activations.
 * OUT: rows*cols f32 dequantised weights; n*cols int8 quantised activations; n*cols/32 f32 block
 *      scales; n*rows f32 products (matvec over all rows for each activation row); int32 1 if the
 *      table has packed kernels for the dtype (repack.h), then n*rows f32 products over the packed
 *      weight (its last rows % 16 rows through the file-layout kernel), else int32 0.
 * Exit 77 when this CPU lacks the ISA, 3 when a packed kernel's result for one token alone differs
 * from the same token's in the batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "kernels.h"
#include "quant.h"
#include "repack.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s ISA IN OUT\n", argv[0]);
        return 2;
    }
    const tfm_cpu_kernels *k = tfm_cpu_kernels_named(argv[1]);
    if (!k)
        return 77;
    FILE *in = fopen(argv[2], "rb");
    int32_t hdr[4];
    if (!in || fread(hdr, sizeof hdr, 1, in) != 1)
        return 2;
    tfm_dtype dt = (tfm_dtype)hdr[0];
    int64_t rows = hdr[1], cols = hdr[2], n = hdr[3];
    size_t row_bytes = tfm_cpu_row_bytes(dt, cols);
    if (!row_bytes || !k->matvec_q[dt])
        return 2;
    uint8_t *w = malloc(row_bytes * (size_t)rows);
    float *x = malloc(sizeof(float) * (size_t)(n * cols));
    if (fread(w, row_bytes, (size_t)rows, in) != (size_t)rows || fread(x, sizeof(float), (size_t)(n * cols), in) != (size_t)(n * cols))
        return 2;
    fclose(in);

    float *deq = malloc(sizeof(float) * (size_t)(rows * cols));
    k->to_f32[dt](w, deq, rows * cols);
    size_t stride = tfm_q8_row_bytes(cols);
    char *xq;
    if (posix_memalign((void **)&xq, 64, stride * (size_t)n) != 0)
        return 2;
    for (int64_t t = 0; t < n; t++)
        k->quantize_q8(x + t * cols, cols, xq + (size_t)t * stride);
    float *y = malloc(sizeof(float) * (size_t)(n * rows));
    for (int64_t t0 = 0; t0 < n; t0 += TFM_CPU_MATVEC_MAX_TOKENS) {
        int nt = n - t0 < TFM_CPU_MATVEC_MAX_TOKENS ? (int)(n - t0) : TFM_CPU_MATVEC_MAX_TOKENS;
        k->matvec_q[dt](w, row_bytes, cols, 0, rows, xq + (size_t)t0 * stride, stride, nt, y + t0 * rows, (size_t)rows);
    }

    /* the packed path: all activation rows in one call, as the backend makes it */
    int32_t has_packed = k->matvec_packed[dt] && tfm_packable(dt);
    float *yp = calloc((size_t)(n * rows), sizeof(float));
    if (has_packed) {
        int64_t groups = rows / TFM_PACK_ROWS;
        void *packed;
        if (posix_memalign(&packed, 64, (size_t)groups * TFM_PACK_ROWS * row_bytes + 64) != 0)
            return 2;
        tfm_repack_groups(dt, w, row_bytes, cols, 0, groups, packed);
        k->matvec_packed[dt](packed, row_bytes, cols, 0, groups, xq, stride, (int)n, yp, (size_t)rows);
        for (int64_t t0 = 0; t0 < n; t0 += TFM_CPU_MATVEC_MAX_TOKENS) {
            int nt = n - t0 < TFM_CPU_MATVEC_MAX_TOKENS ? (int)(n - t0) : TFM_CPU_MATVEC_MAX_TOKENS;
            k->matvec_q[dt](w, row_bytes, cols, groups * TFM_PACK_ROWS, rows, xq + (size_t)t0 * stride, stride, nt,
                            yp + t0 * rows, (size_t)rows);
        }
        /* one token alone (the decode path) must give its row of the batch bit for bit */
        float *y1 = calloc((size_t)rows, sizeof(float));
        k->matvec_packed[dt](packed, row_bytes, cols, 0, groups, xq, stride, 1, y1, (size_t)rows);
        if (memcmp(y1, yp, (size_t)groups * TFM_PACK_ROWS * sizeof(float)) != 0) {
            fprintf(stderr, "packed kernel: one token differs from the same token in a batch of %lld\n", (long long)n);
            return 3;
        }
        free(y1);
        free(packed);
    }

    FILE *out = fopen(argv[3], "wb");
    if (!out)
        return 2;
    fwrite(deq, sizeof(float), (size_t)(rows * cols), out);
    for (int64_t t = 0; t < n; t++)
        fwrite(tfm_q8_row_at(xq + (size_t)t * stride, cols).q, 1, (size_t)cols, out);
    for (int64_t t = 0; t < n; t++)
        fwrite(tfm_q8_row_at(xq + (size_t)t * stride, cols).d, sizeof(float), (size_t)(cols / 32), out);
    fwrite(y, sizeof(float), (size_t)(n * rows), out);
    fwrite(&has_packed, sizeof has_packed, 1, out);
    if (has_packed)
        fwrite(yp, sizeof(float), (size_t)(n * rows), out);
    fclose(out);
    return 0;
}
