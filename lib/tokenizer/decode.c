/*
 * decode.c — ids to text: the incremental decoder (tok_decoder.h), tfm_detokenize and the public
 * streaming decoder tfm_text_stream.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_decoder.h"
#include "tokenizer/tok_utf8.h"

static const char k_replacement[] = "\xEF\xBF\xBD";

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need) c *= 2;
    char *q = realloc(*p, c);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static tfm_status put_out(tok_decoder *d, const char *s, size_t n)
{
    if (n == 0) return TFM_OK;
    if (d->t->hf_spm_strip_first_space && d->total_out == 0 && s[0] == ' ') {
        s++; /* HF decoder Strip(" ", 1, 0): the text's first space goes */
        n--;
        if (n == 0) {
            d->total_out = 1; /* the strip happened; later spaces stay */
            return TFM_OK;
        }
    }
    if (grow(&d->out, &d->cap_out, d->n_out + n)) return tfm_error(TFM_E_OOM, "decode: out of memory");
    memcpy(d->out + d->n_out, s, n);
    d->n_out += n;
    d->total_out += n;
    return TFM_OK;
}

static tfm_status put_pending(tok_decoder *d, const char *s, size_t n)
{
    if (n == 0) return TFM_OK; /* (pending may still be NULL) */
    if (grow(&d->pending, &d->cap_pending, d->n_pending + n))
        return tfm_error(TFM_E_OOM, "decode: out of memory");
    memcpy(d->pending + d->n_pending, s, n);
    d->n_pending += n;
    return TFM_OK;
}

/* Moves decodable pending bytes to out. `final`: nothing more will arrive for this run. */
static tfm_status drain(tok_decoder *d, int final)
{
    const tfm_tokenizer *t = d->t;
    const unsigned char *p = (const unsigned char *)d->pending;
    size_t n = d->n_pending, i = 0;
    tfm_status st = TFM_OK;
    if (n == 0) return TFM_OK;
    if (t->kind != TOK_KIND_BYTELEVEL_BPE && t->flavour == TOK_FLAVOUR_HF) {
        /* HF ByteFallback: the whole run, valid or one U+FFFD per byte. */
        if (!final) return TFM_OK;
        int valid = 1;
        for (size_t k = 0; k < n && valid;) {
            size_t used;
            if (tok_utf8_check(p + k, n - k, &used, NULL) != TOK_UTF8_VALID) valid = 0;
            k += used;
        }
        if (valid) st = put_out(d, d->pending, n);
        for (size_t k = 0; !valid && k < n && st == TFM_OK; k++) st = put_out(d, k_replacement, 3);
        d->n_pending = 0;
        return st;
    }
    int lossy = t->kind == TOK_KIND_BYTELEVEL_BPE;
    while (i < n && st == TFM_OK) {
        size_t used;
        int r = tok_utf8_check(p + i, n - i, &used, NULL);
        if (r == TOK_UTF8_VALID) {
            size_t j = i + used; /* copy the whole valid stretch at once */
            while (j < n) {
                size_t u2;
                if (tok_utf8_check(p + j, n - j, &u2, NULL) != TOK_UTF8_VALID) break;
                j += u2;
            }
            st = put_out(d, (const char *)p + i, j - i);
            i = j;
        } else if (r == TOK_UTF8_TRUNCATED && !final) {
            break; /* hold the incomplete character */
        } else {
            st = put_out(d, k_replacement, 3);
            i += lossy ? used : 1;
        }
    }
    memmove(d->pending, d->pending + i, n - i);
    d->n_pending = n - i;
    return st;
}

void tok_decoder_init(tok_decoder *d, const tfm_tokenizer *t)
{
    memset(d, 0, sizeof *d);
    d->t = t;
}

void tok_decoder_free(tok_decoder *d)
{
    free(d->out);
    free(d->pending);
    memset(d, 0, sizeof *d);
}

/* Appends piece text with U+2581 turned into spaces; `strip_first` drops a leading U+2581. */
static tfm_status put_spm_text(tok_decoder *d, const char *s, size_t n, int strip_first)
{
    if (strip_first && n >= 3 && memcmp(s, "\xE2\x96\x81", 3) == 0) {
        s += 3;
        n -= 3;
    }
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            tfm_status st = put_out(d, s + run, i - run);
            if (st == TFM_OK) st = put_out(d, " ", 1);
            if (st != TFM_OK) return st;
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    return put_out(d, s + run, n - run);
}

/* GPT-2 byte-level: each character of the piece maps back to one byte. */
static tfm_status put_bytelevel(tok_decoder *d, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t used;
        uint32_t cp = 0;
        int r = tok_utf8_check((const unsigned char *)s + i, n - i, &used, &cp);
        tfm_status st;
        if (r != TOK_UTF8_VALID) {
            st = put_pending(d, s + i, used);
        } else {
            int b = -1;
            if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) b = (int)cp;
            else if (cp >= 256 && cp <= 256 + 32) b = (int)(cp - 256);
            else if (cp >= 256 + 33 && cp <= 256 + 66) b = (int)(cp - 256 - 33 + 127);
            else if (cp == 256 + 67) b = 173;
            if (b >= 0) {
                char c = (char)b;
                st = put_pending(d, &c, 1);
            } else {
                st = put_pending(d, s + i, used); /* not from the byte map: keep the character */
            }
        }
        if (st != TFM_OK) return st;
        i += used;
    }
    return TFM_OK;
}

