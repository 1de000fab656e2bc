/*
 * gguf_vocab.c — a tokenizer from a GGUF file's tokenizer.ggml.* metadata, behaving as llama.cpp.
 *
 *   tokenizer.ggml.model        "llama" (SentencePiece pieces, scores, types) or "gpt2" (byte-level BPE)
 *   tokenizer.ggml.tokens       string array: the pieces, id order
 *   tokenizer.ggml.scores       f32 array (llama: merge priority)
 *   tokenizer.ggml.token_type   i32 array: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
 *   tokenizer.ggml.merges       string array "left right" (gpt2), rank = index
 *   tokenizer.ggml.pre          gpt2 pre-tokenizer name ("llama-bpe" for Llama-3)
 *   tokenizer.ggml.{bos,eos,unknown,padding}_token_id, add_bos_token, add_eos_token, add_space_prefix
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

static int str_is(gguf_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int32_t get_id(const gguf_file *f, const char *key, int32_t dflt, int32_t n_vocab)
{
    int64_t v;
    if (!gguf_get_int(f, key, &v)) return dflt;
    return (v >= 0 && v < n_vocab) ? (int32_t)v : -1;
}

static tfm_status load_merges(tfm_tokenizer *t, const gguf_kv *kv, const char *label)
{
    if (!kv) return TFM_OK;
    if (kv->type != GGUF_TYPE_ARRAY || kv->array_type != GGUF_TYPE_STRING || !kv->strings)
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.merges is not a string array", label);
    if (kv->array_len > (uint64_t)INT32_MAX)
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.merges has %llu entries", label,
                         (unsigned long long)kv->array_len);
    if (tok_pairmap_init(&t->merges, (size_t)kv->array_len) != TFM_OK)
        return tfm_error(TFM_E_OOM, "%s: out of memory for %llu merges", label, (unsigned long long)kv->array_len);
    char *tmp = NULL;
    size_t tmp_cap = 0;
    for (uint64_t i = 0; i < kv->array_len; i++) {
        gguf_str m = kv->strings[i];
        /* "left right": the separator is the first space not at the start (pieces may begin with one). */
        uint64_t sp = 1;
        while (sp < m.len && m.ptr[sp] != ' ') sp++;
        if (sp >= m.len) continue;
        int32_t l = tok_map_find(&t->ids, m.ptr, (size_t)sp);
        int32_t r = tok_map_find(&t->ids, m.ptr + sp + 1, (size_t)(m.len - sp - 1));
        if (l < 0 || r < 0) continue;
        size_t n = (size_t)m.len - 1;
        if (n > tmp_cap) {
            char *p = realloc(tmp, n);
            if (!p) {
                free(tmp);
                return tfm_error(TFM_E_OOM, "%s: out of memory", label);
            }
            tmp = p;
            tmp_cap = n;
        }
        memcpy(tmp, m.ptr, (size_t)sp);
        memcpy(tmp + sp, m.ptr + sp + 1, (size_t)(m.len - sp - 1));
        int32_t merged = tok_map_find(&t->ids, tmp, n);
        if (merged < 0) continue;
        tok_pairmap_insert(&t->merges, l, r, (int32_t)i, merged);
    }
    free(tmp);
    return TFM_OK;
}

