/* cuda_ceilings.cu — the two ceilings the benchmark is judged against, measured on the machine at hand:
 * device copy bandwidth (bytes read + written per second, cudaMemcpy of 2 GiB) and read bandwidth (a
 * 16-byte-load reduction over 4 GiB), and the bf16 tensor-core GEMM rate (cuBLAS, 8192^3, random data,
 * bf16 output), plus the prefill-shaped GEMMs the cuda backend issues (bf16 in, f32 out).
 * Medians of 20 timed runs after warm-up, timed with CUDA events. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(x)                                                                                 \
    do {                                                                                      \
        cudaError_t e = (x);                                                                  \
        if (e != cudaSuccess) {                                                               \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)
#define CB(x)                                                              \
    do {                                                                   \
        cublasStatus_t s = (x);                                            \
        if (s != CUBLAS_STATUS_SUCCESS) {                                  \
            fprintf(stderr, "%s:%d %s: %d\n", __FILE__, __LINE__, #x, (int)s); \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

__global__ void fill_random(uint32_t *p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t x = (uint32_t)i * 2654435761u ^ seed;
        x ^= x >> 13;
        x *= 0x5bd1e995u;
        x ^= x >> 15;
        /* two bf16 in [-1, 1): sign, exponent 126..127, random mantissa */
        uint32_t lo = 0x3f00u | (x & 0x807fu), hi = 0x3f00u | ((x >> 16) & 0x807fu);
        p[i] = lo | (hi << 16);
    }
}

__global__ void read_sum(const uint4 *p, size_t n, unsigned *out) {
    unsigned acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint4 v = p[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u) *out = acc; /* keeps the loads */
}

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef void (*work_fn)(void *ctx);

static float median_ms(work_fn f, void *ctx, int reps) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) f(ctx);
    float t[64];
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a));
        f(ctx);
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&t[i], a, b));
    }
    qsort(t, reps, sizeof *t, cmpf);
    return t[reps / 2];
}

struct copy_ctx {
    void *dst, *src;
    size_t bytes;
};
static void do_copy(void *c) {
    copy_ctx *x = (copy_ctx *)c;
    CK(cudaMemcpyAsync(x->dst, x->src, x->bytes, cudaMemcpyDeviceToDevice));
}
struct read_ctx {
    const uint4 *p;
    size_t n;
    unsigned *out;
    int blocks;
};
static void do_read(void *c) {
    read_ctx *x = (read_ctx *)c;
    read_sum<<<x->blocks, 512>>>(x->p, x->n, x->out);
}
struct gemm_ctx {
    cublasHandle_t h;
    int m, n, k;
    const void *a, *b;
    void *c;
    cudaDataType_t ctype;
};
static void do_gemm(void *c) {
    gemm_ctx *g = (gemm_ctx *)c;
    float one = 1.0f, zero = 0.0f;
    CB(cublasGemmEx(g->h, CUBLAS_OP_T, CUBLAS_OP_N, g->m, g->n, g->k, &one, g->a, CUDA_R_16BF, g->k, g->b, CUDA_R_16BF,
                    g->k, &zero, g->c, g->ctype, g->m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

int main(void) {
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("device: %s, %d SMs, %.0f MiB, L2 %d KiB, cc %d.%d\n", p.name, p.multiProcessorCount,
           p.totalGlobalMem / 1048576.0, p.l2CacheSize / 1024, p.major, p.minor);

    size_t bytes = (size_t)2 << 30;
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes * 2));
    fill_random<<<1024, 256>>>((uint32_t *)a, bytes / 4, 1);
    fill_random<<<1024, 256>>>((uint32_t *)b, bytes / 2, 2);
    CK(cudaDeviceSynchronize());

    copy_ctx cc = {b, a, bytes};
    float ms = median_ms(do_copy, &cc, 20);
    printf("copy_bandwidth_GBps %.0f   (cudaMemcpy D2D %zu MiB, read+write)\n", 2.0 * bytes / ms / 1e6, bytes >> 20);

    unsigned *out;
    CK(cudaMalloc(&out, 4));
    read_ctx rc = {(const uint4 *)b, bytes * 2 / 16, out, p.multiProcessorCount * 4};
    ms = median_ms(do_read, &rc, 20);
    printf("read_bandwidth_GBps %.0f   (16-byte loads over %zu MiB)\n", 2.0 * bytes / ms / 1e6, (2 * bytes) >> 20);
    CK(cudaFree(a));
    CK(cudaFree(b));

    cublasHandle_t h;
    CB(cublasCreate(&h));
    void *ws;
    CK(cudaMalloc(&ws, 32 << 20));
    CB(cublasSetWorkspace(h, ws, 32 << 20));
    struct {
        int m, n, k;
        cudaDataType_t ct;
        const char *what;
    } shapes[] = {
        {8192, 8192, 8192, CUDA_R_16BF, "bf16 GEMM peak 8192^3 (bf16 out)"},
        {4096, 2048, 4096, CUDA_R_32F, "prefill 2048: q/k/v/o projection (f32 out)"},
        {11008, 2048, 4096, CUDA_R_32F, "prefill 2048: gate/up projection (f32 out)"},
        {4096, 2048, 11008, CUDA_R_32F, "prefill 2048: down projection (f32 out)"},
        {4096, 512, 4096, CUDA_R_32F, "prefill 512: q/k/v/o projection (f32 out)"},
        {11008, 512, 4096, CUDA_R_32F, "prefill 512: gate/up projection (f32 out)"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int m = shapes[i].m, n = shapes[i].n, k = shapes[i].k;
        void *A, *B, *C;
        CK(cudaMalloc(&A, (size_t)m * k * 2));
        CK(cudaMalloc(&B, (size_t)n * k * 2));
        CK(cudaMalloc(&C, (size_t)m * n * 4));
        fill_random<<<1024, 256>>>((uint32_t *)A, (size_t)m * k / 2, 3);
        fill_random<<<1024, 256>>>((uint32_t *)B, (size_t)n * k / 2, 4);
        gemm_ctx g = {h, m, n, k, A, B, C, shapes[i].ct};
        ms = median_ms(do_gemm, &g, 20);
        printf("%s%.0f TFLOP/s   %s (m %d n %d k %d, %.3f ms)\n", i == 0 ? "gemm_peak_TFLOPs " : "gemm ",
               2.0 * m * n * k / ms / 1e9, shapes[i].what, m, n, k, ms);
        CK(cudaFree(A));
        CK(cudaFree(B));
        CK(cudaFree(C));
    }
    cublasDestroy(h);
    return 0;
}
