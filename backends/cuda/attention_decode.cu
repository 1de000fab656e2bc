/*
 * attention_decode.cu — split-K ("flash-decoding") attention for one query per head, optionally with
 * the step's RoPE and KV-cache append folded in.
 *
 * The keys 0..L-1 are cut into `splits` ranges; block (head, split) runs an online softmax over its
 * range with 4 warps (each lane owns head_dim/32 contiguous dimensions, a key's score is a warp sum).
 * A warp scores up to 8 keys before it updates its running maximum once, so their reductions overlap
 * instead of forming one serial chain per key. The block merges its warps and writes (max, sum,
 * unnormalised output) to a partial slot; the last block of a head to finish (an atomic counter,
 * reset by that block) merges the partials, so one launch does it all. L comes from the step state
 * while recording, so the same launch serves every position; splits is then fixed.
 *
 * Fused form (decode_rope_args): q and the step's key arrive unrotated. Every block rotates q in
 * registers; the block whose range holds the newest key (row L-1) rotates it, takes it and its value
 * from registers (rounded to the cache type, as a cache read would give them) instead of the cache,
 * and, for the first head of each kv group, writes both into cache row L-1, which no block reads. The
 * rotated q and k are written back for later readers once nothing in the launch still reads them:
 * q by its head's merging block, k by the last reader of its kv group. RoPE, the append and attention
 * then cost one kernel and one kernel boundary instead of two.
 *
 * Sizes: about two blocks per SM of at most 96 registers a thread, so that two fit beside a streaming
 * matvec block (matvec_stream.cu, which leaves 24 K registers of an SM free): attention waits there
 * while the q/k/v matvec drains, and the output projection's matvec becomes resident, and queues its
 * weights, while attention runs (pdl_launch_dependents comes first for that).
 */
#include <cooperative_groups.h>

#include "cuda_internal.h"

#define LOG2E 1.4426950408889634f
#define DECODE_WARPS 4
#define DECODE_MIN_BLOCKS 5         /* per SM, for the register budget above */
#define DECODE_MAX_SPLITS 16

template <typename T, int EPL> struct __align__(EPL * sizeof(T)) kv_vec {
    T v[EPL];
};

/* Loads the keys and values j, j + DECODE_WARPS, ... (UNROLL of them, below `end`; zeros past it),
 * kept in the cache type until used: half the registers of f32 for a 16-bit cache. */
template <typename T, int EPL, int UNROLL>
__device__ __forceinline__ void load_batch(const T *kc, const T *vc, int j, int end, int stride, size_t off,
                                           kv_vec<T, EPL> (&kr)[UNROLL], kv_vec<T, EPL> (&vr)[UNROLL]) {
#pragma unroll
    for (int u = 0; u < UNROLL; u++) {
        const int key = j + u * DECODE_WARPS;
        if (key < end) {
            kr[u] = *reinterpret_cast<const kv_vec<T, EPL> *>(kc + (size_t)key * stride + off);
            vr[u] = *reinterpret_cast<const kv_vec<T, EPL> *>(vc + (size_t)key * stride + off);
        } else {
#pragma unroll
            for (int e = 0; e < EPL; e++) kr[u].v[e] = vr[u].v[e] = from_f32<T>(0.0f);
        }
    }
}

/* What the fused form needs besides plain decode attention. */
struct decode_rope_args {
    float *k;               /* [n_head_kv][head_dim], the step's key: rotated in place */
    const float *v;         /* [n_head_kv][head_dim], the step's value */
    const float *inv_freq;  /* [head_dim / 2] */
    int half_split;         /* pairing: (i, i + D/2) rather than (2i, 2i + 1) */
    unsigned *kv_counters;  /* [n_head_kv], zero between launches */
};

