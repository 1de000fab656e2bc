/*
 * elementwise.cu — the small ops: embedding lookup, RMSNorm, RoPE, KV-cache append, SwiGLU, residual
 * add, f32 -> 16-bit conversion, and the decode-step position/token setter.
 *
 * Position-dependent ops take `pos_ptr`: NULL means "use the argument", else the position is
 * *pos_ptr + (argument - the position given to step_begin), so a recorded step replays at any position.
 */
#include "fusion.h"

/* ---------------------------------------------------------------- embedding */

struct embed_ids {
    int32_t id[TFM_CUDA_EMBED_IDS];
};

template <typename T>
__global__ void embed_kernel(const T *__restrict__ table, embed_ids ids, const int *step, int64_t rows, int cols,
                             float *__restrict__ out) {
    pdl_wait();
    pdl_launch_dependents();
    int64_t id = step ? step[1] : ids.id[blockIdx.x];
    if (id < 0 || id >= rows) id = 0; /* ids were validated by the core; the step token is clamped */
    const T *src = table + id * cols;
    float *dst = out + (size_t)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = to_f32<T>(src[c]);
}

tfm_status tfm_cuda_embed(tfm_backend *be, const tfm_weight *table, const int32_t *ids, int n, float *out) {
    if (n < 1) return TFM_OK;
    if (!storage_type_ok(table->dtype))
        return tfm_cuda_invalid(be, "cuda embed: table dtype %s is not supported", dtype_name(table->dtype));
    const int *step = NULL;
    if (be->recording) {
        if (n != 1) return tfm_cuda_invalid(be, "cuda embed: %d tokens inside a decode step (expected 1)", n);
        step = be->d_step;
    }
    for (int done = 0; done < n; done += TFM_CUDA_EMBED_IDS) {
        int count = n - done < TFM_CUDA_EMBED_IDS ? n - done : TFM_CUDA_EMBED_IDS;
        embed_ids batch;
        for (int i = 0; i < count; i++) batch.id[i] = ids[done + i];
        float *dst = out + (size_t)done * table->cols;
        int cols = (int)table->cols;
        CUDA_TRY(be, with_storage_type(table->dtype, [&](auto tag) {
            using T = typename decltype(tag)::type;
            return tfm_cuda_launch(be, embed_kernel<T>, dim3(count), dim3(256), 0, (const T *)table->data, batch,
                                   step, table->rows, cols, dst);
        }));
    }
    return TFM_OK;
}

/* ---------------------------------------------------------------- RMSNorm */

template <typename G, typename H>
__global__ void rmsnorm_kernel(const float *x, const G *__restrict__ g, float *y, int dim, float eps, H *y16) {
    __shared__ float partial[32];
    pdl_wait();
    pdl_launch_dependents();
    const float *row = x + (size_t)blockIdx.x * dim;
    float *out = y + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += row[i] * row[i];
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.0f;
        v = warp_sum(v);
        if (threadIdx.x == 0) partial[0] = v;
    }
    __syncthreads();
    float inv = rsqrtf(partial[0] / (float)dim + eps);
    /* Each thread rewrites only the elements it read, so y may be x. */
    H *out16 = y16 ? y16 + (size_t)blockIdx.x * dim : NULL;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = row[i] * inv * to_f32<G>(g[i]);
        out[i] = v;
        if (out16) out16[i] = from_f32<H>(v);
    }
}

/* f32 gain, dim a multiple of 4 up to 16 values per thread: the row is read once (float4) and kept
 * in registers for the second pass. */
