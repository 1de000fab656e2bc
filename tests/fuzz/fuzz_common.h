/*
 * fuzz_common.h — pieces shared by the libFuzzer targets in tests/fuzz (header-only, each target is one
 * translation unit).
 *
 * A target must never crash, leak, read out of bounds or hit undefined behaviour, and every failing
 * call must leave a message in tfm_last_error(). Properties the public API promises are checked too;
 * a broken promise calls fuzz_fail(), which aborts so that libFuzzer saves the input.
 */
#ifndef TFM_TESTS_FUZZ_COMMON_H
#define TFM_TESTS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tfm/tfm.h"

#define fuzz_fail(...)                                                   \
    do {                                                                 \
        fprintf(stderr, "fuzz property broken at %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                    \
        fprintf(stderr, "\n");                                           \
        abort();                                                         \
    } while (0)

/* A failed call must say why. */
static inline void fuzz_expect_message(tfm_status st, const char *what)
{
    if (st != TFM_OK && (!tfm_last_error() || !*tfm_last_error()))
        fuzz_fail("%s returned %s without a message", what, tfm_status_string(st));
    if ((unsigned)st > TFM_E_INTERNAL) fuzz_fail("%s returned unknown status %d", what, (int)st);
    if (st == TFM_E_INTERNAL) fuzz_fail("%s reported an internal error: %s", what, tfm_last_error());
}

static char fuzz_scratch[256];

/* Removes the scratch folder and the files the targets write into it. */
static inline void fuzz_scratch_remove(void)
{
    static const char *const names[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "model-00002-of-00002.safetensors"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_scratch, names[i]);
        unlink(path);
    }
    rmdir(fuzz_scratch);
}

/* A private scratch folder for targets that must present their input as files (removed at exit). */
static inline const char *fuzz_scratch_dir(void)
{
    if (!fuzz_scratch[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/tfm-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_scratch)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(fuzz_scratch_remove);
    }
    return fuzz_scratch;
}

static inline void fuzz_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* Exercises a tokenizer with `text`: sizing protocol, ids in range, decode, and the stream gives exactly
 * decode's bytes. Returns the number of ids. */
static inline size_t fuzz_exercise_text(const tfm_tokenizer *t, const char *text, size_t len, uint32_t flags)
{
    int32_t vocab = tfm_tokenizer_vocab_size(t);
    size_t n = 0;
    tfm_status st = tfm_tokenize(t, text, len, flags, NULL, 0, &n);
    if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) {
        fuzz_expect_message(st, "tfm_tokenize (size query)");
        return 0;
    }
    if ((st == TFM_OK) != (n == 0)) fuzz_fail("size query: status %s with %zu ids", tfm_status_string(st), n);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    size_t n2 = 0;
    st = tfm_tokenize(t, text, len, flags, ids, n, &n2);
    if (st != TFM_OK || n2 != n) fuzz_fail("tokenize: %s, %zu ids after a query of %zu", tfm_status_string(st), n2, n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) fuzz_fail("id %d outside the vocabulary of %d", ids[i], vocab);
    size_t need = 0;
    st = tfm_detokenize(t, ids, n, NULL, 0, &need);
    if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) fuzz_fail("detokenize size query: %s", tfm_status_string(st));
    char *out = malloc(need + 1);
    size_t got = 0;
    st = tfm_detokenize(t, ids, n, out, need, &got);
    if (st != TFM_OK || got != need) fuzz_fail("detokenize: %s, %zu bytes of %zu", tfm_status_string(st), got, need);
    tfm_text_stream *s = NULL;
    if (tfm_text_stream_create(t, &s) != TFM_OK) fuzz_fail("text stream: %s", tfm_last_error());
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *p = NULL;
        size_t pl = 0;
        st = i < n ? tfm_text_stream_push(s, ids[i], &p, &pl) : tfm_text_stream_flush(s, &p, &pl);
        if (st != TFM_OK) fuzz_fail("stream: %s", tfm_status_string(st));
        if (at + pl > got || (pl && memcmp(out + at, p, pl) != 0))
            fuzz_fail("streamed text differs from decoded text at byte %zu", at);
        at += pl;
    }
    if (at != got) fuzz_fail("stream gave %zu bytes, decode %zu", at, got);
    tfm_text_stream_free(s);
    free(out);
    free(ids);
    return n;
}

/* Every id decodes on its own, and out-of-range ids are refused. */
static inline void fuzz_exercise_vocab(const tfm_tokenizer *t)
{
    static const char *const texts[] = {"", "Hello, world!  x\t\n", "<s></s><unk><|begin_of_text|> a",
                                        "\xff\xfe\xe4\xb8 \xf0\x9f\x98\x80 caf\xc3\xa9", "0123456789 I'm"};
    static const uint32_t flags[] = {0, TFM_TOKENIZE_PARSE_SPECIAL,
                                     TFM_TOKENIZE_ADD_BOS | TFM_TOKENIZE_ADD_EOS | TFM_TOKENIZE_MODEL_DEFAULTS};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++)
        fuzz_exercise_text(t, texts[k], strlen(texts[k]), flags[k % 3]);
    int32_t vocab = tfm_tokenizer_vocab_size(t);
    if (vocab < 1) fuzz_fail("a loaded tokenizer has %d tokens", vocab);
    int32_t bos = tfm_tokenizer_bos(t), eos = tfm_tokenizer_eos(t);
    if (bos < -1 || bos >= vocab || eos < -1 || eos >= vocab) fuzz_fail("bos %d / eos %d out of range", bos, eos);
    if (!tfm_tokenizer_kind(t)) fuzz_fail("no kind");
    char buf[64];
    for (int32_t i = 0; i < vocab && i < 2048; i++) {
        size_t len = 0;
        tfm_status st = tfm_detokenize(t, &i, 1, buf, sizeof buf, &len);
        if (st != TFM_OK && st != TFM_E_BUFFER_TOO_SMALL) fuzz_fail("id %d does not decode: %s", i, tfm_last_error());
        if (!tfm_token_piece(t, i)) fuzz_fail("id %d has no piece", i);
    }
    int32_t bad[2] = {vocab, -1};
    size_t len = 0;
    for (int k = 0; k < 2; k++)
        if (tfm_detokenize(t, &bad[k], 1, buf, sizeof buf, &len) != TFM_E_INVALID_ARGUMENT)
            fuzz_fail("out-of-range id %d was not refused", bad[k]);
    if (tfm_token_piece(t, vocab) || tfm_token_piece(t, -1)) fuzz_fail("piece of an out-of-range id");
}

#endif
