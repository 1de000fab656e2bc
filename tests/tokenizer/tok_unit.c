/*
 * tok_unit.c — tokenizer API semantics and hostile files, self-contained (builds its own inputs).
 *
 * A tiny SentencePiece BPE model is serialised here as protobuf; expectations for it are derived by
 * hand from the BPE rule (merge the adjacent pair whose merged piece scores highest), not from
 * libtfm's output. Hostile inputs: every truncation and many byte flips of that model, crafted
 * malformed .model / tokenizer.json / GGUF files; each must load cleanly or fail with a status and
 * a message, never crash (the suite also runs under AddressSanitizer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../format/gguf_build.h"
#include "tfm/tfm.h"

static int failures;
static char dir[256];

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, " [last error: %s]\n", tfm_last_error());    \
        }                                                                \
    } while (0)

/* ------------------------------------------------------------------ protobuf writer */
typedef struct pbw {
    uint8_t *p;
    size_t n, cap;
} pbw;

static void pb_raw(pbw *w, const void *d, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = realloc(w->p, w->cap);
    }
    memcpy(w->p + w->n, d, n);
    w->n += n;
}
static void pb_varint(pbw *w, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) b |= 0x80;
        pb_raw(w, &b, 1);
    } while (v);
}
static void pb_tag(pbw *w, uint32_t field, int wt) { pb_varint(w, (uint64_t)field << 3 | (uint64_t)wt); }
static void pb_bytes(pbw *w, uint32_t field, const void *d, size_t n)
{
    pb_tag(w, field, 2);
    pb_varint(w, n);
    pb_raw(w, d, n);
}
static void pb_uint(pbw *w, uint32_t field, uint64_t v)
{
    pb_tag(w, field, 0);
    pb_varint(w, v);
}
static void pb_float(pbw *w, uint32_t field, float f)
{
    pb_tag(w, field, 5);
    pb_raw(w, &f, 4); /* little-endian host */
}

/* The tiny model: <unk> <s> </s>, 256 byte pieces, then scored pieces. */
static const char *const k_pieces[] = {"\xE2\x96\x81", "a", "b", "c", "\xE2\x96\x81" "a", "ab",
                                       "\xE2\x96\x81" "ab", "bc", "\xE2\x96\x81" "b"};
enum { N_FIXED = 3 + 256, N_NORMAL = sizeof k_pieces / sizeof k_pieces[0] };
static int32_t id_of(const char *piece)
{
    for (int i = 0; i < N_NORMAL; i++)
        if (!strcmp(k_pieces[i], piece)) return N_FIXED + i;
    return -1;
}

typedef struct spm_opts {
    int model_type;       /* 1 unigram, 2 bpe */
    int piece_type_bad;   /* write an invalid type for piece 5 */
    int no_unk;
    int charsmap_bad;     /* a precompiled_charsmap whose trie size exceeds the blob */
} spm_opts;

static pbw make_spm(spm_opts o)
{
    pbw m = {0};
    for (int i = 0; i < N_FIXED + N_NORMAL; i++) {
        pbw p = {0};
        char name[16];
        const char *s;
        int type;
        float score = 0.0f;
        if (i == 0) s = "<unk>", type = o.no_unk ? 1 : 2;
        else if (i == 1) s = "<s>", type = 3;
        else if (i == 2) s = "</s>", type = 3;
        else if (i < N_FIXED) snprintf(name, sizeof name, "<0x%02X>", i - 3), s = name, type = 6;
        else s = k_pieces[i - N_FIXED], type = 1, score = -(float)(i - N_FIXED + 1);
        if (o.piece_type_bad && i == 5) type = 9;
        pb_bytes(&p, 1, s, strlen(s));
        pb_float(&p, 2, score);
        pb_uint(&p, 3, (uint64_t)type);
        pb_bytes(&m, 1, p.p, p.n);
        free(p.p);
    }
    pbw tr = {0};
    pb_uint(&tr, 3, (uint64_t)o.model_type);
    pb_uint(&tr, 35, 1); /* byte_fallback */
    pb_bytes(&m, 2, tr.p, tr.n);
    free(tr.p);
    pbw nm = {0};
    pb_bytes(&nm, 1, "identity", 8);
    if (o.charsmap_bad) {
        const uint8_t blob[8] = {0xFF, 0xFF, 0, 0, 1, 2, 3, 4};
        pb_bytes(&nm, 2, blob, sizeof blob);
    }
    pb_uint(&nm, 3, 1); /* add_dummy_prefix */
    pb_uint(&nm, 4, 0); /* remove_extra_whitespaces */
    pb_uint(&nm, 5, 1); /* escape_whitespaces */
    pb_bytes(&m, 3, nm.p, nm.n);
    free(nm.p);
    return m;
}

