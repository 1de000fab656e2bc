/* gguf_build.c — see gguf_build.h. Aborts on the test's own mistakes (never on file content). */
#include "gguf_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "gguf_build: out of memory\n");
        exit(2);
    }
    return p;
}

void gb_init(gb_model *m)
{
    memset(m, 0, sizeof(*m));
    memcpy(m->magic, "GGUF", 4);
    m->version = 3;
    m->n_tensors = GB_NONE;
    m->n_kv = GB_NONE;
    m->alignment = 32;
}

void gb_free(gb_model *m)
{
    for (int i = 0; i < m->n_kv_used; i++)
        free(m->kv[i].val);
    m->n_kv_used = 0;
}

gb_kv *gb_kv_raw(gb_model *m, const char *key, uint32_t type, const void *val, size_t len)
{
    if (m->n_kv_used >= (int)(sizeof(m->kv) / sizeof(m->kv[0]))) {
        fprintf(stderr, "gguf_build: too many keys\n");
        exit(2);
    }
    gb_kv *kv = &m->kv[m->n_kv_used++];
    memset(kv, 0, sizeof(*kv));
    snprintf(kv->key, sizeof(kv->key), "%s", key);
    kv->key_len = GB_NONE;
    kv->type = type;
    kv->val = xmalloc(len);
    if (len)
        memcpy(kv->val, val, len);
    kv->val_len = len;
    return kv;
}

gb_kv *gb_kv_u32(gb_model *m, const char *key, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return gb_kv_raw(m, key, 4, b, 4);
}

gb_kv *gb_kv_f32(gb_model *m, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    return gb_kv_raw(m, key, 6, b, 4);
}

gb_kv *gb_kv_str(gb_model *m, const char *key, const char *s)
{
    uint64_t n = strlen(s);
    uint8_t *b = xmalloc(8 + n);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, s, n);
    gb_kv *kv = gb_kv_raw(m, key, 8, b, 8 + n);
    free(b);
    return kv;
}

gb_kv *gb_kv_find(gb_model *m, const char *key)
{
    for (int i = 0; i < m->n_kv_used; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            return &m->kv[i];
    return NULL;
}

void gb_kv_remove(gb_model *m, const char *key)
{
    gb_kv *kv = gb_kv_find(m, key);
    if (!kv)
        return;
    free(kv->val);
    int i = (int)(kv - m->kv);
    memmove(&m->kv[i], &m->kv[i + 1], (size_t)(m->n_kv_used - i - 1) * sizeof(gb_kv));
    m->n_kv_used--;
}

void gb_kv_set_u32(gb_model *m, const char *key, uint32_t v)
{
    gb_kv_remove(m, key);
    gb_kv_u32(m, key, v);
}

void gb_kv_set_str(gb_model *m, const char *key, const char *s)
{
    gb_kv_remove(m, key);
    gb_kv_str(m, key, s);
}

uint64_t gb_type_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne)
{
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims && d < 5; d++)
        n *= ne[d];
    switch (type) {
    case 0: return n * 4;                 /* f32 */
    case 1: case 30: return n * 2;        /* f16, bf16 */
    case 8: return n / 32 * 34;           /* q8_0 */
    case 2: return n / 32 * 18;           /* q4_0 */
    case 17: return n / 256 * 74;         /* iq2_xs */
    default: return 0;
    }
}

gb_tensor *gb_tensor_add(gb_model *m, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne)
{
    if (m->n_t >= (int)(sizeof(m->t) / sizeof(m->t[0]))) {
        fprintf(stderr, "gguf_build: too many tensors\n");
        exit(2);
    }
    gb_tensor *t = &m->t[m->n_t++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->name_len = GB_NONE;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims && d < 5; d++)
        t->ne[d] = ne[d];
    t->type = type;
    t->offset = GB_NONE;
    t->nbytes = GB_NONE;
    return t;
}

