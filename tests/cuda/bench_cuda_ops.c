/* bench_cuda_ops.c — where a decode step's time goes, measured through the plugin's vtable.
 *
 *   bench_cuda_ops path/to/libtfm-cuda.so [layers=32]
 *
 * Loads Llama-2-7B-shaped matrices (random bf16 values, stored as the plugin chooses) and times
 * recorded steps (CUDA graphs) that contain: (1) only the 7 matrix-vector products of each layer, as
 * the core issues them; (2) a chain of 200 residual adds of 4096 floats (the cost of one small
 * kernel in a recorded step). Set TFM_CUDA_FUSE=0 etc. to compare the paths. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

static char last_error[1024];
static void set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}
static void log_fn(tfm_log_level level, const char *fmt, ...) {
    (void)level;
    (void)fmt;
}
static const tfm_backend_host host = {set_error, log_fn};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define DIM 4096
#define FF 11008

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s libtfm-cuda.so [layers]\n", argv[0]);
        return 2;
    }
    int layers = argc > 2 ? atoi(argv[2]) : 32;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    const tfm_backend_ops *ops = ((tfm_backend_entry_fn)dlsym(h, TFM_BACKEND_ENTRY_SYMBOL))();
    if (!ops->available()) {
        printf("no GPU\n");
        return 77;
    }
    tfm_backend_init_params p = {0, 0};
    tfm_backend *be;
    if (ops->init(&p, &host, &be)) {
        fprintf(stderr, "init: %s\n", last_error);
        return 1;
    }
    uint16_t *src = malloc((size_t)FF * DIM * 2);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < (size_t)FF * DIM; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        src[i] = (uint16_t)(0x3c00u | (s & 0x807fu)); /* bf16 of magnitude ~2^-7 .. 2^-6, random sign */
    }
    tfm_weight(*w)[7] = calloc((size_t)layers, sizeof *w);
    int64_t rows[7] = {DIM, DIM, DIM, DIM, FF, FF, DIM}, cols[7] = {DIM, DIM, DIM, DIM, DIM, DIM, FF};
    double bytes = 0;
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < 7; i++) {
            if (ops->weight_load(be, &w[l][i], src, TFM_DTYPE_BF16, rows[i], cols[i])) {
                fprintf(stderr, "weight_load: %s\n", last_error);
                return 1;
            }
            bytes += (double)rows[i] * cols[i] * 2;
        }
    float *x = ops->alloc(be, FF * 4), *xb = ops->alloc(be, FF * 4), *q = ops->alloc(be, DIM * 4);
    float *k = ops->alloc(be, DIM * 4), *v = ops->alloc(be, DIM * 4), *att = ops->alloc(be, DIM * 4);
    float *hb = ops->alloc(be, FF * 4), *hb2 = ops->alloc(be, FF * 4);
    float init[FF];
    for (int i = 0; i < FF; i++) init[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    float *bufs[] = {x, xb, q, k, v, att, hb, hb2};
    for (int i = 0; i < 8; i++) ops->upload(be, bufs[i], init, i >= 6 || i < 2 ? FF * 4 : DIM * 4);

    /* (1) the matvecs of every layer, as the core issues them */
    for (int pass = 0; pass < 2; pass++) {
        int reps = pass ? 20 : 3;
        double t0 = 0;
        for (int r = 0; r < reps + 1; r++) {
            if (r == 1) {
                ops->sync(be);
                t0 = now();
            }
            if (!ops->step_begin(be, 1, 0, 0)) {
                for (int l = 0; l < layers; l++) {
                    ops->matmul(be, &w[l][0], xb, q, 1);
                    ops->matmul(be, &w[l][1], xb, k, 1);
                    ops->matmul(be, &w[l][2], xb, v, 1);
                    ops->matmul(be, &w[l][3], att, x, 1);
                    ops->matmul(be, &w[l][4], xb, hb, 1);
                    ops->matmul(be, &w[l][5], xb, hb2, 1);
                    ops->matmul(be, &w[l][6], hb, att, 1);
                }
                ops->step_end(be);
            }
        }
        ops->sync(be);
        double dt = (now() - t0) / reps;
        if (pass)
            printf("matvecs only: %d layers, %.3f ms per step, %.0f GB/s of weights\n", layers, dt * 1e3,
                   bytes / dt / 1e9);
    }
    /* (2) a chain of small kernels */
    for (int pass = 0; pass < 2; pass++) {
        int reps = pass ? 20 : 3;
        double t0 = 0;
        for (int r = 0; r < reps + 1; r++) {
            if (r == 1) {
                ops->sync(be);
                t0 = now();
            }
            if (!ops->step_begin(be, 2, 0, 0)) {
                for (int i = 0; i < 200; i++) ops->add(be, x, xb, DIM);
                ops->step_end(be);
            }
        }
        ops->sync(be);
        double dt = (now() - t0) / reps;
        if (pass) printf("small kernels: %.2f us each (200 residual adds in a recorded step)\n", dt * 1e6 / 200);
    }
    if (ops->sync(be)) fprintf(stderr, "error: %s\n", last_error);
    ops->destroy(be);
    return 0;
}
