/*
 * cuda_internal.h — state and helpers shared by the cuda backend's files (CUDA C++, internal).
 *
 * One tfm_backend owns a device, a stream, a cuBLAS handle, scratch buffers and the recorded decode
 * steps. Every kernel is launched through tfm_cuda_launch(), which (on Hopper) adds programmatic
 * dependent launch: the next kernel may start while this one drains, so a kernel must call
 * pdl_wait() before it touches anything an earlier kernel writes or reads, and must not return
 * before that call. Weight prefetches (read-only data) may run before the wait.
 */
#ifndef TFM_BACKENDS_CUDA_INTERNAL_H
#define TFM_BACKENDS_CUDA_INTERNAL_H

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

extern "C" {
#include "backend.h"
}

#define TFM_CUDA_MAX_STEPS 4        /* recorded decode steps kept (one per session state) */
#define TFM_CUDA_EMBED_IDS 256      /* token ids passed by value per embed launch */

/* One recorded decode step (a CUDA graph) and the session state it belongs to. */
typedef struct tfm_cuda_step {
    uint64_t key;
    cudaGraphExec_t exec;   /* NULL: not recorded */
    int broken;             /* recording failed once for this key: run eagerly from now on */
    uint64_t last_use;
} tfm_cuda_step;

/* A buffer whose contents are owed: written only when first needed (see fusion.h). */
enum { TFM_CUDA_OWED_NORM = 1, TFM_CUDA_OWED_GLU = 2, TFM_CUDA_OWED_GEMM = 3 };
typedef struct tfm_cuda_owed {
    int kind;
    float *out;
    size_t count;           /* floats */
    const float *a, *b;     /* NORM: x; GLU: gate, up; GEMM: the input (n x w.cols) */
    const void *g;          /* NORM: the gain, f32 */
    float eps;
    tfm_weight w;           /* GEMM: the weight */
    int n;                  /* GEMM: tokens */
} tfm_cuda_owed;

/* A batched matmul held back until the next op (a residual add joins it: beta = 1). */
typedef struct tfm_cuda_gemm_pending {
    int active;
    tfm_weight w;
    const float *x;
    float *y;
    int n;
} tfm_cuda_gemm_pending;

/* Matvecs held back: up to 3 weights reading the same input. */
typedef struct tfm_cuda_mv_group {
    int k;
    const float *x;
    tfm_cuda_owed src;      /* kind 0: x as it is; else x is owed and computed from this recipe */
    tfm_weight w[3];
    float *y[3];
} tfm_cuda_mv_group;

/* RoPE of q and k and the two cache writes of a step, collected in order (stage = how many of the four
 * ops are held). */
typedef struct tfm_cuda_prelude {
    int stage;
    int n;                  /* tokens */
    float *q, *k;
    int n_head, n_head_kv, head_dim, pos_q, pos_k;
    const float *inv_freq;
    tfm_rope_pairing pairing;
    void *k_cache, *v_cache;
    tfm_dtype kv_dtype;
    int row_k, row_v, width;
    const float *v;
} tfm_cuda_prelude;

/* A growable device scratch buffer. */
typedef struct tfm_cuda_scratch {
    void *ptr;
    size_t bytes;
} tfm_cuda_scratch;

struct tfm_backend {
    int device;
    cudaDeviceProp prop;
    cudaStream_t stream;
    cublasHandle_t cublas;
    void *cublas_workspace;
    size_t cublas_workspace_bytes;
    const tfm_backend_host *host;

