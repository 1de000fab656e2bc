/*
 * tokenizer.c — the tokenizer object: building it (for the loaders), its accessors, freeing it.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

tfm_status tok_alloc(tfm_tokenizer **out, tok_kind kind, tok_flavour flavour, int32_t n_vocab,
                     size_t text_bytes_hint)
{
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > (1 << 24))
        return tfm_error(TFM_E_FORMAT, "tokenizer: vocabulary size %d out of range (1..16777216)",
                         (int)n_vocab);
    tfm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return tfm_error(TFM_E_OOM, "tokenizer: out of memory");
    t->kind = kind;
    t->flavour = flavour;
    t->n_vocab = n_vocab;
    t->offset = calloc((size_t)n_vocab, sizeof *t->offset);
    t->length = calloc((size_t)n_vocab, sizeof *t->length);
    t->score = calloc((size_t)n_vocab, sizeof *t->score);
    t->type = calloc((size_t)n_vocab, sizeof *t->type);
    t->special_always = calloc((size_t)n_vocab, 1);
    size_t cap = text_bytes_hint ? text_bytes_hint + 1 : (size_t)n_vocab * 8;
    t->text = malloc(cap);
    if (!t->offset || !t->length || !t->score || !t->type || !t->special_always || !t->text) {
        tfm_tokenizer_free(t);
        return tfm_error(TFM_E_OOM, "tokenizer: out of memory for %d pieces", (int)n_vocab);
    }
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    t->norm.add_dummy_prefix = 1;
    t->norm.remove_extra_whitespaces = 1;
    t->norm.escape_whitespaces = 1;
    memcpy(t->unk_surface, " \xE2\x81\x87 ", 6);
    t->text_cap = cap;
    *out = t;
    return TFM_OK;
}

tfm_status tok_set_piece(tfm_tokenizer *t, int32_t id, const char *piece, size_t len, float score,
                         tok_type type)
{
    if (id < 0 || id >= t->n_vocab) return tfm_error(TFM_E_INTERNAL, "tokenizer: piece id %d", id);
    if (len > 0xFFFF) return tfm_error(TFM_E_FORMAT, "tokenizer: piece %d is %zu bytes long", id, len);
    size_t used = id == 0 ? 0 : (size_t)t->offset[id - 1] + t->length[id - 1] + 1;
    size_t cap = t->text_cap;
    if (used + len + 1 > cap) {
        size_t ncap = cap * 2;
        while (ncap < used + len + 1) ncap *= 2;
        if (ncap > UINT32_MAX) return tfm_error(TFM_E_FORMAT, "tokenizer: pieces exceed 4 GiB");
        char *p = realloc(t->text, ncap);
        if (!p) return tfm_error(TFM_E_OOM, "tokenizer: out of memory");
        t->text = p;
        t->text_cap = ncap;
    }
    if (len) memcpy(t->text + used, piece, len);
    t->text[used + len] = 0;
    t->offset[id] = (uint32_t)used;
    t->length[id] = (uint32_t)len;
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
    return TFM_OK;
}

int tok_piece_byte(const char *p, size_t n)
{
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = p[k];
        int d = (c >= '0' && c <= '9') ? c - '0'
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

const char *tok_quote(const char *s, size_t n, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, i = 0;
    while (i < n) {
        size_t used = 0;
        uint32_t cp = 0;
        int ok = tok_utf8_check((const unsigned char *)s + i, n - i, &used, &cp) == TOK_UTF8_VALID;
        size_t need = ok ? used : 4; /* a character, or \xNN for one malformed byte */
        if (!ok) used = 1;
        if (ok && cp < 0x20) need = 4;
        if (o + need + 4 > cap) { /* room for "..." and the NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ok && cp >= 0x20) {
            memcpy(buf + o, s + i, used);
            o += used;
        } else {
            unsigned char b = (unsigned char)s[i];
            buf[o++] = '\\', buf[o++] = 'x', buf[o++] = hex[b >> 4], buf[o++] = hex[b & 15];
        }
        i += used;
    }
    buf[o] = 0;
    return buf;
}

tfm_status tok_merge_lookup(const tfm_tokenizer *t, const char *a, size_t la, const char *b, size_t lb, char **buf,
                            size_t *cap, int32_t ids[3])
{
    ids[0] = tok_map_find(&t->ids, a, la);
    ids[1] = tok_map_find(&t->ids, b, lb);
    ids[2] = -1;
    if (ids[0] < 0 || ids[1] < 0) return TFM_OK;
    if (la + lb > *cap || !*buf) { /* (allocated even for two empty pieces: no NULL to memcmp) */
        size_t ncap = (la + lb) * 2 + 16;
        char *p = realloc(*buf, ncap);
        if (!p) return TFM_E_OOM;
        *buf = p;
        *cap = ncap;
    }
    if (la) memcpy(*buf, a, la);
    if (lb) memcpy(*buf + la, b, lb);
    ids[2] = tok_map_find(&t->ids, *buf, la + lb);
    return TFM_OK;
}

