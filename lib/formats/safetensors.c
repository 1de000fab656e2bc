/* safetensors.c — parses and checks a .safetensors header over a mapped file (see safetensors.h). */
#include "formats/safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const struct {
    const char *name;
    size_t size;
} dtype_sizes[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
};

size_t safetensors_dtype_size(const char *dtype_name) {
    for (size_t i = 0; i < sizeof dtype_sizes / sizeof dtype_sizes[0]; i++)
        if (strcmp(dtype_sizes[i].name, dtype_name) == 0) return dtype_sizes[i].size;
    return 0;
}

static int supported_dtype(const char *dtype_name, tfm_dtype *out) {
    if (strcmp(dtype_name, "F32") == 0) *out = TFM_DTYPE_F32;
    else if (strcmp(dtype_name, "F16") == 0) *out = TFM_DTYPE_F16;
    else if (strcmp(dtype_name, "BF16") == 0) *out = TFM_DTYPE_BF16;
    else return 0;
    return 1;
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static int json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0.0) || v > 9007199254740992.0 || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const safetensors_tensor *)a)->name, ((const safetensors_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
    const safetensors_tensor *x = *(const safetensors_tensor *const *)a;
    const safetensors_tensor *y = *(const safetensors_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    /* Empty tensors first, so that a zero-length range never hides an overlap. */
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Reads one entry of the header into *t (name already set). */
static tfm_status parse_entry(const cJSON *entry, const char *label, uint64_t data_size,
                              safetensors_tensor *t) {
    const char *name = t->name;
    if (!cJSON_IsObject(entry))
        return tfm_error(TFM_E_FORMAT, "%s: header entry '%s' is not an object", label, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return tfm_error(TFM_E_FORMAT,
                         "%s: tensor '%s' needs a string \"dtype\", an array \"shape\" and an array "
                         "\"data_offsets\"", label, name);
    if (strlen(dtype->valuestring) >= sizeof t->dtype_name)
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' has an unknown dtype '%.32s'", label, name,
                         dtype->valuestring);
    strcpy(t->dtype_name, dtype->valuestring);
    t->supported = supported_dtype(t->dtype_name, &t->dtype);

    int n_dims = cJSON_GetArraySize(shape);
    if (n_dims > SAFETENSORS_MAX_DIMS)
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", label, name,
                         n_dims, SAFETENSORS_MAX_DIMS);
    t->n_dims = n_dims;
    uint64_t n_elements = 1;
    int overflow = 0;
    for (int d = 0; d < n_dims; d++) {
        uint64_t dim;
        if (!json_to_u64(cJSON_GetArrayItem(shape, d), &dim) || dim > INT64_MAX)
            return tfm_error(TFM_E_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                             label, name, d);
        t->shape[d] = (int64_t)dim;
        overflow |= __builtin_mul_overflow(n_elements, dim, &n_elements);
    }
    if (overflow)
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s': the element count overflows 64 bits", label,
                         name);
    t->n_elements = n_elements;

    uint64_t begin, end;
    if (cJSON_GetArraySize(offs) != 2 || !json_to_u64(cJSON_GetArrayItem(offs, 0), &begin) ||
        !json_to_u64(cJSON_GetArrayItem(offs, 1), &end))
        return tfm_error(TFM_E_FORMAT,
                         "%s: tensor '%s': data_offsets must be two non-negative integers [begin, end]",
                         label, name);
    if (end < begin)
        return tfm_error(TFM_E_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                         label, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return tfm_error(TFM_E_FORMAT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] reach beyond the data buffer "
                         "(%llu bytes; the file is truncated or the offsets are wrong)",
                         label, name, (unsigned long long)begin, (unsigned long long)end,
                         (unsigned long long)data_size);
    t->nbytes = end - begin;
    t->offset = begin; /* relative for now; made absolute by the caller */

    size_t esize = safetensors_dtype_size(t->dtype_name);
    uint64_t expected;
    if (esize != 0 && (__builtin_mul_overflow(n_elements, (uint64_t)esize, &expected) ||
                       expected != t->nbytes))
        return tfm_error(TFM_E_FORMAT,
                         "%s: tensor '%s': %llu bytes in data_offsets, but dtype %s and its shape "
                         "need %llu elements x %zu bytes",
                         label, name, (unsigned long long)t->nbytes, t->dtype_name,
                         (unsigned long long)n_elements, esize);
    return TFM_OK;
}

/* The format forbids overlapping ranges and holes in the data buffer (no hidden payloads). */
static tfm_status check_layout(safetensors_file *f, const char *label, uint64_t data_size) {
    if (f->n_tensors == 0) {
        if (data_size != 0)
            return tfm_error(TFM_E_FORMAT, "%s: no tensors, but %llu bytes of data follow the header",
                             label, (unsigned long long)data_size);
        return TFM_OK;
    }
    safetensors_tensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order) return tfm_error(TFM_E_OOM, "%s: out of memory sorting %zu tensors", label, f->n_tensors);
    for (size_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, by_offset);

    tfm_status st = TFM_OK;
    uint64_t expected_begin = 0;
    const char *previous = NULL;
    for (size_t i = 0; i < f->n_tensors && st == TFM_OK; i++) {
        const safetensors_tensor *t = order[i];
        uint64_t begin = t->offset - f->data_start;
        if (begin < expected_begin)
            st = tfm_error(TFM_E_FORMAT,
                           "%s: tensor '%s' (bytes %llu..%llu of the data) overlaps tensor '%s' "
                           "(which ends at %llu)",
                           label, t->name, (unsigned long long)begin,
                           (unsigned long long)(begin + t->nbytes), previous,
                           (unsigned long long)expected_begin);
        else if (begin > expected_begin)
            st = tfm_error(TFM_E_FORMAT,
                           "%s: a hole of %llu bytes in the data before tensor '%s' (at %llu)",
                           label, (unsigned long long)(begin - expected_begin), t->name,
                           (unsigned long long)begin);
        expected_begin = begin + t->nbytes;
        previous = t->name;
    }
    if (st == TFM_OK && expected_begin != data_size)
        st = tfm_error(TFM_E_FORMAT,
                       "%s: the tensors end at byte %llu of the data, but the data buffer holds %llu "
                       "bytes",
                       label, (unsigned long long)expected_begin, (unsigned long long)data_size);
    free(order);
    return st;
}