struct decode_args {
    float *q;               /* [n_head][head_dim]; the fused form rotates it in place */
    const void *kc, *vc;    /* caches [n_ctx][n_head_kv][head_dim] */
    float *out;
    float *partial;
    unsigned *counters;     /* [n_head], zero between launches */
    const int *pos_ptr;     /* recording: the query position is *pos_ptr + pos_delta, else pos0 */
    int pos0, pos_delta;
    int group, kv_stride, splits;
    int cluster;            /* the head's splits form one block cluster: merged through shared memory */
    int preload;            /* fused form after a matvec: cached keys may be read before the wait */
    float qscale;           /* scale * log2(e): scores in base 2 */
};

/* Rotates the lane's EPL values of one head (RoPE at `pos`); pair partners in other lanes come by
 * shuffle. Computes what rope_kernel (elementwise.cu) computes. */
template <int EPL>
__device__ __forceinline__ void rope_lane(float (&x)[EPL], int lane, int pos, const float *inv_freq, int half_split) {
    constexpr int D = 32 * EPL;
    float other[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        if (half_split) other[e] = __shfl_xor_sync(0xffffffffu, x[e], 16); /* d ± D/2 is 16 lanes away */
        else if (EPL == 1) other[e] = __shfl_xor_sync(0xffffffffu, x[e], 1);
        else other[e] = x[e ^ 1];
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        const int d = lane * EPL + e;
        const int i = half_split ? d % (D / 2) : d / 2;
        const bool first = half_split ? d < D / 2 : (d & 1) == 0;
        float s, c;
        sincosf((float)pos * inv_freq[i], &s, &c);
        x[e] = first ? x[e] * c - other[e] * s : other[e] * s + x[e] * c;
    }
}