    int use_pdl;            /* programmatic dependent launch (sm_90+, TFM_CUDA_PDL=0 turns it off) */
    int use_graphs;         /* decode-step graphs (TFM_CUDA_GRAPHS=0 turns them off) */
    int prefetch_bytes;     /* L2 prefetch per warp in the decode matvec (TFM_CUDA_PREFETCH) */
    int matvec_variant;     /* TFM_CUDA_MATVEC: rows per warp / unroll choice */
    int mvx_variant;        /* TFM_CUDA_MVX: 0 input through L1 (default), 1 input staged in shared memory */
    int mvs_depth;          /* TFM_CUDA_MVS: loads in flight per warp in the streaming matvec (8, 16; 0 off) */
    int mvs_smem_limit;     /* its shared memory per block at most */
    int mvs_warps;          /* TFM_CUDA_MVS_WARPS: warps per block of the streaming matvec */
    int mvs_interleave;     /* TFM_CUDA_MVS_INTERLEAVE: every W-th row per warp, warps numbered across the blocks
                             * first (2) or block by block (1); 0 = a contiguous run */
    int attn_splits;        /* TFM_CUDA_ATTN_SPLITS: split-K blocks per head for one query (0: chosen) */
    int attn_fuse;          /* TFM_CUDA_ATTN_FUSE=0: decode RoPE/KV append as their own kernel, not in attention */
    int flash_wide;         /* TFM_CUDA_FA: prefill flash attention with the 64-query kernel (0) or a 128-query
                             * shape (1..3); -1 (unset): shape 2 for batches that fill the SMs, else 0; 0 where
                             * the device lacks the shared memory */
    int attn_cluster;       /* decode attention merges its splits through a block cluster (TFM_CUDA_ATTN_CLUSTER) */
    int last_launch_matvec; /* the kernel launched last is a fused decode matvec (tfm_cuda_mvx_launch) */
    tfm_dtype weight_dtype_f32;  /* what f32 matrices become on the device (TFM_CUDA_WEIGHT_DTYPE) */

    /* Decode-step state: position and token, read by kernels while recording / replaying. */
    int *d_step;            /* device: [0] = position, [1] = token */
    int *d_flag;            /* device: set by weight conversion when a value overflows */
    int recording;          /* ops are being captured into a graph */
    int step_pos;           /* host position given to step_begin (ops' pos args are relative to it) */
    int step_token;
    int step_index;         /* slot being recorded */
    uint64_t step_clock;
    tfm_cuda_step steps[TFM_CUDA_MAX_STEPS];
    int step_error;         /* an op failed while recording */

    /* The op planner (fusion.cu). */
    int fuse;
    int mvx_smem_limit;
    tfm_cuda_owed owed[4];
    tfm_cuda_mv_group group;
    tfm_cuda_gemm_pending gemm;
    tfm_cuda_prelude prelude;

    /* Scratch: GEMM input in 16-bit, split-K attention partials (fixed size, capture-safe).
     * gemm_in holds conv_src (conv_count floats) rounded to conv_dtype while conv_valid; producers
     * of batched GEMM inputs (RMSNorm, SwiGLU, attention) write it as they go. */
    tfm_cuda_scratch gemm_in;
    const float *conv_src;
    size_t conv_count;
    tfm_dtype conv_dtype;
    int conv_valid;
    tfm_dtype gemm16;       /* 16-bit type of the matrices; F32 until one is loaded */
    float *attn_partial;    /* [attn_partial_floats] */
    size_t attn_partial_floats;
    unsigned int *attn_counters; /* [TFM_CUDA_ATTN_COUNTERS] */
};

#define TFM_CUDA_MAX_HEADS 1024
/* attn_counters: [0, MAX_HEADS) one per query head, then one per kv head (decode attention) */
#define TFM_CUDA_ATTN_COUNTERS (2 * TFM_CUDA_MAX_HEADS)

/* The plugin cannot call into libtfm, so it names dtypes itself. */
static inline const char *dtype_name(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_F32: return "f32";
    case TFM_DTYPE_F16: return "f16";
    case TFM_DTYPE_BF16: return "bf16";
    case TFM_DTYPE_I32: return "i32";
    case TFM_DTYPE_Q8_0: return "q8_0";
    case TFM_DTYPE_Q4_0: return "q4_0";
    case TFM_DTYPE_Q4_K: return "q4_k";
    case TFM_DTYPE_Q6_K: return "q6_k";
    case TFM_DTYPE_Q5_K: return "q5_k";
    default: return "unknown";
    }
}

/* ---- errors ---- */

/* Reports a CUDA error through the host (with the call site) and returns TFM_E_BACKEND
 * (TFM_E_OOM for cudaErrorMemoryAllocation). */
tfm_status tfm_cuda_fail(tfm_backend *be, cudaError_t err, const char *what, const char *file, int line);
tfm_status tfm_cuda_fail_blas(tfm_backend *be, cublasStatus_t st, const char *what, const char *file, int line);
tfm_status tfm_cuda_invalid(tfm_backend *be, const char *fmt, ...);