template <typename H>
__global__ void rmsnorm4_kernel(const float4 *x, const float4 *__restrict__ g, float4 *y, int dim4, float eps,
                                H *y16) {
    constexpr int V = 4;
    __shared__ float partial[32];
    pdl_wait();
    pdl_launch_dependents();
    const float4 *row = x + (size_t)blockIdx.x * dim4;
    float4 v[V];
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < dim4) {
            v[k] = row[i];
            ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
        }
    }
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float t = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.0f;
        t = warp_sum(t);
        if (threadIdx.x == 0) partial[0] = t;
    }
    __syncthreads();
    const float inv = rsqrtf(partial[0] / (float)(4 * dim4) + eps);
    float4 *out = y + (size_t)blockIdx.x * dim4;
    H *out16 = y16 ? y16 + (size_t)blockIdx.x * 4 * dim4 : NULL;
#pragma unroll
    for (int k = 0; k < V; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < dim4) {
            const float4 w = g[i];
            const float4 o = make_float4(v[k].x * inv * w.x, v[k].y * inv * w.y, v[k].z * inv * w.z, v[k].w * inv * w.w);
            out[i] = o;
            if (out16) {
                out16[4 * i] = from_f32<H>(o.x);
                out16[4 * i + 1] = from_f32<H>(o.y);
                out16[4 * i + 2] = from_f32<H>(o.z);
                out16[4 * i + 3] = from_f32<H>(o.w);
            }
        }
    }
}

tfm_status tfm_cuda_rmsnorm(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim, float eps,
                           void *y16) {
    if (n < 1) return TFM_OK;
    if (g->rows * g->cols != dim)
        return tfm_cuda_invalid(be, "cuda rmsnorm: gain has %lld elements, dim is %d",
                                (long long)(g->rows * g->cols), dim);
    if (!storage_type_ok(g->dtype))
        return tfm_cuda_invalid(be, "cuda rmsnorm: gain dtype %s is not supported", dtype_name(g->dtype));
    const int t4 = ((dim / 4 + 3) / 4 + 31) / 32 * 32; /* threads for 4 float4 each */
    const bool four = g->dtype == TFM_DTYPE_F32 && dim % 4 == 0 && t4 <= 1024 && ((uintptr_t)x % 16) == 0 &&
                      ((uintptr_t)y % 16) == 0 && ((uintptr_t)g->data % 16) == 0 && ((uintptr_t)y16 % 8) == 0;
    const int threads = dim >= 4096 ? 512 : dim >= 1024 ? 256 : 128;
    CUDA_TRY(be, with_gemm16_type(be, [&](auto out_tag) {
        using H = typename decltype(out_tag)::type;
        if (four)
            return tfm_cuda_launch(be, rmsnorm4_kernel<H>, dim3(n), dim3(t4), 0, (const float4 *)x,
                                   (const float4 *)g->data, (float4 *)y, dim / 4, eps, (H *)y16);
        return with_storage_type(g->dtype, [&](auto gain_tag) {
            using G = typename decltype(gain_tag)::type;
            return tfm_cuda_launch(be, rmsnorm_kernel<G, H>, dim3(n), dim3(threads), 0, x, (const G *)g->data, y,
                                   dim, eps, (H *)y16);
        });
    }));
    if (y16) tfm_cuda_conv_set(be, y, (size_t)n * dim);
    return TFM_OK;
}

/* ---------------------------------------------------------------- RoPE */

__global__ void rope_kernel(float *x, int n, int n_head, int head_dim, int pos0, const int *pos_ptr, int pos_delta,
                            const float *__restrict__ inv_freq, int half_split) {
    pdl_wait();
    pdl_launch_dependents();
    int half = head_dim / 2;
    int64_t total = (int64_t)n * n_head * half;
    int base = pos_ptr ? *pos_ptr + pos_delta : pos0;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        int64_t head = idx / half;          /* token * n_head + h */
        int token = (int)(head / n_head);
        float *v = x + head * head_dim;
        int a = half_split ? i : 2 * i, b = half_split ? i + half : 2 * i + 1;
        float s, c;
        sincosf((float)(base + token) * inv_freq[i], &s, &c);
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

tfm_status tfm_cuda_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0,
                         const float *inv_freq, tfm_rope_pairing pairing) {
    if (n < 1) return TFM_OK;
    if (head_dim < 2 || head_dim % 2)
        return tfm_cuda_invalid(be, "cuda rope: head_dim %d must be even", head_dim);
    int64_t total = (int64_t)n * n_head * (head_dim / 2);
    int threads = 256;
    int64_t blocks = (total + threads - 1) / threads;
    if (blocks > 65535) blocks = 65535;
    CUDA_TRY(be, tfm_cuda_launch(be, rope_kernel, dim3((unsigned)blocks), dim3(threads), 0, x, n, n_head, head_dim,
                                 pos0, tfm_cuda_step_pos(be), pos0 - be->step_pos, inv_freq,
                                 pairing == TFM_ROPE_HALF ? 1 : 0));
    return TFM_OK;
}

