/*
 * gguf.c — a bounds-checked GGUF v2/v3 reader over a byte range (see gguf.h and docs/formats.md).
 *
 * Layout (all little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv times:      string key, u32 value_type, value
 *   n_tensors times: string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset
 *   padding to general.alignment (default 32), then the data section; tensor offsets are relative to it.
 * A string is a u64 byte length followed by the bytes (no NUL). An array value is u32 element type,
 * u64 count, then the elements (which may themselves be arrays).
 *
 * Every read goes through `need()`, which checks the remaining bytes first; every count is bounded by
 * the bytes that remain before anything is allocated, so the memory used is at most proportional to
 * the file size. Lookups use arrays sorted once (duplicates are found the same way).
 */
#include "formats/gguf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KEY_LEN 65535u     /* the specification's limit for keys */
#define GGUF_MAX_NAME_LEN 63u       /* ggml keeps names in char[64] with the NUL */
#define GGUF_MAX_DIMS 4u
#define GGUF_MAX_ARRAY_DEPTH 8      /* nested arrays deeper than this are rejected */

/* Smallest encodings, used to bound counts by the bytes left. */
#define GGUF_MIN_KV_BYTES 14u       /* key len (8) + 1 key byte + type (4) + 1 value byte */
#define GGUF_MIN_TENSOR_BYTES 33u   /* name len (8) + 1 name byte + n_dims (4) + ne (8) + type (4) + offset (8) */

/* The public struct plus the private lookup tables. */
typedef struct gguf_file_impl {
    gguf_file pub;
    const gguf_kv **kv_by_key;          /* n_kv entries sorted by key */
    const gguf_tensor **tensor_by_name; /* n_tensors entries sorted by name */
} gguf_file_impl;

typedef struct reader {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    const char *label;
} reader;

/* ------------------------------------------------------------------------------------------------
 * GGML tensor types: name, elements per block, bytes per block (0 = size unknown to libtfm)
 * ---------------------------------------------------------------------------------------------- */
typedef struct ggml_type_traits {
    const char *name;
    uint32_t block_elems;
    uint32_t block_bytes;
} ggml_type_traits;

static const ggml_type_traits k_ggml_types[] = {
    [0] = {"f32", 1, 4},          [1] = {"f16", 1, 2},          [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},       [6] = {"q5_0", 32, 22},       [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},       [9] = {"q8_1", 32, 36},       [10] = {"q2_k", 256, 84},
    [11] = {"q3_k", 256, 110},    [12] = {"q4_k", 256, 144},    [13] = {"q5_k", 256, 176},
    [14] = {"q6_k", 256, 210},    [15] = {"q8_k", 256, 292},    [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74},   [18] = {"iq3_xxs", 256, 98},  [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},    [21] = {"iq3_s", 256, 110},   [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136},  [24] = {"i8", 1, 1},          [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},         [27] = {"i64", 1, 8},         [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56},    [30] = {"bf16", 1, 2},
    /* 31..33 and 36..38 were repacked variants, removed from GGUF files */
    [31] = {"q4_0_4_4", 0, 0},    [32] = {"q4_0_4_8", 0, 0},    [33] = {"q4_0_8_8", 0, 0},
    [34] = {"tq1_0", 256, 54},    [35] = {"tq2_0", 256, 66},
    [36] = {"iq4_nl_4_4", 0, 0},  [37] = {"iq4_nl_4_8", 0, 0},  [38] = {"iq4_nl_8_8", 0, 0},
    [39] = {"mxfp4", 32, 17},     [40] = {"nvfp4", 0, 0},       [41] = {"q1_0", 0, 0},
};
#define N_GGML_TYPES (sizeof(k_ggml_types) / sizeof(k_ggml_types[0]))

const char *gguf_type_name(uint32_t ggml_type)
{
    static _Thread_local char buf[24];
    if (ggml_type < N_GGML_TYPES && k_ggml_types[ggml_type].name)
        return k_ggml_types[ggml_type].name;
    snprintf(buf, sizeof(buf), "type%" PRIu32, ggml_type);
    return buf;
}

/* The dtypes libtfm has kernels (or plans) for. Whether a model may use a quantised one is decided
 * by the model reader. */
