/*
 * test_format.c — malformed and edge-case GGUF files, built in memory, each checked for the expected
 * status and a message that names the problem. Every file is handed to the parser in a buffer of its
 * exact size, so under AddressSanitizer any read past the end is caught.
 *
 * Suites: the GGUF parser (gguf_parse), the llama model reader (tfm_gguf_model_source), file mapping
 * (tfm_map_file), and the public loader (tfm_model_load / tfm_model_load_from_memory).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/gguf.h"
#include "gguf_build.h"
#include "model.h"
#include "tfm/tfm.h"
#include "util/mapped_file.h"

static int n_pass, n_fail;

static const char *status_name(tfm_status s)
{
    static const char *names[] = {"OK", "E_INVALID_ARGUMENT", "E_IO", "E_FORMAT", "E_UNSUPPORTED", "E_OOM",
                                  "E_CONTEXT_FULL", "E_BACKEND", "E_ABORTED", "E_STATE", "E_BUFFER_TOO_SMALL",
                                  "E_INTERNAL"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* Records one case: the status must match and, on failure, the message must contain each needle. */
static void verdict(const char *name, tfm_status got, tfm_status want, const char *n1, const char *n2)
{
    const char *msg = tfm_last_error();
    int ok = got == want;
    if (ok && want != TFM_OK) {
        ok = msg && *msg;
        if (ok && n1) ok = strstr(msg, n1) != NULL;
        if (ok && n2) ok = strstr(msg, n2) != NULL;
    }
    if (ok) {
        n_pass++;
        if (getenv("TFM_TEST_VERBOSE"))
            printf("ok   %-44s %s: %s\n", name, status_name(got), got ? msg : "");
    } else {
        n_fail++;
        printf("FAIL %-44s got %s, want %s (needles '%s' '%s')\n     message: %s\n", name, status_name(got),
               status_name(want), n1 ? n1 : "", n2 ? n2 : "", msg ? msg : "(null)");
    }
}

static void check_true(const char *name, int cond)
{
    if (cond) {
        n_pass++;
    } else {
        n_fail++;
        printf("FAIL %s\n", name);
    }
}

/* A copy of exactly `size` bytes, so reading one byte past the end is an ASan error. */
static void *exact_copy(const void *p, size_t size)
{
    void *c = malloc(size ? size : 1);
    if (!c) exit(2);
    if (size) memcpy(c, p, size);
    return c;
}

static tfm_status parse_bytes(const void *data, size_t size, gguf_file **out)
{
    void *copy = exact_copy(data, size);
    tfm_status st = gguf_parse(copy, size, "case.gguf", out);
    if (!st) {
        /* exercise every lookup on the parsed result, then release it */
        for (uint64_t i = 0; i < (*out)->n_tensors; i++) {
            char name[128];
            const gguf_tensor *t = &(*out)->tensors[i];
            snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
            if (gguf_find_tensor(*out, name) != t) {
                printf("FAIL lookup of tensor '%s'\n", name);
                n_fail++;
            }
        }
        gguf_free(*out);
        *out = NULL;
    }
    free(copy);
    return st;
}

static void expect_parse(const char *name, const gb_model *m, tfm_status want, const char *n1, const char *n2)
{
    gb_file f = gb_serialize(m);
    gguf_file *g = NULL;
    tfm_status st = parse_bytes(f.data, f.size, &g);
    verdict(name, st, want, n1, n2);
    gb_file_free(&f);
}

static tfm_status model_source(const gb_model *m, tfm_model_source *src, void **copy_out)
{
    gb_file f = gb_serialize(m);
    size_t size = f.size;
    void *copy = exact_copy(f.data, size);
    gb_file_free(&f);
    tfm_status st = tfm_gguf_model_source(copy, size, "case.gguf", src);
    *copy_out = copy;
    return st;
}

static void release_source(tfm_model_source *src)
{
    tfm_tokenizer_free(src->tokenizer);
    if (src->release)
        src->release(src->reader_state);
    memset(src, 0, sizeof(*src));
}

static void expect_model(const char *name, const gb_model *m, tfm_status want, const char *n1, const char *n2)
{
    tfm_model_source src;
    void *copy;
    tfm_status st = model_source(m, &src, &copy);
    verdict(name, st, want, n1, n2);
    if (!st)
        release_source(&src);
    free(copy);
}

/* The base file of most parser cases: a small llama with tied embeddings. */
static void base(gb_model *m) { gb_llama(m, 8, 1, 2, 1, 16, 6, 0, 1); }

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ================================================================================================
 * Parser: header
 * ============================================================================================== */