/* ---------------------------------------------------------------- KV-cache append */

template <typename T>
__global__ void kv_store_kernel(T *cache, int row0, const int *pos_ptr, int pos_delta, const float *__restrict__ src,
                                int64_t count, int width) {
    pdl_wait();
    pdl_launch_dependents();
    int64_t base = (int64_t)(pos_ptr ? *pos_ptr + pos_delta : row0) * width;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x)
        cache[base + i] = from_f32<T>(src[i]);
}

tfm_status tfm_cuda_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n,
                             int width) {
    if (n < 1) return TFM_OK;
    int64_t count = (int64_t)n * width;
    int64_t blocks = (count + 255) / 256;
    if (blocks > 65535) blocks = 65535;
    if (!storage_type_ok(kv_dtype))
        return tfm_cuda_invalid(be, "cuda kv_store: kv dtype %s is not supported", dtype_name(kv_dtype));
    const int *pos_ptr = tfm_cuda_step_pos(be);
    int delta = row0 - be->step_pos;
    CUDA_TRY(be, with_storage_type(kv_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tfm_cuda_launch(be, kv_store_kernel<T>, dim3((unsigned)blocks), dim3(256), 0, (T *)cache, row0, pos_ptr,
                               delta, src, count, width);
    }));
    return TFM_OK;
}

/* ---------------------------------------------------------------- SwiGLU and residual add */

template <typename H>
__global__ void swiglu_kernel(const float *gate, const float *up, float *out, size_t count, H *out16) {
    pdl_wait();
    pdl_launch_dependents();
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        float v = g / (1.0f + expf(-g)) * up[i];
        out[i] = v;
        if (out16) out16[i] = from_f32<H>(v);
    }
}

__global__ void add_kernel(float *x, const float *y, size_t count) {
    pdl_wait();
    pdl_launch_dependents();
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

__global__ void add4_kernel(float4 *x, const float4 *y, size_t count4) {
    pdl_wait();
    pdl_launch_dependents();
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count4; i += (size_t)gridDim.x * blockDim.x) {
        float4 a = x[i], b = y[i];
        a.x += b.x;
        a.y += b.y;
        a.z += b.z;
        a.w += b.w;
        x[i] = a;
    }
}

static unsigned grid_for(tfm_backend *be, size_t count, int threads) {
    size_t blocks = (count + threads - 1) / threads;
    size_t cap = (size_t)be->prop.multiProcessorCount * 8;
    if (blocks > cap) blocks = cap;
    return blocks ? (unsigned)blocks : 1u;
}

/* Four values per thread and two rounds in flight: a scalar grid-stride loop keeps too few bytes in
 * flight to stream a prompt chunk's 90 MB gate/up at full bandwidth. */