template <typename T, int EPL, int FUSED>
__global__ void __launch_bounds__(DECODE_WARPS * 32, DECODE_MIN_BLOCKS)
    attention_decode_kernel(decode_args a, decode_rope_args r) {
    constexpr int D = 32 * EPL, UNROLL = EPL >= 8 ? 4 : 8, THREADS = DECODE_WARPS * 32;
    constexpr int DPT = (D + THREADS - 1) / THREADS; /* output dims per thread in the merges */
    __shared__ float sm_m[DECODE_WARPS], sm_l[DECODE_WARPS];
    __shared__ float sm_acc[DECODE_WARPS][D];
    __shared__ float sm_pm[DECODE_MAX_SPLITS], sm_pl[DECODE_MAX_SPLITS];
    __shared__ int sm_last;
    __shared__ float sm_o[D], sm_ml[2]; /* the block's merged output, max and sum (cluster merge) */
    pdl_launch_dependents(); /* the next kernel may become resident now and queue its weights */
    const bool early = FUSED && a.preload;
    if (!early) pdl_wait();

    const int h = blockIdx.x, s = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int pos = a.pos_ptr ? *a.pos_ptr + a.pos_delta : a.pos0;
    const int L = pos + 1, splits = a.splits;
    const int chunk = (L + splits - 1) / splits;
    const int k0 = s * chunk, k1 = min(L, k0 + chunk);
    const int kvh = h / a.group;
    const int cached_end = FUSED ? min(k1, L - 1) : k1; /* keys read from the cache */
    const T *kc = static_cast<const T *>(a.kc), *vc = static_cast<const T *>(a.vc);
    const size_t off = (size_t)kvh * D + lane * EPL;

    /* Right after a matvec, the fused form loads its first keys before waiting: it reads only cache
     * rows that earlier kernels wrote (the matvec writes none and released this kernel only after its
     * own wait, so everything before it is complete; so is the position, set before the step). */
    int j = k0 + warp;
    kv_vec<T, EPL> kr[UNROLL], vr[UNROLL];
    load_batch<T, EPL, UNROLL>(kc, vc, j, cached_end, a.kv_stride, off, kr, vr);
    if (early) pdl_wait();

    float qv[EPL], qs[EPL];
    {
        const float *qr = a.q + (size_t)h * D + lane * EPL;
#pragma unroll
        for (int e = 0; e < EPL; e++) qv[e] = qr[e];
    }
    if (FUSED) rope_lane<EPL>(qv, lane, pos, r.inv_freq, r.half_split);
#pragma unroll
    for (int e = 0; e < EPL; e++) qs[e] = qv[e] * a.qscale;

    float m = -INFINITY, l = 0.0f, acc[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) acc[e] = 0.0f;

    /* the newest key and value, from the step's buffers */
    const bool has_new = FUSED && warp == 0 && k0 <= L - 1 && L - 1 < k1;
    float kn[EPL], vn[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        kn[e] = has_new ? r.k[off + e] : 0.0f;
        vn[e] = has_new ? r.v[off + e] : 0.0f;
    }

    for (; j < cached_end; j += DECODE_WARPS * UNROLL) {
        if (j != k0 + warp) load_batch<T, EPL, UNROLL>(kc, vc, j, cached_end, a.kv_stride, off, kr, vr);
        float sc[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            sc[u] = 0.0f;
#pragma unroll
            for (int e = 0; e < EPL; e++) sc[u] = fmaf(qs[e], to_f32<T>(kr[u].v[e]), sc[u]);
        }
        /* the UNROLL warp sums side by side */
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int u = 0; u < UNROLL; u++) sc[u] += __shfl_xor_sync(0xffffffffu, sc[u], o);
        float m_new = m;
#pragma unroll
        for (int u = 0; u < UNROLL; u++)
            if (j + u * DECODE_WARPS < cached_end) m_new = fmaxf(m_new, sc[u]);
        const float corr = exp2f(m - m_new);
        l *= corr;
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[e] *= corr;
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const float p = j + u * DECODE_WARPS < cached_end ? exp2f(sc[u] - m_new) : 0.0f;
            l += p;
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[e] = fmaf(p, to_f32<T>(vr[u].v[e]), acc[e]);
        }
        m = m_new;
    }

    if (has_new) {
        /* the newest key and value (loaded above), after the cached keys: fewer registers live */
        rope_lane<EPL>(kn, lane, pos, r.inv_freq, r.half_split);
        kv_vec<T, EPL> kt, vt;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            kt.v[e] = from_f32<T>(kn[e]);
            vt.v[e] = from_f32<T>(vn[e]);
        }
        if (h % a.group == 0) {
            const size_t row = (size_t)(L - 1) * a.kv_stride + off;
            *reinterpret_cast<kv_vec<T, EPL> *>(const_cast<T *>(kc) + row) = kt;
            *reinterpret_cast<kv_vec<T, EPL> *>(const_cast<T *>(vc) + row) = vt;
        }
        float sc = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; e++) sc = fmaf(qs[e], to_f32<T>(kt.v[e]), sc);
        sc = warp_sum(sc); /* every lane's key values are in this sum: all reads of k are done below */
        const float m_new = fmaxf(m, sc), corr = exp2f(m - m_new), p = exp2f(sc - m_new);
        l = l * corr + p;
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[e] = fmaf(p, to_f32<T>(vt.v[e]), acc[e] * corr);
        m = m_new;
        /* the rotated key goes back once the group's other heads have read it */
        bool last_reader = true;
        if (a.group > 1) {
            unsigned seen = 0;
            if (lane == 0) {
                __threadfence();
                seen = atomicAdd(&r.kv_counters[kvh], 1u);
            }
            seen = __shfl_sync(0xffffffffu, seen, 0);
            last_reader = seen == (unsigned)(a.group - 1);
            if (last_reader && lane == 0) r.kv_counters[kvh] = 0u;
        }
        if (last_reader) {
#pragma unroll
            for (int e = 0; e < EPL; e++) r.k[off + e] = kn[e];
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
    float *q_out = FUSED ? a.q + (size_t)h * D + lane * EPL : nullptr;
    if (splits == 1) {
        const float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
        for (int d = threadIdx.x; d < D; d += THREADS) {
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < DECODE_WARPS; w++) o += sm_acc[w][d] * wsc[w];
            a.out[(size_t)h * D + d] = o * inv;
        }
        if (FUSED && warp == 0) /* every warp has read q (before the barrier above) */
#pragma unroll
            for (int e = 0; e < EPL; e++) q_out[e] = qv[e];
        return;
    }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 /* (older targets merge through memory, cluster or not) */
    if (a.cluster) {
        /* The block's result stays in its shared memory; the cluster's first block reads the others'
         * there (no round trips through L2, no fence, no counter). */
        namespace cg = cooperative_groups;
        cg::cluster_group cluster = cg::this_cluster();
        for (int d = threadIdx.x; d < D; d += THREADS) {
            float o = 0.0f;
#pragma unroll
            for (int w = 0; w < DECODE_WARPS; w++) o += sm_acc[w][d] * wsc[w];
            sm_o[d] = o;
        }
        if (threadIdx.x == 0) {
            sm_ml[0] = M;
            sm_ml[1] = lsum;
        }
        cluster.sync(); /* every block's result is written (and visible to the cluster) */
        if (s == 0) {
            float GM = -INFINITY;
            for (int p = 0; p < splits; p++) GM = fmaxf(GM, *cluster.map_shared_rank(&sm_ml[0], p));
            float total = 0.0f, o[DPT];
#pragma unroll
            for (int t = 0; t < DPT; t++) o[t] = 0.0f;
            for (int p = 0; p < splits; p++) {
                const float pm = *cluster.map_shared_rank(&sm_ml[0], p);
                const float wgt = GM == -INFINITY || pm == -INFINITY ? 0.0f : exp2f(pm - GM);
                total += wgt * *cluster.map_shared_rank(&sm_ml[1], p);
                const float *po = cluster.map_shared_rank(sm_o, p);
#pragma unroll
                for (int t = 0; t < DPT; t++)
                    if (threadIdx.x + t * THREADS < D) o[t] = fmaf(wgt, po[threadIdx.x + t * THREADS], o[t]);
            }
            const float inv = total > 0.0f ? 1.0f / total : 0.0f;
#pragma unroll
            for (int t = 0; t < DPT; t++)
                if (threadIdx.x + t * THREADS < D) a.out[(size_t)h * D + threadIdx.x + t * THREADS] = o[t] * inv;
            if (FUSED && warp == 0) /* every block of the cluster has passed the barrier: none still reads q */
#pragma unroll
                for (int e = 0; e < EPL; e++) q_out[e] = qv[e];
        }
        cluster.sync(); /* the others' shared memory must outlive the first block's reads */
        return;
    }
