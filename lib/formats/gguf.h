/*
 * gguf.h — a bounds-checked reader for GGUF v2/v3 files held in memory (internal).
 *
 * The whole file is one byte range (an mmap or a caller's buffer); nothing is copied. Every count,
 * length and offset is checked against the range before use, so a hostile file yields TFM_E_FORMAT
 * with a message naming the field and its offset, never an out-of-bounds read.
 */
#ifndef TFM_LIB_FORMATS_GGUF_H
#define TFM_LIB_FORMATS_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12
} gguf_type;

/* A string inside the file: NOT NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;           /* for arrays: GGUF_TYPE_ARRAY */
    gguf_type array_type;     /* element type when type == GGUF_TYPE_ARRAY */
    uint64_t array_len;
    const uint8_t *value;     /* the raw little-endian value (scalars) or first element (arrays) */
    gguf_str *strings;        /* string arrays: array_len entries, pre-validated; else NULL */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;          /* 1..4 */
    int64_t ne[4];            /* ne[0] is the contiguous (innermost) dimension, as in ggml */
    uint32_t ggml_type;       /* GGML type id as stored */
    tfm_dtype dtype;          /* mapped dtype; valid only if supported */
    int supported;            /* 1 if libtfm can compute with this type */
    uint64_t offset;          /* relative to the data section */
    const void *data;         /* base + data_offset + offset, bounds-checked */
    uint64_t nbytes;
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;
} gguf_file;

/* Parses the header, metadata and tensor infos. `label` (a path) prefixes error messages. */
tfm_status gguf_parse(const void *data, size_t size, const char *label, gguf_file **out);
void gguf_free(gguf_file *f);

/* Lookups; NULL / 0 when missing. */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters: return 1 and store the value if `key` exists and converts losslessly to the
 * requested type (any integer type for ints; f32/f64 for floats), else 0. */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_float(const gguf_file *f, const char *key, double *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Element i of a numeric array as a double / int64 (0 if out of range or not numeric). */
double gguf_array_float(const gguf_kv *kv, uint64_t i);
int64_t gguf_array_int(const gguf_kv *kv, uint64_t i);

/* Name of a GGML type id ("q4_k", "iq2_xs", ...; "type<N>" if unknown) for messages. */
const char *gguf_type_name(uint32_t ggml_type);

#endif