static const char *write_file(const char *name, const void *d, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    return path;
}

static tfm_tokenizer *load_blob(const char *name, const void *d, size_t n, tfm_status *st)
{
    tfm_tokenizer *t = NULL;
    *st = tfm_tokenizer_load(write_file(name, d, n), &t);
    return t;
}

static size_t encode(const tfm_tokenizer *t, const char *s, uint32_t flags, int32_t *ids, size_t cap)
{
    size_t n = 0;
    tfm_status st = tfm_tokenize(t, s, strlen(s), flags, ids, cap, &n);
    CHECK(st == TFM_OK, "tokenize \"%s\" -> %s", s, tfm_status_string(st));
    return n;
}

static int same_ids(const int32_t *a, size_t n, const int32_t *b, size_t m)
{
    return n == m && (n == 0 || memcmp(a, b, n * sizeof *a) == 0);
}

/* Exercises a loaded tokenizer of any kind with awkward text; must not crash. */
static void poke(const tfm_tokenizer *t)
{
    static const char *const texts[] = {"", " ", "ab c", "\xff\xfe", "\xe4\xb8", "<s></s><unk>", "\xf0\x9f\x98\x80 x"};
    int32_t ids[256];
    char out[1024];
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        size_t n = 0, len = 0;
        if (tfm_tokenize(t, texts[k], strlen(texts[k]), TFM_TOKENIZE_PARSE_SPECIAL | TFM_TOKENIZE_ADD_BOS, ids, 256,
                         &n) == TFM_OK)
            (void)tfm_detokenize(t, ids, n, out, sizeof out, &len);
    }
    int32_t v = tfm_tokenizer_vocab_size(t);
    for (int32_t i = 0; i < v && i < 600; i++) {
        size_t len;
        (void)tfm_detokenize(t, &i, 1, out, sizeof out, &len);
    }
}

