/*
 * fuzz_text.c — the input is text for fixed vocabularies, loaded once from the paths in
 * $TFM_FUZZ_VOCABS (colon-separated: a SentencePiece .model with Llama-2's settings, a byte-level BPE
 * tokenizer.json, ...). The first input byte picks the vocabulary and the tokenize flags; the rest is
 * the text.
 *
 * Besides the checks of fuzz_common.h, the round trip: for valid UTF-8 text, decode(encode(text))
 * gives the text back byte for byte when no special tokens are parsed or added. This holds for
 * byte-level BPE and for SentencePiece with byte fallback and identity normalisation (Llama-2's
 * tokenizer), except for a literal U+2581 ("▁"), which SentencePiece itself decodes as a space.
 */
#include "fuzz_common.h"

static tfm_tokenizer *vocabs[8];
static int n_vocabs = -1;

static void load_vocabs(void)
{
    n_vocabs = 0;
    const char *env = getenv("TFM_FUZZ_VOCABS");
    if (!env || !*env) {
        fprintf(stderr, "fuzz_text: set TFM_FUZZ_VOCABS to tokenizer files (colon-separated)\n");
        exit(2);
    }
    char *list = strdup(env);
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p && n_vocabs < 8; p = strtok_r(NULL, ":", &save)) {
        if (tfm_tokenizer_load(p, &vocabs[n_vocabs]) != TFM_OK) {
            fprintf(stderr, "fuzz_text: %s\n", tfm_last_error());
            exit(2);
        }
        n_vocabs++;
    }
    free(list);
}

/* 1 if s[0..n) is well-formed UTF-8 (no surrogates, no overlong forms, at most U+10FFFF). */
static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static int has_lower_block(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (n_vocabs < 0) load_vocabs();
    if (size < 1 || n_vocabs == 0) return 0;
    const tfm_tokenizer *t = vocabs[data[0] % n_vocabs];
    static const uint32_t flag_sets[] = {0, TFM_TOKENIZE_PARSE_SPECIAL, TFM_TOKENIZE_ADD_BOS | TFM_TOKENIZE_ADD_EOS,
                                         TFM_TOKENIZE_MODEL_DEFAULTS};
    uint32_t flags = flag_sets[(data[0] >> 4) % 4];
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    char *copy = malloc(len ? len : 1); /* exact size: a read past the text is caught */
    memcpy(copy, text, len);
    fuzz_exercise_text(t, copy, len, flags);

    if (flags == 0 && valid_utf8(text, len) && !has_lower_block(text, len)) {
        size_t n = 0;
        tfm_tokenize(t, copy, len, 0, NULL, 0, &n);
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        tfm_tokenize(t, copy, len, 0, ids, n, &n);
        size_t need = 0, got = 0;
        tfm_detokenize(t, ids, n, NULL, 0, &need);
        char *out = malloc(need + 1);
        tfm_detokenize(t, ids, n, out, need, &got);
        if (got != len || memcmp(out, copy, len) != 0)
            fuzz_fail("round trip through %s changed %zu bytes of text into %zu bytes", tfm_tokenizer_kind(t), len, got);
        free(out);
        free(ids);
    }
    free(copy);
    return 0;
}
