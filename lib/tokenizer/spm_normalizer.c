/*
 * spm_normalizer.c — SentencePiece's normaliser: the precompiled character map and whitespace rules.
 *
 * The character map (NormalizerSpec.precompiled_charsmap, written by spm_train for nmt_nfkc and
 * friends) is one blob: a little-endian uint32 byte length of a darts-clone double-array trie, the
 * trie's 32-bit units, then NUL-terminated replacement strings. A trie value is the offset of a
 * replacement string. At each input position the longest key that matches wins; without a match
 * one UTF-8 character is copied, and a malformed byte becomes U+FFFD (consuming that one byte).
 * User-defined pieces are matched first and copied unchanged. Then, as NormalizerSpec asks:
 * leading, trailing and repeated spaces are dropped (remove_extra_whitespaces), a space is
 * prepended (add_dummy_prefix; appended with treat_whitespace_as_suffix) and spaces become U+2581
 * (escape_whitespaces).
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

static const char k_space_symbol[] = "\xE2\x96\x81"; /* U+2581 LOWER ONE EIGHTH BLOCK */

tfm_status tok_normalizer_set_charsmap(tok_normalizer *n, const void *blob, size_t len,
                                       const char *label)
{
    const unsigned char *b = blob;
    if (len == 0) return TFM_OK; /* identity */
    if (len < 4) return tfm_error(TFM_E_FORMAT, "%s: precompiled_charsmap of %zu bytes is truncated", label, len);
    uint32_t trie_bytes = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if (trie_bytes > len - 4 || trie_bytes % 4 != 0 || trie_bytes == 0)
        return tfm_error(TFM_E_FORMAT,
                         "%s: precompiled_charsmap trie size %u does not fit its %zu-byte blob (or is not a multiple of 4)",
                         label, trie_bytes, len);
    size_t n_units = trie_bytes / 4;
    size_t str_len = len - 4 - trie_bytes;
    /* Copy so the units are aligned and the strings end in a NUL we own. */
    char *mem = malloc(trie_bytes + str_len + 1);
    if (!mem) return tfm_error(TFM_E_OOM, "%s: out of memory for the charsmap", label);
    uint32_t *units = (uint32_t *)(void *)mem;
    for (size_t i = 0; i < n_units; i++) {
        const unsigned char *u = b + 4 + i * 4;
        units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(mem + trie_bytes, b + 4 + trie_bytes, str_len);
    mem[trie_bytes + str_len] = 0;
    free(n->owned);
    n->owned = mem;
    n->trie = units;
    n->trie_units = n_units;
    n->strings = mem + trie_bytes;
    n->strings_len = str_len;
    return TFM_OK;
}

/* darts-clone unit fields */
static inline int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & ((1u << 31) - 1); }
static inline uint32_t unit_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

/* Longest charsmap key prefixing s[0..n): its length (0 = none) and replacement string. Only the
 * first 32 matches count, as in SentencePiece. Every unit index is bounds-checked. */
static size_t charsmap_longest(const tok_normalizer *nm, const char *s, size_t n, const char **rep)
{
    const uint32_t *a = nm->trie;
    size_t size = nm->trie_units;
    size_t best = 0, found = 0;
    uint32_t pos = unit_offset(a[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        pos ^= c;
        if (pos >= size) break;
        uint32_t u = a[pos];
        if (unit_label(u) != c) break;
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) {
            if (pos >= size) break;
            uint32_t v = unit_value(a[pos]);
            if (found++ < 32 && v < nm->strings_len) {
                best = i + 1;
                *rep = nm->strings + v; /* NUL-terminated: the copy ends in our NUL */
            }
        }
    }
    return best;
}

/* One step of normalisation at s: how many input bytes it consumes and what it produces. */
static size_t normalize_prefix(const tfm_tokenizer *t, const char *s, size_t n, const char **rep,
                               size_t *rep_len)
{
    if (t->has_user_pieces) {
        int32_t id;
        size_t m = tok_trie_longest(&t->user_trie, s, n, &id);
        if (m) {
            *rep = s;
            *rep_len = m;
            return m;
        }
    }
    if (t->norm.trie) {
        const char *r = NULL;
        size_t m = charsmap_longest(&t->norm, s, n, &r);
        if (m) {
            *rep = r;
            *rep_len = strlen(r);
            return m;
        }
    }
    size_t m = tok_utf8_valid_len(s, n);
    if (m == 0) {
        *rep = "\xEF\xBF\xBD"; /* malformed: U+FFFD for one byte */
        *rep_len = 3;
        return 1;
    }
    *rep = s;
    *rep_len = m;
    return m;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int buf_put(buf *b, const char *s, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

tfm_status tok_spm_normalize(const tfm_tokenizer *t, const char *s, size_t n, char **out,
                             size_t *out_len)
{
    const tok_normalizer *nm = &t->norm;
    buf b = {0};
    *out = NULL;
    *out_len = 0;
    if (n == 0) return TFM_OK;
    const char *rep;
    size_t rep_len;

    if (nm->remove_extra_whitespaces) {
        while (n > 0) {
            size_t m = normalize_prefix(t, s, n, &rep, &rep_len);
            if (!(rep_len == 1 && rep[0] == ' ')) break;
            s += m;
            n -= m;
        }
    }
    if (n == 0) return TFM_OK;

    const char *ws = nm->escape_whitespaces ? k_space_symbol : " ";
    size_t ws_len = nm->escape_whitespaces ? 3 : 1;
    if (!nm->treat_whitespace_as_suffix && nm->add_dummy_prefix && buf_put(&b, ws, ws_len)) goto oom;

    int prev_space = nm->remove_extra_whitespaces;
    while (n > 0) {
        size_t m = normalize_prefix(t, s, n, &rep, &rep_len);
        if (prev_space && nm->remove_extra_whitespaces) {
            while (rep_len > 0 && rep[0] == ' ') {
                rep++;
                rep_len--;
            }
        }
        if (rep_len > 0) {
            for (size_t k = 0; k < rep_len; k++) {
                if (nm->escape_whitespaces && rep[k] == ' ') {
                    if (buf_put(&b, k_space_symbol, 3)) goto oom;
                } else if (buf_put(&b, rep + k, 1)) {
                    goto oom;
                }
            }
            prev_space = rep[rep_len - 1] == ' ';
        }
        s += m;
        n -= m;
        if (!nm->remove_extra_whitespaces) prev_space = 0;
    }
    if (nm->remove_extra_whitespaces) {
        while (b.n >= ws_len && memcmp(b.p + b.n - ws_len, ws, ws_len) == 0) b.n -= ws_len;
    }
    if (nm->treat_whitespace_as_suffix && nm->add_dummy_prefix && buf_put(&b, ws, ws_len)) goto oom;
    *out = b.p;
    *out_len = b.n;
    return TFM_OK;
oom:
    free(b.p);
    return tfm_error(TFM_E_OOM, "tokenize: out of memory normalising %zu bytes", n);
}
