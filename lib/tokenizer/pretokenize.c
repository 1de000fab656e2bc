/*
 * pretokenize.c — the Split pre-tokenizer of byte-level BPE, evaluated with PCRE2.
 *
 * Behaviour "Isolated": every regex match is a pre-token and so is every gap between matches. The
 * pattern is compiled with UTF and UCP (so \s, \p{L}, \p{N} follow Unicode) and JIT-compiled when
 * PCRE2 has a JIT for this machine. Input that is not valid UTF-8 is matched with
 * PCRE2_MATCH_INVALID_UTF: malformed bytes never match, so a run of them ends up in a gap, becomes
 * its own pre-token, and is encoded byte by byte (decoding gives the same bytes back).
 *
 * Every match runs under fixed limits (TOK_REGEX_*_LIMIT below), so a pattern that backtracks
 * catastrophically costs bounded time and memory whatever PCRE2's build defaults are; what happens
 * when a search hits them is explained in tok_pretok_split.
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

/* PCRE2 compile errors that make a pattern malformed in any regex dialect (Oniguruma, which HF
 * tokenizers uses, included): unbalanced parentheses or brackets, a reversed range, a quantifier with
 * nothing to repeat or reversed bounds, a trailing backslash. Any other compile error may be a
 * construct Oniguruma accepts and PCRE2 does not (unbounded look-behind, its own escapes), so it is
 * reported as unsupported rather than malformed. */
static tfm_status regex_error_status(int err)
{
    switch (err) {
    case PCRE2_ERROR_END_BACKSLASH:
    case PCRE2_ERROR_QUANTIFIER_OUT_OF_ORDER:
    case PCRE2_ERROR_MISSING_SQUARE_BRACKET:
    case PCRE2_ERROR_CLASS_RANGE_ORDER:
    case PCRE2_ERROR_QUANTIFIER_INVALID:
    case PCRE2_ERROR_MISSING_CLOSING_PARENTHESIS:
    case PCRE2_ERROR_UNMATCHED_CLOSING_PARENTHESIS:
        return TFM_E_FORMAT;
    case PCRE2_ERROR_HEAP_FAILED:
        return TFM_E_OOM;
    default:
        return TFM_E_UNSUPPORTED;
    }
}

static tfm_status regex_compile(const char *pattern, size_t len, const char *label, const char *what,
                                pcre2_code **out)
{
    int err = 0;
    PCRE2_SIZE err_off = 0;
    *out = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                         &err_off, NULL);
    if (*out) return TFM_OK;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    size_t shown = len > 80 ? 80 : len; /* quoted up to 80 bytes, cut between characters */
    while (shown > 0 && shown < len && ((unsigned char)pattern[shown] & 0xC0) == 0x80) shown--;
    return tfm_error(regex_error_status(err), "%s: %s regex \"%.*s%s\" does not compile at offset %zu: %s", label,
                     what, (int)shown, pattern, shown < len ? "..." : "", (size_t)err_off, (const char *)msg);
}

tfm_status tok_regex_check(const char *pattern, size_t len, const char *label, const char *what)
{
    pcre2_code *re;
    tfm_status st = regex_compile(pattern, len, label, what, &re);
    pcre2_code_free(re);
    return st;
}

/* The limits of one pcre2_match call: PCRE2's default match limit (ten million backtracking steps,
 * well under a second), depth the same, and 64 MiB of backtracking memory (PCRE2's default is 20 GB). */
enum { TOK_REGEX_MATCH_LIMIT = 10000000, TOK_REGEX_DEPTH_LIMIT = 10000000, TOK_REGEX_HEAP_LIMIT_KIB = 64 * 1024 };

tfm_status tok_pretok_compile(tfm_tokenizer *t, const char *pattern, size_t len, const char *label)
{
    pcre2_code *re;
    tfm_status st = regex_compile(pattern, len, label, "pre-tokenizer", &re);
    if (st != TFM_OK) return st;
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!mc) {
        pcre2_code_free(re);
        return tfm_error(TFM_E_OOM, "%s: out of memory", label);
    }
    pcre2_set_match_limit(mc, TOK_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mc, TOK_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(mc, TOK_REGEX_HEAP_LIMIT_KIB);
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* no JIT: the interpreter still works */
    tok_pretok_free(t);
    t->pretok = re;
    t->pretok_match_ctx = mc;
    return TFM_OK;
}

void tok_pretok_free(tfm_tokenizer *t)
{
    pcre2_code_free((pcre2_code *)t->pretok); /* both accept NULL */
    pcre2_match_context_free((pcre2_match_context *)t->pretok_match_ctx);
    t->pretok = NULL;
    t->pretok_match_ctx = NULL;
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
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, 0, md, (pcre2_match_context *)t->pretok_match_ctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        /* The search gave up on a limit before finding the next match or showing there is none: a
         * pattern that backtracks catastrophically on this text, e.g. "(a+)+$" on "aaa...a!". Neither
         * raising the limits (the work grows exponentially) nor failing the whole call is useful, so
         * the rest of the text is treated as not matching: one gap, hence one pre-token, as if the
         * search had returned no match. HF tokenizers has no defined behaviour here (Oniguruma's retry
         * limit makes its search fail); real pre-tokenizer patterns stay far below the limits. */
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
            rc == PCRE2_ERROR_JIT_STACKLIMIT)
            break;
        if (rc == PCRE2_ERROR_NOMEMORY) {
            st = tfm_error(TFM_E_OOM, "tokenize: out of memory in the pre-tokenizer regex");
            break;
        }
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