static void test_header(void)
{
    gb_model m;
    gguf_file *g;

    verdict("empty file", parse_bytes("", 0, &g), TFM_E_FORMAT, "case.gguf", "too short");
    verdict("3-byte file", parse_bytes("GGU", 3, &g), TFM_E_FORMAT, "too short", NULL);

    base(&m);
    memcpy(m.magic, "GGML", 4);
    expect_parse("wrong magic", &m, TFM_E_FORMAT, "magic", "GGUF");
    gb_free(&m);

    base(&m);
    m.version = 1;
    expect_parse("version 1", &m, TFM_E_UNSUPPORTED, "version 1", "expected 2 or 3");
    m.version = 99;
    expect_parse("version 99", &m, TFM_E_UNSUPPORTED, "version 99", NULL);
    m.version = 0;
    expect_parse("version 0", &m, TFM_E_UNSUPPORTED, "version 0", NULL);
    m.version = 0x03000000u;
    expect_parse("big-endian version", &m, TFM_E_UNSUPPORTED, "big-endian", NULL);
    m.version = 2;
    expect_parse("version 2 parses", &m, TFM_OK, NULL, NULL);
    m.version = 3;

    m.n_tensors = UINT64_MAX - 1;
    expect_parse("n_tensors = 2^64-2", &m, TFM_E_FORMAT, "n_tensors", "impossible");
    m.n_tensors = 1ull << 40;
    expect_parse("n_tensors = 2^40", &m, TFM_E_FORMAT, "n_tensors", "offset 8");
    m.n_tensors = GB_NONE;
    m.n_kv = 1ull << 63;
    expect_parse("n_kv = 2^63", &m, TFM_E_FORMAT, "n_kv", "offset 16");
    m.n_kv = (uint64_t)m.n_kv_used + 1;
    expect_parse("n_kv one more than present", &m, TFM_E_FORMAT, "case.gguf", NULL);
    m.n_kv = GB_NONE;
    m.n_tensors = (uint64_t)m.n_t + 1;
    expect_parse("n_tensors one more than present", &m, TFM_E_FORMAT, "tensor", NULL);
    gb_free(&m);

    /* a metadata-only file (a vocabulary) may end right after its last key, without padding */
    gb_init(&m);
    gb_kv_str(&m, "general.architecture", "llama");
    expect_parse("metadata only, no data section", &m, TFM_OK, NULL, NULL);
    gb_free(&m);
}

/* Truncation at every structure boundary of a valid file, and one byte before each. */
static void test_truncations(void)
{
    gb_model m;
    base(&m);
    gb_file f = gb_serialize(&m);
    int cases = 0, bad = 0;
    for (int i = 0; i < f.n_marks; i++) {
        for (int back = 0; back <= 1; back++) {
            size_t cut = f.marks[i] >= (size_t)back ? f.marks[i] - (size_t)back : 0;
            if (cut >= f.size)
                continue;
            gguf_file *g = NULL;
            tfm_status st = parse_bytes(f.data, cut, &g);
            cases++;
            const char *msg = tfm_last_error();
            if (st != TFM_E_FORMAT || !strstr(msg, "case.gguf")) {
                bad++;
                printf("FAIL truncation at %zu of %zu: %s, %s\n", cut, f.size, status_name(st), msg);
            }
        }
    }
    gb_file_free(&f);
    gb_free(&m);
    printf("     truncations: %d cut points\n", cases);
    n_pass += cases - bad;
    n_fail += bad;
}

/* ================================================================================================
 * Parser: keys and values
 * ============================================================================================== */