gb_tensor *gb_tensor_find(gb_model *m, const char *name)
{
    for (int i = 0; i < m->n_t; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return &m->t[i];
    return NULL;
}

void gb_tensor_remove(gb_model *m, const char *name)
{
    gb_tensor *t = gb_tensor_find(m, name);
    if (!t)
        return;
    int i = (int)(t - m->t);
    memmove(&m->t[i], &m->t[i + 1], (size_t)(m->n_t - i - 1) * sizeof(gb_tensor));
    m->n_t--;
}

/* ---- serialisation ---- */
typedef struct out {
    gb_file *f;
    size_t cap;
} out;

static void put(out *o, const void *p, size_t n)
{
    if (o->f->size + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->f->size + n)
            cap *= 2;
        uint8_t *grown = realloc(o->f->data, cap);
        if (!grown) {
            fprintf(stderr, "gguf_build: out of memory\n");
            exit(2);
        }
        o->f->data = grown;
        o->cap = cap;
    }
    memcpy(o->f->data + o->f->size, p, n);
    o->f->size += n;
}

static void put_u32(out *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(o, b, 4);
}

static void put_u64(out *o, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(o, b, 8);
}

static void mark(out *o)
{
    gb_file *f = o->f;
    if (f->n_marks < (int)(sizeof(f->marks) / sizeof(f->marks[0])))
        f->marks[f->n_marks++] = f->size;
}

static uint64_t tensor_bytes(const gb_tensor *t)
{
    return t->nbytes != GB_NONE ? t->nbytes : gb_type_nbytes(t->type, t->n_dims, t->ne);
}

gb_file gb_serialize(const gb_model *m)
{
    gb_file f;
    memset(&f, 0, sizeof(f));
    out o = {&f, 0};
    uint64_t align = m->alignment ? m->alignment : 32;

    put(&o, m->magic, 4); mark(&o);
    put_u32(&o, m->version); mark(&o);
    put_u64(&o, m->n_tensors != GB_NONE ? m->n_tensors : (uint64_t)m->n_t); mark(&o);
    put_u64(&o, m->n_kv != GB_NONE ? m->n_kv : (uint64_t)m->n_kv_used); mark(&o);

    for (int i = 0; i < m->n_kv_used; i++) {
        const gb_kv *kv = &m->kv[i];
        size_t klen = strlen(kv->key);
        put_u64(&o, kv->key_len != GB_NONE ? kv->key_len : klen); mark(&o);
        put(&o, kv->key, klen); mark(&o);
        put_u32(&o, kv->type); mark(&o);
        put(&o, kv->val, kv->val_len); mark(&o);
    }

    /* tensor offsets: given, or packed in order with each tensor aligned */
    uint64_t offsets[64], running = 0, data_size = 0;
    for (int i = 0; i < m->n_t; i++) {
        const gb_tensor *t = &m->t[i];
        offsets[i] = t->offset != GB_NONE ? t->offset : running;
        uint64_t n = tensor_bytes(t);
        if (t->offset == GB_NONE)
            running = offsets[i] + n + (align - n % align) % align;
        if (offsets[i] + n > data_size && offsets[i] < (1ull << 32))
            data_size = offsets[i] + n;
    }
    for (int i = 0; i < m->n_t; i++) {
        const gb_tensor *t = &m->t[i];
        size_t nlen = strlen(t->name);
        put_u64(&o, t->name_len != GB_NONE ? t->name_len : nlen); mark(&o);
        put(&o, t->name, nlen); mark(&o);
        put_u32(&o, t->n_dims); mark(&o);
        for (uint32_t d = 0; d < t->n_dims && d < 5; d++) {
            put_u64(&o, t->ne[d]); mark(&o);
        }
        put_u32(&o, t->type); mark(&o);
        put_u64(&o, offsets[i]); mark(&o);
    }

    if (m->n_t) {
        static const uint8_t zeros[256];
        size_t pad = (size_t)((align - f.size % align) % align);
        while (pad) {
            size_t n = pad < sizeof(zeros) ? pad : sizeof(zeros);
            put(&o, zeros, n);
            pad -= n;
        }
        mark(&o);
        size_t base = f.size;
        /* data section: zero, then each tensor's bytes (a pattern, or the given data) */
        uint8_t *z = calloc(data_size ? (size_t)data_size : 1, 1);
        if (!z) {
            fprintf(stderr, "gguf_build: out of memory\n");
            exit(2);
        }
        put(&o, z, (size_t)data_size);
        free(z);
        for (int i = 0; i < m->n_t; i++) {
            const gb_tensor *t = &m->t[i];
            uint64_t n = tensor_bytes(t);
            if (offsets[i] >= data_size || n > data_size - offsets[i])
                continue;
            uint8_t *dst = f.data + base + offsets[i];
            if (t->data) {
                memcpy(dst, t->data, (size_t)n);
            } else if (t->type == 0) {
                for (uint64_t k = 0; k < n / 4; k++) {
                    float v = 0.01f * (float)((k * 7 + (uint64_t)i) % 13) - 0.05f;
                    memcpy(dst + 4 * k, &v, 4);
                }
            } else {
                /* odd bytes (the high byte of f16/bf16 values) keep the top exponent bits clear, so the
                 * values are finite: the readers refuse weights holding NaN or infinity */
                for (uint64_t k = 0; k < n; k++)
                    dst[k] = (uint8_t)((k * 31 + (uint64_t)i) & (k & 1 ? 0x3Fu : 0xFFu));
            }
            f.marks[f.n_marks < 2047 ? f.n_marks++ : 2047] = (size_t)(base + offsets[i]);
        }
    }
    return f;
}