tfm_status tok_merge_split(const tfm_tokenizer *t, const char *m, size_t n, char **buf, size_t *cap, int32_t ids[3],
                           const char **why)
{
    int n_spaces = 0;
    *why = "has no space between two pieces";
    for (size_t sp = 1; sp + 1 < n; sp++) {
        if (m[sp] != ' ') continue;
        tfm_status st = tok_merge_lookup(t, m, sp, m + sp + 1, n - sp - 1, buf, cap, ids);
        if (st != TFM_OK) return st;
        if (ids[2] >= 0) return TFM_OK;
        if (n_spaces++ == 0)
            *why = ids[0] < 0 || ids[1] < 0 ? "names a piece that is not in the vocabulary"
                                            : "merges into a piece that is not in the vocabulary";
        else
            *why = "is not two pieces of the vocabulary separated by a space";
    }
    return TFM_E_FORMAT;
}

tfm_status tok_add_special(tfm_tokenizer *t, int32_t id, int always)
{
    if (id < 0 || id >= t->n_vocab || t->length[id] == 0) return TFM_OK; /* nothing to match */
    tfm_status st = tok_trie_insert(&t->special_trie, tok_piece_ptr(t, id), t->length[id], id);
    if (st != TFM_OK) return tfm_error(st, "tokenizer: out of memory");
    if (always) t->special_always[id] = 1, t->has_always_specials = 1;
    unsigned char b = (unsigned char)tok_piece_ptr(t, id)[0];
    t->special_first[b >> 3] |= (uint8_t)(1u << (b & 7));
    t->has_specials = 1;
    return TFM_OK;
}

tfm_status tok_finish(tfm_tokenizer *t, const char *label)
{
    tfm_status st = tok_map_init(&t->ids, (size_t)t->n_vocab, t->text, t->offset, t->length);
    if (st != TFM_OK) return tfm_error(st, "%s: out of memory indexing the vocabulary", label);
    for (int32_t i = 0; i < t->n_vocab; i++) tok_map_insert(&t->ids, i);

    t->min_score = 3.402823466e38f;
    t->max_score = 1.175494351e-38f; /* FLT_MIN, as SentencePiece starts it */
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *p = tok_piece_ptr(t, i);
        size_t n = t->length[i];
        tok_type ty = (tok_type)t->type[i];
        if (ty == TOK_TYPE_NORMAL) {
            if (t->score[i] < t->min_score) t->min_score = t->score[i];
            if (t->score[i] > t->max_score) t->max_score = t->score[i];
        }
        if (ty == TOK_TYPE_UNKNOWN && t->unk < 0) t->unk = i;
        if (t->kind == TOK_KIND_BYTELEVEL_BPE) continue;
        if (ty == TOK_TYPE_BYTE || (t->flavour != TOK_FLAVOUR_SENTENCEPIECE)) {
            int b = tok_piece_byte(p, n);
            if (b >= 0 && t->byte_id[b] < 0 && (ty == TOK_TYPE_BYTE || t->flavour == TOK_FLAVOUR_LLAMA_CPP))
                t->byte_id[b] = i;
        }
        if (t->kind == TOK_KIND_SPM_UNIGRAM &&
            (ty == TOK_TYPE_NORMAL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNUSED) && n > 0) {
            if ((st = tok_trie_insert(&t->pieces_trie, p, n, i)) != TFM_OK)
                return tfm_error(st, "%s: out of memory", label);
        }
        if (ty == TOK_TYPE_USER_DEFINED && n > 0 && t->flavour == TOK_FLAVOUR_SENTENCEPIECE) {
            if ((st = tok_trie_insert(&t->user_trie, p, n, i)) != TFM_OK)
                return tfm_error(st, "%s: out of memory", label);
            t->has_user_pieces = 1;
        }
    }
    if (t->min_score == 3.402823466e38f) t->min_score = 0.0f;
    if (t->max_score == 1.175494351e-38f) t->max_score = 0.0f;
    if (t->kind == TOK_KIND_BYTELEVEL_BPE) {
        for (int b = 0; b < 256; b++) {
            char c[4];
            int n = tok_bytelevel_char((unsigned)b, c);
            t->byte_id[b] = tok_map_find(&t->ids, c, (size_t)n);
        }
    }
    return TFM_OK;
}

void tfm_tokenizer_free(tfm_tokenizer *t)
{
    if (!t) return;
    tok_map_free(&t->ids);
    tok_trie_free(&t->pieces_trie);
    tok_trie_free(&t->user_trie);
    tok_trie_free(&t->special_trie);
    tok_pairmap_free(&t->merges);
    tok_pretok_free(t);
    free(t->norm.owned);
    free(t->text);
    free(t->offset);
    free(t->length);
    free(t->score);
    free(t->type);
    free(t->special_always);
    free(t);
}

int32_t tfm_tokenizer_vocab_size(const tfm_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t tfm_tokenizer_bos(const tfm_tokenizer *t) { return t ? t->bos : -1; }
int32_t tfm_tokenizer_eos(const tfm_tokenizer *t) { return t ? t->eos : -1; }

const char *tfm_token_piece(const tfm_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return tok_piece_ptr(t, id);
}

const char *tfm_tokenizer_kind(const tfm_tokenizer *t)
{
    if (!t) return "";
    switch (t->kind) {
    case TOK_KIND_SPM_BPE: return "sentencepiece-bpe";
    case TOK_KIND_SPM_UNIGRAM: return "sentencepiece-unigram";
    case TOK_KIND_BYTELEVEL_BPE: return "bpe-bytelevel";
    }
    return "";
}

tfm_status tok_ids_push(tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return TFM_OK;
}