static void test_spm_semantics(void)
{
    pbw m = make_spm((spm_opts){.model_type = 2});
    tfm_status st;
    tfm_tokenizer *t = load_blob("tiny.model", m.p, m.n, &st);
    CHECK(st == TFM_OK && t, "load tiny.model: %s", tfm_status_string(st));
    if (!t) return;
    CHECK(!strcmp(tfm_tokenizer_kind(t), "sentencepiece-bpe"), "kind %s", tfm_tokenizer_kind(t));
    CHECK(tfm_tokenizer_vocab_size(t) == N_FIXED + N_NORMAL, "vocab %d", tfm_tokenizer_vocab_size(t));
    CHECK(tfm_tokenizer_bos(t) == 1 && tfm_tokenizer_eos(t) == 2, "bos/eos");
    CHECK(tfm_token_piece(t, -1) == NULL && tfm_token_piece(t, 100000) == NULL, "piece out of range");
    CHECK(!strcmp(tfm_token_piece(t, 1), "<s>"), "piece 1");

    int32_t ids[64];
    size_t n = encode(t, "ab", 0, ids, 64);
    int32_t e1[] = {id_of("\xE2\x96\x81" "ab")}; /* ▁ a b -> ▁a (-5) -> ▁ab (-7) */
    CHECK(same_ids(ids, n, e1, 1), "\"ab\" -> %zu ids", n);
    n = encode(t, "abc", 0, ids, 64);
    int32_t e2[] = {id_of("\xE2\x96\x81" "ab"), id_of("c")}; /* ▁a beats ab and bc; ▁abc is no piece */
    CHECK(same_ids(ids, n, e2, 2), "\"abc\" -> %zu ids", n);
    n = encode(t, "\xe4\xb8\xad", 0, ids, 64);
    int32_t e3[] = {id_of("\xE2\x96\x81"), 3 + 0xE4, 3 + 0xB8, 3 + 0xAD}; /* unknown -> byte pieces */
    CHECK(same_ids(ids, n, e3, 4), "\"中\" -> %zu ids", n);

    /* Flags */
    n = encode(t, "ab", TFM_TOKENIZE_ADD_BOS | TFM_TOKENIZE_ADD_EOS, ids, 64);
    int32_t e4[] = {1, id_of("\xE2\x96\x81" "ab"), 2};
    CHECK(same_ids(ids, n, e4, 3), "BOS/EOS");
    n = encode(t, "ab", TFM_TOKENIZE_MODEL_DEFAULTS, ids, 64);
    CHECK(same_ids(ids, n, e1, 1), "sentencepiece defaults add nothing");
    n = encode(t, "ab<s>ab", TFM_TOKENIZE_PARSE_SPECIAL, ids, 64);
    int32_t e5[] = {id_of("\xE2\x96\x81" "ab"), 1, id_of("\xE2\x96\x81" "ab")};
    CHECK(same_ids(ids, n, e5, 3), "PARSE_SPECIAL splits at <s>");
    n = encode(t, "ab<s>ab", 0, ids, 64);
    int has_bos = 0;
    for (size_t i = 0; i < n; i++) has_bos |= ids[i] == 1;
    CHECK(!has_bos && n > 3, "without PARSE_SPECIAL \"<s>\" is text");

    /* Buffer too small reports the size; NULL with capacity 0 asks for it. */
    size_t need = 0;
    st = tfm_tokenize(t, "abc", 3, 0, NULL, 0, &need);
    CHECK(st == TFM_E_BUFFER_TOO_SMALL && need == 2, "size query: %s %zu", tfm_status_string(st), need);
    st = tfm_tokenize(t, "abc", 3, 0, ids, 1, &need);
    CHECK(st == TFM_E_BUFFER_TOO_SMALL && need == 2, "small buffer: %s %zu", tfm_status_string(st), need);
    st = tfm_tokenize(NULL, "abc", 3, 0, ids, 64, &need);
    CHECK(st == TFM_E_INVALID_ARGUMENT, "NULL tokenizer");

    /* Decoding */
    char text[64];
    size_t len = 0;
    int32_t d1[] = {1, id_of("\xE2\x96\x81" "ab"), id_of("\xE2\x96\x81" "b"), 2};
    st = tfm_detokenize(t, d1, 4, text, sizeof text, &len);
    CHECK(st == TFM_OK && len == 4 && !memcmp(text, "ab b", 4), "decode drops <s></s> and the dummy space");
    st = tfm_detokenize(t, d1, 4, text, 2, &len);
    CHECK(st == TFM_E_BUFFER_TOO_SMALL && len == 4, "decode size report");
    int32_t bad[] = {5, 99999};
    st = tfm_detokenize(t, bad, 2, text, sizeof text, &len);
    CHECK(st == TFM_E_INVALID_ARGUMENT, "decode bad id: %s", tfm_status_string(st));
    int32_t d2[] = {3 + 0xE4, 3 + 0xB8};
    st = tfm_detokenize(t, d2, 2, text, sizeof text, &len);
    CHECK(st == TFM_OK && len == 6 && !memcmp(text, "\xEF\xBF\xBD\xEF\xBF\xBD", 6), "incomplete bytes -> U+FFFD each");

    /* Streaming: nothing of a character comes out before its last byte. */
    tfm_text_stream *s = NULL;
    CHECK(tfm_text_stream_create(t, &s) == TFM_OK, "stream create");
    const char *p;
    size_t pl;
    int32_t seq[] = {id_of("\xE2\x96\x81" "ab"), 3 + 0xE4, 3 + 0xB8, 3 + 0xAD, id_of("c")};
    const char *want[] = {"ab", "", "", "\xe4\xb8\xad", "c"};
    for (int i = 0; i < 5; i++) {
        st = tfm_text_stream_push(s, seq[i], &p, &pl);
        CHECK(st == TFM_OK && pl == strlen(want[i]) && !memcmp(p, want[i], pl), "stream step %d gave %zu bytes", i, pl);
    }
    st = tfm_text_stream_push(s, 3 + 0xE4, &p, &pl);
    CHECK(st == TFM_OK && pl == 0, "held lead byte");
    st = tfm_text_stream_flush(s, &p, &pl);
    CHECK(st == TFM_OK && pl == 3 && !memcmp(p, "\xEF\xBF\xBD", 3), "flush gives U+FFFD");
    st = tfm_text_stream_push(s, 99999, &p, &pl);
    CHECK(st == TFM_E_INVALID_ARGUMENT, "stream bad id");
    tfm_text_stream_free(s);
    tfm_text_stream_free(NULL);
    tfm_tokenizer_free(t);
    tfm_tokenizer_free(NULL);

    /* Unigram over the same pieces: for "▁ab" the paths score ▁ab -7, ▁a+b -8, ▁+ab -7, ▁+a+b -6. */
    pbw u = make_spm((spm_opts){.model_type = 1});
    t = load_blob("tiny-unigram.model", u.p, u.n, &st);
    CHECK(st == TFM_OK && t && !strcmp(tfm_tokenizer_kind(t), "sentencepiece-unigram"), "unigram load");
    if (t) {
        n = encode(t, "ab", 0, ids, 64);
        int32_t eu[] = {id_of("\xE2\x96\x81"), id_of("a"), id_of("b")};
        CHECK(same_ids(ids, n, eu, 3), "unigram \"ab\" (%zu ids)", n);
        tfm_tokenizer_free(t);
    }
    free(u.p);

    /* In a HF directory, tokenizer_config.json's add_bos_token applies to a tokenizer.model too. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/spmdir", dir);
    mkdir(sub, 0755);
    write_file("spmdir/tokenizer.model", m.p, m.n);
    write_file("spmdir/tokenizer_config.json", "{\"add_bos_token\": true}", 23);
    t = NULL;
    st = tfm_tokenizer_load(sub, &t);
    CHECK(st == TFM_OK && t, "directory with tokenizer.model: %s", tfm_status_string(st));
    if (t) {
        n = encode(t, "ab", TFM_TOKENIZE_MODEL_DEFAULTS, ids, 64);
        int32_t eb[] = {1, id_of("\xE2\x96\x81" "ab")};
        CHECK(same_ids(ids, n, eb, 2), "add_bos_token from tokenizer_config.json (%zu ids)", n);
        tfm_tokenizer_free(t);
    }

    /* Hostile: every truncation, and byte flips, of the valid model. */
    int loaded = 0;
    for (size_t cut = 0; cut < m.n; cut += (cut < 64 ? 1 : 5)) {
        t = load_blob("cut.model", m.p, cut, &st);
        CHECK((st == TFM_OK) == (t != NULL), "truncated at %zu: status %s but handle %p", cut, tfm_status_string(st),
              (void *)t);
        CHECK(st == TFM_OK || tfm_last_error()[0], "truncated at %zu: no message", cut);
        if (t) {
            loaded++;
            poke(t);
            tfm_tokenizer_free(t);
        }
    }
    uint8_t *flip = malloc(m.n);
    for (size_t pos = 0; pos < m.n; pos += 3) {
        memcpy(flip, m.p, m.n);
        flip[pos] ^= (uint8_t)(0x5A + pos);
        t = load_blob("flip.model", flip, m.n, &st);
        if (t) {
            poke(t);
            tfm_tokenizer_free(t);
        }
    }
    free(flip);
    free(m.p);

    struct {
        spm_opts o;
        tfm_status want;
        const char *what;
    } crafted[] = {
        {{.model_type = 3}, TFM_E_UNSUPPORTED, "word model"},
        {{.model_type = 2, .piece_type_bad = 1}, TFM_E_FORMAT, "piece type 9"},
        {{.model_type = 2, .no_unk = 1}, TFM_E_FORMAT, "no unknown piece"},
        {{.model_type = 2, .charsmap_bad = 1}, TFM_E_FORMAT, "charsmap trie larger than its blob"},
    };
    for (size_t k = 0; k < sizeof crafted / sizeof crafted[0]; k++) {
        pbw c = make_spm(crafted[k].o);
        t = load_blob("crafted.model", c.p, c.n, &st);
        CHECK(st == crafted[k].want && !t, "%s: got %s", crafted[k].what, tfm_status_string(st));
        tfm_tokenizer_free(t);
        free(c.p);
    }
    const uint8_t junk[][12] = {{0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, {0x0B}, {0x08, 0x80, 0x80, 0x80, 0x80, 0x80,
                                                                             0x80, 0x80, 0x80, 0x80, 0x80, 0x01}};
    for (size_t k = 0; k < 3; k++) {
        t = load_blob("junk.model", junk[k], sizeof junk[k], &st);
        CHECK(st == TFM_E_FORMAT && !t, "junk %zu: %s", k, tfm_status_string(st));
    }
}

static void test_json(void)
{
    static const char *const bad[] = {
        "{", "{\"model\": 5}", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": 5}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}",
        "{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999}, \"merges\": []}}",
        "{\"added_tokens\": [{\"id\": -3, \"content\": \"x\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
    };
    static const tfm_status want[] = {TFM_E_FORMAT, TFM_E_FORMAT, TFM_E_UNSUPPORTED, TFM_E_FORMAT, TFM_E_FORMAT,
                                      TFM_E_FORMAT, TFM_E_UNSUPPORTED, TFM_E_FORMAT, TFM_E_FORMAT};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tfm_status st;
        tfm_tokenizer *t = load_blob("tokenizer.json", bad[k], strlen(bad[k]), &st);
        CHECK(st == want[k] && !t && tfm_last_error()[0], "json case %zu: got %s", k, tfm_status_string(st));
        tfm_tokenizer_free(t);
    }
    /* A small byte-level BPE in a HF directory with its tokenizer_config.json. */
    const char *json =
        "{\"added_tokens\": [{\"id\": 5, \"content\": \"<|bos|>\", \"special\": true}],"
        " \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
        " \"use_regex\": true}, \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3, \"\\u0120ab\": 4},"
        " \"merges\": [\"a b\", \"\\u0120 ab\"]}}";
    char sub[300];
    snprintf(sub, sizeof sub, "%s/hfdir", dir);
    mkdir(sub, 0755);
    write_file("hfdir/tokenizer.json", json, strlen(json));
    const char *cfg = "{\"add_bos_token\": true, \"bos_token\": \"<|bos|>\"}";
    write_file("hfdir/tokenizer_config.json", cfg, strlen(cfg));
    tfm_tokenizer *t = NULL;
    tfm_status st = tfm_tokenizer_load(sub, &t);
    CHECK(st == TFM_OK && t, "HF directory: %s", tfm_status_string(st));
    if (t) {
        int32_t ids[16];
        size_t n = encode(t, "ab ab", TFM_TOKENIZE_MODEL_DEFAULTS, ids, 16);
        int32_t e[] = {5, 2, 4}; /* BOS, "ab", " ab" (pre-tokens "ab" and " ab"; merges a+b, Ġ+ab) */
        CHECK(same_ids(ids, n, e, 3) && tfm_tokenizer_bos(t) == 5, "byte-level BPE with config BOS (%zu ids)", n);
        CHECK(!strcmp(tfm_tokenizer_kind(t), "bpe-bytelevel"), "kind");
        poke(t);
        tfm_tokenizer_free(t);
    }
    snprintf(sub, sizeof sub, "%s/emptydir", dir);
    mkdir(sub, 0755);
    t = NULL;
    st = tfm_tokenizer_load(sub, &t);
    CHECK(st == TFM_E_IO && !t, "empty directory: %s", tfm_status_string(st));
    st = tfm_tokenizer_load("/nonexistent/tokenizer.model", &t);
    CHECK(st == TFM_E_IO && !t, "missing file: %s", tfm_status_string(st));
}

