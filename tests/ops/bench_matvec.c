/* bench_matvec.c — speed of the cpu backend's matmul through its table.
 *
 *   bench_matvec [-t THREADS] [-d f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k|float|quant|all] [-r ROWS] [-c COLS] [-n TOKENS] [-m MIB] [-R REPS]
 *
 * Streams a set of weight matrices (MIB in all, default 512, so they come from memory and not from
 * the caches, as in a forward pass) through matmul with TOKENS activation rows and prints GB/s of
 * weight read (tokens=1) and GFLOP/s. TFM_CPU_ISA and TFM_CPU_MATVEC_MAX_N select the kernel table
 * and the matrix-vector/sgemm crossover. Not a test: numbers depend on the machine and its load. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "half.h"
#include "kernels.h"
#include "quant.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- memory read bandwidth with the same thread count, as the roofline of the matvec kernels ---- */
typedef float vec4 __attribute__((vector_size(16)));
typedef struct sum_arg {
    const vec4 *p;
    size_t n;
    float out;
} sum_arg;

static void *sum_part(void *arg) {
    sum_arg *a = arg;
    vec4 s[8] = {{0}};
    for (size_t i = 0; i + 8 <= a->n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a->p[i + k];
    vec4 t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    a->out = t[0] + t[1] + t[2] + t[3];
    return NULL;
}

static double read_bandwidth(int threads, double mib, int reps) {
    size_t n = (size_t)(mib * 1048576.0) / sizeof(vec4);
    vec4 *buf = aligned_alloc(64, n * sizeof(vec4));
    memset(buf, 0, n * sizeof(vec4));
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        pthread_t th[64];
        sum_arg args[64];
        int nt = threads < 64 ? threads : 64;
        double t0 = now_s();
        for (int i = 0; i < nt; i++) {
            args[i] = (sum_arg){buf + n / nt * i, n / nt, 0};
            pthread_create(&th[i], NULL, sum_part, &args[i]);
        }
        for (int i = 0; i < nt; i++)
            pthread_join(th[i], NULL);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    free(buf);
    return (double)(n * sizeof(vec4)) / best * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bandwidth;

static void run(const tfm_backend_ops *ops, tfm_backend *be, tfm_dtype dt, const char *dname, int rows, int cols,
                int n, double mib, int reps, int threads) {
    size_t mat_bytes = tfm_cpu_row_bytes(dt, cols) * (size_t)rows;
    int n_mats = (int)(mib * 1048576.0 / (double)mat_bytes);
    if (n_mats < 1)
        n_mats = 1;
    unsigned char *data = malloc(mat_bytes * (size_t)n_mats);
    if (tfm_is_quantized(dt)) {
        /* varied bits, with small normal scales (random f16 could be subnormal and slow) */
        uint32_t seed = 1;
        for (size_t i = 0; i < mat_bytes * (size_t)n_mats; i++) {
            seed = seed * 1103515245u + 12345u;
            data[i] = (uint8_t)(seed >> 16);
        }
        size_t bb = (size_t)tfm_q_block_bytes(dt);
        for (size_t off = 0; off + bb <= mat_bytes * (size_t)n_mats; off += bb) {
            size_t at = dt == TFM_DTYPE_Q6_K ? off + 208 : off;
            data[at] = 0x00, data[at + 1] = 0x1c;     /* 0.0039 */
            if (dt == TFM_DTYPE_Q4_K || dt == TFM_DTYPE_Q5_K)
                data[off + 2] = 0x00, data[off + 3] = 0x18;
        }
    } else {
        for (size_t i = 0; i < mat_bytes * (size_t)n_mats / 2; i++) /* small finite values in any dtype */
            ((uint16_t *)data)[i] = (uint16_t)(dt == TFM_DTYPE_BF16 ? 0x3c00 + (i & 0xff) : 0x2c00 + (i & 0x3ff));
    }
    tfm_weight *w = calloc((size_t)n_mats, sizeof *w);
    for (int m = 0; m < n_mats; m++)
        ops->weight_load(be, &w[m], data + (size_t)m * mat_bytes, dt, rows, cols);
    float *x = malloc((size_t)n * cols * sizeof *x), *y = malloc((size_t)n * rows * sizeof *y);
    for (size_t i = 0; i < (size_t)n * cols; i++)
        x[i] = 0.001f * (float)(i % 97);
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = -1; r < reps; r++) { /* one warm-up pass */
        double t0 = now_s();
        for (int m = 0; m < n_mats; m++)
            ops->matmul(be, &w[m], x, y, n);
        if (r >= 0)
            t[r] = (now_s() - t0) / n_mats;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = t[reps / 2], best = t[0];
    printf("%-6s %-4s t=%d %5dx%-5d n=%-3d %8.3f ms/matrix  %6.1f GB/s (best %6.1f, %3.0f%% of read bw)  %7.1f GFLOP/s\n",
           getenv("TFM_CPU_ISA") ? getenv("TFM_CPU_ISA") : "auto", dname, threads, rows, cols, n, med * 1e3,
           mat_bytes / med * 1e-9, mat_bytes / best * 1e-9, 100.0 * mat_bytes / best * 1e-9 / bandwidth,
           2.0 * rows * cols * n / med * 1e-9);
    free(t), free(x), free(y), free(w), free(data);
}

int main(int argc, char **argv) {
    int threads = 2, rows = 4096, cols = 4096, n = 1, reps = 7;
    double mib = 512;
    const char *dsel = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-d")) dsel = argv[i + 1];
        else if (!strcmp(argv[i], "-r")) rows = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c")) cols = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-m")) mib = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-R")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [-t THREADS] [-d f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k|float|quant|all] [-r ROWS] [-c COLS] [-n TOKENS] [-m MIB] [-R REPS]\n", argv[0]);
            return 2;
        }
    }
    const tfm_backend_ops *ops = tfm_cpu_backend_ops();
    tfm_backend_init_params params = {threads, 0};
    tfm_backend *be = NULL;
    if (ops->init(&params, NULL, &be) != TFM_OK)
        return 1;
    bandwidth = read_bandwidth(threads, mib, 5);
    printf("memory read bandwidth, %d thread(s), %.0f MiB: %.1f GB/s (best of 5)\n", threads, mib, bandwidth);
    static const struct { tfm_dtype dt; const char *name; } types[] = {
        {TFM_DTYPE_F32, "f32"}, {TFM_DTYPE_F16, "f16"}, {TFM_DTYPE_BF16, "bf16"}, {TFM_DTYPE_Q8_0, "q8_0"},
        {TFM_DTYPE_Q4_0, "q4_0"}, {TFM_DTYPE_Q4_K, "q4_k"}, {TFM_DTYPE_Q5_K, "q5_k"}, {TFM_DTYPE_Q6_K, "q6_k"}};
    for (int d = 0; d < 8; d++)
        if (!strcmp(dsel, "all") || !strcmp(dsel, types[d].name) || (!strcmp(dsel, "float") && d < 3) ||
            (!strcmp(dsel, "quant") && d >= 3))
            run(ops, be, types[d].dt, types[d].name, rows, cols, n, mib, reps, threads);
    ops->destroy(be);
    return 0;
}
