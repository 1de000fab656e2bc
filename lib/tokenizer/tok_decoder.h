/*
 * tok_decoder.h — incremental ids -> text (internal). tfm_detokenize runs it over all ids at once;
 * tfm_text_stream runs it one id at a time; both give the same bytes.
 *
 * Raw bytes of pieces are held in `pending` until they are known to form complete characters;
 * what is final goes to `out`. How malformed bytes become U+FFFD follows the reference of the
 * tokenizer's flavour:
 *   sentencepiece / llama.cpp  byte pieces are decoded one character at a time; each byte that
 *                              does not start a well-formed character becomes one U+FFFD;
 *   HF byte fallback           a run of byte pieces that is not valid UTF-8 as a whole becomes one
 *                              U+FFFD per byte piece (so the whole run is held back);
 *   byte-level BPE             all bytes pass through one UTF-8 decoder that replaces each maximal
 *                              ill-formed subsequence with one U+FFFD (WHATWG / Rust from_utf8_lossy).
 */
#ifndef TFM_LIB_TOKENIZER_TOK_DECODER_H
#define TFM_LIB_TOKENIZER_TOK_DECODER_H

#include <stddef.h>

#include "tokenizer/tok_internal.h"

typedef struct tok_decoder {
    const tfm_tokenizer *t;
    char *out;
    size_t n_out, cap_out;
    char *pending;
    size_t n_pending, cap_pending;
    size_t total_out;   /* bytes made final since the start (HF: strip the first space) */
    int seen_text_piece;/* a non-control piece was decoded (SentencePiece: dummy prefix rule) */
} tok_decoder;

void tok_decoder_init(tok_decoder *d, const tfm_tokenizer *t);
void tok_decoder_free(tok_decoder *d);
/* Appends the text of `id` (final bytes to d->out, the rest held). */
tfm_status tok_decoder_push(tok_decoder *d, int32_t id);
/* Makes everything held final (malformed or incomplete bytes become U+FFFD) and resets the
 * first-piece state so the decoder can start a new text. */
tfm_status tok_decoder_finish(tok_decoder *d);

#endif