template <typename H>
__global__ void swiglu4_kernel(const float4 *gate, const float4 *up, float4 *out, size_t count4, H *out16) {
    pdl_wait();
    pdl_launch_dependents();
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count4; i += 2 * stride) {
        const size_t j = i + stride;
        float4 g0 = gate[i], u0 = up[i], g1 = make_float4(0.0f, 0.0f, 0.0f, 0.0f), u1 = g1;
        if (j < count4) g1 = gate[j], u1 = up[j];
        for (int r = 0; r < 2; r++) {
            const size_t at = r ? j : i;
            if (at >= count4) break;
            const float4 g = r ? g1 : g0, u = r ? u1 : u0;
            float4 v = make_float4(g.x / (1.0f + expf(-g.x)) * u.x, g.y / (1.0f + expf(-g.y)) * u.y,
                                   g.z / (1.0f + expf(-g.z)) * u.z, g.w / (1.0f + expf(-g.w)) * u.w);
            out[at] = v;
            if (out16) {
                H *o = out16 + 4 * at;
                o[0] = from_f32<H>(v.x);
                o[1] = from_f32<H>(v.y);
                o[2] = from_f32<H>(v.z);
                o[3] = from_f32<H>(v.w);
            }
        }
    }
}

tfm_status tfm_cuda_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count,
                           void *out16) {
    if (!count) return TFM_OK;
    if (count % 4 == 0 && ((uintptr_t)gate % 16) == 0 && ((uintptr_t)up % 16) == 0 && ((uintptr_t)out % 16) == 0 &&
        ((uintptr_t)out16 % 8) == 0) {
        dim3 grid(grid_for(be, count / 8, 256)), block(256);
        CUDA_TRY(be, with_gemm16_type(be, [&](auto tag) {
            using H = typename decltype(tag)::type;
            return tfm_cuda_launch(be, swiglu4_kernel<H>, grid, block, 0, (const float4 *)gate, (const float4 *)up,
                                   (float4 *)out, count / 4, (H *)out16);
        }));
    } else {
        dim3 grid(grid_for(be, count, 256)), block(256);
        CUDA_TRY(be, with_gemm16_type(be, [&](auto tag) {
            using H = typename decltype(tag)::type;
            return tfm_cuda_launch(be, swiglu_kernel<H>, grid, block, 0, gate, up, out, count, (H *)out16);
        }));
    }
    if (out16) tfm_cuda_conv_set(be, out, count);
    return TFM_OK;
}

tfm_status tfm_cuda_add(tfm_backend *be, float *x, const float *y, size_t count) {
    if (!count) return TFM_OK;
    if (count % 4 == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)y % 16) == 0) {
        CUDA_TRY(be, tfm_cuda_launch(be, add4_kernel, dim3(grid_for(be, count / 4, 256)), dim3(256), 0, (float4 *)x,
                                     (const float4 *)y, count / 4));
    } else {
        CUDA_TRY(be, tfm_cuda_launch(be, add_kernel, dim3(grid_for(be, count, 256)), dim3(256), 0, x, y, count));
    }
    return TFM_OK;
}

/* ---------------------------------------------------------------- conversion, step state */

template <typename T>
__global__ void convert_kernel(const float *__restrict__ src, T *__restrict__ dst, size_t count) {
    pdl_wait();
    pdl_launch_dependents();
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = from_f32<T>(src[i]);
}

tfm_status tfm_cuda_convert_f32(tfm_backend *be, const float *src, void *dst, tfm_dtype dtype, size_t count) {
    unsigned grid = grid_for(be, count, 256);
    CUDA_TRY(be, with_storage_type(dtype == TFM_DTYPE_F16 ? TFM_DTYPE_F16 : TFM_DTYPE_BF16, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tfm_cuda_launch(be, convert_kernel<T>, dim3(grid), dim3(256), 0, src, (T *)dst, count);
    }));
    return TFM_OK;
}

__global__ void set_step_kernel(int *step, int pos, int token) {
    pdl_wait();
    step[0] = pos;
    step[1] = token;
}

tfm_status tfm_cuda_set_step(tfm_backend *be, int pos, int token) {
    CUDA_TRY(be, tfm_cuda_launch(be, set_step_kernel, dim3(1), dim3(1), 0, be->d_step, pos, token));
    return TFM_OK;
}