static int ggml_to_dtype(uint32_t ggml_type, tfm_dtype *out)
{
    switch (ggml_type) {
    case 0: *out = TFM_DTYPE_F32; return 1;
    case 1: *out = TFM_DTYPE_F16; return 1;
    case 2: *out = TFM_DTYPE_Q4_0; return 1;
    case 8: *out = TFM_DTYPE_Q8_0; return 1;
    case 12: *out = TFM_DTYPE_Q4_K; return 1;
    case 13: *out = TFM_DTYPE_Q5_K; return 1;
    case 14: *out = TFM_DTYPE_Q6_K; return 1;
    case 30: *out = TFM_DTYPE_BF16; return 1;
    default: return 0;
    }
}

/* ------------------------------------------------------------------------------------------------
 * Little-endian loads (no alignment assumed)
 * ---------------------------------------------------------------------------------------------- */
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | ((uint64_t)ld32(p + 4) << 32); }

static const char *type_label(uint32_t t)
{
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "invalid";
}

/* Bytes of one scalar of type t; 0 for string/array/invalid. */
static uint32_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* ------------------------------------------------------------------------------------------------
 * Reading primitives. `what` names the field for messages ("n_kv", "kv 3 key length", ...).
 * ---------------------------------------------------------------------------------------------- */
static uint64_t remaining(const reader *r) { return r->size - r->pos; }

static tfm_status need(const reader *r, uint64_t n, const char *what)
{
    if (n > remaining(r))
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF truncated: %s at offset %" PRIu64 " needs %" PRIu64
                         " bytes but only %" PRIu64 " remain (file size %" PRIu64 ")",
                         r->label, what, r->pos, n, remaining(r), r->size);
    return TFM_OK;
}

static tfm_status rd_u32(reader *r, uint32_t *v, const char *what)
{
    tfm_status st = need(r, 4, what);
    if (st) return st;
    *v = ld32(r->base + r->pos);
    r->pos += 4;
    return TFM_OK;
}

static tfm_status rd_u64(reader *r, uint64_t *v, const char *what)
{
    tfm_status st = need(r, 8, what);
    if (st) return st;
    *v = ld64(r->base + r->pos);
    r->pos += 8;
    return TFM_OK;
}

/* A string: u64 length (checked against what remains and against max_len) + bytes. */
static tfm_status rd_str(reader *r, gguf_str *s, uint64_t max_len, const char *what)
{
    uint64_t at = r->pos;
    uint64_t len;
    tfm_status st = rd_u64(r, &len, what);
    if (st) return st;
    if (len > max_len)
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF %s at offset %" PRIu64 " has length %" PRIu64 ", expected at most %" PRIu64,
                         r->label, what, at, len, max_len);
    if (len > remaining(r))
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF %s at offset %" PRIu64 " has length %" PRIu64
                         " but only %" PRIu64 " bytes remain in the file",
                         r->label, what, at, len, remaining(r));
    s->ptr = (const char *)(r->base + r->pos);
    s->len = len;
    r->pos += len;
    return TFM_OK;
}

