/*
 * spm_unigram.c — SentencePiece Unigram encoding: the best segmentation by summed piece scores.
 *
 * A Viterbi pass over byte positions (SentencePiece's "optimized" encoder): for each character
 * start, every piece that begins there (found by walking the piece trie) extends the best path
 * ending at its end. A user-defined piece scores length * max_score - 0.1 so it always wins; where
 * no single-character piece starts, an unknown node of one character scores min_score - 10.
 * Arithmetic follows the reference (double sums stored as float) so ties resolve identically.
 */
#include <stdlib.h>

#include "error.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

typedef struct best_node {
    int32_t id;        /* piece id, or the unknown id */
    int32_t starts_at; /* -1: not reached yet */
    float score;       /* best path score ending here */
} best_node;

tfm_status tok_spm_unigram_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out)
{
    if (len == 0) return TFM_OK;
    if (len > 0x7FFFFFFF) return tfm_error(TFM_E_INVALID_ARGUMENT, "tokenize: text over 2 GiB");
    best_node *best = malloc((len + 1) * sizeof *best);
    if (!best) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    for (size_t i = 0; i <= len; i++) best[i] = (best_node){-1, -1, 0.0f};

    const float unk_score = t->min_score - 10.0f;
    const tok_trie *trie = &t->pieces_trie;
    for (size_t start = 0; start < len;) {
        const float here = best[start].score;
        size_t mblen = tok_utf8_lead_len((unsigned char)s[start]);
        if (mblen > len - start) mblen = len - start;
        int has_single = 0;
        int32_t node = 0;
        for (size_t k = start; k < len && trie->n_nodes; k++) {
            node = tok_trie_next(trie, node, (unsigned char)s[k]);
            if (node < 0) break;
            int32_t id = trie->value[node];
            if (id < 0 || t->type[id] == TOK_TYPE_UNUSED) continue;
            size_t length = k + 1 - start;
            double score = t->type[id] == TOK_TYPE_USER_DEFINED
                               ? (double)((float)length * t->max_score) - 0.1
                               : (double)t->score[id];
            double cand = score + (double)here;
            best_node *target = &best[k + 1];
            if (target->starts_at < 0 || cand > (double)target->score) {
                target->score = (float)cand;
                target->starts_at = (int32_t)start;
                target->id = id;
            }
            if (length == mblen) has_single = 1;
        }
        if (!has_single) {
            best_node *target = &best[start + mblen];
            float cand = unk_score + here;
            if (target->starts_at < 0 || cand > target->score) {
                target->score = cand;
                target->starts_at = (int32_t)start;
                target->id = t->unk;
            }
        }
        start += mblen;
    }

    /* Walk back from the end, then emit in order. */
    size_t n_nodes = 0;
    for (size_t end = len; end > 0; end = (size_t)best[end].starts_at) n_nodes++;
    int32_t *ends = malloc(n_nodes * sizeof *ends);
    if (!ends) {
        free(best);
        return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    }
    size_t k = n_nodes;
    for (size_t end = len; end > 0; end = (size_t)best[end].starts_at) ends[--k] = (int32_t)end;
    tfm_status st = TFM_OK;
    for (k = 0; k < n_nodes && st == TFM_OK; k++) {
        size_t end = (size_t)ends[k], start = (size_t)best[end].starts_at;
        int32_t id = best[end].id;
        if (id >= 0 && t->type[id] == TOK_TYPE_UNKNOWN && t->byte_fallback) {
            for (size_t b = start; b < end && st == TFM_OK; b++) {
                int32_t bid = t->byte_id[(unsigned char)s[b]];
                if (bid < 0) bid = t->unk;
                if (bid >= 0) st = tok_ids_push(out, bid);
            }
        } else if (id >= 0) {
            st = tok_ids_push(out, id);
        }
    }
    free(ends);
    free(best);
    return st;
}