#define CUDA_TRY(be, call)                                                                  \
    do {                                                                                    \
        cudaError_t err_ = (call);                                                          \
        if (err_ != cudaSuccess) return tfm_cuda_fail((be), err_, #call, __FILE__, __LINE__); \
    } while (0)

#define BLAS_TRY(be, call)                                                                        \
    do {                                                                                          \
        cublasStatus_t st_ = (call);                                                              \
        if (st_ != CUBLAS_STATUS_SUCCESS) return tfm_cuda_fail_blas((be), st_, #call, __FILE__, __LINE__); \
    } while (0)

/* Checks the launch just made (configuration errors show up here, faults at sync). */
#define LAUNCH_TRY(be, what) CUDA_TRY(be, tfm_cuda_launch_error(what))
static inline cudaError_t tfm_cuda_launch_error(const char *what) {
    (void)what;
    return cudaGetLastError();
}

/* Marks gemm_in stale when [ptr, ptr+bytes) overlaps the floats it was converted from. */
static inline void tfm_cuda_conv_note_write(tfm_backend *be, const void *ptr, size_t bytes) {
    if (!be->conv_valid || !ptr) return;
    uintptr_t a = (uintptr_t)ptr, b = (uintptr_t)be->conv_src;
    if (a < b + be->conv_count * sizeof(float) && b < a + bytes) be->conv_valid = 0;
}

/* Reserves gemm_in for `count` 16-bit values a producer is about to write (its previous contents are
 * forgotten); NULL when no 16-bit matrix is loaded or there is no room (the GEMM converts then).
 * The producer calls tfm_cuda_conv_set once its kernel is queued. */
void *tfm_cuda_conv_prepare(tfm_backend *be, size_t count);
static inline void tfm_cuda_conv_set(tfm_backend *be, const float *src, size_t count) {
    be->conv_src = src;
    be->conv_count = count;
    be->conv_dtype = be->gemm16;
    be->conv_valid = 1;
}

/* Grows a scratch buffer (never while recording: the recorded step must keep its pointers). */
tfm_status tfm_cuda_scratch_reserve(tfm_backend *be, tfm_cuda_scratch *s, size_t bytes, const char *what);

/* Device pointer to the step position while recording, else NULL (kernels then use their argument). */
static inline const int *tfm_cuda_step_pos(tfm_backend *be) { return be->recording ? be->d_step : NULL; }

/* ---- launching ---- */

/* The same as a thread-block cluster of `cluster` blocks (Hopper; 1x1x1: no cluster). */
template <typename... KArgs, typename... Args>
static inline cudaError_t tfm_cuda_launch_cluster(tfm_backend *be, dim3 cluster, void (*kernel)(KArgs...), dim3 grid,
                                                  dim3 block, size_t smem, Args... args) {
    be->last_launch_matvec = 0;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = be->stream;
    cudaLaunchAttribute attr[2];
    int n = 0;
    if (be->use_pdl) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster.x * cluster.y * cluster.z > 1) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = cluster.x;
        attr[n].val.clusterDim.y = cluster.y;
        attr[n++].val.clusterDim.z = cluster.z;
    }
    cfg.attrs = attr;
    cfg.numAttrs = n;
    return cudaLaunchKernelEx(&cfg, kernel, ((KArgs)args)...);
}

template <typename... KArgs, typename... Args>
static inline cudaError_t tfm_cuda_launch(tfm_backend *be, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                                          size_t smem, Args... args) {
    return tfm_cuda_launch_cluster(be, dim3(1, 1, 1), kernel, grid, block, smem, args...);
}

/* Calls f(type_tag<T>()) with T the element type of a storage dtype (f32, f16, anything else bf16:
 * callers check the dtype first), so one launch line serves every type. */