/* Skips `count` elements of `type` (which may be nested arrays), validating every length. */
static tfm_status skip_elements(reader *r, uint32_t type, uint64_t count, int depth, const char *what)
{
    uint32_t sz = scalar_size(type);
    if (sz) {
        if (count > remaining(r) / sz)
            return tfm_error(TFM_E_FORMAT,
                             "%s: GGUF %s at offset %" PRIu64 ": %" PRIu64 " elements of %s (%" PRIu32
                             " bytes each) do not fit in the %" PRIu64 " bytes that remain",
                             r->label, what, r->pos, count, type_label(type), sz, remaining(r));
        r->pos += count * sz;
        return TFM_OK;
    }
    if (type == GGUF_TYPE_STRING) {
        if (count > remaining(r) / 8)
            return tfm_error(TFM_E_FORMAT,
                             "%s: GGUF %s at offset %" PRIu64 ": %" PRIu64
                             " strings cannot fit in the %" PRIu64 " bytes that remain",
                             r->label, what, r->pos, count, remaining(r));
        for (uint64_t i = 0; i < count; i++) {
            gguf_str s;
            tfm_status st = rd_str(r, &s, UINT64_MAX, what);
            if (st) return st;
        }
        return TFM_OK;
    }
    if (type == GGUF_TYPE_ARRAY) {
        if (depth >= GGUF_MAX_ARRAY_DEPTH)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF %s at offset %" PRIu64 ": arrays nested deeper than %d",
                             r->label, what, r->pos, GGUF_MAX_ARRAY_DEPTH);
        if (count > remaining(r) / 12)
            return tfm_error(TFM_E_FORMAT,
                             "%s: GGUF %s at offset %" PRIu64 ": %" PRIu64
                             " nested arrays cannot fit in the %" PRIu64 " bytes that remain",
                             r->label, what, r->pos, count, remaining(r));
        for (uint64_t i = 0; i < count; i++) {
            uint64_t at = r->pos;
            uint32_t et;
            uint64_t n;
            tfm_status st = rd_u32(r, &et, what);
            if (!st) st = rd_u64(r, &n, what);
            if (st) return st;
            if (et > GGUF_TYPE_FLOAT64)
                return tfm_error(TFM_E_FORMAT,
                                 "%s: GGUF %s: nested array at offset %" PRIu64
                                 " has element type %" PRIu32 ", expected 0..12",
                                 r->label, what, at, et);
            st = skip_elements(r, et, n, depth + 1, what);
            if (st) return st;
        }
        return TFM_OK;
    }
    return tfm_error(TFM_E_FORMAT, "%s: GGUF %s at offset %" PRIu64 ": invalid element type %" PRIu32,
                     r->label, what, r->pos, type);
}

/* ------------------------------------------------------------------------------------------------
 * Sorting and lookup helpers
 * ---------------------------------------------------------------------------------------------- */
