/*
 * cuda_backend.cu — the cuda plugin's vtable: device discovery, memory, weight upload, errors.
 *
 * Matrices live on the device in f16 where that is exact or nearly so: f16 sources as they are, f32
 * and bf16 sources converted on the device at load (bf16 -> f16 keeps every bit of a bf16 value of
 * magnitude 2^-14 .. 65504; a tensor with a value beyond the f16 range stays bf16). f16 rather than
 * bf16 because batched GEMMs round their f32 activations to the weight type, and f16 keeps 3 more
 * bits. TFM_CUDA_WEIGHT_DTYPE=f16|bf16|f32 forces one type for every matrix. Activations are f32.
 * Environment knobs (for measurements): TFM_CUDA_PDL=0, TFM_CUDA_GRAPHS=0, TFM_CUDA_FUSE=0,
 * TFM_CUDA_PREFETCH=<bytes>, TFM_CUDA_MATVEC=<variant>, TFM_CUDA_MVX=<0|1>, TFM_CUDA_ATTN_SPLITS=<n>,
 * TFM_CUDA_MVS=<0|8|16>, TFM_CUDA_MVS_WARPS=<n>, TFM_CUDA_MVS_INTERLEAVE=<0|1>, TFM_CUDA_FA=<0|1|2|3>
 * (prefill flash attention: 0 the 64-query kernel, 1..3 a 128-query shape; unset: chosen by batch size).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion.h"

#define STAGING_BYTES ((size_t)64 << 20)        /* upload chunk when converting weights */
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
#define ATTN_PARTIAL_FLOATS ((size_t)4 << 20)   /* split-K attention partials (16 MiB) */

/* ---------------------------------------------------------------- errors */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void note_step_error(tfm_backend *be) {
    if (be && be->recording) be->step_error = 1;
}

tfm_status tfm_cuda_fail(tfm_backend *be, cudaError_t err, const char *what, const char *file, int line) {
    note_step_error(be);
    cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed for it */
    if (be && be->host)
        be->host->set_error("cuda: %s failed: %s (%s) at %s:%d", what, cudaGetErrorString(err), cudaGetErrorName(err),
                            base_name(file), line);
    return err == cudaErrorMemoryAllocation ? TFM_E_OOM : TFM_E_BACKEND;
}

static const char *blas_name(cublasStatus_t st) {
    switch (st) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    default: return "cuBLAS error";
    }
}

tfm_status tfm_cuda_fail_blas(tfm_backend *be, cublasStatus_t st, const char *what, const char *file, int line) {
    note_step_error(be);
    if (be && be->host)
        be->host->set_error("cuda: %s failed: %s (%d) at %s:%d", what, blas_name(st), (int)st, base_name(file), line);
    return st == CUBLAS_STATUS_ALLOC_FAILED ? TFM_E_OOM : TFM_E_BACKEND;
}

tfm_status tfm_cuda_invalid(tfm_backend *be, const char *fmt, ...) {
    note_step_error(be);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (be && be->host) be->host->set_error("%s", msg);
    return TFM_E_INVALID_ARGUMENT;
}

/* Allocates device memory; on failure reports the size asked for and what the device has free. */
static tfm_status device_alloc(tfm_backend *be, void **out, size_t bytes, const char *what) {
    *out = NULL;
    cudaError_t err = cudaMalloc(out, bytes ? bytes : 1);
    if (err == cudaSuccess) return TFM_OK;
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    be->host->set_error("cuda: cannot allocate %zu bytes of device memory for %s on device %d (%zu of %zu bytes "
                        "free): %s", bytes, what, be->device, free_b, total_b, cudaGetErrorString(err));
    *out = NULL;
    return err == cudaErrorMemoryAllocation ? TFM_E_OOM : TFM_E_BACKEND;
}

tfm_status tfm_cuda_scratch_reserve(tfm_backend *be, tfm_cuda_scratch *s, size_t bytes, const char *what) {
    if (s->bytes >= bytes) return TFM_OK;
    if (be->recording)
        return tfm_cuda_invalid(be, "cuda: %s needs %zu bytes of scratch inside a recorded step", what, bytes);
    CUDA_TRY(be, cudaStreamSynchronize(be->stream));
    if (s->ptr) cudaFree(s->ptr);
    s->ptr = NULL;
    s->bytes = 0;
    size_t grown = bytes + bytes / 4;
    tfm_status st = device_alloc(be, &s->ptr, grown, what);
    if (st) return st;
    s->bytes = grown;
    return TFM_OK;
}

