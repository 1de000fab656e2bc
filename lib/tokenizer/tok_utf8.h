/* tok_utf8.h — UTF-8 helpers shared by the tokenizer (internal, header-only). */
#ifndef TFM_LIB_TOKENIZER_TOK_UTF8_H
#define TFM_LIB_TOKENIZER_TOK_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length SentencePiece (and llama.cpp) assume from a lead byte alone, without validating. */
static inline size_t tok_utf8_lead_len(unsigned char b)
{
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[b >> 4];
}

enum { TOK_UTF8_INVALID = 0, TOK_UTF8_VALID = 1, TOK_UTF8_TRUNCATED = 2 };

/* Examines the character at s[0..n) (n >= 1) against Unicode's well-formed byte sequences
 * (Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
 *   VALID:     *used = its length, *cp = the code point;
 *   TRUNCATED: the n bytes are a proper prefix of a well-formed sequence, *used = n;
 *   INVALID:   *used = the length of the maximal well-formed prefix ("maximal subpart"), at least 1. */
static inline int tok_utf8_check(const unsigned char *s, size_t n, size_t *used, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t c;
    if (b < 0x80) {
        *used = 1;
        if (cp) *cp = b;
        return TOK_UTF8_VALID;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *used = 1;
        return TOK_UTF8_INVALID;
    }
    for (size_t k = 1; k < need; k++) {
        if (k >= n) {
            *used = n;
            return TOK_UTF8_TRUNCATED;
        }
        unsigned char x = s[k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (x < l || x > h) {
            *used = k;
            return TOK_UTF8_INVALID;
        }
        c = (c << 6) | (x & 0x3F);
    }
    *used = need;
    if (cp) *cp = c;
    return TOK_UTF8_VALID;
}

/* Length of the well-formed character at s, or 0 if s[0..n) does not start with one. */
static inline size_t tok_utf8_valid_len(const char *s, size_t n)
{
    size_t used;
    return tok_utf8_check((const unsigned char *)s, n, &used, NULL) == TOK_UTF8_VALID ? used : 0;
}

/* Number of trailing bytes of s[0..n) that form an incomplete (but so far well-formed) character,
 * i.e. bytes a decoder must hold back until more arrive. */
static inline size_t tok_utf8_incomplete_tail(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char b = u[n - back];
        if ((b & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
        size_t used;
        return tok_utf8_check(u + n - back, back, &used, NULL) == TOK_UTF8_TRUNCATED ? back : 0;
    }
    return 0;
}

#endif