static int str_cmp(gguf_str a, gguf_str b)
{
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_kv_key(const void *a, const void *b)
{
    const gguf_kv *x = *(const gguf_kv *const *)a, *y = *(const gguf_kv *const *)b;
    int c = str_cmp(x->key, y->key);
    /* ties broken by position so duplicates are reported in file order */
    return c ? c : (x < y ? -1 : x > y);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    int c = str_cmp(x->name, y->name);
    return c ? c : (x < y ? -1 : x > y);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int has_nul(gguf_str s) { return s.len && memchr(s.ptr, 0, (size_t)s.len) != NULL; }

/* Keys and tensor names are UTF-8 (the GGUF specification's strings); they end up in messages and
 * lookups, which promise UTF-8 text. 1 if s is well-formed (no overlong forms, no surrogates). */
static int is_utf8(gguf_str s)
{
    const unsigned char *u = (const unsigned char *)s.ptr;
    for (uint64_t i = 0; i < s.len;) {
        unsigned c = u[i];
        uint64_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
        else return 0;
        if (len > s.len - i) return 0;
        for (uint64_t k = 1; k < len; k++) {
            if ((u[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (u[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* Printable form of a file string for messages: at most 64 bytes, non-printables as '?'. */
typedef struct { char s[68]; } shown;
static shown show(gguf_str str)
{
    shown out;
    size_t n = str.len > 64 ? 64 : (size_t)str.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str.ptr[i];
        out.s[i] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (str.len > 64) { out.s[n++] = '.'; out.s[n++] = '.'; out.s[n++] = '.'; }
    out.s[n] = 0;
    return out;
}

/* ------------------------------------------------------------------------------------------------
 * Parsing
 * ---------------------------------------------------------------------------------------------- */
static tfm_status parse_header(reader *r, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv)
{
    if (r->size < 4)
        return tfm_error(TFM_E_FORMAT, "%s: not a GGUF file: %" PRIu64 " bytes, too short for the magic",
                         r->label, r->size);
    if (memcmp(r->base, "GGUF", 4) != 0) {
        const uint8_t *m = r->base;
        return tfm_error(TFM_E_FORMAT,
                         "%s: not a GGUF file: magic at offset 0 is %02x %02x %02x %02x, expected \"GGUF\""
                         " (47 47 55 46)",
                         r->label, m[0], m[1], m[2], m[3]);
    }
    r->pos = 4;
    uint32_t version;
    tfm_status st = rd_u32(r, &version, "header version");
    if (st) return st;
    if (version == 1)
        return tfm_error(TFM_E_UNSUPPORTED,
                         "%s: GGUF version 1 (32-bit counts, 2023 pre-release) is not supported; expected 2 or 3",
                         r->label);
    if (version != 2 && version != 3) {
        if ((version & 0x00ffffffu) == 0 && (version >> 24) >= 1 && (version >> 24) <= 3)
            return tfm_error(TFM_E_UNSUPPORTED,
                             "%s: GGUF version field at offset 4 is byte-swapped (big-endian file); "
                             "only little-endian GGUF is supported",
                             r->label);
        return tfm_error(TFM_E_UNSUPPORTED, "%s: GGUF version %" PRIu32 " at offset 4 is not supported; expected 2 or 3",
                         r->label, version);
    }
    f->version = version;
    st = rd_u64(r, n_tensors, "header n_tensors");
    if (!st) st = rd_u64(r, n_kv, "header n_kv");
    if (st) return st;

    uint64_t rem = remaining(r);
    if (*n_kv > rem / GGUF_MIN_KV_BYTES)
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF header n_kv = %" PRIu64 " at offset 16 is impossible: %" PRIu64
                         " bytes follow the header and each key/value needs at least %u",
                         r->label, *n_kv, rem, GGUF_MIN_KV_BYTES);
    if (*n_tensors > rem / GGUF_MIN_TENSOR_BYTES)
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF header n_tensors = %" PRIu64 " at offset 8 is impossible: %" PRIu64
                         " bytes follow the header and each tensor info needs at least %u",
                         r->label, *n_tensors, rem, GGUF_MIN_TENSOR_BYTES);
    if (*n_kv * GGUF_MIN_KV_BYTES + *n_tensors * GGUF_MIN_TENSOR_BYTES > rem)
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF header counts n_kv = %" PRIu64 " and n_tensors = %" PRIu64
                         " cannot fit in the %" PRIu64 " bytes that follow the header",
                         r->label, *n_kv, *n_tensors, rem);
    return TFM_OK;
}

static tfm_status parse_kv(reader *r, gguf_kv *kv, uint64_t i)
{
    char what[128];
    uint64_t at = r->pos;
    snprintf(what, sizeof(what), "kv %" PRIu64 " key", i);
    tfm_status st = rd_str(r, &kv->key, GGUF_MAX_KEY_LEN, what);
    if (st) return st;
    if (kv->key.len == 0 || has_nul(kv->key))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF kv %" PRIu64 " key at offset %" PRIu64
                         " %s, expected a non-empty name without NUL bytes",
                         r->label, i, at, kv->key.len ? "contains a NUL byte" : "is empty");
    shown key = show(kv->key);
    if (!is_utf8(kv->key))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF kv %" PRIu64 " key at offset %" PRIu64 " ('%s') is not valid UTF-8",
                         r->label, i, at, key.s);

    uint64_t type_at = r->pos;
    uint32_t type;
    snprintf(what, sizeof(what), "kv %" PRIu64 " ('%.40s') value type", i, key.s);
    st = rd_u32(r, &type, what);
    if (st) return st;
    if (type > GGUF_TYPE_FLOAT64)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF kv %" PRIu64 " ('%s') value type at offset %" PRIu64
                         " is %" PRIu32 ", expected 0..12",
                         r->label, i, key.s, type_at, type);
    kv->type = (gguf_type)type;
    snprintf(what, sizeof(what), "kv %" PRIu64 " ('%.40s') value", i, key.s);

    if (type == GGUF_TYPE_STRING) {
        gguf_str s;
        kv->value = r->base + r->pos;
        return rd_str(r, &s, UINT64_MAX, what);
    }
    if (type != GGUF_TYPE_ARRAY) {
        st = need(r, scalar_size(type), what);
        if (st) return st;
        kv->value = r->base + r->pos;
        r->pos += scalar_size(type);
        return TFM_OK;
    }

    /* array */
    uint32_t et;
    uint64_t n;
    uint64_t et_at = r->pos;
    st = rd_u32(r, &et, what);
    if (!st) st = rd_u64(r, &n, what);
    if (st) return st;
    if (et > GGUF_TYPE_FLOAT64)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF kv %" PRIu64 " ('%s') array element type at offset %" PRIu64
                         " is %" PRIu32 ", expected 0..12",
                         r->label, i, key.s, et_at, et);
    kv->array_type = (gguf_type)et;
    kv->array_len = n;
    kv->value = r->base + r->pos;

    if (et != GGUF_TYPE_STRING)
        return skip_elements(r, et, n, 1, what);

    /* string arrays are indexed once so consumers (the tokenizer) need no re-parsing */
    if (n > remaining(r) / 8)
        return tfm_error(TFM_E_FORMAT,
                         "%s: GGUF kv %" PRIu64 " ('%s') at offset %" PRIu64 ": %" PRIu64
                         " strings cannot fit in the %" PRIu64 " bytes that remain",
                         r->label, i, key.s, et_at, n, remaining(r));
    kv->strings = calloc(n ? (size_t)n : 1, sizeof(gguf_str));
    if (!kv->strings)
        return tfm_error(TFM_E_OOM, "%s: GGUF kv '%s': cannot allocate an index of %" PRIu64 " strings",
                         r->label, key.s, n);
    for (uint64_t j = 0; j < n; j++) {
        st = rd_str(r, &kv->strings[j], UINT64_MAX, what);
        if (st) return st;
    }
    return TFM_OK;
}

static tfm_status parse_tensor_info(reader *r, gguf_tensor *t, uint64_t i)
{
    char what[160];
    uint64_t at = r->pos;
    snprintf(what, sizeof(what), "tensor %" PRIu64 " name", i);
    tfm_status st = rd_str(r, &t->name, GGUF_MAX_NAME_LEN, what);
    if (st) return st;
    if (t->name.len == 0 || has_nul(t->name))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " name at offset %" PRIu64
                         " %s, expected a non-empty name without NUL bytes",
                         r->label, i, at, t->name.len ? "contains a NUL byte" : "is empty");
    shown name = show(t->name);
    if (!is_utf8(t->name))
        return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " name at offset %" PRIu64 " ('%s') is not valid UTF-8",
                         r->label, i, at, name.s);

    uint64_t dims_at = r->pos;
    snprintf(what, sizeof(what), "tensor %" PRIu64 " ('%s') n_dims", i, name.s);
    st = rd_u32(r, &t->n_dims, what);
    if (st) return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s') n_dims at offset %" PRIu64
                         " is %" PRIu32 ", expected 1..4",
                         r->label, i, name.s, dims_at, t->n_dims);

    uint64_t n_elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne_at = r->pos, ne;
        snprintf(what, sizeof(what), "tensor %" PRIu64 " ('%s') ne[%" PRIu32 "]", i, name.s, d);
        st = rd_u64(r, &ne, what);
        if (st) return st;
        if (ne == 0 || ne > (uint64_t)INT64_MAX)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s') ne[%" PRIu32 "] at offset %" PRIu64
                             " is %" PRIu64 ", expected 1..2^63-1",
                             r->label, i, name.s, d, ne_at, ne);
        if (n_elems > (uint64_t)INT64_MAX / ne)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s') dimensions overflow: "
                             "the product of ne[0..%" PRIu32 "] (ne[%" PRIu32 "] = %" PRIu64
                             " at offset %" PRIu64 ") exceeds 2^63-1 elements",
                             r->label, i, name.s, d, d, ne, ne_at);
        n_elems *= ne;
        t->ne[d] = (int64_t)ne;
    }

    uint64_t type_at = r->pos;
    snprintf(what, sizeof(what), "tensor %" PRIu64 " ('%s') type", i, name.s);
    st = rd_u32(r, &t->ggml_type, what);
    if (!st) {
        snprintf(what, sizeof(what), "tensor %" PRIu64 " ('%s') offset", i, name.s);
        st = rd_u64(r, &t->offset, what);
    }
    if (st) return st;

    t->supported = ggml_to_dtype(t->ggml_type, &t->dtype);
    if (!t->supported)
        t->dtype = TFM_DTYPE_F32; /* meaningless; callers check `supported` */

    const ggml_type_traits *tr = t->ggml_type < N_GGML_TYPES ? &k_ggml_types[t->ggml_type] : NULL;
    if (tr && tr->block_bytes) {
        if ((uint64_t)t->ne[0] % tr->block_elems != 0)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s') type %s at offset %" PRIu64
                             ": ne[0] = %" PRId64 " is not a multiple of the block size %" PRIu32,
                             r->label, i, name.s, tr->name, type_at, t->ne[0], tr->block_elems);
        uint64_t blocks = n_elems / tr->block_elems;
        if (blocks > UINT64_MAX / tr->block_bytes)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s'): size in bytes overflows 64 bits",
                             r->label, i, name.s);
        t->nbytes = blocks * tr->block_bytes;
    } else {
        /* A type whose layout libtfm does not know: kept (so the file can still be inspected and
         * the model reader can name it), but its data cannot be located or used. */
        t->supported = 0;
        t->nbytes = 0;
    }
    return TFM_OK;
}

