/* weight_arena.c — packed weights carved out of large blocks on transparent huge pages. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>

#include "weight_arena.h"

#define HUGE_PAGE ((size_t)2 << 20)
/* Bytes of one block: room for many small matrices; a larger piece gets a block of its own. */
#define BLOCK_BYTES ((size_t)64 << 20)
#define PIECE_ALIGN 64

typedef struct block {
    struct block *next;
    char *base;
    size_t size, used;
    int live; /* pieces handed out and not yet freed */
} block;

struct tfm_weight_arena {
    block *blocks; /* the newest first; new pieces come from it */
};

static size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

static block *new_block(size_t bytes) {
    block *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->size = round_up(bytes > BLOCK_BYTES ? bytes : BLOCK_BYTES, HUGE_PAGE);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, b->size) != 0) {
        free(b);
        return NULL;
    }
    (void)madvise(p, b->size, MADV_HUGEPAGE); /* only a hint: THP may be off */
    b->base = p;
    return b;
}

void *tfm_arena_alloc(tfm_weight_arena **arena, size_t bytes) {
    if (!*arena && !(*arena = calloc(1, sizeof **arena)))
        return NULL;
    bytes = round_up(bytes ? bytes : 1, PIECE_ALIGN);
    block *b = (*arena)->blocks;
    if (!b || b->size - b->used < bytes) {
        if (!(b = new_block(bytes)))
            return NULL;
        b->next = (*arena)->blocks;
        (*arena)->blocks = b;
    }
    void *p = b->base + b->used;
    b->used += bytes;
    b->live++;
    return p;
}

void tfm_arena_free(tfm_weight_arena **arena, void *piece) {
    if (!piece || !*arena)
        return;
    for (block **at = &(*arena)->blocks; *at; at = &(*at)->next) {
        block *b = *at;
        if ((char *)piece < b->base || (char *)piece >= b->base + b->size)
            continue;
        if (--b->live == 0) { /* the last piece: the block goes back to the system */
            *at = b->next;
            free(b->base);
            free(b);
        }
        return;
    }
}

void tfm_arena_destroy(tfm_weight_arena **arena) {
    if (!*arena)
        return;
    for (block *b = (*arena)->blocks, *next; b; b = next) {
        next = b->next;
        free(b->base);
        free(b);
    }
    free(*arena);
    *arena = NULL;
}
