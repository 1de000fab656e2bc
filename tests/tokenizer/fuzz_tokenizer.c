/*
 * fuzz_tokenizer.c — libFuzzer targets for the tokenizer; FUZZ_TARGET picks one:
 *   1 spm    the bytes are a SentencePiece .model
 *   2 json   the bytes are a tokenizer.json
 *   3 gguf   the bytes are a GGUF file (its tokenizer.ggml.* vocabulary)
 *   4 text   the bytes are text for the tokenizers named by $TFM_FUZZ_TOKENIZERS (colon-separated
 *            paths, loaded once): encode with every flag, decode, stream, and decode the bytes
 *            reinterpreted as ids
 * Every tokenizer that loads is exercised with awkward text, and every id is decoded. Built and run
 * by run_fuzz.sh (clang -fsanitize=fuzzer,address,undefined over the library's sources).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "tfm/tfm.h"
#include "tokenizer/tok_loaders.h"
#include "tokenizer/tokenizer.h"

#ifndef FUZZ_TARGET
#define FUZZ_TARGET 1
#endif

static void exercise_text(const tfm_tokenizer *t, const char *text, size_t len)
{
    static const uint32_t flag_sets[] = {0, TFM_TOKENIZE_PARSE_SPECIAL,
                                         TFM_TOKENIZE_ADD_BOS | TFM_TOKENIZE_ADD_EOS | TFM_TOKENIZE_MODEL_DEFAULTS};
    for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
        size_t n = 0;
        if (tfm_tokenize(t, text, len, flag_sets[f], NULL, 0, &n) != TFM_E_BUFFER_TOO_SMALL && n != 0) abort();
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        size_t n2 = 0;
        if (tfm_tokenize(t, text, len, flag_sets[f], ids, n, &n2) != TFM_OK || n2 != n) abort();
        size_t tl = 0;
        (void)tfm_detokenize(t, ids, n, NULL, 0, &tl);
        char *out = malloc(tl + 1);
        size_t tl2 = 0;
        if (tfm_detokenize(t, ids, n, out, tl, &tl2) != TFM_OK || tl2 != tl) abort();
        /* The stream must give exactly decode's bytes. */
        tfm_text_stream *s;
        if (tfm_text_stream_create(t, &s) == TFM_OK) {
            size_t at = 0;
            for (size_t i = 0; i <= n; i++) {
                const char *p;
                size_t pl;
                tfm_status st = i < n ? tfm_text_stream_push(s, ids[i], &p, &pl) : tfm_text_stream_flush(s, &p, &pl);
                if (st != TFM_OK || at + pl > tl || memcmp(out + at, p, pl) != 0) abort();
                at += pl;
            }
            if (at != tl) abort();
            tfm_text_stream_free(s);
        }
        free(out);
        free(ids);
    }
}

static void exercise(const tfm_tokenizer *t)
{
    static const char *const texts[] = {"", " hello  world\t\r\n", "<s>x</s><unk><|begin_of_text|>",
                                        "\xff\xe4\xb8 \xf0\x9f\x98\x80", "1234567 I'm"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) exercise_text(t, texts[k], strlen(texts[k]));
    int32_t v = tfm_tokenizer_vocab_size(t);
    char buf[256];
    for (int32_t i = 0; i < v && i < 4096; i++) {
        size_t len;
        (void)tfm_detokenize(t, &i, 1, buf, sizeof buf, &len);
        (void)tfm_token_piece(t, i);
    }
}

#if FUZZ_TARGET == 4
static tfm_tokenizer *loaded[8];
static int n_loaded = -1;

static void load_all(void)
{
    n_loaded = 0;
    const char *env = getenv("TFM_FUZZ_TOKENIZERS");
    if (!env) return;
    char *list = strdup(env);
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p && n_loaded < 8; p = strtok_r(NULL, ":", &save))
        if (tfm_tokenizer_load(p, &loaded[n_loaded]) == TFM_OK) n_loaded++;
    free(list);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tfm_tokenizer *t = NULL;
#if FUZZ_TARGET == 1
    if (tok_load_spm_model(data, size, "fuzz.model", &t) == TFM_OK) exercise(t);
#elif FUZZ_TARGET == 2
    if (tok_load_hf_json((const char *)data, size, "tokenizer.json", NULL, &t) == TFM_OK) exercise(t);
#elif FUZZ_TARGET == 3
    gguf_file *f = NULL;
    if (gguf_parse(data, size, "fuzz.gguf", &f) == TFM_OK) {
        if (tfm_tokenizer_from_gguf(f, "fuzz.gguf", &t) == TFM_OK && t) exercise(t);
        gguf_free(f);
    }
#else
    if (n_loaded < 0) load_all();
    for (int k = 0; k < n_loaded; k++) {
        exercise_text(loaded[k], (const char *)data, size);
        /* The bytes as ids (some out of range: those must be refused, not read). */
        size_t n = size / 4, len;
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        memcpy(ids, data, n * 4);
        for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((uint32_t)ids[i] % (uint32_t)(tfm_tokenizer_vocab_size(loaded[k]) + 2));
        char *out = malloc(64 * (n + 1));
        (void)tfm_detokenize(loaded[k], ids, n, out, 64 * (n + 1), &len);
        free(out);
        free(ids);
    }
#endif
    tfm_tokenizer_free(t);
    return 0;
}