/* Checks general.alignment (uint32, a power of two) and stores it. */
static tfm_status read_alignment(const gguf_file_impl *impl, const reader *r)
{
    gguf_file *f = (gguf_file *)&impl->pub;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(f, "general.alignment");
    if (!kv)
        return TFM_OK;
    uint64_t at = (uint64_t)((const uint8_t *)kv->key.ptr - r->base);
    if (kv->type != GGUF_TYPE_UINT32)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key 'general.alignment' (key at offset %" PRIu64
                         ") has type %s, expected uint32",
                         r->label, at, type_label(kv->type));
    uint32_t a = ld32(kv->value);
    if (a == 0 || (a & (a - 1)) != 0)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF key 'general.alignment' (key at offset %" PRIu64
                         ") is %" PRIu32 ", expected a power of two",
                         r->label, at, a);
    f->alignment = a;
    return TFM_OK;
}

/* Places every tensor in the data section: aligned, inside the file, not overlapping another. */
static tfm_status locate_tensors(gguf_file_impl *impl, const reader *r)
{
    gguf_file *f = &impl->pub;
    uint64_t end_of_infos = r->pos;
    uint64_t pad = (f->alignment - end_of_infos % f->alignment) % f->alignment;
    f->data_offset = end_of_infos + pad;
    if (f->n_tensors == 0)
        return TFM_OK; /* a vocabulary-only file may end right after its metadata */
    if (f->data_offset > r->size)
        return tfm_error(TFM_E_FORMAT, "%s: GGUF truncated: the data section should start at offset %" PRIu64
                         " (tensor infos end at %" PRIu64 ", aligned to %" PRIu64 ") but the file has %" PRIu64 " bytes",
                         r->label, f->data_offset, end_of_infos, f->alignment, r->size);
    uint64_t data_size = r->size - f->data_offset;

    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        shown name = show(t->name);
        if (t->offset % f->alignment != 0)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s') offset %" PRIu64
                             " is not a multiple of the alignment %" PRIu64,
                             r->label, i, name.s, t->offset, f->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF tensor %" PRIu64 " ('%s') data lies outside the file: "
                             "offset %" PRIu64 " + %" PRIu64 " bytes, but the data section (from file offset %"
                             PRIu64 ") holds %" PRIu64 " bytes",
                             r->label, i, name.s, t->offset, t->nbytes, f->data_offset, data_size);
        t->data = r->base + f->data_offset + t->offset;
    }

    /* Overlap: sort by offset, each tensor must end before the next begins. */
    const gguf_tensor **by_off = malloc((size_t)f->n_tensors * sizeof(*by_off));
    if (!by_off)
        return tfm_error(TFM_E_OOM, "%s: GGUF: cannot allocate %" PRIu64 " tensor entries", r->label, f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        by_off[i] = &f->tensors[i];
    qsort(by_off, (size_t)f->n_tensors, sizeof(*by_off), cmp_tensor_offset);
    tfm_status st = TFM_OK;
    const gguf_tensor *prev = NULL;
    for (uint64_t i = 0; i < f->n_tensors && !st; i++) {
        const gguf_tensor *t = by_off[i];
        if (t->nbytes == 0)
            continue;
        if (prev && prev->offset + prev->nbytes > t->offset) {
            shown a = show(prev->name), b = show(t->name);
            st = tfm_error(TFM_E_FORMAT, "%s: GGUF tensors overlap: '%s' (tensor %td) occupies data bytes %" PRIu64
                           "..%" PRIu64 " and '%s' (tensor %td) starts at %" PRIu64,
                           r->label, a.s, prev - f->tensors, prev->offset, prev->offset + prev->nbytes, b.s,
                           t - f->tensors, t->offset);
        }
        prev = t;
    }
    free(by_off);
    return st;
}

