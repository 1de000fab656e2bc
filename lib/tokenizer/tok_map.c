/* tok_map.c — piece map, byte trie and merge-pair map (see tok_map.h). */
#include "tokenizer/tok_map.h"

#include <stdlib.h>
#include <string.h>

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

/* ---------------------------------------------------------------- tok_map */

tfm_status tok_map_init(tok_map *m, size_t n_keys, const char *text, const uint32_t *offset,
                        const uint32_t *length)
{
    memset(m, 0, sizeof *m);
    size_t cap = pow2_at_least(n_keys * 2 + 1);
    m->slots = malloc(cap * sizeof *m->slots);
    m->slot_hash = malloc(cap * sizeof *m->slot_hash);
    if (!m->slots || !m->slot_hash) {
        tok_map_free(m);
        return TFM_E_OOM;
    }
    memset(m->slots, 0xff, cap * sizeof *m->slots);
    m->mask = cap - 1;
    m->text = text;
    m->offset = offset;
    m->length = length;
    return TFM_OK;
}

void tok_map_free(tok_map *m)
{
    free(m->slots);
    free(m->slot_hash);
    memset(m, 0, sizeof *m);
}

int tok_map_insert(tok_map *m, int32_t id)
{
    const char *s = m->text + m->offset[id];
    size_t n = m->length[id];
    uint64_t h = tok_hash_bytes(s, n);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t e = m->slots[i];
        if (e < 0) {
            m->slots[i] = id;
            m->slot_hash[i] = (uint32_t)h;
            return 1;
        }
        if (m->slot_hash[i] == (uint32_t)h && m->length[e] == n &&
            memcmp(m->text + m->offset[e], s, n) == 0)
            return 0;
    }
}

int32_t tok_map_find(const tok_map *m, const char *s, size_t n)
{
    if (!m->slots) return -1;
    uint64_t h = tok_hash_bytes(s, n);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t e = m->slots[i];
        if (e < 0) return -1;
        if (m->slot_hash[i] == (uint32_t)h && m->length[e] == n &&
            memcmp(m->text + m->offset[e], s, n) == 0)
            return e;
    }
}

/* ---------------------------------------------------------------- tok_trie */

static tfm_status trie_grow_edges(tok_trie *t)
{
    size_t cap = t->keys ? (t->mask + 1) * 2 : 1024;
    uint64_t *keys = calloc(cap, sizeof *keys);
    int32_t *child = malloc(cap * sizeof *child);
    if (!keys || !child) {
        free(keys);
        free(child);
        return TFM_E_OOM;
    }
    if (t->keys) {
        for (size_t i = 0; i <= t->mask; i++) {
            if (!t->keys[i]) continue;
            size_t j = tok_hash_u64(t->keys[i]) & (cap - 1);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = t->keys[i];
            child[j] = t->child[i];
        }
    }
    free(t->keys);
    free(t->child);
    t->keys = keys;
    t->child = child;
    t->mask = cap - 1;
    return TFM_OK;
}

static tfm_status trie_new_node(tok_trie *t, int32_t *node)
{
    if (t->n_nodes == t->cap_nodes) {
        size_t cap = t->cap_nodes ? t->cap_nodes * 2 : 256;
        int32_t *v = realloc(t->value, cap * sizeof *v);
        if (!v) return TFM_E_OOM;
        t->value = v;
        t->cap_nodes = cap;
    }
    t->value[t->n_nodes] = -1;
    *node = (int32_t)t->n_nodes++;
    return TFM_OK;
}

tfm_status tok_trie_insert(tok_trie *t, const char *s, size_t n, int32_t value)
{
    tfm_status st;
    int32_t node = 0;
    if (t->n_nodes == 0 && (st = trie_new_node(t, &node)) != TFM_OK) return st;
    for (size_t k = 0; k < n; k++) {
        if (!t->keys || (t->n_edges + 1) * 2 > t->mask + 1) {
            if ((st = trie_grow_edges(t)) != TFM_OK) return st;
        }
        uint64_t key = (((uint64_t)node << 8) | (unsigned char)s[k]) + 1;
        size_t i = tok_hash_u64(key) & t->mask;
        while (t->keys[i] && t->keys[i] != key) i = (i + 1) & t->mask;
        if (!t->keys[i]) {
            int32_t fresh;
            if ((st = trie_new_node(t, &fresh)) != TFM_OK) return st;
            t->keys[i] = key;
            t->child[i] = fresh;
            t->n_edges++;
        }
        node = t->child[i];
    }
    if (t->value[node] < 0) t->value[node] = value; /* first insertion wins */
    if (n > t->max_depth) t->max_depth = n;
    return TFM_OK;
}

void tok_trie_free(tok_trie *t)
{
    free(t->keys);
    free(t->child);
    free(t->value);
    memset(t, 0, sizeof *t);
}

int32_t tok_trie_next(const tok_trie *t, int32_t node, unsigned char b)
{
    if (!t->keys) return -1;
    uint64_t key = (((uint64_t)node << 8) | b) + 1;
    for (size_t i = tok_hash_u64(key) & t->mask;; i = (i + 1) & t->mask) {
        if (t->keys[i] == key) return t->child[i];
        if (!t->keys[i]) return -1;
    }
}

size_t tok_trie_longest(const tok_trie *t, const char *s, size_t n, int32_t *value)
{
    size_t best = 0;
    int32_t node = 0;
    if (t->n_nodes == 0) return 0;
    for (size_t k = 0; k < n; k++) {
        node = tok_trie_next(t, node, (unsigned char)s[k]);
        if (node < 0) break;
        if (t->value[node] >= 0) {
            best = k + 1;
            *value = t->value[node];
        }
    }
    return best;
}

/* ---------------------------------------------------------------- tok_pairmap */

tfm_status tok_pairmap_init(tok_pairmap *m, size_t n_keys)
{
    size_t cap = pow2_at_least(n_keys * 2 + 1);
    m->e = calloc(cap, sizeof *m->e);
    if (!m->e) return TFM_E_OOM;
    m->mask = cap - 1;
    m->n = 0;
    return TFM_OK;
}

void tok_pairmap_free(tok_pairmap *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}

void tok_pairmap_insert(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (size_t i = tok_hash_u64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->e[i].key == key) return;
        if (!m->e[i].key) {
            m->e[i].key = key;
            m->e[i].rank = rank;
            m->e[i].merged = merged;
            m->n++;
            return;
        }
    }
}

const tok_pair_entry *tok_pairmap_find(const tok_pairmap *m, int32_t left, int32_t right)
{
    if (!m->e) return NULL;
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (size_t i = tok_hash_u64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->e[i].key == key) return &m->e[i];
        if (!m->e[i].key) return NULL;
    }
}
