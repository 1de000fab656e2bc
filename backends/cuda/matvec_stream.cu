/*
 * matvec_stream.cu — the decode matvec as a stream: one block per SM, each warp keeping DEPTH
 * warp-wide 16-byte loads (512 bytes each) in flight through a ring in shared memory.
 *
 * Why: in the one-warp-per-two-rows kernel (matvec_fused.cu) a warp lives for a few loads, so the
 * memory pipeline fills and drains with every warp and every block launch, and registers cap the
 * bytes in flight. Here the loads go to shared memory (cp.async), so a block keeps 128 KB in flight
 * without registers, every warp stays busy to the end, and consuming a load queues the next one
 * across row boundaries. Each warp takes every W-th row (W = warps in the grid), so the warps finish
 * together (to one row) and neighbouring warps read neighbouring rows. A block takes over half an
 * SM's shared memory: the grid (one block per SM) is then spread over all SMs.
 *
 * The input is prepared per block in shared memory (x, or RMSNorm(x)·g with the norm reduced by the
 * block), split into the low and high halves of each 8-value chunk so a warp's reads are
 * conflict-free. Epilogues as in matvec_fused.cu: y, y and a residual add, or for gate/up pairs
 * silu(gate)·up. Needs rows of whole 512-byte loads; other shapes use the fused kernel.
 */
#include "fusion.h"

#define MVS_MAX_THREADS 1024

