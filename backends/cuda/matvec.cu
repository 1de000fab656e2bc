/*
 * matvec.cu — y = W · x for one token: the memory-bound half of decoding.
 *
 * Each warp owns R whole rows and streams them once with 16-byte loads, U loads per row in flight
 * per lane, multiplying by x (f32, read through L1) in f32. Before waiting for the previous kernel
 * (programmatic dependent launch) lane 0 asks the copy engine to pull the first bytes of its rows
 * into L2, so the gap between kernels is spent reading weights. The naive twin (matvec_simple)
 * handles shapes the fast kernel does not (columns not a multiple of the 16-byte vector, unaligned x).
 */
#include "matvec_dot.h"

#define MATVEC_WARPS 4

__device__ __forceinline__ void prefetch_l2(const void *p, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#endif
}

template <typename W, int R, int U>
__global__ void __launch_bounds__(MATVEC_WARPS * 32) matvec_kernel(const W *__restrict__ w, const float *__restrict__ x,
                                                                   float *__restrict__ y, int rows, int cols,
                                                                   int prefetch) {
    constexpr int EPC = dot16<W>::n;        /* elements per 16-byte chunk */
    constexpr int XV = EPC / 4;             /* float4s of x per chunk */
    const int lane = threadIdx.x & 31;
    const int row0 = (blockIdx.x * MATVEC_WARPS + (threadIdx.x >> 5)) * R;
    const size_t row_bytes = (size_t)cols * sizeof(W);

    if (prefetch && lane == 0 && row0 < rows) {
        size_t bytes = (size_t)min(R, rows - row0) * row_bytes;
        if (bytes > (size_t)prefetch) bytes = (size_t)prefetch;
        prefetch_l2(w + (size_t)row0 * cols, (unsigned)(bytes & ~(size_t)15));
    }
    pdl_wait();
    pdl_launch_dependents();
    if (row0 >= rows) return;

    const uint4 *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = reinterpret_cast<const uint4 *>(w + (size_t)min(row0 + r, rows - 1) * cols);
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    const int nchunk = cols / EPC;

    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;

    int c = lane;
    for (; c + 32 * (U - 1) < nchunk; c += 32 * U) {
        uint4 wv[U][R];
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < R; r++) wv[u][r] = load_stream16(wr[r] + c + 32 * u);
#pragma unroll
        for (int u = 0; u < U; u++) {
            float4 xv[XV];
#pragma unroll
            for (int k = 0; k < XV; k++) xv[k] = __ldg(x4 + (size_t)(c + 32 * u) * XV + k);
#pragma unroll
            for (int r = 0; r < R; r++) acc[r] = dot16<W>::dot(wv[u][r], xv[0], xv[XV - 1], acc[r]);
        }
    }
    for (; c < nchunk; c += 32) {
        float4 xv[XV];
#pragma unroll
        for (int k = 0; k < XV; k++) xv[k] = __ldg(x4 + (size_t)c * XV + k);
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = dot16<W>::dot(load_stream16(wr[r] + c), xv[0], xv[XV - 1], acc[r]);
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        float s = warp_sum(acc[r]);
        if (lane == 0 && row0 + r < rows) y[row0 + r] = s;
    }
}

/* The naive twin: one warp per row, element by element. */
template <typename W>
__global__ void matvec_simple_kernel(const W *__restrict__ w, const float *__restrict__ x, float *__restrict__ y,
                                     int rows, int cols) {
    pdl_wait();
    pdl_launch_dependents();
    int row = blockIdx.x * MATVEC_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    const W *wr = w + (size_t)row * cols;
    float s = 0.0f;
    for (int c = lane; c < cols; c += 32) s = fmaf(to_f32<W>(wr[c]), x[c], s);
    s = warp_sum(s);
    if (lane == 0) y[row] = s;
}

template <typename W, int R, int U>
static cudaError_t launch_fast(tfm_backend *be, const tfm_weight *w, const float *x, float *y) {
    int rows = (int)w->rows, cols = (int)w->cols;
    int rows_per_block = MATVEC_WARPS * R;
    dim3 grid((unsigned)((rows + rows_per_block - 1) / rows_per_block));
    return tfm_cuda_launch(be, matvec_kernel<W, R, U>, grid, dim3(MATVEC_WARPS * 32), 0, (const W *)w->data, x, y,
                           rows, cols, be->prefetch_bytes);
}

template <typename W>
static cudaError_t launch_typed(tfm_backend *be, const tfm_weight *w, const float *x, float *y) {
    int rows = (int)w->rows, cols = (int)w->cols;
    constexpr int EPC = dot16<W>::n;
    int fast = cols % EPC == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)w->data % 16) == 0;
    if (!fast) {
        dim3 grid((unsigned)((rows + MATVEC_WARPS - 1) / MATVEC_WARPS));
        return tfm_cuda_launch(be, matvec_simple_kernel<W>, grid, dim3(MATVEC_WARPS * 32), 0, (const W *)w->data, x, y,
                               rows, cols);
    }
    switch (be->matvec_variant) {
    case 1: return launch_fast<W, 1, 8>(be, w, x, y);
    case 2: return launch_fast<W, 2, 4>(be, w, x, y);
    case 3: return launch_fast<W, 4, 2>(be, w, x, y);
    case 4: return launch_fast<W, 1, 2>(be, w, x, y);
    default: return launch_fast<W, 1, 4>(be, w, x, y);
    }
}

tfm_status tfm_cuda_matvec(tfm_backend *be, const tfm_weight *w, const float *x, float *y) {
    cudaError_t err;
    switch (w->dtype) {
    case TFM_DTYPE_BF16: err = launch_typed<__nv_bfloat16>(be, w, x, y); break;
    case TFM_DTYPE_F16: err = launch_typed<__half>(be, w, x, y); break;
    case TFM_DTYPE_F32: err = launch_typed<float>(be, w, x, y); break;
    default: return tfm_cuda_invalid(be, "cuda matmul: weight dtype %s is not supported", dtype_name(w->dtype));
    }
    CUDA_TRY(be, err);
    return TFM_OK;
}
