/*
 * gemm.cu — the matmul op: one token goes to our matvec kernels, a batch to cuBLAS on tensor cores.
 *
 * cuBLAS is column-major: y^T[rows x n] = W[rows x cols] (row-major, so transposed) · x^T[cols x n].
 * For 16-bit weights the activations are rounded to the weight type (f32 accumulation, f32 result).
 * The rounded input lives in gemm_in; when the op that produced x already wrote it there (RMSNorm,
 * SwiGLU and flash attention do for batches), or the previous GEMM read the same x (q/k/v, gate/up),
 * no conversion pass runs. f32 weights use plain SGEMM (no TF32), which keeps exactness tests exact.
 */
#include "cuda_internal.h"

void *tfm_cuda_conv_prepare(tfm_backend *be, size_t count) {
    if ((be->gemm16 != TFM_DTYPE_F16 && be->gemm16 != TFM_DTYPE_BF16) || be->recording) return NULL;
    be->conv_valid = 0;
    if (tfm_cuda_scratch_reserve(be, &be->gemm_in, count * 2, "GEMM input") != TFM_OK) return NULL;
    return be->gemm_in.ptr;
}

static tfm_status gemm(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n, float beta) {
    int rows = (int)w->rows, cols = (int)w->cols;
    const float one = 1.0f, beta_ = beta;
    if (w->dtype == TFM_DTYPE_F32) {
        BLAS_TRY(be, cublasSgemm(be->cublas, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one, (const float *)w->data,
                                 cols, x, cols, &beta_, y, rows));
        tfm_cuda_conv_note_write(be, y, (size_t)n * rows * sizeof(float));
        return TFM_OK;
    }
    if (w->dtype != TFM_DTYPE_F16 && w->dtype != TFM_DTYPE_BF16)
        return tfm_cuda_invalid(be, "cuda matmul: weight dtype %s is not supported", dtype_name(w->dtype));

    size_t count = (size_t)n * (size_t)cols;
    if (!(be->conv_valid && be->conv_src == x && be->conv_count == count && be->conv_dtype == w->dtype)) {
        be->conv_valid = 0;
        tfm_status st = tfm_cuda_scratch_reserve(be, &be->gemm_in, count * 2, "GEMM input");
        if (st) return st;
        if ((st = tfm_cuda_convert_f32(be, x, be->gemm_in.ptr, w->dtype, count))) return st;
        be->conv_src = x;
        be->conv_count = count;
        be->conv_dtype = w->dtype;
        be->conv_valid = 1;
    }
    cudaDataType_t type = w->dtype == TFM_DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
    BLAS_TRY(be, cublasGemmEx(be->cublas, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one, w->data, type, cols,
                              be->gemm_in.ptr, type, cols, &beta_, y, CUDA_R_32F, rows, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    tfm_cuda_conv_note_write(be, y, (size_t)n * rows * sizeof(float));
    return TFM_OK;
}

tfm_status tfm_cuda_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n) {
    if (n < 1) return TFM_OK;
    if (n == 1) return tfm_cuda_matvec(be, w, x, y);
    return gemm(be, w, x, y, n, 0.0f);
}

tfm_status tfm_cuda_matmul_accumulate(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n) {
    return gemm(be, w, x, y, n, 1.0f);
}
