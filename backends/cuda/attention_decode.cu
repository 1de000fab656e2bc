/*
 * attention_decode.cu — split-K ("flash-decoding") attention for one query per head.
 *
 * The keys 0..L-1 are cut into `splits` ranges; block (head, split) runs an online softmax over its
 * range with 4 warps (each lane owns head_dim/32 contiguous dimensions, a key's score is a warp sum),
 * merges its warps, and writes (max, sum, unnormalised output) to a partial slot. The last block of a
 * head to finish (an atomic counter, reset by that block) merges the partials into the output, so
 * one launch does it all and a recorded step stays one kernel. L comes from the step state while
 * recording, so the same launch serves every position; splits is then fixed.
 */
#include "cuda_internal.h"

#define LOG2E 1.4426950408889634f
#define DECODE_WARPS 4
#define DECODE_UNROLL 8

template <typename T, int EPL> struct __align__(EPL * sizeof(T)) kv_vec {
    T v[EPL];
};

template <typename T, int EPL>
__device__ __forceinline__ void load_kv(const T *p, float (&f)[EPL]) {
    kv_vec<T, EPL> t = *reinterpret_cast<const kv_vec<T, EPL> *>(p);
#pragma unroll
    for (int e = 0; e < EPL; e++) f[e] = to_f32<T>(t.v[e]);
}

template <typename T, int EPL>
__global__ void __launch_bounds__(DECODE_WARPS * 32)
    attention_decode_kernel(const float *__restrict__ q, const T *__restrict__ kc, const T *__restrict__ vc,
                            float *__restrict__ out, float *partial, unsigned *counters, int pos0, const int *pos_ptr,
                            int pos_delta, int group, int kv_stride, float qscale, int splits) {
    constexpr int D = 32 * EPL;
    __shared__ float sm_m[DECODE_WARPS], sm_l[DECODE_WARPS];
    __shared__ float sm_acc[DECODE_WARPS][D];
    __shared__ int sm_last;
    pdl_wait();
    pdl_launch_dependents();

    const int h = blockIdx.x, s = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int L = (pos_ptr ? *pos_ptr + pos_delta : pos0) + 1;
    const int chunk = (L + splits - 1) / splits;
    const int k0 = s * chunk, k1 = min(L, k0 + chunk);

    float qv[EPL];
    {
        const float *qr = q + (size_t)h * D + lane * EPL;
#pragma unroll
        for (int e = 0; e < EPL; e++) qv[e] = qr[e] * qscale;
    }
    const size_t off = (size_t)(h / group) * D + lane * EPL;
    const T *kb = kc + off, *vb = vc + off;

    float m = -INFINITY, l = 0.0f, acc[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) acc[e] = 0.0f;

    for (int j = k0 + warp; j < k1; j += DECODE_WARPS * DECODE_UNROLL) {
        float kf[DECODE_UNROLL][EPL], vf[DECODE_UNROLL][EPL];
#pragma unroll
        for (int u = 0; u < DECODE_UNROLL; u++) {
            int key = j + u * DECODE_WARPS;
            if (key < k1) {
                load_kv<T, EPL>(kb + (size_t)key * kv_stride, kf[u]);
                load_kv<T, EPL>(vb + (size_t)key * kv_stride, vf[u]);
            }
        }
#pragma unroll
        for (int u = 0; u < DECODE_UNROLL; u++) {
            int key = j + u * DECODE_WARPS;
            if (key >= k1) break;  /* uniform across the warp */
            float sc = 0.0f;
#pragma unroll
            for (int e = 0; e < EPL; e++) sc = fmaf(qv[e], kf[u][e], sc);
            sc = warp_sum(sc);
            float m_new = fmaxf(m, sc);
            float corr = exp2f(m - m_new), p = exp2f(sc - m_new);
            l = l * corr + p;
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[e] = fmaf(p, vf[u][e], acc[e] * corr);
            m = m_new;
        }
    }

    /* merge the warps of this block */
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) sm_acc[warp][lane * EPL + e] = acc[e];
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < DECODE_WARPS; w++) M = fmaxf(M, sm_m[w]);
    float wsc[DECODE_WARPS], lsum = 0.0f;
#pragma unroll
    for (int w = 0; w < DECODE_WARPS; w++) {
        wsc[w] = M == -INFINITY ? 0.0f : exp2f(sm_m[w] - M);
        lsum += sm_l[w] * wsc[w];
    }
    if (splits == 1) {
        float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < DECODE_WARPS; w++) o += sm_acc[w][d] * wsc[w];
            out[(size_t)h * D + d] = o * inv;
        }
        return;
    }

    float *slot = partial + ((size_t)h * splits + s) * (D + 2);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0.0f;