tfm_status tok_decoder_push(tok_decoder *d, int32_t id)
{
    const tfm_tokenizer *t = d->t;
    if (id < 0 || id >= t->n_vocab)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "decode: token id %d is outside the vocabulary (0..%d)",
                         (int)id, (int)t->n_vocab - 1);
    const char *s = tok_piece_ptr(t, id);
    size_t n = t->length[id];
    tok_type ty = (tok_type)t->type[id];
    tfm_status st;

    if (t->kind == TOK_KIND_BYTELEVEL_BPE) {
        if (ty == TOK_TYPE_CONTROL) return TFM_OK;
        if (ty == TOK_TYPE_USER_DEFINED) { /* added tokens are stored as plain text */
            st = put_pending(d, s, n);
        } else {
            st = put_bytelevel(d, s, n);
        }
        return st == TFM_OK ? drain(d, 0) : st;
    }

    int first_text_piece = !d->seen_text_piece;
    if (ty != TOK_TYPE_CONTROL) d->seen_text_piece = 1;
    if (ty == TOK_TYPE_BYTE) {
        int b = tok_piece_byte(s, n);
        if (b >= 0) {
            char c = (char)b;
            st = put_pending(d, &c, 1);
            return st == TFM_OK ? drain(d, 0) : st;
        }
    }
    /* Any other piece ends a run of byte pieces. */
    if ((st = drain(d, 1)) != TFM_OK) return st;
    switch (ty) {
    case TOK_TYPE_CONTROL:
        return TFM_OK;
    case TOK_TYPE_UNKNOWN:
        if (t->flavour == TOK_FLAVOUR_SENTENCEPIECE) return put_out(d, t->unk_surface, strlen(t->unk_surface));
        if (t->flavour == TOK_FLAVOUR_LLAMA_CPP) return put_out(d, "\xE2\x96\x85", 3);
        return put_spm_text(d, s, n, 0);
    case TOK_TYPE_USER_DEFINED:
        if (t->flavour == TOK_FLAVOUR_LLAMA_CPP) return put_out(d, s, n);
        break;
    default:
        break;
    }
    /* SentencePiece drops a leading U+2581 (the dummy prefix) from the first piece that is not a
     * control piece; with remove_extra_whitespaces, from every piece while the text is still empty. */
    int strip = 0;
    if (t->flavour != TOK_FLAVOUR_HF && (t->norm.add_dummy_prefix || t->norm.remove_extra_whitespaces))
        strip = d->total_out == 0 && (first_text_piece || t->norm.remove_extra_whitespaces);
    return put_spm_text(d, s, n, strip);
}

tfm_status tok_decoder_finish(tok_decoder *d)
{
    tfm_status st = drain(d, 1);
    d->total_out = 0;
    d->seen_text_piece = 0;
    return st;
}

tfm_status tfm_detokenize(const tfm_tokenizer *t, const int32_t *ids, size_t n_ids, char *text,
                          size_t capacity, size_t *length)
{
    tfm_error_clear();
    if (length) *length = 0;
    if (!t || !length || (n_ids > 0 && !ids) || (capacity > 0 && !text))
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_detokenize: NULL tokenizer, ids, text or length");
    tok_decoder d;
    tok_decoder_init(&d, t);
    tfm_status st = TFM_OK;
    for (size_t i = 0; i < n_ids && st == TFM_OK; i++) st = tok_decoder_push(&d, ids[i]);
    if (st == TFM_OK) st = tok_decoder_finish(&d);
    if (st == TFM_OK) {
        *length = d.n_out;
        if (d.n_out > capacity)
            st = tfm_error(TFM_E_BUFFER_TOO_SMALL, "tfm_detokenize: %zu bytes do not fit in %zu", d.n_out, capacity);
        else if (d.n_out)
            memcpy(text, d.out, d.n_out);
    }
    tok_decoder_free(&d);
    return st;
}

/* ---------------------------------------------------------------- streaming */

struct tfm_text_stream {
    tok_decoder d;
};

tfm_status tfm_text_stream_create(const tfm_tokenizer *t, tfm_text_stream **out)
{
    tfm_error_clear();
    if (out) *out = NULL;
    if (!t || !out) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_text_stream_create: NULL tokenizer or out");
    tfm_text_stream *s = calloc(1, sizeof *s);
    if (!s) return tfm_error(TFM_E_OOM, "tfm_text_stream_create: out of memory");
    tok_decoder_init(&s->d, t);
    *out = s;
    return TFM_OK;
}

void tfm_text_stream_free(tfm_text_stream *s)
{
    if (!s) return;
    tok_decoder_free(&s->d);
    free(s);
}

tfm_status tfm_text_stream_push(tfm_text_stream *s, int32_t id, const char **text, size_t *length)
{
    tfm_error_clear();
    if (!s || !text || !length) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_text_stream_push: NULL argument");
    s->d.n_out = 0; /* the previous text's lifetime ends here */
    tfm_status st = tok_decoder_push(&s->d, id);
    *text = s->d.out ? s->d.out : "";
    *length = s->d.n_out;
    return st;
}

tfm_status tfm_text_stream_flush(tfm_text_stream *s, const char **text, size_t *length)
{
    tfm_error_clear();
    if (!s || !text || !length) return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_text_stream_flush: NULL argument");
    s->d.n_out = 0;
    tfm_status st = tok_decoder_finish(&s->d);
    *text = s->d.out ? s->d.out : "";
    *length = s->d.n_out;
    return st;
}