static void test_metadata(void)
{
    gb_model m;
    uint8_t buf[256];

    base(&m);
    gb_kv_str(&m, "x.huge_key", "v")->key_len = UINT64_MAX - 1;
    expect_parse("key length 2^64-2", &m, TFM_E_FORMAT, "kv 12 key", "length");
    gb_free(&m);

    base(&m);
    gb_kv_str(&m, "x.long_key", "v")->key_len = 70000;
    expect_parse("key length 70000", &m, TFM_E_FORMAT, "at most 65535", NULL);
    gb_free(&m);

    base(&m);
    gb_kv_u32(&m, "", 1);
    expect_parse("empty key", &m, TFM_E_FORMAT, "empty", "kv 12");
    gb_free(&m);

    {
        /* craft by hand: header + 1 kv whose key is "a\0b" */
        uint8_t f[64];
        size_t n = 0;
        memcpy(f, "GGUF", 4); n = 4;
        put_le(f + n, 3, 4); n += 4;
        put_le(f + n, 0, 8); n += 8;
        put_le(f + n, 1, 8); n += 8;
        put_le(f + n, 3, 8); n += 8;
        f[n++] = 'a'; f[n++] = 0; f[n++] = 'b';
        put_le(f + n, 4, 4); n += 4;
        put_le(f + n, 7, 4); n += 4;
        gguf_file *g;
        verdict("key with a NUL byte", parse_bytes(f, n, &g), TFM_E_FORMAT, "NUL", NULL);
    }

    base(&m);
    gb_kv_u32(&m, "x.bad_type", 1)->type = 13;
    expect_parse("value type 13", &m, TFM_E_FORMAT, "value type", "expected 0..12");
    gb_free(&m);

    base(&m);
    put_le(buf, UINT64_MAX - 3, 8);
    gb_kv_raw(&m, "x.string", 8, buf, 8);
    expect_parse("string length 2^64-4", &m, TFM_E_FORMAT, "x.string", "length");
    gb_free(&m);

    base(&m);
    put_le(buf, 100000, 8);
    memcpy(buf + 8, "short", 5);
    gb_kv_raw(&m, "x.string", 8, buf, 13);
    expect_parse("string longer than the file", &m, TFM_E_FORMAT, "x.string", "remain");
    gb_free(&m);

    base(&m);
    put_le(buf, 4, 4);
    put_le(buf + 4, 1ull << 62, 8);
    gb_kv_raw(&m, "x.array", 9, buf, 12);
    expect_parse("uint32 array of 2^62", &m, TFM_E_FORMAT, "x.array", "do not fit");
    gb_free(&m);

    base(&m);
    put_le(buf, 99, 4);
    put_le(buf + 4, 1, 8);
    gb_kv_raw(&m, "x.array", 9, buf, 12);
    expect_parse("array element type 99", &m, TFM_E_FORMAT, "element type", "99");
    gb_free(&m);

    base(&m);
    put_le(buf, 8, 4);
    put_le(buf + 4, 1ull << 61, 8);
    gb_kv_raw(&m, "x.strings", 9, buf, 12);
    expect_parse("string array of 2^61", &m, TFM_E_FORMAT, "x.strings", "strings cannot fit");
    gb_free(&m);

    base(&m);
    put_le(buf, 8, 4);
    put_le(buf + 4, 2, 8);
    put_le(buf + 12, 1, 8);
    buf[20] = 'a';
    put_le(buf + 21, 1ull << 40, 8);
    gb_kv_raw(&m, "x.strings", 9, buf, 29);
    expect_parse("second string of an array too long", &m, TFM_E_FORMAT, "x.strings", "length");
    gb_free(&m);

    /* arrays of arrays: [[1, 2], ["x"]] is valid and skipped; nesting 9 deep is refused */
    base(&m);
    {
        size_t n = 0;
        put_le(buf + n, 9, 4); n += 4;   /* array of arrays */
        put_le(buf + n, 2, 8); n += 8;
        put_le(buf + n, 5, 4); n += 4;   /* [int32 1, 2] */
        put_le(buf + n, 2, 8); n += 8;
        put_le(buf + n, 1, 4); n += 4;
        put_le(buf + n, 2, 4); n += 4;
        put_le(buf + n, 8, 4); n += 4;   /* ["x"] */
        put_le(buf + n, 1, 8); n += 8;
        put_le(buf + n, 1, 8); n += 8;
        buf[n++] = 'x';
        gb_kv_raw(&m, "x.nested", 9, buf, n);
        gb_file f = gb_serialize(&m);
        gguf_file *g = NULL;
        tfm_status st = gguf_parse(f.data, f.size, "case.gguf", &g);
        verdict("nested arrays parse", st, TFM_OK, NULL, NULL);
        if (!st) {
            const gguf_kv *kv = gguf_find(g, "x.nested");
            check_true("nested array is found with its element type",
                       kv && kv->type == GGUF_TYPE_ARRAY && kv->array_type == GGUF_TYPE_ARRAY && kv->array_len == 2 &&
                           kv->strings == NULL && gguf_array_float(kv, 0) == 0);
            /* the key after the nested array is read correctly */
            int64_t v = 0;
            check_true("keys before a nested array still read", gguf_get_int(g, "llama.block_count", &v) && v == 1);
            gguf_free(g);
        }
        gb_file_free(&f);
    }
    gb_free(&m);

    base(&m);
    {
        size_t n = 0;
        for (int d = 0; d < 9; d++) {
            put_le(buf + n, 9, 4); n += 4;
            put_le(buf + n, 1, 8); n += 8;
        }
        put_le(buf + n, 4, 4); n += 4;
        put_le(buf + n, 0, 8); n += 8;
        gb_kv_raw(&m, "x.deep", 9, buf, n);
        expect_parse("arrays nested 10 deep", &m, TFM_E_FORMAT, "nested deeper", NULL);
    }
    gb_free(&m);

    base(&m);
    {
        size_t n = 0;
        put_le(buf + n, 9, 4); n += 4;
        put_le(buf + n, 1, 8); n += 8;
        put_le(buf + n, 6, 4); n += 4;          /* inner: float32 x 2^60 */
        put_le(buf + n, 1ull << 60, 8); n += 8;
        gb_kv_raw(&m, "x.nested", 9, buf, n);
        expect_parse("nested array with an absurd count", &m, TFM_E_FORMAT, "x.nested", "do not fit");
    }
    gb_free(&m);

    base(&m);
    gb_kv_u32(&m, "llama.block_count", 1);
    expect_parse("duplicate key", &m, TFM_E_FORMAT, "duplicate key", "llama.block_count");
    gb_free(&m);
}

/* ================================================================================================
 * Parser: alignment
 * ============================================================================================== */
static void test_alignment(void)
{
    gb_model m;
    base(&m);
    gb_kv_u32(&m, "general.alignment", 0);
    expect_parse("alignment 0", &m, TFM_E_FORMAT, "general.alignment", "power of two");
    gb_kv_set_u32(&m, "general.alignment", 48);
    m.alignment = 48;
    expect_parse("alignment 48", &m, TFM_E_FORMAT, "general.alignment", "48");
    gb_kv_set_str(&m, "general.alignment", "64");
    m.alignment = 32;
    expect_parse("alignment as a string", &m, TFM_E_FORMAT, "general.alignment", "expected uint32");
    gb_kv_set_u32(&m, "general.alignment", 64);
    m.alignment = 64;
    {
        gb_file f = gb_serialize(&m);
        gguf_file *g = NULL;
        tfm_status st = gguf_parse(f.data, f.size, "case.gguf", &g);
        verdict("alignment 64 parses", st, TFM_OK, NULL, NULL);
        if (!st) {
            check_true("alignment 64: data section and tensors aligned",
                       g->alignment == 64 && g->data_offset % 64 == 0 && g->tensors[1].offset % 64 == 0);
            gguf_free(g);
        }
        gb_file_free(&f);
    }
    /* laid out for 64 but declared 32 is fine (offsets are multiples of 32 too); the reverse is not */
    gb_kv_set_u32(&m, "general.alignment", 128);
    expect_parse("offsets not multiples of a declared 128", &m, TFM_E_FORMAT, "alignment 128", NULL);
    gb_free(&m);
}

/* ================================================================================================
 * Parser: tensor infos and data
 * ============================================================================================== */
