/*
 * tok_map.h — the three lookup structures the tokenizer needs (internal):
 *   tok_map     piece text -> id (open addressing over the vocabulary's own strings),
 *   tok_trie    a byte trie whose transitions live in one hash table (prefix matching),
 *   tok_pairmap (id, id) -> (rank, merged id) for byte-level BPE merges.
 * All are built once at load time and read-only afterwards.
 */
#ifndef TFM_LIB_TOKENIZER_TOK_MAP_H
#define TFM_LIB_TOKENIZER_TOK_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"

static inline uint64_t tok_hash_bytes(const char *s, size_t n)
{
    /* FNV-1a, 64-bit: short keys, good enough spread, no alignment needs. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static inline uint64_t tok_hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

typedef struct tok_map {
    int32_t *slots;           /* id or -1 */
    uint32_t *slot_hash;      /* low 32 bits of the key's hash, to skip most string compares */
    size_t mask;              /* capacity - 1 (a power of two) */
    const char *text;         /* the tokenizer's piece storage */
    const uint32_t *offset;
    const uint32_t *length;
} tok_map;

tfm_status tok_map_init(tok_map *m, size_t n_keys, const char *text, const uint32_t *offset,
                        const uint32_t *length);
void tok_map_free(tok_map *m);
/* Inserts id (its text is text+offset[id]); an existing equal key is kept (returns 0), else 1. */
int tok_map_insert(tok_map *m, int32_t id);
int32_t tok_map_find(const tok_map *m, const char *s, size_t n);

typedef struct tok_trie {
    uint64_t *keys;           /* (node << 8 | byte) + 1; 0 = empty slot */
    int32_t *child;
    size_t mask;
    int32_t *value;           /* per node: id or -1 */
    size_t n_nodes, cap_nodes;
    size_t n_edges;
    size_t max_depth;         /* longest key */
} tok_trie;

tfm_status tok_trie_insert(tok_trie *t, const char *s, size_t n, int32_t value);
void tok_trie_free(tok_trie *t);
/* Child of `node` by byte `b`, or -1. */
int32_t tok_trie_next(const tok_trie *t, int32_t node, unsigned char b);
/* Longest key that prefixes s[0..n): returns its length (0 = none) and stores its value. */
size_t tok_trie_longest(const tok_trie *t, const char *s, size_t n, int32_t *value);

typedef struct tok_pair_entry {
    uint64_t key;             /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t merged;
} tok_pair_entry;

typedef struct tok_pairmap {
    tok_pair_entry *e;
    size_t mask;
    size_t n;
} tok_pairmap;

tfm_status tok_pairmap_init(tok_pairmap *m, size_t n_keys);
void tok_pairmap_free(tok_pairmap *m);
/* Keeps the first (lowest-rank) entry for a pair. */
void tok_pairmap_insert(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
const tok_pair_entry *tok_pairmap_find(const tok_pairmap *m, int32_t left, int32_t right);

#endif
