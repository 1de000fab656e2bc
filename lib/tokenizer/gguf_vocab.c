/*
 * gguf_vocab.c — a tokenizer from a GGUF file's tokenizer.ggml.* metadata, behaving as llama.cpp.
 *
 *   tokenizer.ggml.model        "llama" (SentencePiece pieces, scores, types) or "gpt2" (byte-level BPE)
 *   tokenizer.ggml.tokens       string array: the pieces, id order
 *   tokenizer.ggml.scores       f32 array (llama: merge priority)
 *   tokenizer.ggml.token_type   i32 array: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
 *   tokenizer.ggml.merges       string array "left right" (gpt2, required), rank = index; both sides
 *                               and their concatenation must be pieces
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

/* Whether GGUF element type `ty` is an integer (or, with `float_ok`, any number). */
static int is_number_type(gguf_type ty, int float_ok)
{
    switch (ty) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64:
        return 1;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        return float_ok;
    default:
        return 0;
    }
}

static const char *type_word(gguf_type ty)
{
    switch (ty) {
    case GGUF_TYPE_STRING: return "strings";
    case GGUF_TYPE_BOOL: return "booleans";
    case GGUF_TYPE_ARRAY: return "arrays";
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64: return "floats";
    default: return "numbers";
    }
}

static int32_t get_id(const gguf_file *f, const char *key, int32_t dflt, int32_t n_vocab)
{
    int64_t v;
    if (!gguf_get_int(f, key, &v)) return dflt;
    return (v >= 0 && v < n_vocab) ? (int32_t)v : -1;
}

/* tokenizer.ggml.merges of a gpt2 vocabulary: required (llama.cpp refuses a file without it). Each
 * entry must be two pieces separated by a space whose concatenation is a piece too. llama.cpp does
 * not check the entries (a bad one just never applies); we refuse them as malformed, as Hugging Face
 * tokenizers does in the tokenizer.json these vocabularies are converted from, so no real file has
 * one. */
static tfm_status load_merges(tfm_tokenizer *t, const gguf_kv *kv, const char *label)
{
    if (!kv) return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.merges is missing (a gpt2 vocabulary needs it)", label);
    if (kv->type != GGUF_TYPE_ARRAY || kv->array_type != GGUF_TYPE_STRING || !kv->strings)
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.merges is not a string array", label);
    if (kv->array_len > (uint64_t)INT32_MAX)
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.merges has %llu entries", label,
                         (unsigned long long)kv->array_len);
    if (tok_pairmap_init(&t->merges, (size_t)kv->array_len) != TFM_OK)
        return tfm_error(TFM_E_OOM, "%s: out of memory for %llu merges", label, (unsigned long long)kv->array_len);
    char *tmp = NULL, q[96];
    size_t tmp_cap = 0;
    tfm_status st = TFM_OK;
    for (uint64_t i = 0; i < kv->array_len && st == TFM_OK; i++) {
        gguf_str m = kv->strings[i];
        int32_t ids[3];
        const char *why;
        st = tok_merge_split(t, m.ptr, (size_t)m.len, &tmp, &tmp_cap, ids, &why);
        if (st == TFM_OK)
            tok_pairmap_insert(&t->merges, ids[0], ids[1], (int32_t)i, ids[2]);
        else if (st == TFM_E_FORMAT)
            st = tfm_error(st, "%s: tokenizer.ggml.merges[%llu] \"%s\" %s", label, (unsigned long long)i,
                           tok_quote(m.ptr, (size_t)m.len, q, sizeof q), why);
        else
            st = tfm_error(st, "%s: out of memory", label);
    }
    free(tmp);
    return st;
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
    /* llama.cpp reads both arrays' raw data as float / int32 and asserts they are not strings; we
     * convert any numeric element type, and refuse strings, booleans and nested arrays. */
    if (scores && !is_number_type(scores->array_type, 1))
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.scores is an array of %s, not of numbers", label,
                         type_word(scores->array_type));
    if (types && !is_number_type(types->array_type, 0))
        return tfm_error(TFM_E_FORMAT, "%s: tokenizer.ggml.token_type is an array of %s, not of integers", label,
                         type_word(types->array_type));

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