/* ---------------------------------------------------------------- device discovery */

static void select_device(tfm_backend *be) {
    if (be->device != 0) cudaSetDevice(be->device);
}

static int cuda_available(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    for (int d = 0; d < count; d++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) == cudaSuccess && p.major >= 8) return 1;
    }
    return 0;
}

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

static void cuda_destroy(tfm_backend *be);

static tfm_status cuda_init(const tfm_backend_init_params *params, const tfm_backend_host *host, tfm_backend **out) {
    *out = NULL;
    tfm_backend *be = (tfm_backend *)calloc(1, sizeof *be);
    if (!be) {
        host->set_error("cuda: out of host memory");
        return TFM_E_OOM;
    }
    be->host = host;
    be->device = params ? params->device : 0;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || be->device < 0 || be->device >= count) {
        cudaGetLastError();
        host->set_error("cuda: device %d is not available (%d devices%s%s)", be->device, err == cudaSuccess ? count : 0,
                        err == cudaSuccess ? "" : ": ", err == cudaSuccess ? "" : cudaGetErrorString(err));
        free(be);
        return TFM_E_BACKEND;
    }
    tfm_status st = TFM_OK;
#define INIT_TRY(call)                                                 \
    do {                                                               \
        cudaError_t e_ = (call);                                       \
        if (e_ != cudaSuccess) {                                       \
            st = tfm_cuda_fail(be, e_, #call, __FILE__, __LINE__);     \
            goto fail;                                                 \
        }                                                              \
    } while (0)
    INIT_TRY(cudaSetDevice(be->device));
    INIT_TRY(cudaGetDeviceProperties(&be->prop, be->device));
    if (be->prop.major < 8) {
        host->set_error("cuda: device %d (%s) has compute capability %d.%d; the cuda backend needs 8.0 or newer",
                        be->device, be->prop.name, be->prop.major, be->prop.minor);
        st = TFM_E_BACKEND;
        goto fail;
    }
    INIT_TRY(cudaStreamCreateWithFlags(&be->stream, cudaStreamNonBlocking));
    {
        cublasStatus_t bs = cublasCreate(&be->cublas);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            be->cublas = NULL;
            st = tfm_cuda_fail_blas(be, bs, "cublasCreate", __FILE__, __LINE__);
            goto fail;
        }
        if ((st = device_alloc(be, &be->cublas_workspace, CUBLAS_WORKSPACE_BYTES, "the cuBLAS workspace"))) goto fail;
        be->cublas_workspace_bytes = CUBLAS_WORKSPACE_BYTES;
        if ((bs = cublasSetStream(be->cublas, be->stream)) != CUBLAS_STATUS_SUCCESS ||
            (bs = cublasSetWorkspace(be->cublas, be->cublas_workspace, be->cublas_workspace_bytes)) !=
                CUBLAS_STATUS_SUCCESS ||
            (bs = cublasSetMathMode(be->cublas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
            st = tfm_cuda_fail_blas(be, bs, "cuBLAS setup", __FILE__, __LINE__);
            goto fail;
        }
    }
    if ((st = device_alloc(be, (void **)&be->d_step, 2 * sizeof(int), "the decode-step state"))) goto fail;
    if ((st = device_alloc(be, (void **)&be->attn_partial, ATTN_PARTIAL_FLOATS * sizeof(float),
                           "attention partials")))
        goto fail;
    be->attn_partial_floats = ATTN_PARTIAL_FLOATS;
    if ((st = device_alloc(be, (void **)&be->attn_counters, TFM_CUDA_ATTN_COUNTERS * sizeof(unsigned),
                           "attention counters")))
        goto fail;
    INIT_TRY(cudaMemsetAsync(be->attn_counters, 0, TFM_CUDA_ATTN_COUNTERS * sizeof(unsigned), be->stream));
    INIT_TRY(cudaMemsetAsync(be->d_step, 0, 2 * sizeof(int), be->stream));
    INIT_TRY(cudaStreamSynchronize(be->stream));
    be->flash_wide = env_int("TFM_CUDA_FA", -1);
    if ((st = tfm_cuda_attention_setup(be))) goto fail;
    if ((st = tfm_cuda_mvx_setup(be))) goto fail;
    if ((st = tfm_cuda_mvs_setup(be))) goto fail;
    if ((st = device_alloc(be, (void **)&be->d_flag, sizeof(int), "a flag"))) goto fail;
    be->gemm16 = TFM_DTYPE_F32;

    be->use_pdl = be->prop.major >= 9 && env_int("TFM_CUDA_PDL", 1) != 0;
    be->use_graphs = env_int("TFM_CUDA_GRAPHS", 1) != 0;
    be->prefetch_bytes = be->prop.major >= 9 ? env_int("TFM_CUDA_PREFETCH", 0) : 0;
    be->fuse = env_int("TFM_CUDA_FUSE", 1) != 0;
    be->matvec_variant = env_int("TFM_CUDA_MATVEC", 0);
    be->attn_splits = env_int("TFM_CUDA_ATTN_SPLITS", 0);
    be->attn_fuse = env_int("TFM_CUDA_ATTN_FUSE", 1) != 0;
    be->attn_cluster = be->prop.major >= 9 && env_int("TFM_CUDA_ATTN_CLUSTER", 1) != 0;
    tfm_cuda_attention_decode_setup(be);
    be->mvx_variant = env_int("TFM_CUDA_MVX", 0);
    be->mvs_depth = env_int("TFM_CUDA_MVS", 8);
    if (be->mvs_depth != 0 && be->mvs_depth != 16) be->mvs_depth = 8;
    be->mvs_warps = env_int("TFM_CUDA_MVS_WARPS", 32);
    if (be->mvs_warps < 1 || be->mvs_warps > 32) be->mvs_warps = 32;
    be->mvs_interleave = env_int("TFM_CUDA_MVS_INTERLEAVE", 2);
    if (be->mvs_interleave < 0 || be->mvs_interleave > 2) be->mvs_interleave = 2;
    be->weight_dtype_f32 = TFM_DTYPE_F16;
    {
        const char *wd = getenv("TFM_CUDA_WEIGHT_DTYPE");
        if (wd && *wd && strcmp(wd, "f16") && strcmp(wd, "bf16") && strcmp(wd, "f32")) {
            host->set_error("cuda: TFM_CUDA_WEIGHT_DTYPE='%s' (expected f16, bf16 or f32)", wd);
            st = TFM_E_INVALID_ARGUMENT;
            goto fail;
        }
    }
    host->log(TFM_LOG_INFO, "cuda: device %d %s, compute %d.%d, %d SMs, %zu MiB, L2 %d KiB, pdl %d, graphs %d, fuse %d",
              be->device, be->prop.name, be->prop.major, be->prop.minor, be->prop.multiProcessorCount,
              be->prop.totalGlobalMem >> 20, be->prop.l2CacheSize >> 10, be->use_pdl, be->use_graphs, be->fuse);
    *out = be;
    return TFM_OK;
#undef INIT_TRY
fail:
    cuda_destroy(be);
    return st;
}

static void cuda_destroy(tfm_backend *be) {
    if (!be) return;
    select_device(be);
    if (be->stream) tfm_cuda_settle(be);
    if (be->recording) tfm_cuda_step_abandon(be, "backend destroyed");
    if (be->stream) cudaStreamSynchronize(be->stream);
    tfm_cuda_steps_free(be);
    if (be->gemm_in.ptr) cudaFree(be->gemm_in.ptr);
    if (be->attn_partial) cudaFree(be->attn_partial);
    if (be->attn_counters) cudaFree(be->attn_counters);
    if (be->d_step) cudaFree(be->d_step);
    if (be->d_flag) cudaFree(be->d_flag);
    if (be->cublas) cublasDestroy(be->cublas);
    if (be->cublas_workspace) cudaFree(be->cublas_workspace);
    if (be->stream) cudaStreamDestroy(be->stream);
    cudaGetLastError();
    free(be);
}

/* ---------------------------------------------------------------- memory */

/* Operations that block the host cannot be recorded: finish the recording as a one-off first. */
static void leave_recording(tfm_backend *be, const char *why) {
    if (be->recording) tfm_cuda_step_abandon(be, why);
}

static void *cuda_alloc(tfm_backend *be, size_t bytes) {
    select_device(be);
    leave_recording(be, "alloc inside the step");
    void *p = NULL;
    if (device_alloc(be, &p, bytes, "a buffer")) return NULL;
    cudaError_t err = cudaMemsetAsync(p, 0, bytes, be->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(be->stream);
    if (err != cudaSuccess) {
        tfm_cuda_fail(be, err, "clearing a new buffer", __FILE__, __LINE__);
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cuda_free(tfm_backend *be, void *ptr) {
    if (!ptr) return;
    select_device(be);
    tfm_cuda_settle_all(be); /* nothing held back may still read or owe this memory */
    leave_recording(be, "free inside the step");
    cudaStreamSynchronize(be->stream);
    cudaFree(ptr);
    cudaGetLastError();
}

static tfm_status cuda_upload(tfm_backend *be, void *dst, const void *host_src, size_t bytes) {
    select_device(be);
    tfm_status st = tfm_cuda_before_write(be, dst, bytes);
    if (st) return st;
    leave_recording(be, "upload inside the step");
    CUDA_TRY(be, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, be->stream));
    CUDA_TRY(be, cudaStreamSynchronize(be->stream));
    return TFM_OK;
}

static tfm_status cuda_download(tfm_backend *be, void *host_dst, const void *src, size_t bytes) {
    select_device(be);
    tfm_status st = tfm_cuda_before_read(be, src, bytes);
    if (st) return st;
    leave_recording(be, "download inside the step");
    CUDA_TRY(be, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, be->stream));
    CUDA_TRY(be, cudaStreamSynchronize(be->stream));
    return TFM_OK;
}

static void cuda_mem_info(tfm_backend *be, size_t *free_bytes, size_t *total_bytes) {
    select_device(be);
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) != cudaSuccess) {
        cudaGetLastError();
        f = t = 0;
    }
    if (free_bytes) *free_bytes = f;
    if (total_bytes) *total_bytes = t;
}