static tfm_status build_indexes(gguf_file_impl *impl, const reader *r)
{
    gguf_file *f = &impl->pub;
    impl->kv_by_key = malloc((f->n_kv ? (size_t)f->n_kv : 1) * sizeof(*impl->kv_by_key));
    impl->tensor_by_name = malloc((f->n_tensors ? (size_t)f->n_tensors : 1) * sizeof(*impl->tensor_by_name));
    if (!impl->kv_by_key || !impl->tensor_by_name)
        return tfm_error(TFM_E_OOM, "%s: GGUF: cannot allocate lookup tables", r->label);
    for (uint64_t i = 0; i < f->n_kv; i++)
        impl->kv_by_key[i] = &f->kv[i];
    for (uint64_t i = 0; i < f->n_tensors; i++)
        impl->tensor_by_name[i] = &f->tensors[i];
    qsort(impl->kv_by_key, (size_t)f->n_kv, sizeof(*impl->kv_by_key), cmp_kv_key);
    qsort(impl->tensor_by_name, (size_t)f->n_tensors, sizeof(*impl->tensor_by_name), cmp_tensor_name);

    for (uint64_t i = 1; i < f->n_kv; i++) {
        const gguf_kv *a = impl->kv_by_key[i - 1], *b = impl->kv_by_key[i];
        if (str_cmp(a->key, b->key) == 0)
            return tfm_error(TFM_E_FORMAT, "%s: GGUF duplicate key '%s': kv %td (offset %td) and kv %td (offset %td)",
                             r->label, show(a->key).s, a - f->kv, (const uint8_t *)a->key.ptr - 8 - r->base,
                             b - f->kv, (const uint8_t *)b->key.ptr - 8 - r->base);
    }
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *a = impl->tensor_by_name[i - 1], *b = impl->tensor_by_name[i];
        if (str_cmp(a->name, b->name) == 0)
            return tfm_error(TFM_E_FORMAT,
                             "%s: GGUF duplicate tensor name '%s': tensor %td (offset %td) and tensor %td (offset %td)",
                             r->label, show(a->name).s, a - f->tensors, (const uint8_t *)a->name.ptr - 8 - r->base,
                             b - f->tensors, (const uint8_t *)b->name.ptr - 8 - r->base);
    }
    return TFM_OK;
}

