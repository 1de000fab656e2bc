/*
 * safetensors.h — a bounds-checked reader for Hugging Face .safetensors files held in memory (internal).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON (an object mapping each tensor
 * name to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional "__metadata__" object of
 * strings), then the data buffer; offsets are relative to the start of that buffer. Shapes are
 * row-major, outermost dimension first, as in numpy and PyTorch.
 *
 * The whole file is one byte range (an mmap); tensor data is not copied. Every offset is checked:
 * the header must fit in the file, each tensor's byte range must lie inside the data buffer and match
 * its dtype and shape, and ranges must neither overlap nor leave holes (as the format requires), so a
 * hostile file yields TFM_E_FORMAT naming the file and the tensor, never an out-of-bounds read.
 */
#ifndef TFM_LIB_FORMATS_SAFETENSORS_H
#define TFM_LIB_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"

#define SAFETENSORS_MAX_DIMS 8
/* The reference implementation refuses headers above 100 MB too; real ones are a few MB at most. */
#define SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

typedef struct safetensors_tensor {
    const char *name;            /* NUL-terminated, owned by the safetensors_file */
    char dtype_name[16];         /* as the file spells it: "BF16", "F32", "I64", ... */
    tfm_dtype dtype;             /* valid only if supported */
    int supported;               /* 1 for F32, F16, BF16 */
    int n_dims;                  /* 0 (a scalar) .. SAFETENSORS_MAX_DIMS */
    int64_t shape[SAFETENSORS_MAX_DIMS];
    uint64_t n_elements;
    uint64_t offset;             /* absolute offset in the file */
    uint64_t nbytes;
    const void *data;            /* base + offset, inside the file */
} safetensors_tensor;

typedef struct safetensors_file {
    const uint8_t *base;
    size_t size;
    uint64_t data_start;         /* 8 + header length */
    size_t n_tensors;
    safetensors_tensor *tensors; /* sorted by name */
    char *names;                 /* storage for the names */
} safetensors_file;

/* Parses and checks the header. `label` (the file's path) prefixes error messages. On failure
 * *out is NULL. Errors: TFM_E_FORMAT (malformed), TFM_E_OOM. */
tfm_status safetensors_parse(const void *data, size_t size, const char *label, safetensors_file **out);
void safetensors_free(safetensors_file *f);

/* The tensor called `name`, or NULL. */
const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name);

/* Bytes of one element of a safetensors dtype name ("F32" -> 4), 0 if unknown. */
size_t safetensors_dtype_size(const char *dtype_name);

#endif
