/*
 * backend.h — the private contract between the core and a compute backend.
 *
 * The forward pass (lib/graph/) is written once against this table. A backend holds no model logic:
 * it owns memory (host memory for "cpu", device memory for "cuda") and implements the tensor
 * operations below. Pointers named `float *x` etc. are backend memory (device pointers on a GPU).
 *
 * Layout conventions (all row-major, last index contiguous):
 *   activations  float [n_tokens][width]
 *   weight       a tfm_weight: `rows` output features, each of `cols` input features, stored as
 *                rows of `cols` elements in `dtype` (quantised types: rows of blocks)
 *   KV cache     per layer, [n_ctx][n_head_kv][head_dim] in kv_dtype (f32, f16 or bf16)
 *
 * Plugins (libtfm-<name>.so) export `tfm_backend_entry`, returning a const table whose abi_version
 * must equal TFM_BACKEND_ABI_VERSION. Optional slots may be NULL: the core composes simpler ops.
 * Every fallible op returns a tfm_status and reports detail through tfm_backend_host's set_error.
 */
#ifndef TFM_LIB_BACKEND_H
#define TFM_LIB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "tfm/tfm.h"

#define TFM_BACKEND_ABI_VERSION 2

/* RoPE pairing: which elements of a head are rotated together. */
typedef enum tfm_rope_pairing {
    TFM_ROPE_ADJACENT = 0,  /* (x[2i], x[2i+1]) — llama.cpp's "normal" mode, GGUF Llama weights */
    TFM_ROPE_HALF = 1       /* (x[i], x[i + d/2]) — HF's rotate_half (NeoX style) */
} tfm_rope_pairing;

typedef struct tfm_weight {
    const void *data;     /* backend memory (cpu: pointer into the mapped file) */
    tfm_dtype dtype;
    int64_t rows, cols;
    void *backend_data;   /* backend-private (e.g. a repacked copy); NULL if unused */
    uint32_t flags;       /* TFM_WEIGHT_*, set by the core before weight_load */
} tfm_weight;

/* Only rows are looked up (embed), never multiplied: a backend need not prepare it for matmul. */
#define TFM_WEIGHT_EMBED_ONLY 1u
/* The host data lies in a read-only private mapping of the model file that the model owns: a
 * backend that keeps its own copy may drop those pages (madvise MADV_DONTNEED); they read back
 * from the file if touched again. Never set for memory the caller owns. */
#define TFM_WEIGHT_HOST_MAPPED 2u

typedef struct tfm_backend tfm_backend;  /* one backend instance (device + threads + handles) */

typedef struct tfm_backend_init_params {
    int32_t n_threads;    /* cpu threads; 0 = all cores */
    int32_t device;       /* device ordinal */
} tfm_backend_init_params;

/* Services the core offers a backend (plugins cannot link the core's internal symbols). */
typedef struct tfm_backend_host {
    void (*set_error)(const char *fmt, ...);             /* sets tfm_last_error() text */
    void (*log)(tfm_log_level level, const char *fmt, ...);
} tfm_backend_host;