static void test_tensors(void)
{
    gb_model m;
    uint64_t ne[4];

    base(&m);
    m.t[0].name_len = 0;
    m.t[0].name[0] = 0;
    expect_parse("empty tensor name", &m, TFM_E_FORMAT, "tensor 0 name", "empty");
    gb_free(&m);

    base(&m);
    memset(m.t[0].name, 'a', 64);
    m.t[0].name[64] = 0;
    expect_parse("tensor name of 64 bytes", &m, TFM_E_FORMAT, "at most 63", NULL);
    gb_free(&m);

    base(&m);
    m.t[0].name_len = UINT64_MAX - 1;
    expect_parse("tensor name length 2^64-2", &m, TFM_E_FORMAT, "tensor 0 name", NULL);
    gb_free(&m);

    base(&m);
    m.t[1].n_dims = 0;
    expect_parse("n_dims 0", &m, TFM_E_FORMAT, "output_norm.weight", "n_dims");
    m.t[1].n_dims = 5;
    m.t[1].ne[1] = m.t[1].ne[2] = m.t[1].ne[3] = m.t[1].ne[4] = 1;
    expect_parse("n_dims 5", &m, TFM_E_FORMAT, "n_dims", "expected 1..4");
    m.t[1].n_dims = 1;
    gb_free(&m);

    base(&m);
    m.t[0].ne[1] = 0;
    expect_parse("dimension 0", &m, TFM_E_FORMAT, "token_embd.weight", "ne[1]");
    m.t[0].ne[1] = 1ull << 63;
    expect_parse("dimension 2^63", &m, TFM_E_FORMAT, "ne[1]", NULL);
    m.t[0].ne[0] = 1ull << 32;
    m.t[0].ne[1] = 1ull << 32;
    m.t[0].nbytes = 16;
    expect_parse("dimension product overflows", &m, TFM_E_FORMAT, "overflow", "token_embd.weight");
    m.t[0].ne[0] = 1ull << 31;
    m.t[0].ne[1] = 1ull << 31;
    expect_parse("byte size overflows", &m, TFM_E_FORMAT, "overflows 64 bits", NULL);
    m.t[0].ne[0] = 1ull << 20;
    m.t[0].ne[1] = 1ull << 20;
    expect_parse("huge tensor outside the file", &m, TFM_E_FORMAT, "outside the file", NULL);
    gb_free(&m);

    base(&m);
    ne[0] = 40;
    ne[1] = 2;
    gb_tensor_add(&m, "x.q8", 8, 2, ne)->nbytes = 80;
    expect_parse("q8_0 row not a whole block", &m, TFM_E_FORMAT, "block size 32", "x.q8");
    gb_free(&m);

    base(&m);
    m.t[2].offset = 4;
    expect_parse("misaligned offset", &m, TFM_E_FORMAT, "not a multiple of the alignment", NULL);
    m.t[2].offset = 1ull << 40;
    expect_parse("offset beyond the file", &m, TFM_E_FORMAT, "outside the file", NULL);
    m.t[2].offset = UINT64_MAX - 31;
    expect_parse("offset near 2^64", &m, TFM_E_FORMAT, "outside the file", NULL);
    gb_free(&m);

    base(&m);
    {
        gb_file f = gb_serialize(&m);
        gguf_file *g;
        verdict("last tensor one byte short", parse_bytes(f.data, f.size - 1, &g), TFM_E_FORMAT,
                "outside the file", "blk.0.ffn_down.weight");
        gb_file_free(&f);
    }
    gb_free(&m);

    base(&m);
    m.t[3].offset = 0;  /* same bytes as tensor 0 */
    expect_parse("two tensors at the same offset", &m, TFM_E_FORMAT, "overlap", NULL);
    gb_free(&m);

    base(&m);
    {
        /* token_embd is 6x8 f32 = 192 bytes at 0; put tensor 1 at 160, inside it */
        m.t[1].offset = 160;
        expect_parse("tensors partly overlapping", &m, TFM_E_FORMAT, "overlap", "token_embd.weight");
    }
    gb_free(&m);

    base(&m);
    snprintf(m.t[4].name, sizeof(m.t[4].name), "%s", m.t[3].name);
    expect_parse("duplicate tensor name", &m, TFM_E_FORMAT, "duplicate tensor name", "blk.0.attn_q.weight");
    gb_free(&m);

    base(&m);
    ne[0] = 256;
    gb_tensor_add(&m, "x.unknown", 1000, 1, ne);
    expect_parse("unknown ggml type parses", &m, TFM_OK, NULL, NULL);
    gb_free(&m);

    check_true("type names", strcmp(gguf_type_name(17), "iq2_xs") == 0 && strcmp(gguf_type_name(12), "q4_k") == 0 &&
                                 strcmp(gguf_type_name(1000), "type1000") == 0 &&
                                 strcmp(gguf_type_name(30), "bf16") == 0);
}