/* GGUF string array value: u32 element type, u64 count, each u64 length + bytes. */
static void kv_str_array(gb_model *m, const char *key, const char *const *s, int n)
{
    pbw v = {0};
    uint32_t et = 8;
    uint64_t cnt = (uint64_t)n;
    pb_raw(&v, &et, 4);
    pb_raw(&v, &cnt, 8);
    for (int i = 0; i < n; i++) {
        uint64_t l = strlen(s[i]);
        pb_raw(&v, &l, 8);
        pb_raw(&v, s[i], l);
    }
    gb_kv_raw(m, key, 9, v.p, v.n);
    free(v.p);
}

static void kv_num_array(gb_model *m, const char *key, uint32_t et, const void *d, int n)
{
    pbw v = {0};
    uint64_t cnt = (uint64_t)n;
    pb_raw(&v, &et, 4);
    pb_raw(&v, &cnt, 8);
    pb_raw(&v, d, (size_t)n * 4);
    gb_kv_raw(m, key, 9, v.p, v.n);
    free(v.p);
}

static tfm_tokenizer *load_gguf(gb_model *m, tfm_status *st)
{
    gb_file f = gb_serialize(m);
    tfm_tokenizer *t = load_blob("vocab.gguf", f.data, f.size, st);
    gb_file_free(&f);
    return t;
}