static tfm_status cuda_sync(tfm_backend *be) {
    select_device(be);
    tfm_status st = tfm_cuda_settle(be);
    if (st) return st;
    leave_recording(be, "sync inside the step");
    CUDA_TRY(be, cudaStreamSynchronize(be->stream));
    CUDA_TRY(be, cudaGetLastError());
    return TFM_OK;
}

/* ---------------------------------------------------------------- weights */

static size_t dtype_bytes(tfm_dtype t) {
    switch (t) {
    case TFM_DTYPE_F32: return 4;
    case TFM_DTYPE_F16:
    case TFM_DTYPE_BF16: return 2;
    default: return 0;
    }
}

/* Converts and raises *overflow when a finite value does not fit the destination type. */
template <typename S, typename D>
__global__ void convert_weight_kernel(const S *__restrict__ src, D *__restrict__ dst, size_t count, int *overflow) {
    pdl_wait();
    pdl_launch_dependents();
    int bad = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
        float v = to_f32<S>(src[i]);
        D d = from_f32<D>(v);
        dst[i] = d;
        bad |= isinf(to_f32<D>(d)) && !isinf(v);
    }
    if (bad) atomicOr(overflow, 1);
}

template <typename S>
static cudaError_t launch_convert_from(tfm_backend *be, const S *src, void *dst, tfm_dtype to, size_t count) {
    dim3 grid((unsigned)(be->prop.multiProcessorCount * 8)), block(256);
    switch (to) {
    case TFM_DTYPE_F32:
        return tfm_cuda_launch(be, convert_weight_kernel<S, float>, grid, block, 0, src, (float *)dst, count, be->d_flag);
    case TFM_DTYPE_F16:
        return tfm_cuda_launch(be, convert_weight_kernel<S, __half>, grid, block, 0, src, (__half *)dst, count,
                               be->d_flag);
    default:
        return tfm_cuda_launch(be, convert_weight_kernel<S, __nv_bfloat16>, grid, block, 0, src, (__nv_bfloat16 *)dst,
                               count, be->d_flag);
    }
}

