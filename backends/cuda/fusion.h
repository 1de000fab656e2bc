/*
 * fusion.h — the cuda backend's op planner (fusion.cu) and the fused kernels it launches.
 *
 * The vtable hands us one small op at a time. For single-token steps the planner holds some back
 * and launches them together: RMSNorm (and, with the staged matvec, SwiGLU) outputs become "owed"
 * buffers (not written yet) that the next matvec computes on the fly from their sources; matvecs
 * sharing an input wait for each other (q/k/v, gate/up) and take the residual add or, for gate/up,
 * the SwiGLU that follows; RoPE of q and k and the two KV-cache writes become one kernel, or for one
 * token part of the decode attention kernel that follows them (TFM_CUDA_ATTN_FUSE=0: not). Batches:
 * a matmul waits for a residual add to fold in (cuBLAS beta = 1). An owed buffer is written (materialised) only if something else reads
 * it, or writes its sources, before it is fully overwritten; nothing is left pending across a sync,
 * a download or the end of a recorded step. TFM_CUDA_FUSE=0 turns the planner off.
 */
#ifndef TFM_BACKENDS_CUDA_FUSION_H
#define TFM_BACKENDS_CUDA_FUSION_H

#include "cuda_internal.h"

enum { TFM_CUDA_MVX_PLAIN = 0, TFM_CUDA_MVX_NORM = 1, TFM_CUDA_MVX_GLU = 2 };

/* Arguments of the fused matvec kernel (passed by value). */
typedef struct tfm_cuda_mvx_args {
    const void *w[3];
    float *y[3];
    int seg_end[3];      /* cumulative row counts */
    int nseg;
    int cols;
    const float *x;      /* plain input, RMSNorm source, or SwiGLU gate */
    const float *x2;     /* SwiGLU up */
    const float *g;      /* RMSNorm gain (f32) */
    float eps;
    float *res;          /* residual: res[r] += y[r] (one weight only), or NULL */
    int pair;            /* 2 weights of equal rows (gate, up): each warp takes row i of both */
    float *glu_out;      /* pair: glu_out[i] = silu(y0[i]) * y1[i] (may be y[0]: then y0 is not kept) */
} tfm_cuda_mvx_args;

/* Which of the concatenated weights row u belongs to (0..2) and its row there. Selected with
 * constant indices: a run-time index into the argument arrays would copy them to local memory. */
__device__ __forceinline__ int mvx_segment(const tfm_cuda_mvx_args &a, int u, int *local) {
    const int s = a.nseg > 1 && u >= a.seg_end[0] ? (a.nseg > 2 && u >= a.seg_end[1] ? 2 : 1) : 0;
    *local = u - (s == 0 ? 0 : s == 1 ? a.seg_end[0] : a.seg_end[1]);
    return s;
}

tfm_status tfm_cuda_mvx_setup(tfm_backend *be);
/* The streaming matvec (matvec_stream.cu): plain or RMSNorm input, pairs; rows of whole 512-byte loads.
 * tfm_cuda_mvx_launch hands it the shapes it fits. */
tfm_status tfm_cuda_mvs_setup(tfm_backend *be);
int tfm_cuda_mvs_fits(const tfm_backend *be, tfm_dtype wtype, int cols);
tfm_status tfm_cuda_mvs_launch(tfm_backend *be, const tfm_cuda_mvx_args *a, tfm_dtype wtype, int mode);
tfm_status tfm_cuda_mvx_launch(tfm_backend *be, const tfm_cuda_mvx_args *a, tfm_dtype wtype, int mode);
/* 1 when the selected matvec takes its input through L1 (no SwiGLU input mode; pairs instead). */
int tfm_cuda_mvx_direct(const tfm_backend *be);
int tfm_cuda_mvx_rows_per_block(void);
int tfm_cuda_mvx_row_multiple(void);

/* RoPE of q and k, then k and v appended to their caches, in one launch (elementwise.cu); for one token
 * the planner hands them to tfm_cuda_attention_decode_rope instead where it can. */
tfm_status tfm_cuda_rope_store(tfm_backend *be, const tfm_cuda_prelude *p);

/* The planner's entry points (the vtable ops call these). */
tfm_status tfm_cuda_plan_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n);
tfm_status tfm_cuda_plan_rmsnorm(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim,
                                 float eps);
tfm_status tfm_cuda_plan_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count);
tfm_status tfm_cuda_plan_add(tfm_backend *be, float *x, const float *y, size_t count);
tfm_status tfm_cuda_plan_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                              const float *inv_freq, tfm_rope_pairing pairing);
tfm_status tfm_cuda_plan_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n,
                                  int width);
tfm_status tfm_cuda_plan_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                   tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                   int head_dim, float scale, int causal);
tfm_status tfm_cuda_plan_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out);

/* Launches everything held back (owed buffers stay owed). */
tfm_status tfm_cuda_settle(tfm_backend *be);
/* Launches everything held back and writes every owed buffer. */
tfm_status tfm_cuda_settle_all(tfm_backend *be);
/* Before the host reads / writes device memory directly (download, upload). */
tfm_status tfm_cuda_before_read(tfm_backend *be, const void *ptr, size_t bytes);
tfm_status tfm_cuda_before_write(tfm_backend *be, const void *ptr, size_t bytes);

#endif
