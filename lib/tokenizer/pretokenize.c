/*
 * pretokenize.c — the Split pre-tokenizer of byte-level BPE, evaluated with PCRE2.
 *
 * Behaviour "Isolated": every regex match is a pre-token and so is every gap between matches. The
 * pattern is compiled with UTF and UCP (so \s, \p{L}, \p{N} follow Unicode) and JIT-compiled when
 * PCRE2 has a JIT for this machine. Input that is not valid UTF-8 is matched with
 * PCRE2_MATCH_INVALID_UTF: malformed bytes never match, so a run of them ends up in a gap, becomes
 * its own pre-token, and is encoded byte by byte (decoding gives the same bytes back).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>

#include "error.h"
#include "tokenizer/tok_internal.h"

/* Llama-3's pattern, as its tokenizer.json spells it. */
const char tok_llama3_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

tfm_status tok_pretok_compile(tfm_tokenizer *t, const char *pattern, size_t len, const char *label)
{
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return tfm_error(TFM_E_UNSUPPORTED, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                         label, (size_t)err_off, (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* no JIT: the interpreter still works */
    tok_pretok_free(t);
    t->pretok = re;
    return TFM_OK;
}

void tok_pretok_free(tfm_tokenizer *t)
{
    if (t->pretok) pcre2_code_free((pcre2_code *)t->pretok);
    t->pretok = NULL;
}

tfm_status tok_pretok_split(const tfm_tokenizer *t, const char *s, size_t len,
                            tfm_status (*fn)(const tfm_tokenizer *, const char *, size_t, tok_ids *),
                            tok_ids *out)
{
    if (len == 0) return TFM_OK;
    if (!t->pretok) return fn(t, s, len, out);
    const pcre2_code *re = t->pretok;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    tfm_status st = TFM_OK;
    size_t pos = 0, gap = 0;
    while (pos < len && st == TFM_OK) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = tfm_error(TFM_E_INTERNAL, "tokenize: pre-tokenizer regex failed at byte %zu: %s", pos,
                           (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (a > gap) st = fn(t, s + gap, a - gap, out);
        if (st == TFM_OK && b > a) st = fn(t, s + a, b - a, out);
        if (b > a) {
            pos = gap = b;
        } else {
            /* An empty match: step over one byte (or one character) and keep it in the gap. */
            gap = a;
            pos = a + 1;
            while (pos < len && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
        }
    }
    if (st == TFM_OK && gap < len) st = fn(t, s + gap, len - gap, out);
    pcre2_match_data_free(md);
    return st;
}
