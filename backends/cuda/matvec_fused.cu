/*
 * matvec_fused.cu — the decode matvec with its neighbours folded in (see fusion.cu for when):
 *   - up to 3 weights that share one input (q/k/v, gate/up) in one launch;
 *   - the input prepared in shared memory by each block: plain x, RMSNorm(x)·g (the norm of x is
 *     reduced by the block), or silu(gate)·up;
 *   - an optional residual: res[r] += y[r] (one weight only).
 * Each warp owns 2 rows and streams them with 16-byte loads, 4 per row in flight; the first loads are
 * issued before waiting for the previous kernel (weights never change), so the gap between kernels
 * is spent reading weights.
 *
 * Two kernels: mvl_kernel (the default) reads x through L1 and needs no block-wide step: RMSNorm is
 * folded in as g inside the dot product and 1/rms applied at the end (each warp sums x² over the
 * vector it reads anyway), and gate/up can run as pairs whose epilogue writes silu(gate)·up.
 * mvx_kernel (TFM_CUDA_MVX=1) prepares the input in shared memory first and also takes a SwiGLU
 * input.
 */
#include "fusion.h"
#include "matvec_dot.h"

#define MVX_WARPS 8
#define MVX_R 2
#define MVX_U 4
#define MVX_ROWS (MVX_WARPS * MVX_R)

