/*
 * encode.c — tfm_tokenize: BOS/EOS, special-token splitting, and the model of each text fragment.
 *
 * Special tokens are found leftmost-longest. Which ones count: with TFM_TOKENIZE_PARSE_SPECIAL the
 * control and unknown pieces (and tokenizer.json's special added tokens); always, the pieces the
 * reference matches regardless (GGUF user-defined tokens, tokenizer.json's non-special added
 * tokens). SentencePiece's own user-defined pieces are handled inside its normaliser instead.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"

static const char k_space_symbol[] = "\xE2\x96\x81";

/* llama.cpp's SentencePiece preprocessing: optional leading space, then spaces become U+2581. */
static tfm_status escape_spaces(const char *s, size_t len, int prefix, char **out, size_t *out_len)
{
    size_t spaces = prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++) spaces += s[i] == ' ';
    char *p = malloc(len + spaces * 2 + 1);
    if (!p) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    size_t n = 0;
    if (prefix) {
        memcpy(p, k_space_symbol, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(p + n, k_space_symbol, 3);
            n += 3;
        } else {
            p[n++] = s[i];
        }
    }
    *out = p;
    *out_len = n;
    return TFM_OK;
}

tfm_status tok_hf_spm_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out);

tfm_status tok_encode_fragment(const tfm_tokenizer *t, const char *s, size_t len, int at_start, tok_ids *out)
{
    if (len == 0) return TFM_OK;
    char *norm = NULL;
    size_t norm_len = 0;
    tfm_status st;
    if (t->kind == TOK_KIND_BYTELEVEL_BPE) return tok_pretok_split(t, s, len, tok_bytelevel_encode, out);

    switch (t->flavour) {
    case TOK_FLAVOUR_SENTENCEPIECE:
        st = tok_spm_normalize(t, s, len, &norm, &norm_len);
        break;
    case TOK_FLAVOUR_LLAMA_CPP:
        st = escape_spaces(s, len, t->norm.add_dummy_prefix, &norm, &norm_len);
        break;
    default: /* TOK_FLAVOUR_HF: Prepend / Metaspace rules */
        st = escape_spaces(s, len,
                           t->norm.add_dummy_prefix && (!t->hf_metaspace_first_only || at_start),
                           &norm, &norm_len);
        break;
    }
    if (st != TFM_OK) return st;
    size_t first = out->n;
    if (t->flavour == TOK_FLAVOUR_HF)
        st = tok_hf_spm_encode(t, norm, norm_len, out);
    else if (t->kind == TOK_KIND_SPM_UNIGRAM)
        st = tok_spm_unigram_encode(t, norm, norm_len, out);
    else
        st = tok_spm_bpe_encode(t, norm, norm_len, out);
    free(norm);
    if (st == TFM_OK && t->flavour == TOK_FLAVOUR_SENTENCEPIECE && !t->byte_fallback) {
        /* SentencePiece merges a run of unknown pieces into one. */
        size_t k = first;
        for (size_t i = first; i < out->n; i++) {
            int unk = t->type[out->v[i]] == TOK_TYPE_UNKNOWN;
            if (unk && k > first && t->type[out->v[k - 1]] == TOK_TYPE_UNKNOWN) continue;
            out->v[k++] = out->v[i];
        }
        out->n = k;
    }
    return st;
}

tfm_status tfm_tokenize(const tfm_tokenizer *t, const char *text, size_t length, uint32_t flags,
                        int32_t *ids, size_t capacity, size_t *n_ids)
{
    tfm_error_clear();
    if (n_ids) *n_ids = 0;
    if (!t || !n_ids || (length > 0 && !text) || (capacity > 0 && !ids))
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_tokenize: NULL tokenizer, text, ids or n_ids");
    tok_ids out = {0};
    tfm_status st = TFM_OK;
    int parse_special = (flags & TFM_TOKENIZE_PARSE_SPECIAL) != 0;
    int add_bos = (flags & TFM_TOKENIZE_ADD_BOS) || ((flags & TFM_TOKENIZE_MODEL_DEFAULTS) && t->add_bos);
    int add_eos = (flags & TFM_TOKENIZE_ADD_EOS) || ((flags & TFM_TOKENIZE_MODEL_DEFAULTS) && t->add_eos);

    if (add_bos && t->bos >= 0) st = tok_ids_push(&out, t->bos);

    size_t frag = 0;
    if (t->has_specials && (parse_special || t->has_always_specials) && st == TFM_OK) {
        for (size_t i = 0; i < length && st == TFM_OK;) {
            unsigned char b = (unsigned char)text[i];
            int32_t id = -1;
            size_t m = (t->special_first[b >> 3] >> (b & 7)) & 1
                           ? tok_trie_longest(&t->special_trie, text + i, length - i, &id) : 0;
            if (m == 0 || !(parse_special || t->special_always[id])) {
                i++;
                continue;
            }
            st = tok_encode_fragment(t, text + frag, i - frag, frag == 0, &out);
            if (st == TFM_OK) st = tok_ids_push(&out, id);
            i += m;
            frag = i;
        }
    }
    if (st == TFM_OK) st = tok_encode_fragment(t, text + frag, length - frag, frag == 0, &out);
    if (st == TFM_OK && add_eos && t->eos >= 0) st = tok_ids_push(&out, t->eos);
    if (st != TFM_OK) {
        free(out.v);
        return st;
    }
    *n_ids = out.n;
    if (out.n > capacity) {
        free(out.v);
        return tfm_error(TFM_E_BUFFER_TOO_SMALL, "tfm_tokenize: %zu ids do not fit in %zu", *n_ids, capacity);
    }
    if (out.n) memcpy(ids, out.v, out.n * sizeof *ids);
    free(out.v);
    return TFM_OK;
}
