/* npy.h — writes a float32 array as a NumPy .npy file (format version 1.0), little-endian. */
#ifndef TFM_NPY_H
#define TFM_NPY_H

#include <stddef.h>
#include <stdint.h>

/* Writes `data` (rows x cols floats, row-major) to `path`. Returns 0, or -1 with errno set. */
int npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols);

#endif
