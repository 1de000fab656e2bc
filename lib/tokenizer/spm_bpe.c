/*
 * spm_bpe.c — SentencePiece BPE encoding: merges chosen by the score of the merged piece.
 *
 * The normalised text starts as one symbol per UTF-8 character (a user-defined piece is one frozen
 * symbol). Repeatedly the adjacent pair whose concatenation is a piece with the highest score is
 * merged; equal scores go to the leftmost pair. A symbol that is not a piece is unknown: with byte
 * fallback it becomes its <0xNN> byte pieces.
 *
 * Two flavours differ in small ways. The sentencepiece library merges only into NORMAL,
 * USER_DEFINED and UNUSED pieces and splits an UNUSED result back into the pair it came from;
 * llama.cpp (GGUF "llama" vocabularies) merges into any piece and knows no frozen symbols.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_heap.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

typedef struct sym {
    int32_t prev, next;
    uint32_t start, len; /* len 0: merged away */
    int freeze;
} sym;

/* Pieces that were merged into an UNUSED piece: how to split them back. */
typedef struct rev_merge {
    uint32_t start, len, left_len;
} rev_merge;

typedef struct bpe_state {
    const tfm_tokenizer *t;
    const char *s;
    sym *syms;
    tok_heap heap;
    rev_merge *rev;
    size_t n_rev, cap_rev;
    int sentencepiece;
} bpe_state;

static int mergeable(const bpe_state *st, int32_t id)
{
    if (!st->sentencepiece) return 1;
    uint8_t ty = st->t->type[id];
    return ty == TOK_TYPE_NORMAL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNUSED;
}

static int maybe_add_pair(bpe_state *st, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return 0;
    const sym *l = &st->syms[left], *r = &st->syms[right];
    if (l->freeze || r->freeze) return 0;
    uint32_t size = l->len + r->len;
    int32_t id = tok_map_find(&st->t->ids, st->s + l->start, size);
    if (id < 0 || !mergeable(st, id)) return 0;
    uint64_t key = ((uint64_t)~tok_float_order(st->t->score[id]) << 32) | (uint32_t)left;
    if (tok_heap_push(&st->heap, key, right, (int32_t)size)) return -1;
    if (st->sentencepiece && st->t->type[id] == TOK_TYPE_UNUSED) {
        if (st->n_rev == st->cap_rev) {
            size_t cap = st->cap_rev ? st->cap_rev * 2 : 16;
            rev_merge *v = realloc(st->rev, cap * sizeof *v);
            if (!v) return -1;
            st->rev = v;
            st->cap_rev = cap;
        }
        st->rev[st->n_rev++] = (rev_merge){l->start, size, l->len};
    }
    return 0;
}

static tfm_status push_bytes(const tfm_tokenizer *t, const char *p, size_t n, tok_ids *out)
{
    for (size_t k = 0; k < n; k++) {
        int32_t id = t->byte_id[(unsigned char)p[k]];
        if (id < 0) id = t->unk;
        if (id < 0) continue; /* no byte piece and no unknown piece: nothing to emit */
        tfm_status st = tok_ids_push(out, id);
        if (st != TFM_OK) return st;
    }
    return TFM_OK;
}

/* Emits the ids of one final symbol text; `depth` bounds the UNUSED re-splitting. */
static tfm_status emit(bpe_state *st, uint32_t start, uint32_t len, tok_ids *out, int depth)
{
    const tfm_tokenizer *t = st->t;
    const char *p = st->s + start;
    int32_t id = tok_map_find(&t->ids, p, len);
    if (st->sentencepiece) {
        if (id >= 0 && t->type[id] == TOK_TYPE_UNUSED && depth < 64) {
            /* SentencePiece keeps the last recorded split of this text. */
            for (size_t k = st->n_rev; k-- > 0;) {
                const rev_merge *r = &st->rev[k];
                if (r->len == len && memcmp(st->s + r->start, p, len) == 0) {
                    tfm_status s1 = emit(st, start, r->left_len, out, depth + 1);
                    if (s1 != TFM_OK) return s1;
                    return emit(st, start + r->left_len, len - r->left_len, out, depth + 1);
                }
            }
        }
        if (id < 0) id = t->unk;
        if (id >= 0 && t->type[id] == TOK_TYPE_UNKNOWN && t->byte_fallback)
            return push_bytes(t, p, len, out);
        return id >= 0 ? tok_ids_push(out, id) : TFM_OK;
    }
    /* llama.cpp: a text that is no piece goes out as bytes. */
    if (id >= 0) return tok_ids_push(out, id);
    return push_bytes(t, p, len, out);
}

tfm_status tok_spm_bpe_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out)
{
    if (len == 0) return TFM_OK;
    if (len > 0x7FFFFFFF) return tfm_error(TFM_E_INVALID_ARGUMENT, "tokenize: text over 2 GiB");
    bpe_state st = {.t = t, .s = s, .sentencepiece = t->flavour == TOK_FLAVOUR_SENTENCEPIECE};
    tfm_status status = TFM_OK;
    st.syms = malloc(len * sizeof *st.syms);
    if (!st.syms) return tfm_error(TFM_E_OOM, "tokenize: out of memory");

    int32_t n = 0;
    for (size_t pos = 0; pos < len; n++) {
        size_t m = 0;
        int freeze = 0;
        if (st.sentencepiece && t->has_user_pieces) {
            int32_t id;
            m = tok_trie_longest(&t->user_trie, s + pos, len - pos, &id);
            freeze = m > 0;
        }
        if (m == 0) {
            m = tok_utf8_lead_len((unsigned char)s[pos]);
            if (m > len - pos) m = len - pos;
        }
        st.syms[n] = (sym){n - 1, -1, (uint32_t)pos, (uint32_t)m, freeze};
        if (n > 0) st.syms[n - 1].next = n;
        pos += m;
    }
    for (int32_t i = 0; i + 1 < n; i++)
        if (maybe_add_pair(&st, i, i + 1)) goto oom;

    while (st.heap.n > 0) {
        tok_heap_item top = tok_heap_pop(&st.heap);
        int32_t left = (int32_t)(uint32_t)top.key, right = top.a;
        sym *l = &st.syms[left], *r = &st.syms[right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != (uint32_t)top.b) continue; /* stale */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) st.syms[r->next].prev = left;
        r->len = 0;
        if (maybe_add_pair(&st, l->prev, left) || maybe_add_pair(&st, left, l->next)) goto oom;
    }
    for (int32_t i = 0; i >= 0 && i < n; i = st.syms[i].next) {
        if ((status = emit(&st, st.syms[i].start, st.syms[i].len, out, 0)) != TFM_OK) break;
    }
    goto done;
oom:
    status = tfm_error(TFM_E_OOM, "tokenize: out of memory");
done:
    free(st.syms);
    free(st.heap.v);
    free(st.rev);
    return status;
}