tfm_status tfm_tokenizer_from_gguf(const gguf_file *f, const char *label, tfm_tokenizer **out)
{
    *out = NULL;
    if (!label) label = "gguf";
    gguf_str model;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model)) return TFM_OK; /* no tokenizer */
    int is_llama = str_is(model, "llama"), is_gpt2 = str_is(model, "gpt2");
    if (!is_llama && !is_gpt2)
        return tfm_error(TFM_E_UNSUPPORTED, "%s: tokenizer.ggml.model \"%.*s\" is not supported (llama, gpt2)",
                         label, (int)(model.len > 64 ? 64 : model.len), model.ptr);

    const gguf_kv *tokens = gguf_find(f, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_TYPE_ARRAY || tokens->array_type != GGUF_TYPE_STRING || !tokens->strings)
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.tokens is missing or not a string array", label);
    if (tokens->array_len == 0 || tokens->array_len > (1u << 24))
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries (expected 1..16777216)",
                         label, (unsigned long long)tokens->array_len);
    int32_t n = (int32_t)tokens->array_len;
    const gguf_kv *scores = gguf_find(f, "tokenizer.ggml.scores");
    const gguf_kv *types = gguf_find(f, "tokenizer.ggml.token_type");
    if (scores && (scores->type != GGUF_TYPE_ARRAY || scores->array_len != tokens->array_len))
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.scores has %llu entries, tokens %d", label,
                         (unsigned long long)scores->array_len, (int)n);
    if (types && (types->type != GGUF_TYPE_ARRAY || types->array_len != tokens->array_len))
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries, tokens %d", label,
                         (unsigned long long)types->array_len, (int)n);

    size_t text_bytes = 0;
    for (int32_t i = 0; i < n; i++) text_bytes += (size_t)tokens->strings[i].len + 1;
    tfm_tokenizer *t;
    tfm_status st = tok_alloc(&t, is_llama ? TOK_KIND_SPM_BPE : TOK_KIND_BYTELEVEL_BPE,
                              TOK_FLAVOUR_LLAMA_CPP, n, text_bytes);
    if (st != TFM_OK) return st;
    for (int32_t i = 0; i < n && st == TFM_OK; i++) {
        gguf_str s = tokens->strings[i];
        float score = scores ? (float)gguf_array_float(scores, (uint64_t)i) : 0.0f;
        int64_t ty = types ? gguf_array_int(types, (uint64_t)i) : TOK_TYPE_NORMAL;
        if (ty < TOK_TYPE_NORMAL || ty > TOK_TYPE_BYTE) ty = TOK_TYPE_NORMAL; /* llama.cpp: undefined = normal */
        st = tok_set_piece(t, i, s.ptr, (size_t)s.len, score, (tok_type)ty);
    }
    if (st == TFM_OK) st = tok_finish(t, label);
    if (st != TFM_OK) goto fail;

    int b;
    if (is_llama) {
        t->bos = get_id(f, "tokenizer.ggml.bos_token_id", 1 < n ? 1 : -1, n);
        t->eos = get_id(f, "tokenizer.ggml.eos_token_id", 2 < n ? 2 : -1, n);
        t->unk = get_id(f, "tokenizer.ggml.unknown_token_id", 0, n);
        t->add_bos = 1;
        t->add_eos = 0;
        t->norm.add_dummy_prefix = 1;
        if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) t->norm.add_dummy_prefix = b;
        t->norm.remove_extra_whitespaces = 0;
        t->byte_fallback = 1;
    } else {
        t->bos = get_id(f, "tokenizer.ggml.bos_token_id", 11 < n ? 11 : -1, n);
        t->eos = get_id(f, "tokenizer.ggml.eos_token_id", 11 < n ? 11 : -1, n);
        t->unk = get_id(f, "tokenizer.ggml.unknown_token_id", -1, n);
        t->add_bos = 0;
        t->add_eos = 0;
        gguf_str pre = {"default", 7};
        gguf_get_str(f, "tokenizer.ggml.pre", &pre);
        if (str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3")) {
            t->ignore_merges = 1;
            t->add_bos = 1;
            st = tok_pretok_compile(t, tok_llama3_pattern, strlen(tok_llama3_pattern), label);
        } else {
            st = tfm_error(TFM_E_UNSUPPORTED, "%s: tokenizer.ggml.pre \"%.*s\" is not supported (llama-bpe)",
                           label, (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
        }
        if (st == TFM_OK) st = load_merges(t, gguf_find(f, "tokenizer.ggml.merges"), label);
        if (st != TFM_OK) goto fail;
    }
    t->pad = get_id(f, "tokenizer.ggml.padding_token_id", -1, n);
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;

    /* llama.cpp matches user-defined tokens always, control and unknown ones with parse_special. */
    for (int32_t i = 0; i < n && st == TFM_OK; i++) {
        uint8_t ty = t->type[i];
        if (ty == TOK_TYPE_USER_DEFINED) st = tok_add_special(t, i, 1);
        else if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_UNKNOWN) st = tok_add_special(t, i, 0);
    }
    if (st != TFM_OK) goto fail;
    *out = t;
    return TFM_OK;
fail:
    tfm_tokenizer_free(t);
    return st;
}