#endif

    float *slot = a.partial + ((size_t)h * splits + s) * (D + 2);
    for (int d = threadIdx.x; d < D; d += THREADS) {
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
    if (threadIdx.x == 0) sm_last = atomicAdd(&a.counters[h], 1u) == (unsigned)(splits - 1);
    __syncthreads();
    if (!sm_last) return;

    /* last block of this head: merge all splits, every partial read in one round trip */
    __threadfence();
    const float *head_part = a.partial + (size_t)h * splits * (D + 2);
    if (threadIdx.x < splits) {
        sm_pm[threadIdx.x] = __ldcg(head_part + (size_t)threadIdx.x * (D + 2));
        sm_pl[threadIdx.x] = __ldcg(head_part + (size_t)threadIdx.x * (D + 2) + 1);
    }
    float part[DPT][DECODE_MAX_SPLITS];
#pragma unroll
    for (int t = 0; t < DPT; t++) {
        const int d = threadIdx.x + t * THREADS;
#pragma unroll
        for (int p = 0; p < DECODE_MAX_SPLITS; p++)
            part[t][p] = p < splits && d < D ? __ldcg(head_part + (size_t)p * (D + 2) + 2 + d) : 0.0f;
    }
    __syncthreads();
    float GM = -INFINITY;
    for (int p = 0; p < splits; p++) GM = fmaxf(GM, sm_pm[p]);
    float total = 0.0f, o[DPT];
#pragma unroll
    for (int t = 0; t < DPT; t++) o[t] = 0.0f;
#pragma unroll
    for (int p = 0; p < DECODE_MAX_SPLITS; p++) {
        const float wgt = p < splits && GM != -INFINITY && sm_pm[p] != -INFINITY ? exp2f(sm_pm[p] - GM) : 0.0f;
        total += p < splits ? wgt * sm_pl[p] : 0.0f;
#pragma unroll
        for (int t = 0; t < DPT; t++) o[t] = fmaf(wgt, part[t][p], o[t]);
    }
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
#pragma unroll
    for (int t = 0; t < DPT; t++) {
        const int d = threadIdx.x + t * THREADS;
        if (d < D) a.out[(size_t)h * D + d] = o[t] * inv;
    }
    if (FUSED && warp == 0) /* every block of this head has counted in: none still reads q */
#pragma unroll
        for (int e = 0; e < EPL; e++) q_out[e] = qv[e];
    if (threadIdx.x == 0) a.counters[h] = 0u;
}

