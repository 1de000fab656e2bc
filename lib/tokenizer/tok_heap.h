/* tok_heap.h — a binary min-heap of (64-bit key, two ints) used by both BPE merge loops (internal). */
#ifndef TFM_LIB_TOKENIZER_TOK_HEAP_H
#define TFM_LIB_TOKENIZER_TOK_HEAP_H

#include <stdint.h>
#include <stdlib.h>

typedef struct tok_heap_item {
    uint64_t key; /* smallest pops first */
    int32_t a, b;
} tok_heap_item;

typedef struct tok_heap {
    tok_heap_item *v;
    size_t n, cap;
} tok_heap;

static inline int tok_heap_push(tok_heap *h, uint64_t key, int32_t a, int32_t b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        tok_heap_item *v = realloc(h->v, cap * sizeof *v);
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    tok_heap_item it = {key, a, b};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].key <= key) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = it;
    return 0;
}

static inline tok_heap_item tok_heap_pop(tok_heap *h)
{
    tok_heap_item top = h->v[0];
    tok_heap_item last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1].key < h->v[c].key) c++;
        if (h->v[c].key >= last.key) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Maps a float to a uint32 whose unsigned order is the float's order. */
static inline uint32_t tok_float_order(float f)
{
    union { float f; uint32_t u; } x = {f == 0.0f ? 0.0f : f}; /* -0 and +0 compare equal */
    return (x.u & 0x80000000u) ? ~x.u : (x.u | 0x80000000u);
}

#endif