/* Typed getters and sizes on a valid file. */
static void test_getters(void)
{
    gb_model m;
    uint8_t buf[64];
    base(&m);
    gb_kv_raw(&m, "x.u64big", 10, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    gb_kv_raw(&m, "x.i8", 1, "\xfe", 1);
    gb_kv_raw(&m, "x.bool", 7, "\x01", 1);
    put_le(buf, 5, 4);
    put_le(buf + 4, 3, 8);
    put_le(buf + 12, 7, 4);
    put_le(buf + 16, (uint32_t)-2, 4);
    put_le(buf + 20, 9, 4);
    gb_kv_raw(&m, "x.ints", 9, buf, 24);
    uint64_t ne[2] = {512, 2};
    gb_tensor_add(&m, "x.iq2", 17, 2, ne);
    gb_file f = gb_serialize(&m);
    gguf_file *g = NULL;
    tfm_status st = gguf_parse(f.data, f.size, "case.gguf", &g);
    verdict("getters: file parses", st, TFM_OK, NULL, NULL);
    if (!st) {
        int64_t i = 0;
        double d = 0;
        int b = 0;
        gguf_str s;
        check_true("get_int of uint32", gguf_get_int(g, "llama.embedding_length", &i) && i == 8);
        check_true("get_int of int8 -2", gguf_get_int(g, "x.i8", &i) && i == -2);
        check_true("get_int refuses uint64 above 2^63", !gguf_get_int(g, "x.u64big", &i));
        check_true("get_int refuses a float", !gguf_get_int(g, "llama.rope.freq_base", &i));
        check_true("get_float of float32", gguf_get_float(g, "llama.rope.freq_base", &d) && d == 10000.0);
        check_true("get_bool", gguf_get_bool(g, "x.bool", &b) && b == 1);
        check_true("get_str", gguf_get_str(g, "general.architecture", &s) && s.len == 5 && !memcmp(s.ptr, "llama", 5));
        check_true("missing key", !gguf_find(g, "no.such.key") && !gguf_get_int(g, "no.such.key", &i));
        const gguf_kv *kv = gguf_find(g, "x.ints");
        check_true("array elements", kv && gguf_array_int(kv, 1) == -2 && gguf_array_float(kv, 2) == 9.0 &&
                                         gguf_array_int(kv, 3) == 0);
        const gguf_tensor *t = gguf_find_tensor(g, "x.iq2");
        check_true("iq2_xs sized but unsupported", t && !t->supported && t->nbytes == 2 * 2 * 74);
        t = gguf_find_tensor(g, "token_embd.weight");
        check_true("f32 tensor located", t && t->supported && t->dtype == TFM_DTYPE_F32 && t->nbytes == 6 * 8 * 4 &&
                                             (const uint8_t *)t->data == g->base + g->data_offset + t->offset);
        gguf_free(g);
    }
    gb_file_free(&f);
    gb_free(&m);
}

/* llama.cpp's rope_freqs.weight for Llama-3 scaling: the divisor of each inverse frequency. */
static void llama3_factors(float *out, int half, int head_dim, double theta, double factor, double low, double high,
                           double orig)
{
    for (int i = 0; i < half; i++) {
        double freq = pow(theta, -2.0 * i / head_dim), wavelen = 2 * M_PI / freq;
        if (wavelen < orig / high) out[i] = 1.0f;
        else if (wavelen > orig / low) out[i] = (float)factor;
        else {
            double sm = (orig / wavelen - low) / (high - low);
            out[i] = (float)(1.0 / ((1 - sm) / factor + sm));
        }
    }
}

/* The divisor of inverse frequency i that the hparams imply (HF's llama3 / linear rules). */
static double implied_divisor(const tfm_hparams *hp, int i)
{
    double freq = pow(hp->rope_theta, -2.0 * i / hp->head_dim);
    if (hp->rope_scaling == TFM_ROPE_SCALING_LINEAR)
        return hp->rope_factor;
    if (hp->rope_scaling != TFM_ROPE_SCALING_LLAMA3)
        return 1.0;
    double wavelen = 2 * M_PI / freq, orig = hp->rope_orig_ctx;
    double lo = hp->rope_low_freq_factor, hi = hp->rope_high_freq_factor;
    if (wavelen < orig / hi) return 1.0;
    if (wavelen > orig / lo) return hp->rope_factor;
    double sm = (orig / wavelen - lo) / (hi - lo);
    return 1.0 / ((1 - sm) / hp->rope_factor + sm);
}

/* A model carrying rope_freqs.weight: the parameters read back must reproduce every stored factor. */
static void rope_freqs_case(const char *name, int n_embd, int n_head, float theta, double factor, double low,
                            double high, double orig, int exact_params)
{
    gb_model m;
    tfm_model_source src;
    void *copy;
    int head_dim = n_embd / n_head, half = head_dim / 2;
    float factors[64];
    llama3_factors(factors, half, head_dim, theta, factor, low, high, orig);
    gb_llama(&m, n_embd, 1, n_head, n_head, 16, 6, 0, 1);
    gb_kv_remove(&m, "llama.rope.freq_base");
    gb_kv_f32(&m, "llama.rope.freq_base", theta);
    uint64_t ne[1] = {(uint64_t)half};
    gb_tensor_add(&m, "rope_freqs.weight", 0, 1, ne)->data = factors;
    tfm_status st = model_source(&m, &src, &copy);
    verdict(name, st, TFM_OK, NULL, NULL);
    if (!st) {
        double worst = 0;
        for (int i = 0; i < half; i++) {
            double d = fabs(implied_divisor(&src.hp, i) - factors[i]) / factors[i];
            if (d > worst) worst = d;
        }
        char what[160];
        snprintf(what, sizeof(what), "%s: every factor reproduced (worst relative error %.2g)", name, worst);
        check_true(what, worst < 1e-5);
        if (exact_params)
            check_true("llama3 parameters recovered exactly",
                       src.hp.rope_scaling == TFM_ROPE_SCALING_LLAMA3 && src.hp.rope_factor == (float)factor &&
                           src.hp.rope_low_freq_factor == (float)low && src.hp.rope_high_freq_factor == (float)high &&
                           src.hp.rope_orig_ctx == (int)orig);
        release_source(&src);
    }
    free(copy);
    gb_free(&m);
}

/* ================================================================================================
 * The llama model reader
 * ============================================================================================== */
static void test_model(void)
{
    gb_model m;
    tfm_model_source src;
    void *copy;

    /* a valid GQA model: every field as the file says */
    gb_llama(&m, 16, 2, 4, 2, 24, 10, 1, 0);
    tfm_status st = model_source(&m, &src, &copy);
    verdict("llama f16 GQA model", st, TFM_OK, NULL, NULL);
    if (!st) {
        const tfm_hparams *hp = &src.hp;
        check_true("hparams", hp->n_vocab == 10 && hp->n_embd == 16 && hp->n_layer == 2 && hp->n_head == 4 &&
                                  hp->n_head_kv == 2 && hp->head_dim == 4 && hp->n_ff == 24 && hp->n_ctx_train == 64 &&
                                  fabsf(hp->rms_eps - 1e-5f) < 1e-12f && hp->rope_theta == 10000.0f &&
                                  hp->rope_pairing == TFM_ROPE_ADJACENT && hp->rope_scaling == TFM_ROPE_SCALING_NONE);
        const tfm_host_tensor *wk = &src.layers[1 * TFM_L_COUNT + TFM_L_WK];
        check_true("attn_k rows/cols from ne", wk->rows == 8 && wk->cols == 16 && wk->dtype == TFM_DTYPE_F16 &&
                                                   wk->nbytes == 8 * 16 * 2 &&
                                                   strcmp(wk->name, "blk.1.attn_k.weight") == 0);
        check_true("norm is a vector", src.output_norm.rows == 1 && src.output_norm.cols == 16);
        check_true("untied output", src.output.data != NULL && src.output.rows == 10);
        check_true("name and format", strcmp(src.name, "format-test") == 0 && strcmp(src.format, "gguf") == 0 &&
                                          strcmp(src.architecture, "llama") == 0);
        release_source(&src);
    }
    free(copy);
    gb_free(&m);

    gb_llama(&m, 8, 1, 2, 2, 16, 6, 30, 1);
    gb_kv_remove(&m, "llama.attention.head_count_kv");
    st = model_source(&m, &src, &copy);
    verdict("tied bf16 model, default kv heads", st, TFM_OK, NULL, NULL);
    if (!st) {
        check_true("tied: no output tensor", src.output.data == NULL);
        check_true("head_count_kv defaults to head_count", src.hp.n_head_kv == 2);
        release_source(&src);
    }
    free(copy);
    gb_free(&m);

    base(&m);
    gb_kv_remove(&m, "general.architecture");
    expect_model("no architecture", &m, TFM_E_FORMAT, "general.architecture", "missing");
    gb_kv_set_str(&m, "general.architecture", "gpt2");
    expect_model("architecture gpt2", &m, TFM_E_UNSUPPORTED, "'gpt2'", "not supported");
    gb_kv_remove(&m, "general.architecture");
    gb_kv_u32(&m, "general.architecture", 7);
    expect_model("architecture as a number", &m, TFM_E_FORMAT, "general.architecture", "expected string");
    gb_free(&m);

    base(&m);
    gb_tensor_remove(&m, "blk.0.ffn_up.weight");
    expect_model("missing ffn_up", &m, TFM_E_FORMAT, "blk.0.ffn_up.weight", "missing");
    gb_free(&m);

    base(&m);
    gb_tensor_remove(&m, "token_embd.weight");
    expect_model("missing token_embd", &m, TFM_E_FORMAT, "token_embd.weight", "missing");
    gb_free(&m);

    base(&m);
    gb_tensor_find(&m, "blk.0.attn_q.weight")->ne[1] = 4;
    expect_model("attn_q with the wrong shape", &m, TFM_E_FORMAT, "blk.0.attn_q.weight", "expected [8, 8]");
    gb_free(&m);

    base(&m);
    gb_tensor_find(&m, "output_norm.weight")->n_dims = 2;
    gb_tensor_find(&m, "output_norm.weight")->ne[1] = 2;
    gb_tensor_find(&m, "output_norm.weight")->nbytes = 64;
    expect_model("norm given as a matrix", &m, TFM_E_FORMAT, "output_norm.weight", "ne =");
    gb_free(&m);

    base(&m);
    gb_kv_remove(&m, "llama.embedding_length");
    expect_model("missing embedding_length", &m, TFM_E_FORMAT, "llama.embedding_length", "missing");
    gb_free(&m);

    base(&m);
    gb_kv_remove(&m, "llama.context_length");
    gb_kv_str(&m, "llama.context_length", "4096");
    expect_model("context_length as a string", &m, TFM_E_FORMAT, "llama.context_length", "expected an integer");
    gb_free(&m);

    base(&m);
    gb_kv_remove(&m, "llama.attention.layer_norm_rms_epsilon");
    expect_model("missing rms epsilon", &m, TFM_E_FORMAT, "layer_norm_rms_epsilon", NULL);
    gb_free(&m);

    gb_llama(&m, 12, 1, 3, 3, 16, 6, 0, 1);
    gb_kv_set_u32(&m, "llama.attention.head_count_kv", 2);
    expect_model("kv heads do not divide heads", &m, TFM_E_FORMAT, "head_count_kv", NULL);
    gb_free(&m);

    base(&m);
    gb_kv_set_u32(&m, "llama.block_count", 1000000);
    expect_model("block_count 10^6", &m, TFM_E_FORMAT, "llama.block_count", NULL);
    gb_kv_set_u32(&m, "llama.block_count", 2);
    expect_model("block_count beyond the tensors", &m, TFM_E_FORMAT, "llama.block_count = 2", "tensors");
    gb_free(&m);

    base(&m);
    gb_kv_u32(&m, "llama.attention.value_length", 2);
    expect_model("value_length differs from key_length", &m, TFM_E_UNSUPPORTED, "value_length", NULL);
    gb_free(&m);

    base(&m);
    gb_kv_set_u32(&m, "llama.rope.dimension_count", 2);
    expect_model("partial rotary", &m, TFM_E_UNSUPPORTED, "rope.dimension_count", NULL);
    gb_free(&m);

    base(&m);
    gb_kv_u32(&m, "llama.expert_count", 8);
    expect_model("mixture of experts", &m, TFM_E_UNSUPPORTED, "experts", NULL);
    gb_free(&m);

    base(&m);
    gb_kv_str(&m, "llama.rope.scaling.type", "yarn");
    expect_model("rope scaling yarn", &m, TFM_E_UNSUPPORTED, "yarn", NULL);
    gb_kv_set_str(&m, "llama.rope.scaling.type", "linear");
    gb_kv_f32(&m, "llama.rope.scaling.factor", 4.0f);
    st = model_source(&m, &src, &copy);
    verdict("rope scaling linear", st, TFM_OK, NULL, NULL);
    if (!st) {
        check_true("linear factor 4", src.hp.rope_scaling == TFM_ROPE_SCALING_LINEAR && src.hp.rope_factor == 4.0f);
        release_source(&src);
    }
    free(copy);
    gb_free(&m);

    base(&m);
    gb_tensor_find(&m, "blk.0.attn_v.weight")->type = 8; /* q8_0: 8 cols are not a block, so the parser refuses */
    gb_tensor_find(&m, "blk.0.attn_v.weight")->nbytes = GB_NONE;
    expect_model("q8_0 with 8 columns", &m, TFM_E_FORMAT, "block size", NULL);
    gb_free(&m);

    gb_llama(&m, 32, 1, 2, 2, 64, 6, 0, 1);
    gb_tensor_find(&m, "blk.0.ffn_up.weight")->type = 8;
    gb_tensor_find(&m, "blk.0.ffn_up.weight")->nbytes = GB_NONE;
    expect_model("q8_0 weight (quantised types on)", &m, TFM_OK, NULL, NULL);
    gb_free(&m);

    gb_llama(&m, 256, 1, 2, 2, 64, 6, 0, 1);
    gb_tensor_find(&m, "blk.0.ffn_gate.weight")->type = 17;
    gb_tensor_find(&m, "blk.0.ffn_gate.weight")->nbytes = GB_NONE;
    expect_model("iq2_xs weight", &m, TFM_E_UNSUPPORTED, "iq2_xs", "blk.0.ffn_gate.weight");
    gb_free(&m);

    base(&m);
    gb_tensor_find(&m, "blk.0.attn_k.weight")->type = 1000;
    expect_model("unknown ggml type 1000", &m, TFM_E_UNSUPPORTED, "type1000", "blk.0.attn_k.weight");
    gb_free(&m);

    base(&m);
    {
        uint64_t ne[1] = {8};
        gb_tensor_add(&m, "blk.0.attn_q.bias", 0, 1, ne);
        expect_model("extra tensor (a bias)", &m, TFM_E_UNSUPPORTED, "blk.0.attn_q.bias", NULL);
    }
    gb_free(&m);

    /* Llama-3 RoPE factors (llama.cpp's rope_freqs.weight) map back to the scaling parameters */
    rope_freqs_case("rope_freqs: 4 entries in the smooth band", 64, 2, 10000, 8, 1, 8, 8192, 1);
    rope_freqs_case("rope_freqs: 1 entry in the smooth band", 32, 2, 10000, 8, 1, 4, 64, 0);
    rope_freqs_case("rope_freqs: none in the smooth band", 16, 2, 500000, 8, 1, 4, 64, 0);
    rope_freqs_case("rope_freqs: all divided (linear)", 16, 2, 10000, 4, 1, 4, 1, 0);
    gb_llama(&m, 64, 1, 2, 2, 16, 6, 0, 1);
    {
        float factors[16];
        llama3_factors(factors, 16, 32, 10000, 8, 1, 8, 8192);
        uint64_t ne[1] = {16};
        gb_tensor_add(&m, "rope_freqs.weight", 0, 1, ne)->data = factors;
        factors[3] = 5.5f;
        expect_model("rope_freqs not Llama-3 shaped", &m, TFM_E_UNSUPPORTED, "rope_freqs.weight", NULL);
    }
    gb_free(&m);
}

/* ================================================================================================
 * Paths and the public loader
 * ============================================================================================== */
static const char *tmp_dir(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n)) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fclose(fp);
}