static tfm_status parse_header(safetensors_file *f, const cJSON *root, const char *label) {
    uint64_t data_size = f->size - f->data_start;
    size_t n = 0, names_bytes = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e) && !cJSON_IsNull(e))
                return tfm_error(TFM_E_FORMAT, "%s: \"__metadata__\" must be an object", label);
            continue;
        }
        n++;
        names_bytes += strlen(e->string) + 1;
    }
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->names = malloc(names_bytes ? names_bytes : 1);
    if (!f->tensors || !f->names)
        return tfm_error(TFM_E_OOM, "%s: out of memory for %zu tensor entries", label, n);

    char *name_out = f->names;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        safetensors_tensor *t = &f->tensors[f->n_tensors++];
        size_t len = strlen(e->string) + 1;
        memcpy(name_out, e->string, len);
        t->name = name_out;
        name_out += len;
        tfm_status st = parse_entry(e, label, data_size, t);
        if (st != TFM_OK) return st;
        t->offset += f->data_start;
        t->data = f->base + t->offset;
    }

    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, by_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return tfm_error(TFM_E_FORMAT, "%s: tensor '%s' is listed twice in the header", label,
                             f->tensors[i].name);
    return check_layout(f, label, data_size);
}

tfm_status safetensors_parse(const void *data, size_t size, const char *label, safetensors_file **out) {
    *out = NULL;
    if (!label) label = "safetensors";
    if (size < 8)
        return tfm_error(TFM_E_FORMAT, "%s: %zu bytes is too short for a safetensors file (8-byte header "
                         "length first)", label, size);
    const uint8_t *base = data;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | base[i];
    if (header_len > size - 8)
        return tfm_error(TFM_E_FORMAT,
                         "%s: header length %llu reaches beyond the end of the file (%zu bytes); the "
                         "file is truncated or not safetensors",
                         label, (unsigned long long)header_len, size);
    if (header_len > SAFETENSORS_MAX_HEADER)
        return tfm_error(TFM_E_FORMAT, "%s: header length %llu exceeds the %u-byte limit", label,
                         (unsigned long long)header_len, SAFETENSORS_MAX_HEADER);
    if (header_len < 2 || base[8] != '{')
        return tfm_error(TFM_E_FORMAT, "%s: the header is not a JSON object (it must start with '{')",
                         label);

    /* cJSON gets a NUL-terminated copy: some cJSON versions read one byte past the given length
     * on malformed strings, and the mapping ends where the header may end. */
    char *json = malloc((size_t)header_len + 1);
    if (!json) return tfm_error(TFM_E_OOM, "%s: out of memory for a %llu-byte header", label,
                                (unsigned long long)header_len);
    memcpy(json, base + 8, (size_t)header_len);
    json[header_len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - json) : 0;
        free(json);
        return tfm_error(TFM_E_FORMAT, "%s: the JSON header does not parse (near byte %zu of the header)",
                         label, at);
    }
    /* Only spaces may pad the header after the object. */
    for (const char *p = end; p < json + header_len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            size_t at = (size_t)(p - json);
            free(json);
            cJSON_Delete(root);
            return tfm_error(TFM_E_FORMAT, "%s: unexpected bytes after the JSON header (at byte %zu)",
                             label, at);
        }
    free(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tfm_error(TFM_E_FORMAT, "%s: the header is not a JSON object", label);
    }

    safetensors_file *f = calloc(1, sizeof *f);
    if (!f) {
        cJSON_Delete(root);
        return tfm_error(TFM_E_OOM, "%s: out of memory", label);
    }
    f->base = base;
    f->size = size;
    f->data_start = 8 + header_len;
    tfm_status st = parse_header(f, root, label);
    cJSON_Delete(root);
    if (st != TFM_OK) {
        safetensors_free(f);
        return st;
    }
    *out = f;
    return TFM_OK;
}

void safetensors_free(safetensors_file *f) {
    if (!f) return;
    free(f->tensors);
    free(f->names);
    free(f);
}

const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name) {
    if (!f || !name) return NULL;
    safetensors_tensor key;
    memset(&key, 0, sizeof key);
    key.name = name;
    return bsearch(&key, f->tensors, f->n_tensors, sizeof *f->tensors, by_name);
}