/* ---------------------------------------------------------------- RoPE + KV append, fused */

struct rope_store_args {
    float *q, *k;
    const float *v;
    const float *inv_freq;
    void *k_cache, *v_cache;
    const int *pos_ptr;     /* recording: every position below is relative to *pos_ptr */
    int n, n_head, n_head_kv, head_dim, half_split;
    int pos_q, pos_k, row_k, row_v;
};

template <typename T>
__global__ void rope_store_kernel(rope_store_args a) {
    pdl_wait();
    pdl_launch_dependents();
    const int half = a.head_dim / 2, width = a.n_head_kv * a.head_dim;
    const int nq = a.n_head * half, nk = a.n_head_kv * half, per_token = nq + nk + width;
    const int64_t total = (int64_t)a.n * per_token;
    const int base = a.pos_ptr ? *a.pos_ptr : 0;
    T *kc = static_cast<T *>(a.k_cache), *vc = static_cast<T *>(a.v_cache);
    for (int64_t at = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; at < total; at += (int64_t)gridDim.x * blockDim.x) {
        const int t = (int)(at / per_token), idx = (int)(at % per_token);
        if (idx < nq + nk) {
            const bool is_q = idx < nq;
            const int j = is_q ? idx : idx - nq;
            const int i = j % half, head = j / half;
            float *v = is_q ? a.q + ((size_t)t * a.n_head + head) * a.head_dim
                            : a.k + ((size_t)t * a.n_head_kv + head) * a.head_dim;
            const int ia = a.half_split ? i : 2 * i, ib = a.half_split ? i + half : 2 * i + 1;
            float s, c;
            sincosf((float)(base + (is_q ? a.pos_q : a.pos_k) + t) * a.inv_freq[i], &s, &c);
            const float x0 = v[ia], x1 = v[ib];
            const float r0 = x0 * c - x1 * s, r1 = x0 * s + x1 * c;
            v[ia] = r0;
            v[ib] = r1;
            if (!is_q) {
                T *row = kc + (size_t)(base + a.row_k + t) * width + (size_t)head * a.head_dim;
                row[ia] = from_f32<T>(r0);
                row[ib] = from_f32<T>(r1);
            }
        } else {
            const int e = idx - nq - nk;
            vc[(size_t)(base + a.row_v + t) * width + e] = from_f32<T>(a.v[(size_t)t * width + e]);
        }
    }
}

tfm_status tfm_cuda_rope_store(tfm_backend *be, const tfm_cuda_prelude *p) {
    rope_store_args a;
    a.q = p->q;
    a.k = p->k;
    a.v = p->v;
    a.inv_freq = p->inv_freq;
    a.k_cache = p->k_cache;
    a.v_cache = p->v_cache;
    a.pos_ptr = tfm_cuda_step_pos(be);
    int shift = a.pos_ptr ? be->step_pos : 0;
    a.n = p->n;
    a.n_head = p->n_head;
    a.n_head_kv = p->n_head_kv;
    a.head_dim = p->head_dim;
    a.half_split = p->pairing == TFM_ROPE_HALF;
    a.pos_q = p->pos_q - shift;
    a.pos_k = p->pos_k - shift;
    a.row_k = p->row_k - shift;
    a.row_v = p->row_v - shift;
    int64_t total = (int64_t)p->n * ((p->n_head + p->n_head_kv) * (p->head_dim / 2) + p->width);
    int64_t blocks = (total + 255) / 256;
    if (blocks > (int64_t)be->prop.multiProcessorCount * 16) blocks = (int64_t)be->prop.multiProcessorCount * 16;
    dim3 grid((unsigned)blocks), block(256);
    CUDA_TRY(be, with_storage_type(p->kv_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return tfm_cuda_launch(be, rope_store_kernel<T>, grid, block, 0, a);
    }));
    return TFM_OK;
}