void gb_file_free(gb_file *f)
{
    free(f->data);
    memset(f, 0, sizeof(*f));
}

void gb_llama(gb_model *m, int n_embd, int n_layer, int n_head, int n_head_kv, int n_ff, int n_vocab,
              uint32_t mat_type, int tied)
{
    gb_init(m);
    gb_kv_str(m, "general.architecture", "llama");
    gb_kv_str(m, "general.name", "format-test");
    gb_kv_u32(m, "llama.context_length", 64);
    gb_kv_u32(m, "llama.embedding_length", (uint32_t)n_embd);
    gb_kv_u32(m, "llama.block_count", (uint32_t)n_layer);
    gb_kv_u32(m, "llama.feed_forward_length", (uint32_t)n_ff);
    gb_kv_u32(m, "llama.attention.head_count", (uint32_t)n_head);
    gb_kv_u32(m, "llama.attention.head_count_kv", (uint32_t)n_head_kv);
    gb_kv_u32(m, "llama.rope.dimension_count", (uint32_t)(n_embd / n_head));
    gb_kv_f32(m, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gb_kv_f32(m, "llama.rope.freq_base", 10000.0f);
    gb_kv_u32(m, "llama.vocab_size", (uint32_t)n_vocab);

    uint64_t d = (uint64_t)n_embd, hd = (uint64_t)(n_embd / n_head);
    uint64_t q = (uint64_t)n_head * hd, kv = (uint64_t)n_head_kv * hd, ff = (uint64_t)n_ff;
    uint64_t ne[2];
    ne[0] = d; ne[1] = (uint64_t)n_vocab;
    gb_tensor_add(m, "token_embd.weight", mat_type, 2, ne);
    ne[0] = d;
    gb_tensor_add(m, "output_norm.weight", 0, 1, ne);
    if (!tied) {
        ne[0] = d; ne[1] = (uint64_t)n_vocab;
        gb_tensor_add(m, "output.weight", mat_type, 2, ne);
    }
    for (int l = 0; l < n_layer; l++) {
        char name[96];
        struct { const char *s; uint64_t rows, cols; } spec[] = {
            {"attn_norm", 0, d}, {"attn_q", q, d}, {"attn_k", kv, d}, {"attn_v", kv, d}, {"attn_output", d, q},
            {"ffn_norm", 0, d}, {"ffn_gate", ff, d}, {"ffn_up", ff, d}, {"ffn_down", d, ff}};
        for (size_t r = 0; r < sizeof(spec) / sizeof(spec[0]); r++) {
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, spec[r].s);
            ne[0] = spec[r].cols;
            ne[1] = spec[r].rows;
            gb_tensor_add(m, name, spec[r].rows ? mat_type : 0, spec[r].rows ? 2 : 1, ne);
        }
    }
}
