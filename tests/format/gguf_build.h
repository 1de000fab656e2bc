/*
 * gguf_build.h — builds GGUF files in memory for the format tests: a description (keys, tensor infos,
 * data) that a test can corrupt field by field, then serialised byte for byte as the format says.
 */
#ifndef TFM_TESTS_GGUF_BUILD_H
#define TFM_TESTS_GGUF_BUILD_H

#include <stddef.h>
#include <stdint.h>

#define GB_NONE UINT64_MAX  /* "no override" */

typedef struct gb_kv {
    char key[96];
    uint64_t key_len;        /* GB_NONE: strlen(key); else written as the length field */
    uint32_t type;
    uint8_t *val;            /* encoded value as it follows the type field */
    size_t val_len;
} gb_kv;

typedef struct gb_tensor {
    char name[96];
    uint64_t name_len;       /* GB_NONE: strlen(name) */
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;         /* GB_NONE: placed after the previous tensor, aligned */
    uint64_t nbytes;         /* GB_NONE: from type and ne; bytes reserved in the data section */
    const void *data;        /* NULL: a deterministic pattern */
} gb_tensor;

typedef struct gb_model {
    char magic[4];
    uint32_t version;
    uint64_t n_tensors;      /* GB_NONE: the real count */
    uint64_t n_kv;           /* GB_NONE: the real count */
    gb_kv kv[64];
    int n_kv_used;
    gb_tensor t[64];
    int n_t;
    uint64_t alignment;      /* used to lay out the data section (general.alignment is a separate key) */
} gb_model;

/* Serialised file plus the offsets where each structure begins or ends (for truncation tests). */
typedef struct gb_file {
    uint8_t *data;
    size_t size;
    size_t marks[2048];
    int n_marks;
} gb_file;

void gb_init(gb_model *m);
void gb_free(gb_model *m);

gb_kv *gb_kv_raw(gb_model *m, const char *key, uint32_t type, const void *val, size_t len);
gb_kv *gb_kv_u32(gb_model *m, const char *key, uint32_t v);
gb_kv *gb_kv_f32(gb_model *m, const char *key, float v);
gb_kv *gb_kv_str(gb_model *m, const char *key, const char *s);
gb_kv *gb_kv_find(gb_model *m, const char *key);
void gb_kv_remove(gb_model *m, const char *key);
/* Replaces (or adds) a u32 / string value. */
void gb_kv_set_u32(gb_model *m, const char *key, uint32_t v);
void gb_kv_set_str(gb_model *m, const char *key, const char *s);

/* ne in ggml order (ne[0] contiguous). */
gb_tensor *gb_tensor_add(gb_model *m, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne);
gb_tensor *gb_tensor_find(gb_model *m, const char *name);
void gb_tensor_remove(gb_model *m, const char *name);

/* Bytes of a tensor of `type` (0 if the builder does not know the type). */
uint64_t gb_type_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne);

gb_file gb_serialize(const gb_model *m);
void gb_file_free(gb_file *f);

/* A valid tiny "llama": n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab; all tensors f32 unless
 * `mat_type` says otherwise; `tied` omits output.weight. */
void gb_llama(gb_model *m, int n_embd, int n_layer, int n_head, int n_head_kv, int n_ff, int n_vocab,
              uint32_t mat_type, int tied);

#endif