template <typename T> struct type_tag {
    using type = T;
};
static inline int storage_type_ok(tfm_dtype t) {
    return t == TFM_DTYPE_F32 || t == TFM_DTYPE_F16 || t == TFM_DTYPE_BF16;
}
template <typename F> static inline cudaError_t with_storage_type(tfm_dtype t, F f) {
    switch (t) {
    case TFM_DTYPE_F32: return f(type_tag<float>());
    case TFM_DTYPE_F16: return f(type_tag<__half>());
    default: return f(type_tag<__nv_bfloat16>());
    }
}
/* The same for the 16-bit type that batched GEMM inputs are rounded to (be->gemm16). */
template <typename F> static inline cudaError_t with_gemm16_type(const tfm_backend *be, F f) {
    return be->gemm16 == TFM_DTYPE_F16 ? f(type_tag<__half>()) : f(type_tag<__nv_bfloat16>());
}

/* ---- device helpers ---- */

/* Waits until the kernels this one depends on have finished and their writes are visible. */
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* Lets the next kernel in the stream be scheduled (it still waits for this one in pdl_wait). */
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Element conversions for the storage types. */
template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/* ---- the ops, by file ---- */

/* elementwise.cu */
tfm_status tfm_cuda_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out);
/* y16, when not NULL, also receives y rounded to be->gemm16 (the next GEMM's input). */
tfm_status tfm_cuda_rmsnorm(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim, float eps,
                           void *y16);
tfm_status tfm_cuda_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                         const float *inv_freq, tfm_rope_pairing pairing);
tfm_status tfm_cuda_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n,
                             int width);
tfm_status tfm_cuda_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count, void *out16);
tfm_status tfm_cuda_add(tfm_backend *be, float *x, const float *y, size_t count);
tfm_status tfm_cuda_set_step(tfm_backend *be, int pos, int token);
/* Converts f32 to the 16-bit type `dtype` (f16 or bf16) on the stream. */
tfm_status tfm_cuda_convert_f32(tfm_backend *be, const float *src, void *dst, tfm_dtype dtype, size_t count);

/* matvec.cu: y[rows] = W[rows][cols] · x[cols] for one token. */
tfm_status tfm_cuda_matvec(tfm_backend *be, const tfm_weight *w, const float *x, float *y);

/* gemm.cu: the matmul op (dispatches to matvec for one token, cuBLAS for more; a batch's input is
 * rounded to 16 bits once, or not at all when its producer already wrote gemm_in). */
tfm_status tfm_cuda_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n);
/* y += W · x for a batch (n > 1): cuBLAS with beta = 1. */
tfm_status tfm_cuda_matmul_accumulate(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n);

/* attention_decode.cu / attention_prefill.cu / attention.cu */
tfm_status tfm_cuda_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                              tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                              int head_dim, float scale, int causal, void *out16);
/* Returns TFM_E_UNSUPPORTED (without reporting) when the shape has no fast kernel. */
tfm_status tfm_cuda_attention_decode(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                     tfm_dtype kv_dtype, float *out, int pos0, int n_head, int n_head_kv,
                                     int head_dim, float scale);
/* The same with the step's RoPE of q and k and its KV-cache append folded in (the prelude's ops, held
 * back by the planner: one token, all at position pos_q). TFM_E_UNSUPPORTED (without reporting) when
 * it does not fit; then nothing was launched. */
tfm_status tfm_cuda_attention_decode_rope(tfm_backend *be, const tfm_cuda_prelude *p, float *out, float scale);
/* out16, when not NULL, also receives out rounded to be->gemm16. */
tfm_status tfm_cuda_attention_flash(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                    tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                    int head_dim, float scale, int causal, void *out16);
/* Raises the flash kernels' shared-memory limit (once, at init). */
tfm_status tfm_cuda_attention_setup(tfm_backend *be);
/* Turns the cluster merge of decode attention off where clusters of its size cannot run. */
void tfm_cuda_attention_decode_setup(tfm_backend *be);
tfm_status tfm_cuda_attention_simple(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                     tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                     int head_dim, float scale, int causal);

/* step.cu */
int tfm_cuda_step_begin(tfm_backend *be, uint64_t key, int pos, int32_t token);
tfm_status tfm_cuda_step_end(tfm_backend *be);
/* Stops a recording the core cannot complete (e.g. a sync inside the step): what was recorded runs
 * now, and this key runs eagerly from then on. */
tfm_status tfm_cuda_step_abandon(tfm_backend *be, const char *why);
void tfm_cuda_steps_free(tfm_backend *be);

#endif