static cudaError_t launch_convert(tfm_backend *be, const void *src, tfm_dtype from, void *dst, tfm_dtype to,
                                  size_t count) {
    switch (from) {
    case TFM_DTYPE_F32: return launch_convert_from(be, (const float *)src, dst, to, count);
    case TFM_DTYPE_F16: return launch_convert_from(be, (const __half *)src, dst, to, count);
    default: return launch_convert_from(be, (const __nv_bfloat16 *)src, dst, to, count);
    }
}

/* Uploads `count` elements of `dtype` from the host and stores them as `target` in *out.
 * TFM_E_UNSUPPORTED (nothing reported) when a value does not fit `target`. */
static tfm_status upload_as(tfm_backend *be, const void *host, tfm_dtype dtype, size_t count, tfm_dtype target,
                            void **out) {
    void *dst = NULL;
    *out = NULL;
    tfm_status st = device_alloc(be, &dst, count * dtype_bytes(target), "a weight");
    if (st) return st;
    if (target == dtype) {
        cudaError_t err = cudaMemcpyAsync(dst, host, count * dtype_bytes(dtype), cudaMemcpyHostToDevice, be->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(be->stream);
        if (err != cudaSuccess) {
            cudaFree(dst);
            return tfm_cuda_fail(be, err, "uploading a weight", __FILE__, __LINE__);
        }
        *out = dst;
        return TFM_OK;
    }
    /* Upload in chunks through a staging buffer and convert on the device. */
    size_t src_size = dtype_bytes(dtype), chunk = STAGING_BYTES / src_size;
    void *stage = NULL;
    if ((st = device_alloc(be, &stage, (count < chunk ? count : chunk) * src_size, "weight staging"))) {
        cudaFree(dst);
        return st;
    }
    int overflow = 0;
    cudaError_t err = cudaMemsetAsync(be->d_flag, 0, sizeof(int), be->stream);
    for (size_t done = 0; done < count && err == cudaSuccess; done += chunk) {
        size_t n = count - done < chunk ? count - done : chunk;
        err = cudaMemcpyAsync(stage, (const char *)host + done * src_size, n * src_size, cudaMemcpyHostToDevice,
                              be->stream);
        if (err == cudaSuccess) err = launch_convert(be, stage, dtype, (char *)dst + done * dtype_bytes(target), target, n);
    }
    if (err == cudaSuccess) err = cudaMemcpyAsync(&overflow, be->d_flag, sizeof(int), cudaMemcpyDeviceToHost, be->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(be->stream);
    cudaFree(stage);
    if (err != cudaSuccess) {
        cudaFree(dst);
        return tfm_cuda_fail(be, err, "converting a weight", __FILE__, __LINE__);
    }
    if (overflow) {
        cudaFree(dst);
        return TFM_E_UNSUPPORTED;
    }
    *out = dst;
    return TFM_OK;
}

static tfm_status cuda_weight_load(tfm_backend *be, tfm_weight *w, const void *host, tfm_dtype dtype, int64_t rows,
                                   int64_t cols) {
    select_device(be);
    tfm_status st = tfm_cuda_settle(be);
    if (st) return st;
    leave_recording(be, "weight_load inside the step");
    w->data = NULL;
    w->backend_data = NULL;
    w->dtype = dtype;
    w->rows = rows;
    w->cols = cols;
    if (rows < 1 || cols < 1 || cols > INT32_MAX || rows > INT32_MAX)
        return tfm_cuda_invalid(be, "cuda: weight of %lld x %lld is out of range", (long long)rows, (long long)cols);
    if (!dtype_bytes(dtype)) {
        be->host->set_error("cuda: weights of type %s are not supported by the cuda backend yet (f32, f16 and bf16 "
                            "are)", dtype_name(dtype));
        return TFM_E_UNSUPPORTED;
    }
    /* Vectors (norm gains) stay as given; matrices become the device weight type. */
    tfm_dtype target = dtype, fallback = dtype;
    if (rows > 1) {
        const char *wd = getenv("TFM_CUDA_WEIGHT_DTYPE");
        if (wd && !strcmp(wd, "f16")) target = TFM_DTYPE_F16;
        else if (wd && !strcmp(wd, "bf16")) target = TFM_DTYPE_BF16;
        else if (wd && !strcmp(wd, "f32")) target = TFM_DTYPE_F32;
        else target = TFM_DTYPE_F16;
        /* a value beyond the f16 range: keep bf16 (bf16 sources) or use it (f32 sources) */
        fallback = dtype == TFM_DTYPE_F16 ? TFM_DTYPE_F16 : target == TFM_DTYPE_F16 ? TFM_DTYPE_BF16 : target;
    }
    size_t count = (size_t)rows * (size_t)cols;
    void *dst = NULL;
    st = upload_as(be, host, dtype, count, target, &dst);
    if (st == TFM_E_UNSUPPORTED && fallback != target) {
        be->host->log(TFM_LOG_INFO, "cuda: a %lld x %lld weight has values beyond the f16 range; kept as %s",
                      (long long)rows, (long long)cols, dtype_name(fallback));
        target = fallback;
        st = upload_as(be, host, dtype, count, target, &dst);
    }
    if (st == TFM_E_UNSUPPORTED) {
        be->host->set_error("cuda: a %lld x %lld %s weight has values beyond the range of %s", (long long)rows,
                            (long long)cols, dtype_name(dtype), dtype_name(target));
        return TFM_E_UNSUPPORTED;
    }
    if (st) return st;
    w->data = dst;
    w->dtype = target;
    if (rows > 1 && (target == TFM_DTYPE_F16 || target == TFM_DTYPE_BF16)) be->gemm16 = target;
    return TFM_OK;
}

static void cuda_weight_free(tfm_backend *be, tfm_weight *w) {
    if (!w || !w->data) return;
    cuda_free(be, (void *)w->data);
    w->data = NULL;
}

/* ---------------------------------------------------------------- op entry points */

static tfm_status op_matmul(tfm_backend *be, const tfm_weight *w, const float *x, float *y, int n) {
    select_device(be);
    return tfm_cuda_plan_matmul(be, w, x, y, n);
}
static tfm_status op_embed(tfm_backend *be, const tfm_weight *t, const int32_t *ids, int n, float *out) {
    select_device(be);
    return tfm_cuda_plan_embed(be, t, ids, n, out);
}
static tfm_status op_rmsnorm(tfm_backend *be, const float *x, const tfm_weight *g, float *y, int n, int dim, float eps) {
    select_device(be);
    return tfm_cuda_plan_rmsnorm(be, x, g, y, n, dim, eps);
}
static tfm_status op_rope(tfm_backend *be, float *x, int n, int n_head, int head_dim, int pos0, const float *inv_freq,
                          tfm_rope_pairing pairing) {
    select_device(be);
    return tfm_cuda_plan_rope(be, x, n, n_head, head_dim, pos0, inv_freq, pairing);
}
static tfm_status op_kv_store(tfm_backend *be, void *cache, tfm_dtype kv_dtype, int row0, const float *src, int n,
                              int width) {
    select_device(be);
    return tfm_cuda_plan_kv_store(be, cache, kv_dtype, row0, src, n, width);
}
static tfm_status op_attention(tfm_backend *be, const float *q, const void *k, const void *v, tfm_dtype kv_dtype,
                               float *out, int n, int pos0, int n_head, int n_head_kv, int head_dim, float scale,
                               int causal) {
    select_device(be);
    return tfm_cuda_plan_attention(be, q, k, v, kv_dtype, out, n, pos0, n_head, n_head_kv, head_dim, scale, causal);
}
static tfm_status op_swiglu(tfm_backend *be, const float *gate, const float *up, float *out, size_t count) {
    select_device(be);
    return tfm_cuda_plan_swiglu(be, gate, up, out, count);
}
static tfm_status op_add(tfm_backend *be, float *x, const float *y, size_t count) {
    select_device(be);
    return tfm_cuda_plan_add(be, x, y, count);
}
static int op_step_begin(tfm_backend *be, uint64_t key, int pos, int32_t token) {
    select_device(be);
    return tfm_cuda_step_begin(be, key, pos, token);
}
static tfm_status op_step_end(tfm_backend *be) {
    select_device(be);
    return tfm_cuda_step_end(be);
}

static const tfm_backend_ops cuda_ops = {
    TFM_BACKEND_ABI_VERSION,
    "cuda",
    100, /* preferred over cpu by "auto" */
    cuda_available,
    cuda_init,
    cuda_destroy,
    cuda_alloc,
    cuda_free,
    cuda_upload,
    cuda_download,
    cuda_mem_info,
    cuda_weight_load,
    cuda_weight_free,
    op_matmul,
    op_embed,
    op_rmsnorm,
    op_rope,
    op_kv_store,
    op_attention,
    op_swiglu,
    op_add,
    cuda_sync,
    op_step_begin,
    op_step_end,
};

extern "C" __attribute__((visibility("default"))) const tfm_backend_ops *tfm_backend_entry(void) { return &cuda_ops; }
