/* weight_arena.h — memory for the cpu backend's packed weights, on transparent huge pages.
 *
 * A decode step streams every weight once; through 4 KB pages that is a TLB miss and a page walk
 * every 4 KB (a 2 MB page covers 512 of them). Packed weights are therefore carved, 64-byte aligned,
 * out of large anonymous mappings advised MADV_HUGEPAGE (a hint: without THP they are ordinary pages).
 * Small matrices share a block, so a 300 KB matrix does not cost a whole 2 MB page. A block is
 * unmapped when its last piece is freed. Not thread-safe: the backend calls it under its lock. */
#ifndef TFM_CPU_WEIGHT_ARENA_H
#define TFM_CPU_WEIGHT_ARENA_H

#include <stddef.h>

typedef struct tfm_weight_arena tfm_weight_arena;

/* A piece of `bytes` bytes (64-byte aligned) or NULL when memory cannot be had. */
void *tfm_arena_alloc(tfm_weight_arena **arena, size_t bytes);

/* Returns a piece; NULL is a no-op. */
void tfm_arena_free(tfm_weight_arena **arena, void *piece);

/* Unmaps every block (pieces still out become invalid). */
void tfm_arena_destroy(tfm_weight_arena **arena);

#endif /* TFM_CPU_WEIGHT_ARENA_H */
