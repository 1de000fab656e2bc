/*
 * matvec_stream.cu — the decode matvec as a stream: one block per SM, each warp keeping DEPTH
 * warp-wide 16-byte loads (512 bytes each) in flight through a ring in shared memory.
 *
 * Why: in the one-warp-per-two-rows kernel (matvec_fused.cu) a warp lives for a few loads, so the
 * memory pipeline fills and drains with every warp and every block launch, and registers cap the
 * bytes in flight. Here the loads go to shared memory (cp.async), so a block keeps 128 KB in flight
 * without registers, every warp stays busy to the end, and consuming a load queues the next one
 * across row boundaries. Each warp takes every W-th row (W = warps in the grid), so the warps finish
 * together (to one row); the warps are numbered across the blocks first, so every SM gets the same
 * share to one row. A block takes over half an SM's shared memory: the grid (one block per SM) is then
 * spread over all SMs.
 *
 * The input is prepared per block in shared memory in one pass over x (x, or x·g under RMSNorm, whose
 * 1/rms the block reduces meanwhile and applies to each row's sum), split into the low and high halves
 * of each 8-value chunk so a warp's reads are conflict-free. Epilogues as in matvec_fused.cu: y, y and
 * a residual add (the residual fetched a row ahead), or for gate/up pairs silu(gate)·up. Needs rows of
 * whole 512-byte loads; other shapes use the fused kernel.
 *
 * Registers are capped (40 a thread, 48 for pairs) so that decode attention's blocks (96 registers,
 * 128 threads) fit two to an SM beside a block of this kernel: attention then waits there for the
 * q/k/v matvec instead of being launched after it.
 */
#include "fusion.h"
#include "matvec_dot.h"

#define MVS_MAX_THREADS 1024

__device__ __forceinline__ void mvs_copy16(void *smem_dst, const void *src) {
    unsigned d = (unsigned)__cvta_generic_to_shared(smem_dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void mvs_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void mvs_wait_all_but() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

/* Which rows a warp takes: first, first + step, ... (count of them). A unit is one row, or for
 * pairs row i of both weights. */
struct mvs_share {
    int first, step, count;
};

/* Row `u` of the weights. */
template <typename W, int PAIR>
__device__ __forceinline__ const uint4 *mvs_row(const tfm_cuda_mvx_args &a, int u, int r) {
    if (PAIR) return reinterpret_cast<const uint4 *>(static_cast<const W *>(r ? a.w[1] : a.w[0]) + (size_t)u * a.cols);
    int local;
    const int s = mvx_segment(a, u, &local);
    const W *base = static_cast<const W *>(s == 0 ? a.w[0] : s == 1 ? a.w[1] : a.w[2]);
    return reinterpret_cast<const uint4 *>(base + (size_t)local * a.cols);
}

template <typename W, int NORM, int PAIR, int DEPTH>
__global__ void __launch_bounds__(MVS_MAX_THREADS) __maxnreg__(PAIR ? 48 : 40) mvs_kernel(tfm_cuda_mvx_args a, int interleave) {
    constexpr int EPC = dot16<W>::n, R = PAIR ? 2 : 1, U = DEPTH / R;
    /* shared memory: the input ([nchunk] low halves, then [nchunk] high halves for 16-bit weights),
     * then each warp's ring of DEPTH warp-wide loads (each lane reads back only its own 16 bytes) */
    extern __shared__ float4 xs[];
    __shared__ float red[MVS_MAX_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const int cols = a.cols, nchunk = cols / EPC, Q = nchunk / 32; /* Q warp-wide loads per row */
    const int units = PAIR ? a.seg_end[0] : a.nseg == 1 ? a.seg_end[0] : a.nseg == 2 ? a.seg_end[1] : a.seg_end[2];
    uint4 *ring = reinterpret_cast<uint4 *>(xs + cols / 4) + (size_t)warp * DEPTH * 32 + lane;

    /* this warp's share: every W-th row, or a contiguous run (both balanced to one row). Numbering
     * the warps block by block puts the extra rows on the first blocks (a third more work on some SMs
     * for gate/up: 11008 rows over 4224 warps); numbering them across the blocks first (mode 2)
     * spreads those rows over every SM. */
    const int gw = interleave == 2 ? warp * gridDim.x + blockIdx.x : blockIdx.x * nwarps + warp;
    const int nw = gridDim.x * nwarps;
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

    /* the input vector, prepared by the block in one pass: x (times g under RMSNorm; the norm's 1/rms,
     * reduced by the block meanwhile, scales each row's sum instead, as in mvl_kernel) */
    const float4 *x4 = reinterpret_cast<const float4 *>(a.x), *g4 = reinterpret_cast<const float4 *>(a.g);
    const int n4 = cols / 4;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
        float4 v = x4[i];
        if (NORM) {
            const float4 g = g4[i];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
            v = make_float4(v.x * g.x, v.y * g.y, v.z * g.z, v.w * g.w);
        }
        xs[EPC == 8 ? (i & 1) * nchunk + (i >> 1) : i] = v;
    }
    if (NORM) {
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
    }
    /* the residual of this warp's first row, fetched now: an add at the row's end would wait for it */
    float res_old = 0.0f;
    if (!PAIR && a.res && lane == 0 && sh.count) res_old = a.res[sh.first];
    __syncthreads();
    float inv = 1.0f;
    if (NORM) {
        float tot = 0.0f;
        for (int w = 0; w < nwarps; w++) tot += red[w];
        inv = rsqrtf(tot / (float)cols + a.eps);
    }

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
                for (int r = 0; r < R; r++) acc[r] = dot16<W>::dot(ring[(k * R + r) * 32], lo, hi, acc[r]);
                /* the slot was read into registers above (the sums depend on it) before it is refilled */
                queue(k, t + k + U < total);
                if (++cq == Q) {
                    /* a row is done */
                    const int u = sh.first + ci * sh.step;
                    const float v0 = warp_sum(acc[0]) * inv, v1 = PAIR ? warp_sum(acc[R - 1]) * inv : 0.0f;
                    if (lane == 0) {
                        if (PAIR) {
                            const float h = v0 / (1.0f + expf(-v0)) * v1; /* as the swiglu op computes it */
                            a.y[1][u] = v1;
                            if (a.glu_out != a.y[0]) a.y[0][u] = v0;
                            if (a.glu_out) a.glu_out[u] = h;
                        } else {
                            int local;
                            const int s = mvx_segment(a, u, &local);
                            float *y = s == 0 ? a.y[0] : s == 1 ? a.y[1] : a.y[2];
                            y[local] = v0;
                            if (a.res) {
                                /* the residual takes one weight (local == u); the next row's is fetched */
                                a.res[local] = res_old + v0;
                                if (ci + 1 < sh.count) res_old = a.res[u + sh.step];
                            }
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