/* Split count: about two blocks per SM over all heads, at most DECODE_MAX_SPLITS and what the
 * partials buffer holds; with the length known (not recording), at least 64 keys a split. */
static int decode_splits(const tfm_backend *be, int L, int n_head, int head_dim) {
    int splits = be->attn_splits > 0 ? be->attn_splits : 2 * be->prop.multiProcessorCount / n_head;
    if (splits > DECODE_MAX_SPLITS) splits = DECODE_MAX_SPLITS;
    size_t cap = be->attn_partial_floats / ((size_t)n_head * (head_dim + 2));
    if ((size_t)splits > cap) splits = (int)cap;
    if (!be->recording && splits > (L + 63) / 64) splits = (L + 63) / 64;
    return splits < 1 ? 1 : splits;
}

template <int FUSED>
static cudaError_t launch_decode(tfm_backend *be, tfm_dtype kv_dtype, int head_dim, int n_head, decode_args a,
                                 const decode_rope_args &r) {
    dim3 grid((unsigned)n_head, (unsigned)a.splits), block(DECODE_WARPS * 32);
    auto launch = [&](dim3 cluster) {
        return with_storage_type(kv_dtype, [&](auto tag) {
            using T = typename decltype(tag)::type;
            switch (head_dim / 32) {
            case 1: return tfm_cuda_launch_cluster(be, cluster, attention_decode_kernel<T, 1, FUSED>, grid, block, 0, a, r);
            case 2: return tfm_cuda_launch_cluster(be, cluster, attention_decode_kernel<T, 2, FUSED>, grid, block, 0, a, r);
            case 4: return tfm_cuda_launch_cluster(be, cluster, attention_decode_kernel<T, 4, FUSED>, grid, block, 0, a, r);
            default: return tfm_cuda_launch_cluster(be, cluster, attention_decode_kernel<T, 8, FUSED>, grid, block, 0, a, r);
            }
        });
    };
    /* a head's splits as one cluster where that is allowed (at most 8 blocks, portable size) */
    a.cluster = be->attn_cluster && a.splits > 1 && a.splits <= 8;
    if (a.cluster) {
        cudaError_t err = launch(dim3(1, (unsigned)a.splits, 1));
        if (err == cudaSuccess) return err;
        cudaGetLastError(); /* refused (nothing was queued): merge through memory instead */
        a.cluster = 0;
    }
    return launch(dim3(1, 1, 1));
}

/* Keeps the cluster merge only where a cluster of 8 decode blocks can be placed at all (a partitioned
 * GPU may have too few SMs per cluster group): a launch that cannot run would fail inside a recording. */
void tfm_cuda_attention_decode_setup(tfm_backend *be) {
    if (!be->attn_cluster) return;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(1, 8);
    cfg.blockDim = dim3(DECODE_WARPS * 32);
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = 1;
    attr.val.clusterDim.y = 8;
    attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, attention_decode_kernel<__half, 4, 1>, &cfg) != cudaSuccess ||
        clusters < 1) {
        cudaGetLastError();
        be->attn_cluster = 0;
    }
}

