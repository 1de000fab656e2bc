/*
 * npy.c — the .npy format: a magic string, a version, a header length, a Python dict literal padded
 * with spaces so the data starts on a 64-byte boundary, then the raw array.
 * See numpy's format description (numpy.lib.format).
 */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

int npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols) {
    if (!is_little_endian()) {
        errno = ENOTSUP; /* '<f4' below says little-endian; a big-endian host would need byte swaps */
        return -1;
    }
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    /* magic (6) + version (2) + header length (2) + dict + padding + '\n' = a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    char header[256];
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(padded - 10);
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)n);
    memset(header + 10 + n, ' ', padded - total);
    header[padded - 1] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t count = (size_t)rows * (size_t)cols;
    int ok = fwrite(header, 1, padded, f) == padded && fwrite(data, sizeof(float), count, f) == count;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}