static void test_paths_and_public_api(void)
{
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/tfm-format-test-%ld", tmp_dir(), (long)getpid());
    mkdir(dir, 0700);

    tfm_mapped_file mf;
    snprintf(path, sizeof(path), "%s/does-not-exist.gguf", dir);
    verdict("map: missing file", tfm_map_file(path, &mf), TFM_E_IO, "does-not-exist.gguf", "No such file");
    verdict("map: a directory", tfm_map_file(dir, &mf), TFM_E_IO, "is a directory", NULL);
    verdict("map: empty path", tfm_map_file("", &mf), TFM_E_INVALID_ARGUMENT, "path", NULL);

    snprintf(path, sizeof(path), "%s/empty.gguf", dir);
    write_file(path, "", 0);
    tfm_status st = tfm_map_file(path, &mf);
    verdict("map: empty file", st, TFM_OK, NULL, NULL);
    if (!st) {
        gguf_file *g;
        check_true("empty file maps to 0 bytes", mf.size == 0 && !mf.is_mapped);
        verdict("parse: mapped empty file", gguf_parse(mf.data, mf.size, path, &g), TFM_E_FORMAT, "empty.gguf",
                "too short");
        tfm_unmap_file(&mf);
    }

    gb_model m;
    gb_llama(&m, 16, 1, 2, 2, 32, 8, 0, 0);
    gb_file f = gb_serialize(&m);
    snprintf(path, sizeof(path), "%s/tiny.gguf", dir);
    write_file(path, f.data, f.size);
    st = tfm_map_file(path, &mf);
    verdict("map: a valid file", st, TFM_OK, NULL, NULL);
    if (!st) {
        check_true("mapped bytes equal the file", mf.size == f.size && mf.is_mapped && !memcmp(mf.data, f.data, f.size));
        tfm_unmap_file(&mf);
    }

    /* The public loader on the same files (it prefixes messages with the path). */
    tfm_model *model = NULL;
    snprintf(path, sizeof(path), "%s/does-not-exist.gguf", dir);
    verdict("load: missing file", tfm_model_load(path, NULL, &model), TFM_E_IO, "does-not-exist.gguf", NULL);

    snprintf(path, sizeof(path), "%s/truncated.gguf", dir);
    write_file(path, f.data, f.size / 2);
    verdict("load: truncated file", tfm_model_load(path, NULL, &model), TFM_E_FORMAT, "truncated.gguf", NULL);

    snprintf(path, sizeof(path), "%s/not-gguf.bin", dir);
    static const char zip[] = "PK\x03\x04 this is a zip";
    write_file(path, zip, sizeof(zip) - 1);
    verdict("load: not a GGUF file", tfm_model_load(path, NULL, &model), TFM_E_FORMAT, "not-gguf.bin", "GGUF");

    gb_kv_set_str(&m, "general.architecture", "mamba");
    gb_file f2 = gb_serialize(&m);
    void *copy = exact_copy(f2.data, f2.size);
    verdict("load from memory: architecture mamba", tfm_model_load_from_memory(copy, f2.size, NULL, &model),
            TFM_E_UNSUPPORTED, "mamba", NULL);
    check_true("failed load leaves *out NULL", model == NULL);
    free(copy);
    gb_file_free(&f2);

    /* and a valid one loads through the public API with the sizes the file declares */
    gb_kv_set_str(&m, "general.architecture", "llama");
    gb_file f3 = gb_serialize(&m);
    copy = exact_copy(f3.data, f3.size);
    tfm_model_params p = tfm_model_params_default();
    p.backend = "cpu";
    p.n_threads = 1;
    st = tfm_model_load_from_memory(copy, f3.size, &p, &model);
    verdict("load from memory: valid tiny llama", st, TFM_OK, NULL, NULL);
    if (!st) {
        tfm_model_info info;
        memset(&info, 0, sizeof(info));
        info.struct_size = sizeof(info);
        check_true("model info", tfm_model_get_info(model, &info) == TFM_OK && info.n_embd == 16 &&
                                     info.n_vocab == 8 && info.n_layer == 1 && info.n_ff == 32 &&
                                     info.tied_embeddings == 0 && strcmp(info.format, "gguf") == 0);
        tfm_model_free(model);
    }
    free(copy);
    gb_file_free(&f3);

    gb_file_free(&f);
    gb_free(&m);
    snprintf(path, sizeof(path), "%s/empty.gguf", dir); unlink(path);
    snprintf(path, sizeof(path), "%s/tiny.gguf", dir); unlink(path);
    snprintf(path, sizeof(path), "%s/truncated.gguf", dir); unlink(path);
    snprintf(path, sizeof(path), "%s/not-gguf.bin", dir); unlink(path);
    rmdir(dir);
}

