/*
 * rank_bpe.c — BPE driven by a merge list (Hugging Face tokenizers, GPT-2 byte level, GGUF "gpt2").
 *
 * A word starts as a sequence of token ids (one per byte for byte-level BPE; one per character,
 * or its <0xNN> byte pieces, for byte-fallback BPE). The adjacent pair with the lowest merge rank
 * is merged, leftmost first among equal ranks, until no listed pair remains. A queued merge is
 * stale when the pair now at its position no longer produces the same id (the reference's test).
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tokenizer/tok_heap.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

typedef struct rsym {
    int32_t id, prev, next;
    int alive;
} rsym;

static int queue_pair(const tfm_tokenizer *t, tok_heap *h, const rsym *sy, int32_t pos)
{
    int32_t nx = sy[pos].next;
    if (nx < 0) return 0;
    const tok_pair_entry *e = tok_pairmap_find(&t->merges, sy[pos].id, sy[nx].id);
    if (!e) return 0;
    return tok_heap_push(h, ((uint64_t)(uint32_t)e->rank << 32) | (uint32_t)pos, e->merged, 0);
}

/* Merges the n symbols whose ids are in `ids` (rewritten in place); returns the count left. */
static tfm_status merge_ids(const tfm_tokenizer *t, int32_t *ids, size_t n, size_t *n_out)
{
    rsym local[64];
    *n_out = n;
    if (n < 2) return TFM_OK;
    rsym *sy = n <= 64 ? local : malloc(n * sizeof *sy);
    tok_heap h = {0};
    tfm_status st = TFM_OK;
    if (!sy) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    for (size_t i = 0; i < n; i++)
        sy[i] = (rsym){ids[i], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, 1};
    for (size_t i = 0; i + 1 < n; i++)
        if (queue_pair(t, &h, sy, (int32_t)i)) goto oom;
    while (h.n > 0) {
        tok_heap_item top = tok_heap_pop(&h);
        int32_t pos = (int32_t)(uint32_t)top.key;
        rsym *s = &sy[pos];
        if (!s->alive || s->next < 0) continue;
        rsym *r = &sy[s->next];
        const tok_pair_entry *e = tok_pairmap_find(&t->merges, s->id, r->id);
        if (!e || e->merged != top.a) continue; /* stale */
        s->id = top.a;
        r->alive = 0;
        s->next = r->next;
        if (r->next >= 0) sy[r->next].prev = pos;
        if (s->prev >= 0 && queue_pair(t, &h, sy, s->prev)) goto oom;
        if (queue_pair(t, &h, sy, pos)) goto oom;
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = sy[i].next) ids[k++] = sy[i].id;
    *n_out = k;
    goto done;
oom:
    st = tfm_error(TFM_E_OOM, "tokenize: out of memory");
done:
    if (sy != local) free(sy);
    free(h.v);
    return st;
}

static tfm_status push_all(tok_ids *out, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tfm_status st = tok_ids_push(out, ids[i]);
        if (st != TFM_OK) return st;
    }
    return TFM_OK;
}

/* GPT-2's reversible byte -> printable character map. */
int tok_bytelevel_char(unsigned b, char out[4])
{
    uint32_t cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
    else if (b <= 32) cp = 256 + b;
    else if (b <= 160) cp = 256 + 33 + (b - 127);
    else cp = 256 + 67; /* 173 */
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* One pre-token of byte-level BPE. */
tfm_status tok_bytelevel_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out)
{
    if (len == 0) return TFM_OK;
    if (t->ignore_merges) {
        char local[256];
        char *m = len * 2 <= sizeof local ? local : malloc(len * 2);
        if (!m) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
        size_t k = 0;
        for (size_t i = 0; i < len; i++) k += (size_t)tok_bytelevel_char((unsigned char)s[i], m + k);
        int32_t id = tok_map_find(&t->ids, m, k);
        if (m != local) free(m);
        if (id >= 0) return tok_ids_push(out, id);
    }
    int32_t local_ids[64];
    int32_t *ids = len <= 64 ? local_ids : malloc(len * sizeof *ids);
    if (!ids) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_id[(unsigned char)s[i]];
        if (id >= 0) ids[n++] = id;
        else if (t->unk >= 0) ids[n++] = t->unk;
    }
    tfm_status st = merge_ids(t, ids, n, &n);
    if (st == TFM_OK) st = push_all(out, ids, n);
    if (ids != local_ids) free(ids);
    return st;
}

static tfm_status hf_spm_word(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out);

/* Hugging Face BPE with byte fallback over an already normalised (U+2581-escaped) string. */
tfm_status tok_hf_spm_encode(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out)
{
    if (!t->hf_metaspace_split) return hf_spm_word(t, s, len, out);
    /* Metaspace split: a new word starts at every U+2581 (kept at the word's front). */
    size_t start = 0;
    for (size_t i = 1; i + 3 <= len; i++) {
        if (memcmp(s + i, "\xE2\x96\x81", 3) != 0) continue;
        tfm_status st = hf_spm_word(t, s + start, i - start, out);
        if (st != TFM_OK) return st;
        start = i;
        i += 2;
    }
    return hf_spm_word(t, s + start, len - start, out);
}

static tfm_status hf_spm_word(const tfm_tokenizer *t, const char *s, size_t len, tok_ids *out)
{
    if (len == 0) return TFM_OK;
    if (t->ignore_merges) {
        int32_t id = tok_map_find(&t->ids, s, len);
        if (id >= 0) return tok_ids_push(out, id);
    }
    int32_t *ids = malloc(len * sizeof *ids);
    if (!ids) return tfm_error(TFM_E_OOM, "tokenize: out of memory");
    size_t n = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < len;) {
        size_t m = tok_utf8_valid_len(s + i, len - i);
        if (m == 0) m = 1; /* a malformed byte stands alone (and falls back to its byte piece) */
        int32_t id = tok_map_find(&t->ids, s + i, m);
        if (id >= 0) {
            ids[n++] = id;
            prev_unk = 0;
        } else if (t->byte_fallback) {
            for (size_t k = 0; k < m; k++) {
                int32_t b = t->byte_id[(unsigned char)s[i + k]];
                if (b < 0) b = t->unk;
                if (b >= 0) ids[n++] = b; /* HF drops what has neither a byte piece nor an unk */
            }
            prev_unk = 0;
        } else if (t->unk >= 0 && !(prev_unk && t->hf_fuse_unk)) { /* fuse_unk: a run is one unk */
            ids[n++] = t->unk;
            prev_unk = 1;
        }
        i += m;
    }
    tfm_status st = merge_ids(t, ids, n, &n);
    if (st == TFM_OK) st = push_all(out, ids, n);
    free(ids);
    return st;
}