tfm_status gguf_parse(const void *data, size_t size, const char *label, gguf_file **out)
{
    if (!out)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "gguf_parse: out is NULL");
    *out = NULL;
    if (!label)
        label = "<memory>";
    if (!data && size)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "%s: gguf_parse: data is NULL", label);

    reader r = {.base = data, .size = size, .pos = 0, .label = label};
    gguf_file_impl *impl = calloc(1, sizeof(*impl));
    if (!impl)
        return tfm_error(TFM_E_OOM, "%s: GGUF: out of memory", label);
    gguf_file *f = &impl->pub;
    f->base = data;
    f->size = size;

    uint64_t n_tensors = 0, n_kv = 0;
    tfm_status st = parse_header(&r, f, &n_tensors, &n_kv);
    if (st) goto fail;

    /* Counts are bounded by the file size above, so these allocations are too. */
    f->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof(gguf_kv));
    f->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof(gguf_tensor));
    if (!f->kv || !f->tensors) {
        st = tfm_error(TFM_E_OOM, "%s: GGUF: cannot allocate %" PRIu64 " keys and %" PRIu64 " tensors",
                       label, n_kv, n_tensors);
        goto fail;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = i + 1; /* so gguf_free releases string indexes of a partial parse */
        st = parse_kv(&r, &f->kv[i], i);
        if (st) goto fail;
    }
    f->n_kv = n_kv;
    for (uint64_t i = 0; i < n_tensors; i++) {
        st = parse_tensor_info(&r, &f->tensors[i], i);
        if (st) goto fail;
    }
    f->n_tensors = n_tensors;

    st = build_indexes(impl, &r);
    if (!st) st = read_alignment(impl, &r);
    if (!st) st = locate_tensors(impl, &r);
    if (st) goto fail;

    *out = f;
    return TFM_OK;

fail:
    gguf_free(f);
    return st;
}

void gguf_free(gguf_file *f)
{
    if (!f)
        return;
    gguf_file_impl *impl = (gguf_file_impl *)f; /* pub is the first member */
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            free(f->kv[i].strings);
    free(f->kv);
    free(f->tensors);
    free(impl->kv_by_key);
    free(impl->tensor_by_name);
    free(impl);
}