static void test_gguf(void)
{
    const char *tokens[N_FIXED + N_NORMAL];
    static char names[256][8];
    float scores[N_FIXED + N_NORMAL];
    int32_t types[N_FIXED + N_NORMAL];
    for (int i = 0; i < N_FIXED + N_NORMAL; i++) {
        scores[i] = 0.0f;
        if (i == 0) tokens[i] = "<unk>", types[i] = 2;
        else if (i < 3) tokens[i] = i == 1 ? "<s>" : "</s>", types[i] = 3;
        else if (i < N_FIXED) snprintf(names[i - 3], 8, "<0x%02X>", i - 3), tokens[i] = names[i - 3], types[i] = 6;
        else tokens[i] = k_pieces[i - N_FIXED], types[i] = 1, scores[i] = -(float)(i - N_FIXED + 1);
    }
    int nt = N_FIXED + N_NORMAL;
    gb_model m;
    gb_init(&m);
    gb_kv_str(&m, "general.architecture", "llama");
    gb_kv_str(&m, "tokenizer.ggml.model", "llama");
    kv_str_array(&m, "tokenizer.ggml.tokens", tokens, nt);
    kv_num_array(&m, "tokenizer.ggml.scores", 6, scores, nt);
    kv_num_array(&m, "tokenizer.ggml.token_type", 5, types, nt);
    tfm_status st;
    tfm_tokenizer *t = load_gguf(&m, &st);
    CHECK(st == TFM_OK && t, "GGUF llama vocabulary: %s", tfm_status_string(st));
    if (t) {
        int32_t ids[16];
        size_t n = encode(t, "abc", TFM_TOKENIZE_MODEL_DEFAULTS, ids, 16);
        int32_t e[] = {1, id_of("\xE2\x96\x81" "ab"), id_of("c")}; /* llama.cpp adds BOS by default */
        CHECK(same_ids(ids, n, e, 3), "GGUF \"abc\" with defaults (%zu ids)", n);
        poke(t);
        tfm_tokenizer_free(t);
    }
    /* Malformed variants */
    gb_kv_set_str(&m, "tokenizer.ggml.model", "bert");
    t = load_gguf(&m, &st);
    CHECK(st == TFM_E_UNSUPPORTED && !t, "model bert: %s", tfm_status_string(st));
    gb_kv_set_str(&m, "tokenizer.ggml.model", "gpt2");
    gb_kv_str(&m, "tokenizer.ggml.pre", "some-new-pre");
    t = load_gguf(&m, &st);
    CHECK(st == TFM_E_UNSUPPORTED && !t, "unknown pre: %s", tfm_status_string(st));
    gb_kv_set_str(&m, "tokenizer.ggml.model", "llama");
    gb_kv_remove(&m, "tokenizer.ggml.scores");
    kv_num_array(&m, "tokenizer.ggml.scores", 6, scores, nt - 1);
    t = load_gguf(&m, &st);
    CHECK(st == TFM_E_FORMAT && !t, "scores shorter than tokens: %s", tfm_status_string(st));
    gb_kv_remove(&m, "tokenizer.ggml.tokens");
    gb_kv_u32(&m, "tokenizer.ggml.tokens", 7);
    t = load_gguf(&m, &st);
    CHECK(st == TFM_E_FORMAT && !t, "tokens not an array: %s", tfm_status_string(st));
    gb_kv_remove(&m, "tokenizer.ggml.model");
    t = load_gguf(&m, &st);
    CHECK(st == TFM_E_FORMAT && !t, "GGUF without tokenizer: %s", tfm_status_string(st));
    gb_free(&m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/tok_unit.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_spm_semantics();
    test_json();
    test_gguf();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("tok_unit: all checks passed\n");
    return 0;
}