/* ================================================================================================
 * Random corruption: byte flips, overwritten counts and cuts of valid files must never crash
 * (under ASan/UBSan any out-of-bounds read or overflow aborts the test).
 * ============================================================================================== */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_random_corruption(void)
{
    gb_model m;
    gb_llama(&m, 16, 2, 4, 2, 32, 8, 0, 0);
    uint8_t arr[40];
    put_le(arr, 8, 4);
    put_le(arr + 4, 2, 8);
    put_le(arr + 12, 1, 8);
    arr[20] = 'a';
    put_le(arr + 21, 2, 8);
    arr[29] = 'b';
    arr[30] = 'c';
    gb_kv_raw(&m, "tokenizer.ggml.tokens", 9, arr, 31);
    gb_file f = gb_serialize(&m);
    const int iterations = 3000;
    int n_ok = 0;
    uint8_t *buf = malloc(f.size);
    if (!buf) exit(2);
    for (int it = 0; it < iterations; it++) {
        memcpy(buf, f.data, f.size);
        size_t size = f.size;
        int edits = 1 + (int)(rng() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(rng() % size);
            switch (rng() % 4) {
            case 0: buf[at] ^= (uint8_t)(1u << (rng() % 8)); break;        /* a bit flip */
            case 1: buf[at] = (uint8_t)rng(); break;                       /* a random byte */
            case 2: {                                                      /* a 64-bit field, any magnitude */
                uint64_t v = rng();
                v >>= rng() % 64;
                if (at + 8 <= size) put_le(buf + at, v, 8);
                break;
            }
            default: size = at; break;                                     /* a cut */
            }
        }
        tfm_model_source src;
        void *copy = exact_copy(buf, size);
        tfm_status st = tfm_gguf_model_source(copy, size, "fuzz.gguf", &src);
        if (getenv("TFM_TEST_VERBOSE"))
            printf("     corrupted file %d: %s %s\n", it, status_name(st), st ? tfm_last_error() : "");
        if (!st) {
            n_ok++;
            release_source(&src);
        } else if (!*tfm_last_error()) {
            printf("FAIL corrupted file %d: status %s without a message\n", it, status_name(st));
            n_fail++;
        }
        free(copy);
    }
    free(buf);
    gb_file_free(&f);
    gb_free(&m);
    printf("     random corruption: %d files, %d still loadable\n", iterations, n_ok);
    n_pass++;
}

int main(void)
{
    test_header();
    test_truncations();
    test_metadata();
    test_alignment();
    test_tensors();
    test_getters();
    test_model();
    test_random_corruption();
    test_paths_and_public_api();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
