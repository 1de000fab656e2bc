/*
 * attention.cu — the attention op: picks the split-K decode kernel for one query, the tensor-core
 * flash kernel for a batch of queries over an f16/bf16 cache, and otherwise the simple kernel here
 * (one warp per query and head, online softmax over the keys), which is also the tests' naive twin.
 */
#include "cuda_internal.h"

#define LOG2E 1.4426950408889634f

template <typename T>
__global__ void attention_simple_kernel(const float *__restrict__ q, const T *__restrict__ kc, const T *__restrict__ vc,
                                        float *__restrict__ out, int n, int pos0, const int *pos_ptr, int pos_delta,
                                        int n_head, int group, int kv_stride, int head_dim, float qscale, int causal) {
    pdl_wait();
    pdl_launch_dependents();
    const int lane = threadIdx.x & 31;
    const int64_t item = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (item >= (int64_t)n * n_head) return;
    const int i = (int)(item / n_head), h = (int)(item % n_head);
    const int base = pos_ptr ? *pos_ptr + pos_delta : pos0;
    const int limit = causal ? base + i + 1 : base + n;
    const float *qr = q + ((size_t)i * n_head + h) * head_dim;
    const size_t kv_off = (size_t)(h / group) * head_dim;

    float qv[8], acc[8];
#pragma unroll
    for (int e = 0; e < 8; e++) {
        int d = lane + 32 * e;
        qv[e] = d < head_dim ? qr[d] * qscale : 0.0f;
        acc[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j < limit; j++) {
        const T *kr = kc + (size_t)j * kv_stride + kv_off;
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            int d = lane + 32 * e;
            if (d < head_dim) s = fmaf(qv[e], to_f32<T>(kr[d]), s);
        }
        s = warp_sum(s);
        float m_new = fmaxf(m, s);
        float corr = exp2f(m - m_new), p = exp2f(s - m_new);
        l = l * corr + p;
        const T *vr = vc + (size_t)j * kv_stride + kv_off;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            int d = lane + 32 * e;
            if (d < head_dim) acc[e] = fmaf(p, to_f32<T>(vr[d]), acc[e] * corr);
        }
        m = m_new;
    }
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float *o = out + ((size_t)i * n_head + h) * head_dim;
#pragma unroll
    for (int e = 0; e < 8; e++) {
        int d = lane + 32 * e;
        if (d < head_dim) o[d] = acc[e] * inv;
    }
}

tfm_status tfm_cuda_attention_simple(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                     tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv,
                                     int head_dim, float scale, int causal) {
    int64_t items = (int64_t)n * n_head;
    dim3 grid((unsigned)((items + 3) / 4)), block(128);
    int group = n_head / n_head_kv, kv_stride = n_head_kv * head_dim;
    const int *pos_ptr = tfm_cuda_step_pos(be);
    int delta = pos0 - be->step_pos;
    float qscale = scale * LOG2E;
    cudaError_t err;
    switch (kv_dtype) {
    case TFM_DTYPE_F32:
        err = tfm_cuda_launch(be, attention_simple_kernel<float>, grid, block, 0, q, (const float *)k_cache,
                              (const float *)v_cache, out, n, pos0, pos_ptr, delta, n_head, group, kv_stride, head_dim,
                              qscale, causal);
        break;
    case TFM_DTYPE_F16:
        err = tfm_cuda_launch(be, attention_simple_kernel<__half>, grid, block, 0, q, (const __half *)k_cache,
                              (const __half *)v_cache, out, n, pos0, pos_ptr, delta, n_head, group, kv_stride, head_dim,
                              qscale, causal);
        break;
    default:
        err = tfm_cuda_launch(be, attention_simple_kernel<__nv_bfloat16>, grid, block, 0, q,
                              (const __nv_bfloat16 *)k_cache, (const __nv_bfloat16 *)v_cache, out, n, pos0, pos_ptr,
                              delta, n_head, group, kv_stride, head_dim, qscale, causal);
        break;
    }
    CUDA_TRY(be, err);
    return TFM_OK;
}

tfm_status tfm_cuda_attention(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                              tfm_dtype kv_dtype, float *out, int n, int pos0, int n_head, int n_head_kv, int head_dim,
                              float scale, int causal, void *out16) {
    if (n < 1) return TFM_OK;
    if (n_head_kv < 1 || n_head % n_head_kv || head_dim < 1 || head_dim > 256)
        return tfm_cuda_invalid(be, "cuda attention: %d heads over %d kv heads of dim %d are not supported", n_head,
                                n_head_kv, head_dim);
    if (kv_dtype != TFM_DTYPE_F32 && kv_dtype != TFM_DTYPE_F16 && kv_dtype != TFM_DTYPE_BF16)
        return tfm_cuda_invalid(be, "cuda attention: kv dtype %s is not supported", dtype_name(kv_dtype));
    tfm_status st;
    if (n == 1) {
        st = tfm_cuda_attention_decode(be, q, k_cache, v_cache, kv_dtype, out, pos0, n_head, n_head_kv, head_dim, scale);
        if (st != TFM_E_UNSUPPORTED) return st;
    } else if (kv_dtype != TFM_DTYPE_F32) {
        st = tfm_cuda_attention_flash(be, q, k_cache, v_cache, kv_dtype, out, n, pos0, n_head, n_head_kv, head_dim,
                                      scale, causal, out16);
        if (st != TFM_E_UNSUPPORTED) return st;
    }
    return tfm_cuda_attention_simple(be, q, k_cache, v_cache, kv_dtype, out, n, pos0, n_head, n_head_kv, head_dim, scale,
                                     causal);
}