template <typename W, int MODE>
__global__ void __launch_bounds__(MVX_WARPS * 32) mvx_kernel(tfm_cuda_mvx_args a) {
    constexpr int EPC = dot16<W>::n;
    extern __shared__ float4 xs4[];
    __shared__ float red[MVX_WARPS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int cols = a.cols, nchunk = cols / EPC;
    const int total = a.nseg == 1 ? a.seg_end[0] : a.nseg == 2 ? a.seg_end[1] : a.seg_end[2];
    const int row0 = (blockIdx.x * MVX_WARPS + warp) * MVX_R;

    /* which weight this warp's rows belong to (row counts are multiples of MVX_R, see fusion.cu) */
    int local;
    const int s = mvx_segment(a, row0, &local);
    const W *wbase = static_cast<const W *>(s == 0 ? a.w[0] : s == 1 ? a.w[1] : a.w[2]);
    float *y = s == 0 ? a.y[0] : s == 1 ? a.y[1] : a.y[2];
    const bool valid = row0 < total;
    const uint4 *wr[MVX_R];
#pragma unroll
    for (int r = 0; r < MVX_R; r++)
        wr[r] = reinterpret_cast<const uint4 *>(wbase + (size_t)(valid ? local + r : 0) * cols);

    /* weights first: they do not depend on the previous kernel */
    uint4 pre[MVX_U][MVX_R];
#pragma unroll
    for (int u = 0; u < MVX_U; u++)
#pragma unroll
        for (int r = 0; r < MVX_R; r++)
            if (valid && lane + 32 * u < nchunk) pre[u][r] = load_stream16(wr[r] + lane + 32 * u);

    pdl_wait();
    pdl_launch_dependents();

    /* the input vector, prepared in shared memory */
    const float4 *x4 = reinterpret_cast<const float4 *>(a.x);
    const int n4 = cols / 4;
    if (MODE == TFM_CUDA_MVX_NORM) {
        float ss = 0.0f;
        for (int i = threadIdx.x; i < n4; i += blockDim.x) {
            float4 v = x4[i];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
        ss = warp_sum(ss);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        float tot = 0.0f;
#pragma unroll
        for (int w = 0; w < MVX_WARPS; w++) tot += red[w];
        const float inv = rsqrtf(tot / (float)cols + a.eps);
        const float4 *g4 = reinterpret_cast<const float4 *>(a.g);
        for (int i = threadIdx.x; i < n4; i += blockDim.x) {
            float4 v = x4[i], g = g4[i];
            xs4[i] = make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w);
        }
    } else if (MODE == TFM_CUDA_MVX_GLU) {
        const float4 *u4 = reinterpret_cast<const float4 *>(a.x2);
        for (int i = threadIdx.x; i < n4; i += blockDim.x) {
            float4 g = x4[i], u = u4[i];
            /* silu with the fast intrinsics (a few ulp; every block computes the whole vector) */
            xs4[i] = make_float4(__fdividef(g.x, 1.0f + __expf(-g.x)) * u.x, __fdividef(g.y, 1.0f + __expf(-g.y)) * u.y,
                                 __fdividef(g.z, 1.0f + __expf(-g.z)) * u.z, __fdividef(g.w, 1.0f + __expf(-g.w)) * u.w);
        }
    } else {
        for (int i = threadIdx.x; i < n4; i += blockDim.x) xs4[i] = x4[i];
    }
    __syncthreads();
    if (!valid) return;

    float acc[MVX_R];
#pragma unroll
    for (int r = 0; r < MVX_R; r++) acc[r] = 0.0f;
    auto xat = [&](int c, float4 &lo, float4 &hi) {
        lo = xs4[c * (EPC / 4)];
        hi = EPC == 8 ? xs4[c * (EPC / 4) + 1] : lo;
    };
#pragma unroll
    for (int u = 0; u < MVX_U; u++) {
        int c = lane + 32 * u;
        if (c < nchunk) {
            float4 lo, hi;
            xat(c, lo, hi);
#pragma unroll
            for (int r = 0; r < MVX_R; r++) acc[r] = dot16<W>::dot(pre[u][r], lo, hi, acc[r]);
        }
    }
    int c = lane + 32 * MVX_U;
    for (; c + 32 * (MVX_U - 1) < nchunk; c += 32 * MVX_U) {
        uint4 wv[MVX_U][MVX_R];
#pragma unroll
        for (int u = 0; u < MVX_U; u++)
#pragma unroll
            for (int r = 0; r < MVX_R; r++) wv[u][r] = load_stream16(wr[r] + c + 32 * u);
#pragma unroll
        for (int u = 0; u < MVX_U; u++) {
            float4 lo, hi;
            xat(c + 32 * u, lo, hi);
#pragma unroll
            for (int r = 0; r < MVX_R; r++) acc[r] = dot16<W>::dot(wv[u][r], lo, hi, acc[r]);
        }
    }
    for (; c < nchunk; c += 32) {
        float4 lo, hi;
        xat(c, lo, hi);
#pragma unroll
        for (int r = 0; r < MVX_R; r++) acc[r] = dot16<W>::dot(load_stream16(wr[r] + c), lo, hi, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < MVX_R; r++) {
        float v = warp_sum(acc[r]);
        if (lane == 0) {
            y[local + r] = v;
            if (a.res) a.res[local + r] += v;
        }
    }
}

template <typename W, int NORM>
__global__ void __launch_bounds__(MVX_WARPS * 32) mvl_kernel(tfm_cuda_mvx_args a) {
    constexpr int EPC = dot16<W>::n, XV = EPC / 4;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int cols = a.cols, nchunk = cols / EPC;
    const W *rw[2];
    float *yo[2];
    bool valid;
    int i0 = 0; /* pair: the row index in both weights */
    if (a.pair) {
        i0 = blockIdx.x * MVX_WARPS + warp;
        valid = i0 < a.seg_end[0];
        const int i = valid ? i0 : 0;
        rw[0] = static_cast<const W *>(a.w[0]) + (size_t)i * cols;
        rw[1] = static_cast<const W *>(a.w[1]) + (size_t)i * cols;
        yo[0] = a.y[0] + i;
        yo[1] = a.y[1] + i;
    } else {
        const int row0 = (blockIdx.x * MVX_WARPS + warp) * MVX_R;
        const int total = a.nseg == 1 ? a.seg_end[0] : a.nseg == 2 ? a.seg_end[1] : a.seg_end[2];
        valid = row0 < total;
        int local;
        const int s = mvx_segment(a, valid ? row0 : 0, &local);
        const W *wbase = static_cast<const W *>(s == 0 ? a.w[0] : s == 1 ? a.w[1] : a.w[2]);
        float *ybase = s == 0 ? a.y[0] : s == 1 ? a.y[1] : a.y[2];
        rw[0] = wbase + (size_t)local * cols;
        rw[1] = rw[0] + cols;
        yo[0] = ybase + local;
        yo[1] = yo[0] + 1;
        i0 = local;
    }
    const uint4 *wr[2] = {reinterpret_cast<const uint4 *>(rw[0]), reinterpret_cast<const uint4 *>(rw[1])};

    /* weights first: they do not depend on the previous kernel */
    uint4 pre[MVX_U][2];
#pragma unroll
    for (int u = 0; u < MVX_U; u++)
#pragma unroll
        for (int r = 0; r < 2; r++)
            if (valid && lane + 32 * u < nchunk) pre[u][r] = load_stream16(wr[r] + lane + 32 * u);

    pdl_wait();
    pdl_launch_dependents();
    if (!valid) return;

    const float4 *x4 = reinterpret_cast<const float4 *>(a.x), *g4 = reinterpret_cast<const float4 *>(a.g);
    float acc[2] = {0.0f, 0.0f}, ss = 0.0f;
    /* the input chunk for chunk index c (times g under RMSNorm, whose x² goes to ss) */
    auto xat = [&](int c, float4 &lo, float4 &hi) {
        lo = __ldg(x4 + (size_t)c * XV);
        hi = XV == 2 ? __ldg(x4 + (size_t)c * XV + 1) : lo;
        if (NORM) {
            ss += lo.x * lo.x + lo.y * lo.y + lo.z * lo.z + lo.w * lo.w;
            float4 ga = __ldg(g4 + (size_t)c * XV);
            lo = make_float4(lo.x * ga.x, lo.y * ga.y, lo.z * ga.z, lo.w * ga.w);
            if (XV == 2) {
                ss += hi.x * hi.x + hi.y * hi.y + hi.z * hi.z + hi.w * hi.w;
                float4 gb = __ldg(g4 + (size_t)c * XV + 1);
                hi = make_float4(hi.x * gb.x, hi.y * gb.y, hi.z * gb.z, hi.w * gb.w);
            }
        }
    };
#pragma unroll
    for (int u = 0; u < MVX_U; u++) {
        int c = lane + 32 * u;
        if (c < nchunk) {
            float4 lo, hi;
            xat(c, lo, hi);
            acc[0] = dot16<W>::dot(pre[u][0], lo, hi, acc[0]);
            acc[1] = dot16<W>::dot(pre[u][1], lo, hi, acc[1]);
        }
    }
    int c = lane + 32 * MVX_U;
    for (; c + 32 * (MVX_U - 1) < nchunk; c += 32 * MVX_U) {
        uint4 wv[MVX_U][2];
#pragma unroll
        for (int u = 0; u < MVX_U; u++) {
            wv[u][0] = load_stream16(wr[0] + c + 32 * u);
            wv[u][1] = load_stream16(wr[1] + c + 32 * u);
        }
#pragma unroll
        for (int u = 0; u < MVX_U; u++) {
            float4 lo, hi;
            xat(c + 32 * u, lo, hi);
            acc[0] = dot16<W>::dot(wv[u][0], lo, hi, acc[0]);
            acc[1] = dot16<W>::dot(wv[u][1], lo, hi, acc[1]);
        }
    }
    for (; c < nchunk; c += 32) {
        float4 lo, hi;
        xat(c, lo, hi);
        acc[0] = dot16<W>::dot(load_stream16(wr[0] + c), lo, hi, acc[0]);
        acc[1] = dot16<W>::dot(load_stream16(wr[1] + c), lo, hi, acc[1]);
    }
    float v0 = warp_sum(acc[0]), v1 = warp_sum(acc[1]);
    if (NORM) {
        const float inv = rsqrtf(warp_sum(ss) / (float)cols + a.eps);
        v0 *= inv;
        v1 *= inv;
    }
    if (lane == 0) {
        if (a.pair) {
            const float h = v0 / (1.0f + expf(-v0)) * v1; /* as the swiglu op computes it */
            yo[1][0] = v1;
            if (a.glu_out != a.y[0]) yo[0][0] = v0;
            if (a.glu_out) a.glu_out[i0] = h;
        } else {
            yo[0][0] = v0;
            yo[1][0] = v1;
            if (a.res) {
                a.res[i0] += v0;
                a.res[i0 + 1] += v1;
            }
        }
    }
}

template <typename W, int MODE> static cudaError_t mvx_setup_one(int smem) {
    return cudaFuncSetAttribute(mvx_kernel<W, MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
}

tfm_status tfm_cuda_mvx_setup(tfm_backend *be) {
    int limit = (int)be->prop.sharedMemPerBlockOptin - 1024;
    if (limit > 160 * 1024) limit = 160 * 1024;
    be->mvx_smem_limit = limit;
    CUDA_TRY(be, (mvx_setup_one<__nv_bfloat16, 0>(limit)));
    CUDA_TRY(be, (mvx_setup_one<__nv_bfloat16, 1>(limit)));
    CUDA_TRY(be, (mvx_setup_one<__nv_bfloat16, 2>(limit)));
    CUDA_TRY(be, (mvx_setup_one<__half, 0>(limit)));
    CUDA_TRY(be, (mvx_setup_one<__half, 1>(limit)));
    CUDA_TRY(be, (mvx_setup_one<__half, 2>(limit)));
    CUDA_TRY(be, (mvx_setup_one<float, 0>(limit)));
    CUDA_TRY(be, (mvx_setup_one<float, 1>(limit)));
    CUDA_TRY(be, (mvx_setup_one<float, 2>(limit)));
    return TFM_OK;
}

int tfm_cuda_mvx_rows_per_block(void) { return MVX_ROWS; }
int tfm_cuda_mvx_row_multiple(void) { return MVX_R; }

int tfm_cuda_mvx_direct(const tfm_backend *be) { return be->mvx_variant == 0; }

template <typename W>
static cudaError_t mvx_launch_typed(tfm_backend *be, const tfm_cuda_mvx_args *a, int mode) {
    int total = a->seg_end[a->nseg - 1];
    if (tfm_cuda_mvx_direct(be) && mode != TFM_CUDA_MVX_GLU) {
        dim3 block(MVX_WARPS * 32);
        dim3 grid(a->pair ? (unsigned)((a->seg_end[0] + MVX_WARPS - 1) / MVX_WARPS)
                          : (unsigned)((total + MVX_ROWS - 1) / MVX_ROWS));
        if (mode == TFM_CUDA_MVX_NORM) return tfm_cuda_launch(be, mvl_kernel<W, 1>, grid, block, 0, *a);
        return tfm_cuda_launch(be, mvl_kernel<W, 0>, grid, block, 0, *a);
    }
    dim3 grid((unsigned)((total + MVX_ROWS - 1) / MVX_ROWS)), block(MVX_WARPS * 32);
    size_t smem = (size_t)a->cols * sizeof(float);
    switch (mode) {
    case TFM_CUDA_MVX_NORM: return tfm_cuda_launch(be, mvx_kernel<W, 1>, grid, block, smem, *a);
    case TFM_CUDA_MVX_GLU: return tfm_cuda_launch(be, mvx_kernel<W, 2>, grid, block, smem, *a);
    default: return tfm_cuda_launch(be, mvx_kernel<W, 0>, grid, block, smem, *a);
    }
}

tfm_status tfm_cuda_mvx_launch(tfm_backend *be, const tfm_cuda_mvx_args *a, tfm_dtype wtype, int mode) {
    if (tfm_cuda_mvx_direct(be) && mode != TFM_CUDA_MVX_GLU && tfm_cuda_mvs_fits(be, wtype, a->cols)) {
        tfm_status st = tfm_cuda_mvs_launch(be, a, wtype, mode);
        be->last_launch_matvec = st == TFM_OK;
        return st;
    }
    cudaError_t err;
    switch (wtype) {
    case TFM_DTYPE_BF16: err = mvx_launch_typed<__nv_bfloat16>(be, a, mode); break;
    case TFM_DTYPE_F16: err = mvx_launch_typed<__half>(be, a, mode); break;
    default: err = mvx_launch_typed<float>(be, a, mode); break;
    }
    CUDA_TRY(be, err);
    /* these kernels wait for their predecessor before releasing the next kernel, and write no cache */
    be->last_launch_matvec = 1;
    return TFM_OK;
}