typedef struct tfm_backend_ops {
    int abi_version;                /* TFM_BACKEND_ABI_VERSION */
    const char *name;               /* "cpu", "cuda" */
    int score;                      /* "auto" picks the available backend with the highest score */

    /* Availability probe: 1 if it can run here. Must not fail loudly (no device = 0). */
    int (*available)(void);

    tfm_status (*init)(const tfm_backend_init_params *params, const tfm_backend_host *host,
                       tfm_backend **out);
    void (*destroy)(tfm_backend *be);

    /* Memory. alloc returns zeroed memory or NULL (set_error tells why, with sizes). */
    void *(*alloc)(tfm_backend *be, size_t bytes);
    void (*free)(tfm_backend *be, void *ptr);
    tfm_status (*upload)(tfm_backend *be, void *dst, const void *host_src, size_t bytes);
    tfm_status (*download)(tfm_backend *be, void *host_dst, const void *src, size_t bytes);
    /* Free and total device memory in bytes (cpu: 0, 0 = unknown). */
    void (*mem_info)(tfm_backend *be, size_t *free_bytes, size_t *total_bytes);

    /* Makes a weight usable by this backend from host data (`host` valid for the model's lifetime,
     * e.g. an mmap). cpu: points at it without copying; gpu: uploads (may convert f32 to f16/bf16).
     * Fills w->data/backend_data. */
    tfm_status (*weight_load)(tfm_backend *be, tfm_weight *w, const void *host, tfm_dtype dtype,
                              int64_t rows, int64_t cols);
    void (*weight_free)(tfm_backend *be, tfm_weight *w);

    /* ---- operations (all may be asynchronous until sync) ---- */

    /* y[n][w->rows] = x[n][w->cols] · wᵀ */
    tfm_status (*matmul)(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n);

    /* out[i][:] = row ids[i] of the embedding table (rows = n_vocab, cols = dim), as f32.
     * ids is host memory; ids were validated by the core. */
    tfm_status (*embed)(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out);

    /* y[i] = x[i] / sqrt(mean(x[i]^2) + eps) * g, over rows of `dim`; g is an f32 weight [dim]. y may be x. */
    tfm_status (*rmsnorm)(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim,
                          float eps);

    /* Rotates, in place, x[n][n_head][head_dim] for positions pos0 .. pos0+n-1 using inv_freq
     * (backend memory, head_dim/2 floats: angle = pos * inv_freq[i]). */
    tfm_status (*rope)(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                       const float *inv_freq, tfm_rope_pairing pairing);

    /* Writes n rows of width `width` (f32) into a cache (kv_dtype) starting at row `row0`. */
    tfm_status (*kv_store)(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src,
                           int n, int width);

    /* Scaled dot-product attention for n queries at positions pos0 .. pos0+n-1 over cache rows
     * 0 .. pos0+n-1 (causal: query i sees rows <= pos0+i). q: [n][n_head][head_dim] f32; caches:
     * [n_ctx][n_head_kv][head_dim] in kv_dtype; out: [n][n_head][head_dim]. Head h reads kv head
     * h / (n_head / n_head_kv). `causal` = 0 lets every query see all pos0+n rows. */
    tfm_status (*attention)(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                            tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                            int head_dim, float scale, int causal);

    /* out = silu(gate) * up, elementwise over count floats. out may alias gate. */
    tfm_status (*swiglu)(tfm_backend *be, const float *gate, const float *up, float *out, size_t count);

    /* x += y, elementwise over count floats (residual add). */
    tfm_status (*add)(tfm_backend *be, float *x, const float *y, size_t count);

    /* Waits for queued work; reports the first asynchronous error. */
    tfm_status (*sync)(tfm_backend *be);

    /* ---- optional slots (NULL = not provided) ---- */

    /* Decode-step capture: the core brackets each single-token forward pass with these. A backend
     * may record the step the first time (e.g. a CUDA graph) and replay it for later tokens; `key`
     * identifies everything but the position (session, buffers, shapes). step_begin returns 1 if it
     * replayed the recorded step for position `pos` (the core then issues no ops for this step), else
     * 0: the core issues the ops and calls step_end. While recording, ops whose arguments depend on
     * the position (rope pos0, kv_store row0, attention pos0) must read it from backend-side state set
     * by step_begin, so the recording stays valid for every position; likewise embed reads the
     * step's token (passed to step_begin) from backend-side state, not from the host ids pointer. */
    int (*step_begin)(tfm_backend *be, uint64_t key, int pos, int32_t token);
    tfm_status (*step_end)(tfm_backend *be);

    /* y[i][n][w[i]->rows] = x[n][cols] · w[i]ᵀ for `count` weights of the same cols (2 to 4): the
     * Q/K/V projections, or gate and up. One call lets a backend prepare x once (e.g. quantise it)
     * and run the products as one job. Each y[i] must equal what matmul computes. */
    tfm_status (*matmul_shared)(tfm_backend *be, const tfm_weight *const *w, int count, const float *x,
                                float *const *y, int n);
} tfm_backend_ops;

/* The symbol a backend plugin exports. */
typedef const tfm_backend_ops *(*tfm_backend_entry_fn)(void);
#define TFM_BACKEND_ENTRY_SYMBOL "tfm_backend_entry"

/* Built-in backends. */
const tfm_backend_ops *tfm_cpu_backend_ops(void);

#endif /* TFM_LIB_BACKEND_H */