/* ------------------------------------------------------------------------------------------------
 * Lookups
 * ---------------------------------------------------------------------------------------------- */
const gguf_kv *gguf_find(const gguf_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    const gguf_file_impl *impl = (const gguf_file_impl *)f;
    if (!impl->kv_by_key)
        return NULL;
    gguf_str k = {key, strlen(key)};
    size_t lo = 0, hi = (size_t)f->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(impl->kv_by_key[mid]->key, k);
        if (c == 0) return impl->kv_by_key[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    const gguf_file_impl *impl = (const gguf_file_impl *)f;
    if (!impl->tensor_by_name)
        return NULL;
    gguf_str k = {name, strlen(name)};
    size_t lo = 0, hi = (size_t)f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(impl->tensor_by_name[mid]->name, k);
        if (c == 0) return impl->tensor_by_name[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* Reads one numeric element of type t at p. Returns 1 for integers (in *i), 2 for floats (in *d). */
static int load_number(gguf_type t, const uint8_t *p, int64_t *i, uint64_t *u, double *d)
{
    switch (t) {
    case GGUF_TYPE_UINT8: *u = p[0]; *i = (int64_t)*u; return 1;
    case GGUF_TYPE_INT8: *i = (int8_t)p[0]; *u = (uint64_t)*i; return 1;
    case GGUF_TYPE_UINT16: *u = ld16(p); *i = (int64_t)*u; return 1;
    case GGUF_TYPE_INT16: *i = (int16_t)ld16(p); *u = (uint64_t)*i; return 1;
    case GGUF_TYPE_UINT32: *u = ld32(p); *i = (int64_t)*u; return 1;
    case GGUF_TYPE_INT32: *i = (int32_t)ld32(p); *u = (uint64_t)*i; return 1;
    case GGUF_TYPE_UINT64: *u = ld64(p); *i = (int64_t)*u; return 3; /* 3: unsigned 64, may not fit */
    case GGUF_TYPE_INT64: *i = (int64_t)ld64(p); *u = (uint64_t)*i; return 1;
    case GGUF_TYPE_FLOAT32: { uint32_t b = ld32(p); float v; memcpy(&v, &b, 4); *d = v; return 2; }
    case GGUF_TYPE_FLOAT64: { uint64_t b = ld64(p); memcpy(d, &b, 8); return 2; }
    default: return 0;
    }
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type == GGUF_TYPE_ARRAY)
        return 0;
    int64_t i = 0; uint64_t u = 0; double d = 0;
    int kind = load_number(kv->type, kv->value, &i, &u, &d);
    if (kind == 3 && u > (uint64_t)INT64_MAX)
        return 0;
    if (kind != 1 && kind != 3)
        return 0;
    if (out) *out = i;
    return 1;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64))
        return 0;
    int64_t i; uint64_t u; double d = 0;
    load_number(kv->type, kv->value, &i, &u, &d);
    if (out) *out = d;
    return 1;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL)
        return 0;
    if (out) *out = kv->value[0] != 0;
    return 1;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_TYPE_STRING)
        return 0;
    if (out) {
        out->len = ld64(kv->value);
        out->ptr = (const char *)kv->value + 8;
    }
    return 1;
}

double gguf_array_float(const gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->array_len)
        return 0;
    uint32_t sz = kv->array_type == GGUF_TYPE_BOOL ? 0 : scalar_size(kv->array_type);
    if (!sz)
        return 0;
    int64_t iv = 0; uint64_t u = 0; double d = 0;
    int kind = load_number(kv->array_type, kv->value + i * sz, &iv, &u, &d);
    return kind == 2 ? d : kind == 3 ? (double)u : (double)iv;
}

int64_t gguf_array_int(const gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->array_len)
        return 0;
    uint32_t sz = kv->array_type == GGUF_TYPE_BOOL ? 0 : scalar_size(kv->array_type);
    if (!sz)
        return 0;
    int64_t iv = 0; uint64_t u = 0; double d = 0;
    int kind = load_number(kv->array_type, kv->value + i * sz, &iv, &u, &d);
    if (kind == 2)
        return (d >= -9.2e18 && d <= 9.2e18) ? (int64_t)d : 0;
    return iv;
}