#pragma unroll
        for (int w = 0; w < DECODE_WARPS; w++) o += sm_acc[w][d] * wsc[w];
        slot[2 + d] = o;
    }
    if (threadIdx.x == 0) {
        slot[0] = M;
        slot[1] = lsum;
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) sm_last = atomicAdd(&counters[h], 1u) == (unsigned)(splits - 1);
    __syncthreads();
    if (!sm_last) return;

    /* last block of this head: merge all splits */
    __threadfence();
    const float *head_part = partial + (size_t)h * splits * (D + 2);
    float GM = -INFINITY;
    for (int p = 0; p < splits; p++) GM = fmaxf(GM, __ldcg(head_part + (size_t)p * (D + 2)));
    float total = 0.0f;
    for (int p = 0; p < splits; p++) {
        float pm = __ldcg(head_part + (size_t)p * (D + 2));
        float wgt = GM == -INFINITY || pm == -INFINITY ? 0.0f : exp2f(pm - GM);
        total += wgt * __ldcg(head_part + (size_t)p * (D + 2) + 1);
    }
    float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0.0f;
        for (int p = 0; p < splits; p++) {
            float pm = __ldcg(head_part + (size_t)p * (D + 2));
            float wgt = GM == -INFINITY || pm == -INFINITY ? 0.0f : exp2f(pm - GM);
            o += wgt * __ldcg(head_part + (size_t)p * (D + 2) + 2 + d);
        }
        out[(size_t)h * D + d] = o * inv;
    }
    if (threadIdx.x == 0) counters[h] = 0u;
}

template <typename T, int EPL>
static cudaError_t launch_decode(tfm_backend *be, const float *q, const void *k, const void *v, float *out, int pos0,
                                 int n_head, int n_head_kv, float scale, int splits) {
    const int *pos_ptr = tfm_cuda_step_pos(be);
    return tfm_cuda_launch(be, attention_decode_kernel<T, EPL>, dim3(n_head, splits), dim3(DECODE_WARPS * 32), 0, q,
                           (const T *)k, (const T *)v, out, be->attn_partial, be->attn_counters, pos0, pos_ptr,
                           pos0 - be->step_pos, n_head / n_head_kv, n_head_kv * 32 * EPL, scale * LOG2E, splits);
}

template <typename T>
static cudaError_t launch_decode_typed(tfm_backend *be, int epl, const float *q, const void *k, const void *v,
                                       float *out, int pos0, int n_head, int n_head_kv, float scale, int splits) {
    switch (epl) {
    case 1: return launch_decode<T, 1>(be, q, k, v, out, pos0, n_head, n_head_kv, scale, splits);
    case 2: return launch_decode<T, 2>(be, q, k, v, out, pos0, n_head, n_head_kv, scale, splits);
    case 4: return launch_decode<T, 4>(be, q, k, v, out, pos0, n_head, n_head_kv, scale, splits);
    default: return launch_decode<T, 8>(be, q, k, v, out, pos0, n_head, n_head_kv, scale, splits);
    }
}

tfm_status tfm_cuda_attention_decode(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                     tfm_dtype kv_dtype, float *out, int pos0, int n_head, int n_head_kv, int head_dim,
                                     float scale) {
    int epl = head_dim / 32;
    if (head_dim % 32 || (epl != 1 && epl != 2 && epl != 4 && epl != 8) || n_head > TFM_CUDA_MAX_HEADS ||
        ((uintptr_t)q % 16) || ((uintptr_t)k_cache % 16) || ((uintptr_t)v_cache % 16))
        return TFM_E_UNSUPPORTED;

    /* Enough blocks to cover the chip twice; while recording the split count must suit any length. */
    int max_splits = be->attn_splits > 0 ? be->attn_splits : (2 * be->prop.multiProcessorCount + n_head - 1) / n_head;
    if (max_splits > 32) max_splits = 32;
    size_t cap = be->attn_partial_floats / ((size_t)n_head * (head_dim + 2));
    if ((size_t)max_splits > cap) max_splits = (int)cap;
    if (max_splits < 1) max_splits = 1;
    int L = pos0 + 1, splits = max_splits;
    if (!be->recording) {
        int want = (L + 63) / 64; /* at least 64 keys per split when the length is known */
        if (want < splits) splits = want;
    }
    cudaError_t err;
    switch (kv_dtype) {
    case TFM_DTYPE_F32:
        err = launch_decode_typed<float>(be, epl, q, k_cache, v_cache, out, pos0, n_head, n_head_kv, scale, splits);
        break;
    case TFM_DTYPE_F16:
        err = launch_decode_typed<__half>(be, epl, q, k_cache, v_cache, out, pos0, n_head, n_head_kv, scale, splits);
        break;
    default:
        err = launch_decode_typed<__nv_bfloat16>(be, epl, q, k_cache, v_cache, out, pos0, n_head, n_head_kv, scale,
                                                 splits);
        break;
    }
    CUDA_TRY(be, err);
    return TFM_OK;
}