static int decode_shape_ok(const float *q, const void *k_cache, const void *v_cache, tfm_dtype kv_dtype, int n_head,
                           int n_head_kv, int head_dim) {
    int epl = head_dim / 32;
    return head_dim % 32 == 0 && (epl == 1 || epl == 2 || epl == 4 || epl == 8) && n_head <= TFM_CUDA_MAX_HEADS &&
           n_head_kv >= 1 && n_head % n_head_kv == 0 &&
           (kv_dtype == TFM_DTYPE_F32 || kv_dtype == TFM_DTYPE_F16 || kv_dtype == TFM_DTYPE_BF16) &&
           ((uintptr_t)q % 16) == 0 && ((uintptr_t)k_cache % 16) == 0 && ((uintptr_t)v_cache % 16) == 0;
}

static decode_args decode_common(tfm_backend *be, float *q, const void *k_cache, const void *v_cache, float *out,
                                 int pos0, int n_head, int n_head_kv, int head_dim, float scale) {
    decode_args a;
    a.q = q;
    a.kc = k_cache;
    a.vc = v_cache;
    a.out = out;
    a.partial = be->attn_partial;
    a.counters = be->attn_counters;
    a.pos_ptr = tfm_cuda_step_pos(be);
    a.pos0 = pos0;
    a.pos_delta = pos0 - be->step_pos;
    a.group = n_head / n_head_kv;
    a.kv_stride = n_head_kv * head_dim;
    a.splits = decode_splits(be, pos0 + 1, n_head, head_dim);
    a.qscale = scale * LOG2E;
    a.cluster = 0;
    a.preload = 0;
    return a;
}

tfm_status tfm_cuda_attention_decode(tfm_backend *be, const float *q, const void *k_cache, const void *v_cache,
                                     tfm_dtype kv_dtype, float *out, int pos0, int n_head, int n_head_kv, int head_dim,
                                     float scale) {
    if (!decode_shape_ok(q, k_cache, v_cache, kv_dtype, n_head, n_head_kv, head_dim)) return TFM_E_UNSUPPORTED;
    decode_args a = decode_common(be, const_cast<float *>(q), k_cache, v_cache, out, pos0, n_head, n_head_kv,
                                  head_dim, scale);
    decode_rope_args r;
    memset(&r, 0, sizeof r);
    CUDA_TRY(be, launch_decode<0>(be, kv_dtype, head_dim, n_head, a, r));
    return TFM_OK;
}

tfm_status tfm_cuda_attention_decode_rope(tfm_backend *be, const tfm_cuda_prelude *p, float *out, float scale) {
    const int pos0 = p->pos_q;
    if (p->n != 1 || p->pos_k != pos0 || p->row_k != pos0 || p->row_v != pos0 ||
        p->width != p->n_head_kv * p->head_dim ||
        !decode_shape_ok(p->q, p->k_cache, p->v_cache, p->kv_dtype, p->n_head, p->n_head_kv, p->head_dim) ||
        ((uintptr_t)p->k % 16) || ((uintptr_t)p->v % 16))
        return TFM_E_UNSUPPORTED;
    decode_args a = decode_common(be, p->q, p->k_cache, p->v_cache, out, pos0, p->n_head, p->n_head_kv, p->head_dim,
                                  scale);
    decode_rope_args r;
    r.k = p->k;
    r.v = p->v;
    r.inv_freq = p->inv_freq;
    r.half_split = p->pairing == TFM_ROPE_HALF;
    r.kv_counters = be->attn_counters + TFM_CUDA_MAX_HEADS;
    a.preload = be->last_launch_matvec;
    CUDA_TRY(be, launch_decode<1>(be, p->kv_dtype, p->head_dim, p->n_head, a, r));
    return TFM_OK;
}