__device__ __forceinline__ void mvs_copy16(void *smem_dst, const void *src) {
    unsigned d = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void mvs_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void mvs_wait_all_but() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

/* dot of 16 bytes of weights with 8 (or 4, f32) input values */
template <typename W> struct mvs_vec;
template <> struct mvs_vec<__nv_bfloat16> {
    static constexpr int n = 8;
    static __device__ __forceinline__ float dot(uint4 w, float4 a, float4 b, float s) {
        s = fmaf(__uint_as_float(w.x << 16), a.x, s);
        s = fmaf(__uint_as_float(w.x & 0xffff0000u), a.y, s);
        s = fmaf(__uint_as_float(w.y << 16), a.z, s);
        s = fmaf(__uint_as_float(w.y & 0xffff0000u), a.w, s);
        s = fmaf(__uint_as_float(w.z << 16), b.x, s);
        s = fmaf(__uint_as_float(w.z & 0xffff0000u), b.y, s);
        s = fmaf(__uint_as_float(w.w << 16), b.z, s);
        s = fmaf(__uint_as_float(w.w & 0xffff0000u), b.w, s);
        return s;
    }
};
template <> struct mvs_vec<__half> {
    static constexpr int n = 8;
    static __device__ __forceinline__ float2 h2(unsigned u) {
        __half2 h = *reinterpret_cast<__half2 *>(&u);
        return __half22float2(h);
    }
    static __device__ __forceinline__ float dot(uint4 w, float4 a, float4 b, float s) {
        float2 p = h2(w.x), q = h2(w.y), r = h2(w.z), t = h2(w.w);
        s = fmaf(p.x, a.x, s);
        s = fmaf(p.y, a.y, s);
        s = fmaf(q.x, a.z, s);
        s = fmaf(q.y, a.w, s);
        s = fmaf(r.x, b.x, s);
        s = fmaf(r.y, b.y, s);
        s = fmaf(t.x, b.z, s);
        s = fmaf(t.y, b.w, s);
        return s;
    }
};
template <> struct mvs_vec<float> {
    static constexpr int n = 4;
    static __device__ __forceinline__ float dot(uint4 w, float4 a, float4, float s) {
        s = fmaf(__uint_as_float(w.x), a.x, s);
        s = fmaf(__uint_as_float(w.y), a.y, s);
        s = fmaf(__uint_as_float(w.z), a.z, s);
        s = fmaf(__uint_as_float(w.w), a.w, s);
        return s;
    }
};

/* Which rows a warp takes: first, first + step, ... (count of them). A unit is one row, or for
 * pairs row i of both weights. */
struct mvs_share {
    int first, step, count;
};

/* Row `u` of the weights (segment chosen with constant indices: a run-time index into the argument
 * arrays would copy them to local memory). */
template <typename W, int PAIR>
__device__ __forceinline__ const uint4 *mvs_row(const tfm_cuda_mvx_args &a, int u, int r) {
    if (PAIR) return reinterpret_cast<const uint4 *>(static_cast<const W *>(r ? a.w[1] : a.w[0]) + (size_t)u * a.cols);
    const int s = a.nseg > 1 && u >= a.seg_end[0] ? (a.nseg > 2 && u >= a.seg_end[1] ? 2 : 1) : 0;
    const int local = u - (s == 0 ? 0 : s == 1 ? a.seg_end[0] : a.seg_end[1]);
    const W *base = static_cast<const W *>(s == 0 ? a.w[0] : s == 1 ? a.w[1] : a.w[2]);
    return reinterpret_cast<const uint4 *>(base + (size_t)local * a.cols);
}

template <typename W, int NORM, int PAIR, int DEPTH>
__global__ void __launch_bounds__(MVS_MAX_THREADS, 1) mvs_kernel(tfm_cuda_mvx_args a, int interleave) {
    constexpr int EPC = mvs_vec<W>::n, R = PAIR ? 2 : 1, U = DEPTH / R;
    /* shared memory: the input ([nchunk] low halves, then [nchunk] high halves for 16-bit weights),
     * then each warp's ring of DEPTH warp-wide loads (each lane reads back only its own 16 bytes) */
    extern __shared__ float4 xs[];
    __shared__ float red[MVS_MAX_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const int cols = a.cols, nchunk = cols / EPC, Q = nchunk / 32; /* Q warp-wide loads per row */
    const int units = PAIR ? a.seg_end[0] : a.nseg == 1 ? a.seg_end[0] : a.nseg == 2 ? a.seg_end[1] : a.seg_end[2];
    uint4 *ring = reinterpret_cast<uint4 *>(xs + cols / 4) + (size_t)warp * DEPTH * 32 + lane;

    /* this warp's share: every W-th row, or a contiguous run (both balanced to one row) */
    const int gw = blockIdx.x * nwarps + warp, nw = gridDim.x * nwarps;
    mvs_share sh;
    if (interleave) {
        sh.first = gw;
        sh.step = nw;
        sh.count = gw < units ? (units - gw + nw - 1) / nw : 0;
    } else {
        sh.first = (int)((long long)units * gw / nw);
        sh.step = 1;
        sh.count = (int)((long long)units * (gw + 1) / nw) - sh.first;
    }
    const int total = sh.count * Q; /* positions: one warp-wide load of each of the R weights */

    /* the queueing cursor: row li of the share, position lq of that row */
    int li = 0, lq = 0;
    const uint4 *lp[R];
#pragma unroll
    for (int r = 0; r < R; r++) lp[r] = sh.count ? mvs_row<W, PAIR>(a, sh.first, r) + lane : nullptr;
    /* queues the next position (if live) into slot k; one commit group per position, always */
    auto queue = [&](int k, bool live) {
        if (live) {
#pragma unroll
            for (int r = 0; r < R; r++) mvs_copy16(ring + (k * R + r) * 32, lp[r] + lq * 32);
            if (++lq == Q) {
                lq = 0;
                if (++li < sh.count)
#pragma unroll
                    for (int r = 0; r < R; r++) lp[r] = mvs_row<W, PAIR>(a, sh.first + li * sh.step, r) + lane;
            }
        }
        mvs_commit();
    };

    /* weights first: they do not depend on the previous kernel */
#pragma unroll
    for (int k = 0; k < U; k++) queue(k, k < total);

    pdl_wait();
    pdl_launch_dependents();

    /* the input vector, prepared by the block */
    const float4 *x4 = reinterpret_cast<const float4 *>(a.x);
    const int n4 = cols / 4;
    float inv = 1.0f;
    if (NORM) {
        float ss = 0.0f;
        for (int i = threadIdx.x; i < n4; i += blockDim.x) {
            float4 v = x4[i];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        float tot = 0.0f;
        for (int w = 0; w < nwarps; w++) tot += red[w];
        inv = rsqrtf(tot / (float)cols + a.eps);
    }
    const float4 *g4 = reinterpret_cast<const float4 *>(a.g);
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
        float4 v = x4[i];
        if (NORM) {
            float4 g = g4[i];
            v = make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w);
        }
        xs[EPC == 8 ? (i & 1) * nchunk + (i >> 1) : i] = v;
    }
    __syncthreads();

    /* the walk: wait for position p (slot p % U), add it to the row's sums, queue position p + U there */
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    int ci = 0, cq = 0;
    for (int t = 0; t < total; t += U) {
#pragma unroll
        for (int k = 0; k < U; k++) {
            if (t + k < total) {
                mvs_wait_all_but<U - 1>();
                const int c = cq * 32 + lane;
                const float4 lo = xs[c], hi = EPC == 8 ? xs[nchunk + c] : lo;
#pragma unroll
                for (int r = 0; r < R; r++) acc[r] = mvs_vec<W>::dot(ring[(k * R + r) * 32], lo, hi, acc[r]);
                /* the slot was read into registers above (the sums depend on it) before it is refilled */
                queue(k, t + k + U < total);
                if (++cq == Q) {
                    /* a row is done */
                    const int u = sh.first + ci * sh.step;
                    const float v0 = warp_sum(acc[0]), v1 = PAIR ? warp_sum(acc[R - 1]) : 0.0f;
                    if (lane == 0) {
                        if (PAIR) {
                            const float h = v0 / (1.0f + expf(-v0)) * v1; /* as the swiglu op computes it */
                            a.y[1][u] = v1;
                            if (a.glu_out != a.y[0]) a.y[0][u] = v0;
                            if (a.glu_out) a.glu_out[u] = h;
                        } else {
                            const int s = a.nseg > 1 && u >= a.seg_end[0] ? (a.nseg > 2 && u >= a.seg_end[1] ? 2 : 1) : 0;
                            const int local = u - (s == 0 ? 0 : s == 1 ? a.seg_end[0] : a.seg_end[1]);
                            float *y = s == 0 ? a.y[0] : s == 1 ? a.y[1] : a.y[2];
                            y[local] = v0;
                            if (a.res) a.res[local] += v0;
                        }
                    }
#pragma unroll
                    for (int r = 0; r < R; r++) acc[r] = 0.0f;
                    cq = 0;
                    ci++;
                }
            }
        }
    }
    mvs_wait_all_but<0>();
}

template <typename W, int NORM, int PAIR, int DEPTH> static cudaError_t mvs_setup_one(int smem) {
    return cudaFuncSetAttribute(mvs_kernel<W, NORM, PAIR, DEPTH>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
}

template <typename W, int DEPTH> static cudaError_t mvs_setup_typed(int smem) {
    cudaError_t e;
    if ((e = mvs_setup_one<W, 0, 0, DEPTH>(smem)) != cudaSuccess) return e;
    if ((e = mvs_setup_one<W, 1, 0, DEPTH>(smem)) != cudaSuccess) return e;
    if ((e = mvs_setup_one<W, 0, 1, DEPTH>(smem)) != cudaSuccess) return e;
    return mvs_setup_one<W, 1, 1, DEPTH>(smem);
}

tfm_status tfm_cuda_mvs_setup(tfm_backend *be) {
    int smem = (int)be->prop.sharedMemPerBlockOptin - 1024;
    CUDA_TRY(be, (mvs_setup_typed<__nv_bfloat16, 8>(smem)));
    CUDA_TRY(be, (mvs_setup_typed<__nv_bfloat16, 16>(smem)));
    CUDA_TRY(be, (mvs_setup_typed<__half, 8>(smem)));
    CUDA_TRY(be, (mvs_setup_typed<__half, 16>(smem)));
    CUDA_TRY(be, (mvs_setup_typed<float, 8>(smem)));
    CUDA_TRY(be, (mvs_setup_typed<float, 16>(smem)));
    be->mvs_smem_limit = smem;
    return TFM_OK;
}

/* shared memory of one block: the input in f32 and each warp's ring */
static size_t mvs_smem(const tfm_backend *be, int cols) {
    return (size_t)cols * sizeof(float) + (size_t)be->mvs_warps * be->mvs_depth * 512;
}

int tfm_cuda_mvs_fits(const tfm_backend *be, tfm_dtype wtype, int cols) {
    int esize = wtype == TFM_DTYPE_F32 ? 4 : 2;
    return be->mvs_depth > 0 && ((size_t)cols * esize) % 512 == 0 && mvs_smem(be, cols) <= (size_t)be->mvs_smem_limit;
}

template <typename W, int DEPTH>
static cudaError_t mvs_launch_depth(tfm_backend *be, const tfm_cuda_mvx_args *a, int norm) {
    const int units = a->pair ? a->seg_end[0] : a->seg_end[a->nseg - 1];
    const int warps = be->mvs_warps;
    int blocks = be->prop.multiProcessorCount;
    if (blocks > (units + warps - 1) / warps) blocks = (units + warps - 1) / warps;
    dim3 grid((unsigned)blocks), block((unsigned)(warps * 32));
    size_t smem = mvs_smem(be, a->cols);
    int il = be->mvs_interleave;
    if (a->pair)
        return norm ? tfm_cuda_launch(be, mvs_kernel<W, 1, 1, DEPTH>, grid, block, smem, *a, il)
                    : tfm_cuda_launch(be, mvs_kernel<W, 0, 1, DEPTH>, grid, block, smem, *a, il);
    return norm ? tfm_cuda_launch(be, mvs_kernel<W, 1, 0, DEPTH>, grid, block, smem, *a, il)
                : tfm_cuda_launch(be, mvs_kernel<W, 0, 0, DEPTH>, grid, block, smem, *a, il);
}

template <typename W> static cudaError_t mvs_launch_typed(tfm_backend *be, const tfm_cuda_mvx_args *a, int norm) {
    return be->mvs_depth == 8 ? mvs_launch_depth<W, 8>(be, a, norm) : mvs_launch_depth<W, 16>(be, a, norm);
}

tfm_status tfm_cuda_mvs_launch(tfm_backend *be, const tfm_cuda_mvx_args *a, tfm_dtype wtype, int mode) {
    const int norm = mode == TFM_CUDA_MVX_NORM;
    cudaError_t err;
    switch (wtype) {
    case TFM_DTYPE_BF16: err = mvs_launch_typed<__nv_bfloat16>(be, a, norm); break;
    case TFM_DTYPE_F16: err = mvs_launch_typed<__half>(be, a, norm); break;
    default: err = mvs_launch_typed<float>(be, a, norm); break;
    }
    CUDA_TRY(be, err);
    return TFM_OK;
}
